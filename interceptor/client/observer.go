package client

import (
	"context"

	"github.com/caekit/caekit/interceptor/challenge"
)

// EventKind says what an Event is about.
type EventKind int

// Event kinds.
const (
	// EventChallenge: a call was answered with a claims challenge.
	EventChallenge EventKind = iota + 1
	// EventRetry: a call or stream is retried with a new token.
	EventRetry
	// EventNotRetried: a challenge is returned to the application: it came
	// on the retry, after a stream's first response, past the replay buffer,
	// on a stream the server may have partly processed (not refused at open,
	// not declared idempotent), without claims, or the new token could not
	// be obtained.
	EventNotRetried
	// EventMalformedChallenge: an Unauthenticated error carried a challenge
	// that could not be decoded. It is returned to the application.
	EventMalformedChallenge
	// EventTokenFetched: the TokenSource returned a token.
	EventTokenFetched
	// EventTokenFetchFailed: the TokenSource failed. Stale is true when a
	// still-valid token keeps being served (a failed proactive refresh).
	EventTokenFetchFailed
)

// String returns the kind's name.
func (k EventKind) String() string {
	switch k {
	case EventChallenge:
		return "challenge"
	case EventRetry:
		return "retry"
	case EventNotRetried:
		return "not_retried"
	case EventMalformedChallenge:
		return "malformed_challenge"
	case EventTokenFetched:
		return "token_fetched"
	case EventTokenFetchFailed:
		return "token_fetch_failed"
	}
	return "unknown"
}

// Event describes something the client did. Fields that do not apply are zero.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Method is the full gRPC method, for call events.
	Method string
	// Challenge is the challenge received, for challenge events.
	Challenge *challenge.Challenge
	// Err is the error, for failures and not-retried challenges.
	Err error
	// Scopes are the token's scopes, for token events.
	Scopes []string
	// Claims is the claims request sent, for token events.
	Claims string
	// TokenHash is a short hash prefix of the token involved; never the token.
	TokenHash string
	// Stale is true for a failed refresh while a valid token is still served.
	Stale bool
	// Failures counts consecutive failed fetches for the scope set.
	Failures int
}

// Observer receives Events. Observe is called synchronously on the call path
// or on a token fetch goroutine; it must be fast, safe for concurrent use,
// and must not call back into the Client.
type Observer interface {
	// Observe is told about e; ctx is the call's or the fetch's context.
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f.
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }
