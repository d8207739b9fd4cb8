package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/internal/backoff"
	"github.com/caekit/caekit/internal/jose"
)

// ErrClosed is returned for token requests after Client.Close.
var ErrClosed = errors.New("caekit/client: client is closed")

// ErrBackingOff is wrapped by the error returned for a call that needs a
// token while, with none cached for its scopes, the last fetch failed less
// than the backoff (WithRefreshBackoff) ago: the call fails at once, without
// asking the TokenSource, and the error also wraps that fetch's error.
var ErrBackingOff = errors.New("caekit/client: backing off after failed token fetches")

// MaxTokenLen bounds an access token accepted from a TokenSource.
const MaxTokenLen = 64 << 10

// cache holds one token per scope set and runs fetches single-flight.
type cache struct {
	src TokenSource
	o   *options
	log *slog.Logger

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	entries map[string]*entry
}

type entry struct {
	scopes    []string
	tok       *Token
	refreshAt time.Time
	claims    string   // requestKey of the request tok was obtained with
	stepUp    string   // step-up claims (acrs) a challenge asked for; kept on refreshes
	stepUpACR []string // RFC 9470 acr_values a challenge asked for; kept on refreshes
	inflight  *fetch
	failures  int
	retryAt   time.Time
	lastErr   error // the last failed fetch without challenge claims, until a success
	warned    bool
	// challengeLimiter bounds the challenge-driven (cache-bypassing) fetches
	// for these scopes; created on the first challenge.
	challengeLimiter *rate.Limiter
}

// fetch is one call to the TokenSource that callers may wait on.
type fetch struct {
	done   chan struct{}
	claims string // requestKey of the request
	bypass bool
	tok    *Token
	err    error
}

func newCache(src TokenSource, o *options, log *slog.Logger) *cache {
	ctx, cancel := context.WithCancel(context.Background())
	return &cache{src: src, o: o, log: log, ctx: ctx, cancel: cancel, entries: make(map[string]*entry)}
}

func (c *cache) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

func scopeKey(scopes []string) string { return strings.Join(scopes, " ") }

// entryLocked returns the entry for scopes, creating it within the bound.
func (c *cache) entryLocked(scopes []string) *entry {
	key := scopeKey(scopes)
	if e, ok := c.entries[key]; ok {
		return e
	}
	if len(c.entries) >= maxKeys {
		for k, e := range c.entries {
			if e.inflight == nil {
				delete(c.entries, k)
				break
			}
		}
	}
	e := &entry{scopes: scopes}
	c.entries[key] = e
	return e
}

func (c *cache) usable(t *Token, now time.Time) bool {
	return t != nil && now.Before(t.ExpiresAt.Add(-expirySkew))
}

// get returns a valid token for scopes: the cached one (starting a
// background refresh when it is due) or a freshly fetched one.
func (c *cache) get(ctx context.Context, scopes []string) (*Token, error) {
	now := c.o.now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	e := c.entryLocked(scopes)
	if c.usable(e.tok, now) {
		if !now.Before(e.refreshAt) && e.inflight == nil && !now.Before(e.retryAt) {
			if req, err := c.refreshRequest(e); err == nil {
				e.inflight = c.startLocked(ctx, e, req)
			}
		}
		t := e.tok
		c.mu.Unlock()
		return t, nil
	}
	f := e.inflight
	if f == nil && e.lastErr != nil && now.Before(e.retryAt) {
		// No token and the IdP failed recently: do not hit it again at the
		// application's call rate; fail at once until the backoff passes.
		err := &backoffError{failures: e.failures, retryIn: e.retryAt.Sub(now), last: e.lastErr}
		c.mu.Unlock()
		return nil, err
	}
	if f == nil {
		req, err := c.refreshRequest(e)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		f = c.startLocked(ctx, e, req)
		e.inflight = f
	}
	c.mu.Unlock()
	return wait(ctx, f)
}

// answer is what a challenge asks a new token for: the claims request of a
// claims challenge, or the acr_values and max_age of an RFC 9470 step-up
// challenge.
type answer struct {
	claims    string
	acrValues []string
	maxAge    time.Duration
}

// answerOf returns what ch asks for.
func answerOf(ch *challenge.Challenge) answer {
	if ch.StepUp() {
		return answer{acrValues: ch.ACRValues, maxAge: ch.MaxAge}
	}
	return answer{claims: ch.Claims}
}

