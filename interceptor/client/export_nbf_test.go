package client

import (
	"context"
	"time"
)

// WithTestClock replaces the client's clock and the wait for a challenge's
// nbf, so that tests of that wait need no wall-clock luck. Test-only.
func WithTestClock(now func() time.Time, sleep func(context.Context, time.Duration) error) Option {
	return func(o *options) { o.now, o.sleep = now, sleep }
}
