// Package jwks is caekit's one JWK Set refresher: it fetches a JWK Set (or
// an OpenID Provider's discovery document) over HTTP with the kit's rules,
// turns it into public keys, and keeps it fresh from one goroutine that its
// owner waits for. The access-token validator (interceptor/token, and
// through it the logout receivers) and the SET receiver (revocation/ssf)
// both use it.
//
// The rules: a response must be 200 and at most MaxBody bytes (checked on
// Content-Length and while reading); a JWK Set holds at most MaxKeys keys;
// keys whose use is not "sig", symmetric keys, keys that do not parse and
// keys CheckKey refuses are skipped (and logged), so that one odd key does
// not take the whole set down; private members and x5u are dropped before
// parsing (a JWK Set is public, and x5u would be a fetch to an
// attacker-chosen URL); a set with no usable key is an error. URL rules
// (https only, plain http on loopback or by opt-in, redirects held to the
// same rule) are the caller's http.Client's and jose.CheckURL's.
//
// Why not jwkset's HTTP storage (jwkset.NewStorageFromHTTP), which the SET
// receiver used before: its refresh goroutine cannot be waited for (only
// cancelled), it retries a failed fetch only after the whole refresh
// interval (no backoff), one invalid JWK fails the whole refresh, it keeps
// private key members, reads the body without a size bound, and its
// MemoryJWKSet look-up scans every key under a lock; BenchmarkLookup in
// this package measures the last point against the validator's map
// snapshot. jwkset's JWK parsing (NewJWKFromMarshal) is kept: it is
// well-kept code for the part that is the same everywhere.
package jwks

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/caekit/caekit/internal/backoff"
	"github.com/caekit/caekit/internal/jose"
)

// MaxKeys bounds the number of keys taken from one JWK Set.
const MaxKeys = 100

// MaxRetryBackoff caps the wait after failed refreshes (the refresh
// interval caps it further).
const MaxRetryBackoff = time.Minute

// Fetcher fetches discovery documents and JWK Sets with the kit's rules.
type Fetcher struct {
	// Client makes the requests; its CheckRedirect must hold redirects to
	// the URL rule (jose.CheckURL).
	Client *http.Client
	// MaxBody bounds a response, in bytes.
	MaxBody int64
	// Insecure allows a discovered jwks_uri on plain http beyond loopback;
	// InsecureOption names the caller's opt-in for the error message.
	Insecure       bool
	InsecureOption string
	// CheckKey, if set, refuses a parsed public key (too short, wrong
	// curve); such keys are skipped.
	CheckKey func(key crypto.PublicKey) error
	// Log receives the skipped keys.
	Log *slog.Logger
}

// Discovery is the part of an OpenID Provider configuration the kit reads.
type Discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// Discover reads issuerURL + "/.well-known/openid-configuration" and
// returns it; its jwks_uri must be present and satisfy the URL rule.
func (f *Fetcher) Discover(ctx context.Context, issuerURL string) (Discovery, error) {
	u := strings.TrimSuffix(issuerURL, "/") + "/.well-known/openid-configuration"
	body, err := f.Get(ctx, u)
	if err != nil {
		return Discovery{}, fmt.Errorf("OIDC discovery: %w", err)
	}
	var doc Discovery
	if err := json.Unmarshal(body, &doc); err != nil {
		return Discovery{}, fmt.Errorf("OIDC discovery %s: invalid JSON: %w", u, err)
	}
	if doc.JWKSURI == "" {
		return Discovery{}, fmt.Errorf("OIDC discovery %s: no jwks_uri", u)
	}
	if err := jose.CheckURL(doc.JWKSURI, f.Insecure, f.InsecureOption); err != nil {
		return Discovery{}, fmt.Errorf("OIDC discovery %s: jwks_uri: %w", u, err)
	}
	return doc, nil
}

// Keys downloads the JWK Set at u and returns its usable public keys (see
// the package documentation for which keys are skipped).
func (f *Fetcher) Keys(ctx context.Context, u string) ([]jwkset.JWK, error) {
	body, err := f.Get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("JWKS %s: invalid JSON: %w", u, err)
	}
	if len(set.Keys) > MaxKeys {
		return nil, fmt.Errorf("JWKS %s: %d keys, at most %d accepted", u, len(set.Keys), MaxKeys)
	}
	log := f.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keys := make([]jwkset.JWK, 0, len(set.Keys))
	for _, m := range set.Keys {
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		if m.KTY == jwkset.KtyOct {
			log.WarnContext(ctx, "ignoring a symmetric key in a JWK Set", "kid", jose.Clip(m.KID))
			continue
		}
		m.X5U = ""
		m.D, m.P, m.Q, m.DP, m.DQ, m.QI, m.OTH, m.K = "", "", "", "", "", "", nil, ""
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			if !errors.Is(err, jwkset.ErrUnsupportedKey) {
				log.WarnContext(ctx, "ignoring an invalid key in a JWK Set", "kid", jose.Clip(m.KID), "error", err)
			}
			continue
		}
		if f.CheckKey != nil {
			if err := f.CheckKey(jwk.Key()); err != nil {
				log.WarnContext(ctx, "ignoring an unusable key in a JWK Set", "kid", jose.Clip(m.KID), "error", err)
				continue
			}
		}
		keys = append(keys, jwk)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS %s: no usable signing key among %d", u, len(set.Keys))
	}
	return keys, nil
}

// Get fetches u, requiring 200 and at most MaxBody bytes.
func (f *Fetcher) Get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	if resp.ContentLength > f.MaxBody {
		return nil, fmt.Errorf("GET %s: response of %d bytes exceeds the %d-byte limit", u, resp.ContentLength, f.MaxBody)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(body)) > f.MaxBody {
		return nil, fmt.Errorf("GET %s: response exceeds the %d-byte limit", u, f.MaxBody)
	}
	return body, nil
}

// Refresher calls a refresh function every interval, sooner (with the
// kit's backoff, from one second up to MaxRetryBackoff and never past the
// interval) after a failure, and whenever Trigger asks. Run is its one
// goroutine; the owner starts it and waits for it to return after
// cancelling its context.
type Refresher struct {
	every   time.Duration
	refresh func(context.Context) error
	onFail  func(ctx context.Context, err error, failures int)
	trigger chan struct{}
}

// NewRefresher returns a Refresher of refresh every interval (> 0). onFail,
// if set, is told of each failed refresh (not of those cut short by the
// end of Run's context).
func NewRefresher(every time.Duration, refresh func(context.Context) error, onFail func(ctx context.Context, err error, failures int)) *Refresher {
	return &Refresher{every: every, refresh: refresh, onFail: onFail, trigger: make(chan struct{}, 1)}
}

// Trigger asks Run for a refresh now. It never blocks; triggers that come
// while one is pending are merged. Rate limiting is the caller's.
func (r *Refresher) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run refreshes until ctx ends. failed says the last refresh (made by the
// owner before Run) failed, so that the first wait is a backoff.
func (r *Refresher) Run(ctx context.Context, failed bool) {
	failures := 0
	if failed {
		failures = 1
	}
	timer := time.NewTimer(r.Delay(failures))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.trigger:
		}
		if err := r.refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if r.onFail != nil {
				r.onFail(ctx, err, failures)
			}
		} else {
			failures = 0
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(r.Delay(failures))
	}
}

// Delay is the wait before the next refresh after failures consecutive
// failures: the interval after none.
func (r *Refresher) Delay(failures int) time.Duration {
	if failures == 0 {
		return r.every
	}
	return backoff.Policy{Min: min(time.Second, r.every), Max: min(MaxRetryBackoff, r.every)}.Delay(failures)
}
