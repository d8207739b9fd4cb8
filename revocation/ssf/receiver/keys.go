package receiver

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/internal/ssfhttp"
	"io"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/internal/jwks"
)

// keyLookupTimeout bounds a key look-up, including a refresh of the JWKS
// triggered by an unknown kid.
const keyLookupTimeout = 10 * time.Second

// unknownKIDRefreshBurst is how many refreshes of the transmitter's JWKS an
// unknown kid may trigger back to back; after that, one more is allowed per
// Limits.UnknownKIDRefresh (default 5 s).
// A SET that arrives while no refresh is allowed is answered with
// ErrKeysUnavailable at once (it never waits for the limiter), and its
// redelivery triggers the next refresh. So a transmitter that pushes a new
// kid before publishing it gets its SETs accepted soon after it does, while
// a flood of SETs with made-up kids costs its JWKS endpoint at most this
// many requests plus one per interval.
const unknownKIDRefreshBurst = 3

// errKeyRead tags a failure of the key storage other than an unknown kid.
var errKeyRead = errors.New("key storage failed")

// readErrors wraps a jwkset.Storage so that its read failures other than
// jwkset.ErrKeyNotFound carry errKeyRead: keyfunc wraps both the same way.
type readErrors struct{ jwkset.Storage }

// KeyRead reads the key with kid, tagging failures other than an unknown kid.
func (s readErrors) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	k, err := s.Storage.KeyRead(ctx, kid)
	if err != nil && !errors.Is(err, jwkset.ErrKeyNotFound) {
		err = errors.Join(errKeyRead, err)
	}
	return k, err
}

// KeyReadAll reads every key, tagging a failure.
func (s readErrors) KeyReadAll(ctx context.Context) ([]jwkset.JWK, error) {
	ks, err := s.Storage.KeyReadAll(ctx)
	if err != nil {
		err = errors.Join(errKeyRead, err)
	}
	return ks, err
}

// buildKeys sets r.keyfunc from the configured key source. It may fetch the
// JWKS (once, synchronously; a failure is logged and retried on demand).
func (r *Receiver) buildKeys(jwksURL string) error {
	var storage jwkset.Storage
	src := "the configured key set"
	switch {
	case r.cfg.keySet != nil:
		storage = r.cfg.keySet
	case r.cfg.jwksJSON != nil:
		var m jwkset.JWKSMarshal
		if err := jsonUnmarshal(r.cfg.jwksJSON, &m); err != nil {
			return fmt.Errorf("ssf: static JWKS: %w", err)
		}
		s, err := m.ToStorage()
		if err != nil {
			return fmt.Errorf("ssf: static JWKS: %w", err)
		}
		storage = s
		src = "the configured JWKS"
	case r.cfg.staticKeys != nil:
		r.keyfunc = staticKeyfunc(r.cfg.staticKeys)
		return nil
	case jwksURL != "":
		return r.remoteKeys(jwksURL)
	default:
		return errors.New("ssf: no signing keys: set WithIssuer (discovery), WithJWKSURL, WithJWKS, WithKeySet or WithPublicKey")
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: r.ctx, Storage: readErrors{storage}})
	if err != nil {
		return fmt.Errorf("ssf: keys: %w", err)
	}
	r.keyfunc = func(ctx context.Context, t *jwt.Token) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, keyLookupTimeout)
		defer cancel()
		key, err := kf.KeyfuncCtx(ctx)(t)
		// These keys are all there is: a kid they lack is refused.
		return lookupResult(t, key, err, src, "", true)
	}
	return nil
}

