package interceptor

import (
	"sync/atomic"
	"time"
)

// wallResync is how long wallClock derives the wall clock from the
// monotonic clock before it reads the wall clock again.
const wallResync = 100 * time.Millisecond

// wallClock is check.Request.Now under the default clock: the wall clock
// derived from a monotonic reading (monoNow) the call takes anyway, so that
// a call reads no wall clock of its own. time.Now reads both clocks, and the
// wall clock is the slow one on some virtual machines: time.Now was 21 % of
// a cache-hit call with the OTel SDK (profile of
// BenchmarkUnaryInterceptorCacheHitSDKJSONLogSampled, ~100 ns a read on the
// benchmark VM). It reads the wall clock again at least every wallResync,
// so a step of the system clock (NTP, a resumed VM) shows within 100 ms;
// between reads it runs at the monotonic clock's rate, which NTP slews
// with the wall clock.
type wallClock struct {
	base atomic.Pointer[wallBase]
	// sync reads the wall clock and the monotonic reading (monoNow) of the
	// same instant; nil means time.Now. Tests replace it.
	sync func() (time.Time, time.Duration)
}

type wallBase struct {
	wall time.Time
	mono time.Duration
}

// at returns the wall-clock time of the monotonic reading mono.
func (c *wallClock) at(mono time.Duration) time.Time {
	b := c.base.Load()
	if b == nil || mono-b.mono >= wallResync {
		var nb wallBase
		if c.sync != nil {
			nb.wall, nb.mono = c.sync()
		} else {
			nb.wall = time.Now()
			nb.mono = nb.wall.Sub(monoEpoch) // monotonic: the same instant
		}
		c.base.Store(&nb)
		b = &nb
	}
	return b.wall.Add(mono - b.mono)
}
