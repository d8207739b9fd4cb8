package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// maxJWKSKeys bounds the number of keys taken from one JWK Set.
const maxJWKSKeys = 100

// maxRetryBackoff caps the retry delay after failed fetches (and the
// refresh interval caps it further).
const maxRetryBackoff = time.Minute

// remote is one remote key source: a JWKS URL, possibly found by OIDC
// discovery. The keys live in a jwkset memory storage read through keyfunc;
// fetching is done here, by one goroutine per source, so that the request
// path never waits for the network (jwkset's own HTTP storage refreshes
// unknown kids synchronously on the caller's goroutine) and so that Close can
// wait for the goroutine to end.
type remote struct {
	discoveryURL string // "" when configured with a JWKS URL
	jwksURL      atomic.Pointer[string]
	source       string // for logs and errors

	client       *http.Client
	maxBody      int64
	insecureHTTP bool
	refreshEvery time.Duration
	minGap       time.Duration // least time between kid-triggered refreshes; 0 = none
	log          *slog.Logger

	store *jwkset.MemoryJWKSet
	kf    keyfunc.Keyfunc

	trigger     chan struct{}
	lastTrigger atomic.Int64 // unix nanos of the last accepted trigger
	loaded      atomic.Bool
}

func newRemote(cfg *config, discoveryURL, jwksURL string) (*remote, error) {
	r := &remote{
		discoveryURL: discoveryURL,
		client:       cfg.httpClient,
		maxBody:      cfg.maxJWKSSize,
		insecureHTTP: cfg.insecureHTTP,
		refreshEvery: cfg.refreshInterval,
		minGap:       cfg.unknownKIDLimit,
		store:        jwkset.NewMemoryStorage(),
		trigger:      make(chan struct{}, 1),
	}
	if discoveryURL != "" {
		r.source = discoveryURL
	} else {
		r.source = jwksURL
		r.jwksURL.Store(&jwksURL)
	}
	r.log = cfg.logger.With("component", "caekit/token", "source", r.source)
	kf, err := keyfunc.New(keyfunc.Options{Storage: r.store})
	if err != nil {
		return nil, fmt.Errorf("key source %s: %w", r.source, err)
	}
	r.kf = kf
	return r, nil
}

// key returns the key for kid; a kid that is not there yields an error
// wrapping jwkset.ErrKeyNotFound. A JWK whose own alg differs from the
// token's yields ErrAlgorithm.
func (r *remote) key(ctx context.Context, alg, kid string) (any, error) {
	tok := jwt.Token{Header: map[string]any{"kid": kid, "alg": alg}}
	k, err := r.kf.KeyfuncCtx(ctx)(&tok)
	if err != nil {
		if errors.Is(err, jwkset.ErrKeyNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: key %q from %s: %v", ErrAlgorithm, clip(kid), r.source, err)
	}
	return k, nil
}

// all returns every public key of the source.
func (r *remote) all(ctx context.Context) []any {
	set, err := r.kf.VerificationKeySet(ctx)
	if err != nil {
		return nil
	}
	keys := make([]any, 0, len(set.Keys))
	for _, k := range set.Keys {
		keys = append(keys, k)
	}
	return keys
}

// requestRefresh asks the goroutine for a refresh, at most once per minGap.
// It never blocks.
func (r *remote) requestRefresh() {
	if r.minGap <= 0 {
		return
	}
	now := time.Now().UnixNano()
	last := r.lastTrigger.Load()
	if last != 0 && now-last < int64(r.minGap) {
		return
	}
	if !r.lastTrigger.CompareAndSwap(last, now) {
		return
	}
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// run refreshes the keys every refreshEvery, sooner (with backoff) after a
// failure, and whenever requestRefresh asks, until ctx ends.
func (r *remote) run(ctx context.Context, failed bool) {
	failures := 0
	if failed {
		failures = 1
	}
	timer := time.NewTimer(r.delay(failures))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.trigger:
			r.log.DebugContext(ctx, "refreshing keys for an unknown kid")
		}
		if err := r.refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			r.log.WarnContext(ctx, "key refresh failed; keeping the last good keys", "error", err, "failures", failures, "have_keys", r.loaded.Load())
		} else {
			failures = 0
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(r.delay(failures))
	}
}

