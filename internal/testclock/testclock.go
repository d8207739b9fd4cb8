// Package testclock gives caekit's tests their fixed instants, and a way to
// prove that no test pairs a fixed instant with the wall clock.
//
// A test that needs a fixed date writes testclock.Date(…) or
// testclock.Unix(…) instead of time.Date or time.Unix, and hands every store,
// validator or client that sees times near that date a clock derived from it.
// Normally the two functions are time.Date and time.Unix. With the
// environment variable CAEKIT_TEST_CLOCK_AHEAD set to a duration (say
// "87600h"), they return instants that much earlier: to the code under test
// the wall clock then stands ten years after the test's dates, as it will in
// ten years. A test that relied on its fixed date being close to today fails
// in such a run today, not on the day its date falls out of some retention.
// .ci/run runs the whole suite once that way.
//
// TestNoRawFixedDates (in this package) fails on any time.Date or literal
// time.Unix in a test file of the module that does not go through this
// package, unless the line is marked "datelint:ok" with a reason (a value
// used as pure data, never compared with a clock).
package testclock

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// AheadEnv names the environment variable read by Ahead.
const AheadEnv = "CAEKIT_TEST_CLOCK_AHEAD"

var ahead = sync.OnceValue(func() time.Duration {
	s := os.Getenv(AheadEnv)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(fmt.Sprintf("testclock: %s=%q is not a duration: %v", AheadEnv, s, err))
	}
	return d
})

// Ahead returns how far the wall clock is made to stand after the tests'
// fixed dates (CAEKIT_TEST_CLOCK_AHEAD, default 0).
func Ahead() time.Duration { return ahead() }

// Date is time.Date moved Ahead() into the past.
func Date(year int, month time.Month, day, hour, min, sec, nsec int, loc *time.Location) time.Time {
	return time.Date(year, month, day, hour, min, sec, nsec, loc).Add(-Ahead())
}

// Unix is time.Unix moved Ahead() into the past.
func Unix(sec, nsec int64) time.Time { return time.Unix(sec, nsec).Add(-Ahead()) }
