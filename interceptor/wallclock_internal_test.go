package interceptor

import (
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testclock"
)

// TestWallClockDerivedAndResynced guards wallClock (issue 16 item 1:
// check.Request.Now derived from the call's monotonic reading): between
// wall-clock reads it returns the last read plus the monotonic time
// elapsed, and once wallResync has passed it reads the wall clock again,
// so that a step of the system clock shows within wallResync. Without the
// resync the stepped clock below would never be seen.
func TestWallClockDerivedAndResynced(t *testing.T) {
	t0 := testclock.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	wall, mono := t0, 10*time.Second
	syncs := 0
	c := wallClock{sync: func() (time.Time, time.Duration) { syncs++; return wall, mono }}

	if got := c.at(mono + 50*time.Millisecond); !got.Equal(t0.Add(50 * time.Millisecond)) {
		t.Fatalf("first read: %v, want %v", got, t0.Add(50*time.Millisecond))
	}
	if got := c.at(mono + wallResync - time.Nanosecond); !got.Equal(t0.Add(wallResync-time.Nanosecond)) || syncs != 1 {
		t.Fatalf("within the resync interval: %v after %d wall-clock reads, want %v after 1", got, syncs, t0.Add(wallResync-time.Nanosecond))
	}
	// A reading taken before the base (another call stored a newer base
	// meanwhile) maps back by the same arithmetic.
	if got := c.at(mono - time.Millisecond); !got.Equal(t0.Add(-time.Millisecond)) {
		t.Fatalf("earlier reading: %v", got)
	}
	// The system clock is stepped an hour ahead.
	wall, mono = t0.Add(time.Hour+wallResync), mono+wallResync
	if got := c.at(mono); !got.Equal(wall) || syncs != 2 {
		t.Fatalf("after the resync interval: %v after %d wall-clock reads, want the stepped clock %v after 2", got, syncs, wall)
	}
}

// TestWallClockDefaultTracksTimeNow checks the default sync (time.Now and
// its own monotonic reading): a derived time lies between two time.Now
// reads around it.
func TestWallClockDefaultTracksTimeNow(t *testing.T) {
	var c wallClock
	for range 3 {
		before := time.Now()
		got := c.at(monoNow())
		after := time.Now()
		if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
			t.Fatalf("derived %v outside [%v, %v]", got, before, after)
		}
	}
}
