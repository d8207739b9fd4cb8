package client

import "time"

// WithClock replaces the Client's clock (tests only), so that tests of
// time-based limits do not depend on how fast the machine runs them.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}