// actionable reports whether a new token can answer ch: a claims
// challenge, or an RFC 9470 step-up challenge.
func actionable(ch *challenge.Challenge) bool { return ch.InsufficientClaims() || ch.StepUp() }

// requestKey identifies what a token request asks for, to tell whether a
// cached token or a fetch under way answers a challenge.
func requestKey(req TokenRequest) string {
	if !req.StepUp() {
		return req.Claims
	}
	return req.Claims + "\n" + strings.Join(req.ACRValues, " ") + "\n" + challenge.MaxAgeParam(req.MaxAge)
}

// reacquire answers a challenge: it drops rejected, fetches a token with
// the challenge's claims merged with the capabilities (or with its RFC 9470
// acr_values and max_age), bypassing any cache, and returns it. Concurrent callers rejected for the same claims share one
// fetch, and a token already obtained for those claims is reused. New
// fetches are rate-limited per scope set (WithChallengeFetchLimit); past the
// limit it fails with an error wrapping ErrChallengeFetchLimited.
func (c *cache) reacquire(ctx context.Context, scopes []string, rejected *Token, want answer) (*Token, error) {
	tok, f, err := c.startReacquire(ctx, scopes, rejected, want)
	if tok != nil || err != nil {
		return tok, err
	}
	return wait(ctx, f)
}

// startReacquire is reacquire without the wait: it returns a usable token
// already obtained for the claims, or the fetch under way for them.
func (c *cache) startReacquire(ctx context.Context, scopes []string, rejected *Token, want answer) (*Token, *fetch, error) {
	claims, err := mergeClaims(want.claims, c.o.capabilities)
	if err != nil {
		return nil, nil, err
	}
	req := TokenRequest{Claims: claims, ChallengeClaims: want.claims, BypassCache: true, ACRValues: want.acrValues, MaxAge: want.maxAge}
	key := requestKey(req)
	now := c.o.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, ErrClosed
	}
	e := c.entryLocked(scopes)
	if c.usable(e.tok, now) && e.claims == key && (rejected == nil || e.tok.AccessToken != rejected.AccessToken) {
		return e.tok, nil, nil
	}
	f := e.inflight
	if f == nil || !f.bypass || f.claims != key {
		if err := c.allowChallengeFetchLocked(e, now); err != nil {
			// Past the limit the rejected token stays cached: dropping it
			// would make the next call fetch a plain token instead, one IdP
			// request per call again.
			return nil, nil, err
		}
		if e.tok != nil && rejected != nil && e.tok.AccessToken == rejected.AccessToken {
			e.tok = nil // never hand out the rejected token again
		}
		f = c.startLocked(ctx, e, req)
		e.inflight = f
	}
	return nil, f, nil
}

func (c *cache) baseClaims() (string, error) {
	return mergeClaims("", c.o.capabilities)
}

// refreshRequest is the request of an ordinary (not challenge-driven) fetch
// for e: the capabilities, plus the step-up claims a challenge for e's
// scopes asked for, so that a proactive refresh does not lose the auth
// context the user stepped up to (and the next call is not refused for the
// lack of it). ChallengeClaims carries the step-up claims for sources that
// merge capabilities themselves.
func (c *cache) refreshRequest(e *entry) (TokenRequest, error) {
	claims, err := mergeClaims(e.stepUp, c.o.capabilities)
	if err != nil {
		return TokenRequest{}, err
	}
	return TokenRequest{Claims: claims, ChallengeClaims: e.stepUp, ACRValues: e.stepUpACR}, nil
}

func wait(ctx context.Context, f *fetch) (*Token, error) {
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startLocked starts a fetch on its own goroutine, detached from the
// caller's cancellation (other callers may wait on it) but bounded by the
// fetch timeout and by close. c.mu must be held.
func (c *cache) startLocked(ctx context.Context, e *entry, req TokenRequest) *fetch {
	req.Scopes = e.scopes
	f := &fetch{done: make(chan struct{}), claims: requestKey(req), bypass: req.BypassCache}
	c.wg.Add(1)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.fetchTimeout)
	stop := context.AfterFunc(c.ctx, cancel)
	go func() {
		defer c.wg.Done()
		defer cancel()
		defer stop()
		var tok *Token
		err := c.waitNotBefore(fctx, req)
		if err == nil {
			tok, err = c.call(fctx, req)
		}
		c.finish(fctx, e, f, req, tok, err)
	}()
	return f
}

