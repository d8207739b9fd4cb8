package client

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// ErrChallengeFetchLimited is wrapped by the error of a call whose claims
// challenge was not answered with a token fetch because challenge-driven
// fetches for its scope set exceeded the limit (WithChallengeFetchLimit).
// The call's error is a *ReacquireError: its gRPC status is the server's, so
// challenge.Extract still returns the challenge.
var ErrChallengeFetchLimited = errors.New("caekit/client: too many challenge-driven token fetches for these scopes")

// allowChallengeFetchLocked takes one token from e's challenge-fetch bucket,
// or says why it cannot. A server that challenges every call would otherwise
// drive one cache-bypassing identity provider request per call (issue 13
// item 6). c.mu must be held.
func (c *cache) allowChallengeFetchLocked(e *entry, now time.Time) error {
	if e.challengeLimiter == nil {
		e.challengeLimiter = rate.NewLimiter(rate.Every(c.o.challengeEvery), c.o.challengeBurst)
	}
	if e.challengeLimiter.AllowN(now, 1) {
		return nil
	}
	wait := time.Duration((1 - e.challengeLimiter.TokensAt(now)) * float64(c.o.challengeEvery))
	return fmt.Errorf("%w %q (a burst of %d, then one per %v); the challenge is returned to the caller; next fetch allowed in %v",
		ErrChallengeFetchLimited, e.scopes, c.o.challengeBurst, c.o.challengeEvery, wait.Round(time.Millisecond))
}
