// Package backoff is caekit's one retry backoff: exponential, capped, with
// optional jitter. The JWKS refresher (interceptor/token), the client's
// token cache (interceptor/client), the SSF poller (revocation/ssf) and the
// Redis store's subscription loop (revocation/redisstore) all wait with it.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: after n consecutive failures the wait
// is Min·2^(n-1), capped at Max, then shortened by a random fraction of up
// to Jitter. Max is a true upper bound: jitter only ever shortens a wait,
// so that callers whose Max is a deadline-like bound (a refresh interval, a
// heartbeat) never wait past it. The zero Policy waits 0.
type Policy struct {
	// Min is the first wait; Max caps every wait (a Max below Min is
	// treated as Min).
	Min, Max time.Duration
	// Jitter in [0, 1] is the largest fraction a wait is shortened by, at
	// random, so that many clients that failed together do not retry
	// together. 0 waits exactly; values outside [0, 1] are clamped.
	Jitter float64
}

// Delay returns the wait after n consecutive failures; n below 1 counts
// as 1.
func (p Policy) Delay(n int) time.Duration {
	if p.Min <= 0 {
		return 0
	}
	hi := max(p.Max, p.Min)
	d := p.Min
	for i := 1; i < n && d < hi; i++ {
		if d > hi/2 {
			d = hi
			break
		}
		d *= 2
	}
	d = min(d, hi)
	if j := min(max(p.Jitter, 0), 1); j > 0 {
		d -= rand.N(time.Duration(float64(d)*j) + 1)
	}
	return d
}