// MaxNotBeforeWait bounds how long the client waits, before asking its
// TokenSource for a token in answer to a challenge, for its clock to reach
// the nbf that the challenge requests. A revocation challenge asks for the
// second after the event; most identity providers (Okta, Keycloak, Auth0)
// ignore the claims parameter and issue at once, so a token asked for in the
// event's own second would be issued in it and refused again. Waiting makes
// even such an IdP issue a token the server accepts, so that the single
// retry succeeds. An nbf further ahead than this (clocks skewed by more than
// a second or two) is waited for only this long before asking anyway.
const MaxNotBeforeWait = 2 * time.Second

// waitNotBefore waits, for a request that answers a challenge, until the
// clock reaches the nbf the challenge asks for, at most MaxNotBeforeWait.
// It returns ctx's error when ctx ends first (Close, the fetch timeout).
// Claims whose nbf cannot be read are logged and not waited for: the
// identity provider judges them.
func (c *cache) waitNotBefore(ctx context.Context, req TokenRequest) error {
	if req.ChallengeClaims == "" {
		return nil
	}
	nbf, err := challenge.RequestedNotBefore(req.ChallengeClaims)
	if err != nil {
		c.log.WarnContext(ctx, "caekit: the challenge's nbf cannot be read; asking for a token at once", "error", err)
		return nil
	}
	if nbf.IsZero() {
		return nil
	}
	d := nbf.Sub(c.o.now())
	if d <= 0 {
		return nil
	}
	d = min(d, MaxNotBeforeWait)
	c.log.DebugContext(ctx, "caekit: waiting for the challenge's nbf before asking for a token", "nbf", nbf.Unix(), "wait", d)
	if err := c.o.sleep(ctx, d); err != nil {
		return fmt.Errorf("caekit/client: waiting %v for the challenge's nbf %d before asking for a token: %w", d, nbf.Unix(), err)
	}
	return nil
}

// sleepContext waits for d or until ctx ends, and then returns ctx's error.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *cache) call(ctx context.Context, req TokenRequest) (tok *Token, err error) {
	defer func() {
		if r := recover(); r != nil {
			tok, err = nil, fmt.Errorf("caekit/client: token source panicked: %v", r)
		}
	}()
	tok, err = c.src.Token(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("caekit/client: token source: %w", err)
	}
	if err := checkToken(tok, c.o.now()); err != nil {
		return nil, err
	}
	return tok, nil
}