func (r *remote) delay(failures int) time.Duration {
	if failures == 0 {
		return r.refreshEvery
	}
	d := time.Second << min(failures-1, 6)
	return min(d, maxRetryBackoff, r.refreshEvery)
}

// refresh fetches the JWK Set (after discovery, if needed) and replaces the
// stored keys. On any failure the previous keys stay.
func (r *remote) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	u := r.jwksURL.Load()
	if u == nil {
		found, err := r.discover(ctx)
		if err != nil {
			return err
		}
		u = &found
		r.jwksURL.Store(u)
	}
	keys, err := r.fetchKeys(ctx, *u)
	if err != nil {
		if r.discoveryURL != "" {
			r.jwksURL.Store(nil) // the jwks_uri may have moved: discover again next time
		}
		return err
	}
	if err := r.store.KeyReplaceAll(ctx, keys); err != nil {
		return fmt.Errorf("store keys: %w", err)
	}
	r.loaded.Store(true)
	r.log.DebugContext(ctx, "keys refreshed", "keys", len(keys))
	return nil
}

// discover reads the jwks_uri from the OpenID Provider configuration.
func (r *remote) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(r.discoveryURL, "/") + "/.well-known/openid-configuration"
	body, err := r.get(ctx, u)
	if err != nil {
		return "", fmt.Errorf("OIDC discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("OIDC discovery %s: invalid JSON: %w", u, err)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("OIDC discovery %s: no jwks_uri", u)
	}
	if err := checkURL(doc.JWKSURI, r.insecureHTTP); err != nil {
		return "", fmt.Errorf("OIDC discovery %s: jwks_uri: %w", u, err)
	}
	if doc.Issuer != strings.TrimSuffix(r.discoveryURL, "/") && doc.Issuer != r.discoveryURL {
		r.log.DebugContext(ctx, "discovery issuer differs from the discovery URL", "issuer", doc.Issuer)
	}
	return doc.JWKSURI, nil
}

// fetchKeys downloads and parses a JWK Set. Keys that are not for signatures,
// symmetric keys and keys that fail to parse are skipped (and logged); an
// x5u member is never fetched. A set with no usable key is an error.
func (r *remote) fetchKeys(ctx context.Context, u string) ([]jwkset.JWK, error) {
	body, err := r.get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("JWKS %s: invalid JSON: %w", u, err)
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("JWKS %s: %d keys, at most %d accepted", u, len(set.Keys), maxJWKSKeys)
	}
	keys := make([]jwkset.JWK, 0, len(set.Keys))
	for _, m := range set.Keys {
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		if m.KTY == jwkset.KtyOct {
			r.log.WarnContext(ctx, "ignoring a symmetric key in a JWK Set", "kid", clip(m.KID))
			continue
		}
		m.X5U = ""
		m.D, m.P, m.Q, m.DP, m.DQ, m.QI, m.OTH, m.K = "", "", "", "", "", "", nil, ""
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			if !errors.Is(err, jwkset.ErrUnsupportedKey) {
				r.log.WarnContext(ctx, "ignoring an invalid key in a JWK Set", "kid", clip(m.KID), "error", err)
			}
			continue
		}
		if checkPublicKey(jwk.Key()) != nil {
			r.log.WarnContext(ctx, "ignoring an unusable key in a JWK Set", "kid", clip(m.KID), "error", checkPublicKey(jwk.Key()))
			continue
		}
		keys = append(keys, jwk)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS %s: no usable signing key among %d", u, len(set.Keys))
	}
	return keys, nil
}

// get fetches u, requiring 200 and at most maxBody bytes.
func (r *remote) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	if resp.ContentLength > r.maxBody {
		return nil, fmt.Errorf("GET %s: response of %d bytes exceeds the %d-byte limit", u, resp.ContentLength, r.maxBody)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(body)) > r.maxBody {
		return nil, fmt.Errorf("GET %s: response exceeds the %d-byte limit", u, r.maxBody)
	}
	return body, nil
}
