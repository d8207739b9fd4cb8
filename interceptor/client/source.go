package client

import (
	"context"
	"time"
)

// TokenSource obtains access tokens from an identity provider.
//
// Implementations must be safe for concurrent use. The caching layer in this
// package calls Token at most once at a time per cache key (audience/scope
// set), so a source need not deduplicate requests itself, but calls for
// different keys may run concurrently. Token should respect ctx; the cache
// runs fetches on a context detached from any single RPC (it carries the
// first caller's values) and bounded by the client's fetch timeout.
//
// A source that cannot honour req.Claims must fail with an error rather
// than silently return a token that ignores them: a token without the
// requested claims is rejected again by the server.
type TokenSource interface {
	// Token returns a token for req.Scopes that satisfies req.Claims.
	Token(ctx context.Context, req TokenRequest) (*Token, error)
}

// TokenSourceFunc adapts a function to TokenSource.
type TokenSourceFunc func(ctx context.Context, req TokenRequest) (*Token, error)

// Token calls f.
func (f TokenSourceFunc) Token(ctx context.Context, req TokenRequest) (*Token, error) {
	return f(ctx, req)
}

// TokenRequest says what kind of token to obtain.
type TokenRequest struct {
	// Scopes are the OAuth scopes (or the audience) the token is for,
	// e.g. ["api://inbox/.default"]. Sorted and deduplicated.
	Scopes []string
	// Claims is the claims-request JSON to send to the identity provider
	// (the OAuth "claims" parameter): the client capabilities merged with the
	// claims of a challenge, e.g.
	// {"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c1"}}}.
	// Empty when there is nothing to ask for.
	Claims string
	// ChallengeClaims is the claims request of the challenge being answered,
	// exactly as the server sent it (decoded), without the capabilities. For
	// ordinary requests it is empty, except after an auth-context step-up:
	// refreshes for those scopes then carry the step-up part,
	// {"access_token":{"acrs":...}}, so that the new token keeps the context.
	// Sources that merge capabilities themselves (MSAL, azidentity with
	// EnableCAE) use it instead of Claims.
	ChallengeClaims string
	// BypassCache tells a source that keeps its own cache (MSAL, azidentity)
	// to go to the identity provider. It is set for every request made in
	// answer to a challenge.
	BypassCache bool
	// ACRValues are the acr_values of an RFC 9470 step-up challenge being
	// answered (RFC 9470 §3), in order of preference, to pass to the
	// identity provider in the acr_values parameter of a new authorization
	// request (RFC 9470 §4, OIDC Core §3.1.2.1). After such a step-up,
	// refreshes for the same scopes carry them too, so that the new token
	// keeps the authentication level. Empty otherwise.
	ACRValues []string
	// MaxAge is the max_age of an RFC 9470 step-up challenge being answered
	// (RFC 9470 §3): the user must have actively authenticated at most this
	// long ago, so the source must authenticate the user again rather than
	// refresh silently (pass max_age, OIDC Core §3.1.2.1). Zero: none; a
	// negative value stands for max_age=0 (see challenge.Challenge.MaxAge).
	// It is set only on the request that answers the challenge.
	MaxAge time.Duration
}

// StepUp reports whether req answers an RFC 9470 step-up challenge or
// keeps the acr_values of one: ACRValues or MaxAge is set. A source that
// cannot pass them to its identity provider must fail such a request with
// an error rather than return a token that ignores them.
func (req TokenRequest) StepUp() bool { return len(req.ACRValues) > 0 || req.MaxAge != 0 }

// Token is an access token and its timing.
type Token struct {
	// AccessToken is the bearer token. Never log it.
	AccessToken string
	// ExpiresAt is when the token expires. Required.
	ExpiresAt time.Time
	// RefreshAt is when to refresh proactively (from the token response's
	// refresh_in). Zero means a margin before ExpiresAt (see
	// WithRefreshMargin).
	RefreshAt time.Time
}