// remoteKeys sets r.keyfunc to look keys up in the transmitter's JWKS at
// jwksURL, kept by the kit's one JWK Set refresher (internal/jwks, as for
// access tokens): fetched once now (a failure is logged and retried),
// refreshed every Limits.JWKSRefresh by a goroutine Close waits for,
// sooner with backoff after a failure, and, for a kid it does not hold (or
// a SET without kid while it holds no key), on demand within the
// unknown-kid rate limit (unknownKIDRefreshBurst).
func (r *Receiver) remoteKeys(jwksURL string) error {
	logger := r.cfg.logger
	storage := jwkset.NewMemoryStorage()
	fetch := &jwks.Fetcher{
		Client: limitedClient(r.cfg.httpClient, r.cfg.maxMetadata), MaxBody: r.cfg.maxMetadata,
		Insecure: r.cfg.insecureHTTP, InsecureOption: ssfhttp.InsecureOption, Log: logger,
	}
	refresh := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, keyLookupTimeout)
		defer cancel()
		keys, err := fetch.Keys(ctx, jwksURL)
		if err != nil {
			return err
		}
		return storage.KeyReplaceAll(ctx, keys)
	}
	failed := func(ctx context.Context, err error, _ int) {
		if r.ctx.Err() == nil {
			r.met.jwksRefreshFailed(ctx)
			logger.Warn("ssf: JWKS refresh failed; keeping the last good key set", "url", jwksURL, "error", err)
		}
	}
	first := refresh(r.ctx)
	if first != nil {
		failed(r.ctx, first, 1)
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: r.ctx, Storage: readErrors{storage}})
	if err != nil {
		return fmt.Errorf("ssf: keys: %w", err)
	}
	rf := jwks.NewRefresher(r.cfg.jwksRefresh, refresh, failed)
	r.wg.Go(func() { rf.Run(r.ctx, first != nil) })
	limit := rate.NewLimiter(rate.Every(r.cfg.unknownKID), unknownKIDRefreshBurst)
	const src = "the transmitter's JWKS"
	r.keyfunc = func(ctx context.Context, t *jwt.Token) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, keyLookupTimeout)
		defer cancel()
		key, err := kf.KeyfuncCtx(ctx)(t)
		if !keyMissing(key, err) {
			return lookupResult(t, key, err, src, "", false)
		}
		if !limit.Allow() {
			return lookupResult(t, key, err, src, fmt.Sprintf(
				"; it was refreshed for unknown keys moments ago (at most %d at once, then one per %v)", unknownKIDRefreshBurst, r.cfg.unknownKID), false)
		}
		refreshErr := refresh(ctx)
		if refreshErr != nil {
			failed(ctx, refreshErr, 0)
		}
		key, err = kf.KeyfuncCtx(ctx)(t)
		if refreshErr != nil || ctx.Err() != nil {
			return lookupResult(t, key, err, src, ", and it could not be refreshed (the JWKS endpoint failed)", false)
		}
		// The JWKS was fetched just now and still lacks the key: RFC 8935
		// invalid_key (see the package documentation for the trade-off).
		return lookupResult(t, key, err, src, ", even after a successful refresh", true)
	}
	return nil
}

// keyMissing reports whether a look-up found no key at all: an unknown kid,
// or an empty key set for a SET without kid.
func keyMissing(key any, err error) bool {
	if err != nil {
		return errors.Is(err, jwkset.ErrKeyNotFound)
	}
	ks, ok := key.(jwt.VerificationKeySet)
	return ok && len(ks.Keys) == 0
}

// lookupResult turns the outcome of a key look-up in src into the key or an
// error. When no key was found it is ErrKeysUnavailable (temporary: push 503,
// poll not acknowledged), unless final says the key set is known to be
// complete (static keys, or a JWKS fetched successfully just now): then it is
// an invalid_key rejection. A failure to read the key storage is
// ErrKeysUnavailable; any other error (a JWK whose alg or use does not fit)
// is returned as it is, for an invalid_key rejection.
func lookupResult(t *jwt.Token, key any, err error, src, why string, final bool) (any, error) {
	kid, hasKID := t.Header["kid"].(string)
	missing := keyMissing(key, err)
	switch {
	case missing && final && !hasKID:
		return nil, rejectErr(CodeInvalidKey, err, "the SET has no kid and %s holds no key%s", src, why)
	case missing && final:
		return nil, rejectErr(CodeInvalidKey, err, "kid %q is not in %s%s", jose.Clip(kid), src, why)
	case missing && !hasKID:
		return nil, errKeysUnavailable(err, "the SET has no kid and %s holds no key%s", src, why)
	case missing:
		return nil, errKeysUnavailable(err, "kid %q is not in %s%s", jose.Clip(kid), src, why)
	case errors.Is(err, errKeyRead):
		return nil, errKeysUnavailable(err, "%s could not be read: %s", src, jose.Clip(err.Error()))
	case err != nil:
		return nil, err
	}
	return key, nil
}

func staticKeyfunc(keys map[string]crypto.PublicKey) func(context.Context, *jwt.Token) (any, error) {
	return func(_ context.Context, t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, reject(CodeInvalidKey, "kid %q is not among the configured keys", jose.Clip(kid))
	}
}

// limitedClient returns a copy of hc whose response bodies fail past max bytes.
func limitedClient(hc *http.Client, max int64) *http.Client {
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = limitTransport{base: base, max: max}
	return &c
}

type limitTransport struct {
	base http.RoundTripper
	max  int64
}

// RoundTrip performs req with the base transport and bounds the response body.
func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

// Read reads from the body and fails with ErrTooLarge past the bound.
func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe: a clean EOF at the bound is fine, more data is not.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, ssf.ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

// Close closes the underlying body.
func (b *limitedBody) Close() error { return b.rc.Close() }
