package token

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/caekit/caekit/internal/backoff"
	"github.com/caekit/caekit/internal/jose"
)

// maxJWKSKeys bounds the number of keys taken from one JWK Set.
const maxJWKSKeys = 100

// maxRetryBackoff caps the retry delay after failed fetches (and the
// refresh interval caps it further).
const maxRetryBackoff = time.Minute

// remote is one remote key source: a JWKS URL, possibly found by OIDC
// discovery. Its keys are an immutable snapshot swapped atomically on each
// refresh, so look-ups take no lock. Fetching is done here, by one goroutine
// per source, so that the request path never waits for the network and so
// that Close can wait for the goroutine to end.
//
// A key that leaves the JWK Set is kept, as withdrawn, for the rotation
// grace period: tokens it signed are accepted until then and refused after,
// cached ones included (their cache entry points at the same keyRec).
type remote struct {
	discoveryURL string // "" when configured with a JWKS URL
	jwksURL      atomic.Pointer[string]
	source       string // for logs and errors

	client       *http.Client
	maxBody      int64
	insecureHTTP bool
	refreshEvery time.Duration
	minGap       time.Duration // least time between kid-triggered refreshes; 0 = none
	grace        time.Duration // how long a withdrawn key stays accepted
	now          func() time.Time
	log          *slog.Logger

	keys atomic.Pointer[keySnapshot]
	// bind is the issuer binding given to newly installed keys: fixed for a
	// JWKS URL and WithDiscoveryFor, else set by discovery (nil until then).
	bind      atomic.Pointer[issuerBinding]
	fixedBind bool

	trigger     chan struct{}
	lastTrigger atomic.Int64 // unix nanos of the last accepted trigger
	loaded      atomic.Bool
}

// newRemote makes a key source for a discovery URL or a JWKS URL. bind is
// its issuer binding; nil (only with a discovery URL) means the discovery
// document decides it.
func newRemote(cfg *config, discoveryURL, jwksURL string, bind *issuerBinding) (*remote, error) {
	r := &remote{
		discoveryURL: discoveryURL,
		client:       cfg.httpClient,
		maxBody:      cfg.maxJWKSSize,
		insecureHTTP: cfg.insecureHTTP,
		refreshEvery: cfg.refreshInterval,
		minGap:       cfg.unknownKIDLimit,
		grace:        cfg.rotationGrace,
		now:          cfg.now,
		trigger:      make(chan struct{}, 1),
	}
	if discoveryURL != "" {
		r.source = discoveryURL
	} else {
		r.source = jwksURL
		r.jwksURL.Store(&jwksURL)
	}
	if bind != nil {
		r.bind.Store(bind)
		r.fixedBind = true
	} else if discoveryURL == "" {
		return nil, fmt.Errorf("JWKS URL %s has no issuer binding", jwksURL)
	}
	r.log = cfg.logger.With("component", "caekit/token", "source", r.source)
	return r, nil
}

// keySnapshot is the key set of a remote at one refresh. It is never
// modified once published (only its keyRecs' until fields change).
type keySnapshot struct {
	current map[string]*keyRec // published keys by kid
	list    []*keyRec          // published keys, in JWK Set order
	retired map[string]*keyRec // withdrawn keys by kid, until their grace ends
}

// errKeyNotFound means the kid is neither published nor within its grace.
var errKeyNotFound = errors.New("kid not found")

// key returns the key for kid at now. A kid that is not there yields
// errKeyNotFound; a kid withdrawn longer ago than the grace period yields
// ErrKeyRetired; a JWK whose own alg differs from the token's yields
// ErrAlgorithm.
func (r *remote) key(alg, kid string, now time.Time) (*keyRec, error) {
	snap := r.keys.Load()
	if snap == nil {
		return nil, errKeyNotFound
	}
	k, ok := snap.current[kid]
	if !ok {
		if k, ok = snap.retired[kid]; !ok {
			return nil, errKeyNotFound
		}
		if until := k.until.Load(); !k.live(now.UnixNano()) {
			return nil, fmt.Errorf("%w: %w: kid %q left the key set of %s; its %s grace period ended at %s",
				ErrUnknownKey, ErrKeyRetired, jose.Clip(kid), r.source, r.grace, time.Unix(0, until).UTC().Format(time.RFC3339))
		}
	}
	if k.alg != "" && k.alg != alg {
		return nil, fmt.Errorf("%w: key %q from %s is for alg %s, the token says %s", ErrAlgorithm, jose.Clip(kid), r.source, jose.Clip(k.alg), alg)
	}
	return k, nil
}

