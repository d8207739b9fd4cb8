package backoff_test

import (
	"math"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/backoff"
)

// TestDelay guards the shared backoff's schedule: Min, doubling, capped at
// Max, no overflow for large failure counts, and n < 1 counting as 1.
func TestDelay(t *testing.T) {
	p := backoff.Policy{Min: time.Second, Max: 10 * time.Second}
	for n, want := range map[int]time.Duration{-3: time.Second, 0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 1000: 10 * time.Second} {
		if got := p.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
	huge := backoff.Policy{Min: time.Nanosecond, Max: math.MaxInt64}
	if got := huge.Delay(200); got != math.MaxInt64 {
		t.Errorf("Delay(200) with Max MaxInt64 = %v: overflowed", got)
	}
	if got := (backoff.Policy{Min: time.Second, Max: time.Millisecond}).Delay(5); got != time.Second {
		t.Errorf("Max below Min: Delay = %v, want Min", got)
	}
	if got := (backoff.Policy{}).Delay(3); got != 0 {
		t.Errorf("zero Policy: Delay = %v", got)
	}
}

// TestJitter guards that jitter only shortens a wait, by at most the
// fraction asked for (so Max stays an upper bound), and does vary it.
func TestJitter(t *testing.T) {
	p := backoff.Policy{Min: 100 * time.Millisecond, Max: time.Second, Jitter: 0.5}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Delay(3) // 400ms before jitter
		if d < 200*time.Millisecond || d > 400*time.Millisecond {
			t.Fatalf("Delay(3) = %v, want within [200ms, 400ms]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatalf("200 jittered delays were all %v", seen)
	}
	for range 50 {
		if d := (backoff.Policy{Min: time.Second, Max: time.Second, Jitter: 7}).Delay(1); d < 0 || d > time.Second {
			t.Fatalf("Jitter 7 (clamped to 1): Delay = %v", d)
		}
	}
}
