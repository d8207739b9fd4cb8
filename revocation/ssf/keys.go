package ssf

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// keyLookupTimeout bounds a key look-up, including a refresh triggered by an
// unknown kid. When the rate limiter has no token for a refresh within it,
// the look-up fails at once instead of waiting.
const keyLookupTimeout = 10 * time.Second

// buildKeys sets r.keyfunc from the configured key source. It may fetch the
// JWKS (once, synchronously; a failure is logged and retried on demand).
func (r *Receiver) buildKeys(jwksURL string) error {
	var storage jwkset.Storage
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
	case r.cfg.staticKeys != nil:
		r.keyfunc = staticKeyfunc(r.cfg.staticKeys)
		return nil
	case jwksURL != "":
		hc := limitedClient(r.cfg.httpClient, r.cfg.maxMetadata)
		logger := r.cfg.logger
		remote, err := jwkset.NewStorageFromHTTP(jwksURL, jwkset.HTTPClientStorageOptions{
			Client:                    hc,
			Ctx:                       r.ctx,
			HTTPTimeout:               keyLookupTimeout,
			NoErrorReturnFirstHTTPReq: true,
			RefreshInterval:           r.cfg.jwksRefresh,
			RefreshErrorHandler: func(ctx context.Context, err error) {
				if r.ctx.Err() == nil {
					r.met.jwksRefreshFailed(ctx)
					logger.Warn("ssf: JWKS refresh failed; keeping the last good key set", "url", jwksURL, "error", err)
				}
			},
		})
		if err != nil {
			return fmt.Errorf("ssf: JWKS %s: %w", jwksURL, err)
		}
		storage, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
			HTTPURLs:          map[string]jwkset.Storage{jwksURL: remote},
			RefreshUnknownKID: rate.NewLimiter(rate.Every(r.cfg.unknownKID), 1),
		})
		if err != nil {
			return fmt.Errorf("ssf: JWKS %s: %w", jwksURL, err)
		}
	default:
		return errors.New("ssf: no signing keys: set WithIssuer (discovery), WithJWKSURL, WithJWKS, WithKeySet or WithPublicKey")
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: r.ctx, Storage: storage})
	if err != nil {
		return fmt.Errorf("ssf: keys: %w", err)
	}
	r.keyfunc = func(ctx context.Context, t *jwt.Token) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, keyLookupTimeout)
		defer cancel()
		return kf.KeyfuncCtx(ctx)(t)
	}
	return nil
}

func staticKeyfunc(keys map[string]crypto.PublicKey) func(context.Context, *jwt.Token) (any, error) {
	return func(_ context.Context, t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
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

// ErrTooLarge is returned when a fetched document or poll response exceeds its bound.
var ErrTooLarge = errors.New("ssf: response too large")

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
			return 0, ErrTooLarge
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
