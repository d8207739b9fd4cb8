package keyset

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/internal/jwks"
)

// remote is one remote key source: a JWKS URL, possibly found by OIDC
// discovery. Its keys are an immutable snapshot swapped atomically on each
// refresh, so look-ups take no lock. Fetching is done here, by one goroutine
// per source, so that the request path never waits for the network and so
// that Close can wait for the goroutine to end.
//
// A key that leaves the JWK Set is kept, as withdrawn, for the rotation
// grace period: tokens it signed are accepted until then and refused after,
// cached ones included (their cache entry points at the same Key).
type remote struct {
	discoveryURL string // "" when configured with a JWKS URL
	jwksURL      atomic.Pointer[string]
	source       string // for logs and errors

	fetch     *jwks.Fetcher
	refresher *jwks.Refresher
	minGap    time.Duration // least time between kid-triggered refreshes; 0 = none
	grace     time.Duration // how long a withdrawn key stays accepted
	now       func() time.Time
	log       *slog.Logger

	keys atomic.Pointer[keySnapshot]
	// bind is the issuer binding given to newly installed keys: fixed for a
	// JWKS URL and WithDiscoveryFor, else set by discovery (nil until then).
	bind      atomic.Pointer[issuerBinding]
	fixedBind bool

	lastTrigger atomic.Int64 // unix nanos of the last accepted trigger
	loaded      atomic.Bool
}

// newRemote makes a key source for a discovery URL or a JWKS URL. bind is
// its issuer binding; nil (only with a discovery URL) means the discovery
// document decides it.
func newRemote(cfg *Config, discoveryURL, jwksURL string, bind *issuerBinding) (*remote, error) {
	r := &remote{
		discoveryURL: discoveryURL,
		minGap:       cfg.UnknownKIDLimit,
		grace:        cfg.RotationGrace,
		now:          cfg.Now,
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
	r.log = cfg.Logger.With("component", cfg.Component, "source", r.source)
	r.fetch = &jwks.Fetcher{
		Client: cfg.HTTPClient, MaxBody: cfg.MaxJWKSSize,
		Insecure: cfg.InsecureHTTP, InsecureOption: cfg.InsecureOption,
		CheckKey: CheckPublicKey, Log: r.log,
	}
	r.refresher = jwks.NewRefresher(cfg.RefreshInterval, r.refresh, func(ctx context.Context, err error, failures int) {
		r.log.WarnContext(ctx, "key refresh failed; keeping the last good keys", "error", err, "failures", failures, "have_keys", r.loaded.Load())
	})
	return r, nil
}

// keySnapshot is the key set of a remote at one refresh. It is never
// modified once published (only its Keys' until fields change).
type keySnapshot struct {
	current map[string]*Key // published keys by kid
	list    []*Key          // published keys, in JWK Set order
	retired map[string]*Key // withdrawn keys by kid, until their grace ends
}

// errKeyNotFound means the kid is neither published nor within its grace.
var errKeyNotFound = errors.New("kid not found")

// key returns the key for kid at now. A kid that is not there yields
// errKeyNotFound; a kid withdrawn longer ago than the grace period yields
// ErrKeyRetired; a JWK whose own alg differs from the token's yields
// ErrAlgorithm.
func (r *remote) key(alg, kid string, now time.Time) (*Key, error) {
	snap := r.keys.Load()
	if snap == nil {
		return nil, errKeyNotFound
	}
	k, ok := snap.current[kid]
	if !ok {
		if k, ok = snap.retired[kid]; !ok {
			return nil, errKeyNotFound
		}
		if until := k.until.Load(); !k.Live(now.UnixNano()) {
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
// (same kid, same key, same alg) keep their Key, so cache entries stay
// valid; keys that left the set are withdrawn: accepted for the grace period,
// then refused, cache hits included. A withdrawn key that comes back is
// accepted again.
//
// Every key gets the remote's current issuer binding; a Key is reused only
// if it has that same binding, so a key never changes the issuers it signs for.
func (r *remote) install(jwks []jwkset.JWK, now time.Time) {
	old := r.keys.Load()
	bind := r.bind.Load()
	next := &keySnapshot{current: make(map[string]*Key, len(jwks)), retired: map[string]*Key{}}
	reused := map[*Key]bool{}
	for _, j := range jwks {
		m := j.Marshal()
		kid, alg, key := m.KID, string(m.ALG), j.Key()
		if _, dup := next.current[kid]; dup {
			r.log.Warn("ignoring a second key with the same kid in a JWK Set", "kid", jose.Clip(kid))
			continue
		}
		var rec *Key
		if old != nil {
			for _, cand := range []*Key{old.current[kid], old.retired[kid]} {
				if cand != nil && cand.alg == alg && cand.bind == bind && sameKey(cand.key, key) {
					rec = cand
					break
				}
			}
		}
		if rec == nil {
			rec = newKey(kid, alg, key, bind)
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
			if _, shadowed := next.current[rec.kid]; !shadowed && rec.Live(nowN) {
				next.retired[rec.kid] = rec
			}
		}
		for kid, rec := range old.retired {
			if reused[rec] || !rec.Live(nowN) {
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
	r.log.Debug("refreshing keys for an unknown kid")
	r.refresher.Trigger()
}

// run refreshes the keys until ctx ends (jwks.Refresher.Run).
func (r *remote) run(ctx context.Context, failed bool) { r.refresher.Run(ctx, failed) }

// refresh fetches the JWK Set (after discovery, if needed) and replaces the
// stored keys. On any failure the previous keys stay.
func (r *remote) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, HTTPTimeout)
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
	keys, err := r.fetch.Keys(ctx, *u)
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

// discover reads the jwks_uri from the OpenID Provider configuration and,
// unless the binding is fixed, binds the keys to the issuers the document
// speaks for.
func (r *remote) discover(ctx context.Context) (string, error) {
	doc, err := r.fetch.Discover(ctx, r.discoveryURL)
	if err != nil {
		return "", err
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