// checkToken rejects tokens that cannot be used.
func checkToken(t *Token, now time.Time) error {
	switch {
	case t == nil:
		return errors.New("caekit/client: token source returned no token and no error")
	case t.AccessToken == "":
		return errors.New("caekit/client: token source returned an empty access token")
	case len(t.AccessToken) > MaxTokenLen:
		return fmt.Errorf("caekit/client: token source returned a %d-byte access token, limit %d", len(t.AccessToken), MaxTokenLen)
	case t.ExpiresAt.IsZero():
		return fmt.Errorf("caekit/client: token source returned token %s without an expiry time", jose.Hash(t.AccessToken))
	case !t.ExpiresAt.After(now):
		return fmt.Errorf("caekit/client: token source returned token %s that already expired at %s", jose.Hash(t.AccessToken), t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	for i := 0; i < len(t.AccessToken); i++ {
		if b := t.AccessToken[i]; b <= ' ' || b >= 0x7f {
			return fmt.Errorf("caekit/client: token source returned token %s with a byte 0x%02x not allowed in a bearer token", jose.Hash(t.AccessToken), b)
		}
	}
	return nil
}

func (c *cache) finish(ctx context.Context, e *entry, f *fetch, req TokenRequest, tok *Token, err error) {
	now := c.o.now()
	c.mu.Lock()
	f.tok, f.err = tok, err
	current := e.inflight == f
	var ev Event
	var recovered, firstFailure bool
	if current {
		e.inflight = nil
		if err == nil {
			recovered = e.warned
			same := e.tok != nil && e.tok.AccessToken == tok.AccessToken
			e.tok, e.claims, e.refreshAt = tok, requestKey(req), c.refreshTime(tok, now, same)
			if su := challenge.StepUpClaims(req.ChallengeClaims); su != "" {
				e.stepUp = su // keep the auth context on later refreshes
			}
			if len(req.ACRValues) > 0 {
				// Keep the RFC 9470 acr_values on later refreshes, as the
				// acrs above; max_age is not kept: it asks for one fresh
				// authentication, not one per refresh.
				e.stepUpACR = req.ACRValues
			}
			e.failures, e.retryAt, e.lastErr, e.warned = 0, time.Time{}, nil, false
		} else {
			e.failures++
			e.retryAt = now.Add(c.backoff(e.failures))
			if !req.BypassCache {
				// A challenge fetch failing for its claims says nothing
				// about plain fetches, so only these hold get back.
				e.lastErr = err
			}
			if !e.warned {
				e.warned, firstFailure = true, true
			}
		}
	}
	stale := err != nil && c.usable(e.tok, now)
	failures := e.failures
	c.mu.Unlock()
	// Report before releasing the waiters, so that a caller that returns
	// after this fetch has been observed it (observers must be fast).
	defer close(f.done)

	if err == nil {
		ev = Event{Kind: EventTokenFetched, Scopes: req.Scopes, Claims: req.Claims, TokenHash: jose.Hash(tok.AccessToken)}
		if recovered {
			c.log.InfoContext(ctx, "caekit: token refresh recovered", "scopes", req.Scopes, "token", ev.TokenHash)
		} else {
			c.log.DebugContext(ctx, "caekit: token fetched", "scopes", req.Scopes, "token", ev.TokenHash, "bypass_cache", req.BypassCache)
		}
	} else {
		ev = Event{Kind: EventTokenFetchFailed, Scopes: req.Scopes, Claims: req.Claims, Err: err, Stale: stale, Failures: failures}
		switch {
		case stale && firstFailure:
			c.log.WarnContext(ctx, "caekit: token refresh failed; serving the still-valid token and retrying with backoff", "scopes", req.Scopes, "error", err)
		case stale:
			c.log.DebugContext(ctx, "caekit: token refresh failed again", "scopes", req.Scopes, "error", err, "failures", failures)
		default:
			c.log.WarnContext(ctx, "caekit: token fetch failed", "scopes", req.Scopes, "error", err)
		}
	}
	if c.o.observer != nil {
		c.o.observer.Observe(ctx, ev)
	}
}

// backoffError is get's error while it backs off: it wraps ErrBackingOff and
// the last fetch's error, and says when the next fetch may be made.
type backoffError struct {
	failures int
	retryIn  time.Duration
	last     error
}

func (e *backoffError) Error() string {
	return fmt.Sprintf("%s (%d in a row); next attempt in %v: %v",
		ErrBackingOff.Error(), e.failures, e.retryIn.Round(time.Millisecond), e.last)
}

func (e *backoffError) Unwrap() []error { return []error{ErrBackingOff, e.last} }

// refreshTime is when to refresh tok proactively: its RefreshAt when that
// lies ahead; soon (after the minimum backoff) when RefreshAt already passed
// during a slow fetch; else the refresh margin before expiry, but never
// before half the remaining lifetime. A source that hands back the token it
// already had (its own cache) also gets the margin rule, so that it is not
// asked again on every call.
func (c *cache) refreshTime(t *Token, now time.Time, same bool) time.Time {
	if !t.RefreshAt.IsZero() && t.RefreshAt.Before(t.ExpiresAt) {
		if t.RefreshAt.After(now) {
			return t.RefreshAt
		}
		if !same {
			return now.Add(c.o.backoffMin)
		}
	}
	r := t.ExpiresAt.Add(-c.o.refreshMargin)
	if half := now.Add(t.ExpiresAt.Sub(now) / 2); r.Before(half) {
		r = half
	}
	return r
}

// backoff is the wait after n consecutive failures: the kit's backoff
// (min·2^(n-1), capped at max, shortened by up to 20% at random).
func (c *cache) backoff(n int) time.Duration {
	return backoff.Policy{Min: c.o.backoffMin, Max: c.o.backoffMax, Jitter: 0.2}.Delay(n)
}

// TokenHash returns a short, non-reversible hash prefix of a token that is
// safe to log: the kit's one token hash, the same as token.Hash.
//
// Deprecated: use token.Hash (github.com/caekit/caekit/interceptor/token);
// TokenHash stays until the next minor release.
func TokenHash(token string) string { return jose.Hash(token) }