// install publishes a freshly fetched key set at now. Keys still present
// (same kid, same key, same alg) keep their keyRec, so cache entries stay
// valid; keys that left the set are withdrawn: accepted for the grace period,
// then refused, cache hits included. A withdrawn key that comes back is
// accepted again.
//
// Every key gets the remote's current issuer binding; a keyRec is reused only
// if it has that same binding, so a key never changes the issuers it signs for.
func (r *remote) install(jwks []jwkset.JWK, now time.Time) {
	old := r.keys.Load()
	bind := r.bind.Load()
	next := &keySnapshot{current: make(map[string]*keyRec, len(jwks)), retired: map[string]*keyRec{}}
	reused := map[*keyRec]bool{}
	for _, j := range jwks {
		m := j.Marshal()
		kid, alg, key := m.KID, string(m.ALG), j.Key()
		if _, dup := next.current[kid]; dup {
			r.log.Warn("ignoring a second key with the same kid in a JWK Set", "kid", jose.Clip(kid))
			continue
		}
		var rec *keyRec
		if old != nil {
			for _, cand := range []*keyRec{old.current[kid], old.retired[kid]} {
				if cand != nil && cand.alg == alg && cand.bind == bind && sameKey(cand.key, key) {
					rec = cand
					break
				}
			}
		}
		if rec == nil {
			rec = newKeyRec(kid, alg, key, bind)
		} else {
			rec.until.Store(math.MaxInt64)
			reused[rec] = true
		}
		next.current[kid] = rec
		next.list = append(next.list, rec)
	}
	if old != nil {
		nowN := now.UnixNano()
		end := nowN + int64(r.grace)
		if end < nowN { // overflow
			end = math.MaxInt64 - 1
		}
		for _, rec := range old.list {
			if reused[rec] {
				continue
			}
			rec.until.Store(end)
			r.log.Info("a key left the JWK Set; tokens it signed are accepted until the grace period ends",
				"kid", jose.Clip(rec.kid), "grace", r.grace, "until", time.Unix(0, end).UTC().Format(time.RFC3339))
			if _, shadowed := next.current[rec.kid]; !shadowed && rec.live(nowN) {
				next.retired[rec.kid] = rec
			}
		}
		for kid, rec := range old.retired {
			if reused[rec] || !rec.live(nowN) {
				continue
			}
			if _, taken := next.current[kid]; taken {
				continue
			}
			if _, taken := next.retired[kid]; !taken {
				next.retired[kid] = rec
			}
		}
	}
	r.keys.Store(next)
}

// sameKey reports whether two public keys are equal.
func sameKey(a, b any) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
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

// delay is the wait before the next refresh: refreshEvery after a success,
// else the kit's backoff from one second up to maxRetryBackoff (and never
// past refreshEvery).
func (r *remote) delay(failures int) time.Duration {
	if failures == 0 {
		return r.refreshEvery
	}
	return backoff.Policy{Min: min(time.Second, r.refreshEvery), Max: min(maxRetryBackoff, r.refreshEvery)}.Delay(failures)
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
	r.install(keys, r.now())
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
	if !r.fixedBind {
		b, note := discoveryBinding(r.discoveryURL, doc.Issuer)
		if note != "" {
			r.log.WarnContext(ctx, "discovery issuer not trusted for the keys", "issuer", jose.Clip(doc.Issuer), "detail", note)
		}
		if old := r.bind.Load(); !old.equal(b) {
			r.bind.Store(b)
		}
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
			r.log.WarnContext(ctx, "ignoring a symmetric key in a JWK Set", "kid", jose.Clip(m.KID))
			continue
		}
		m.X5U = ""
		m.D, m.P, m.Q, m.DP, m.DQ, m.QI, m.OTH, m.K = "", "", "", "", "", "", nil, ""
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			if !errors.Is(err, jwkset.ErrUnsupportedKey) {
				r.log.WarnContext(ctx, "ignoring an invalid key in a JWK Set", "kid", jose.Clip(m.KID), "error", err)
			}
			continue
		}
		if checkPublicKey(jwk.Key()) != nil {
			r.log.WarnContext(ctx, "ignoring an unusable key in a JWK Set", "kid", jose.Clip(m.KID), "error", checkPublicKey(jwk.Key()))
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
