package testkit_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit"
)

// LogBuffer keeps every write of concurrent writers, whole (run with -race:
// it guards the data race that an unsynchronised bytes.Buffer has).
func TestLogBufferConcurrentWrites(t *testing.T) {
	var buf testkit.LogBuffer
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				fmt.Fprintf(&buf, "g%d-%d\n", g, i)
				_ = buf.String()
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("got %d lines, want 800", len(lines))
	}
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l] = true
	}
	if len(seen) != 800 || !seen["g7-99"] || !seen["g0-0"] {
		t.Fatalf("lost or torn writes: %d distinct lines", len(seen))
	}
}

// A Limit keeps the first writes and drops the rest, reporting them written
// (a writer that saw an error would stop logging, or fail).
func TestLogBufferLimit(t *testing.T) {
	buf := testkit.LogBuffer{Limit: 4}
	for _, s := range []string{"ab", "cd", "ef"} {
		if n, err := buf.Write([]byte(s)); n != 2 || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := buf.String(); got != "abcd" {
		t.Fatalf("kept %q, want abcd", got)
	}
}

// fakeTB records Fatalf instead of ending the goroutine, so the failure path
// of Eventually can itself be tested.
type fakeTB struct {
	testing.TB
	failed atomic.Bool
	msg    string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	f.failed.Store(true)
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for n.Load() < 3 {
			n.Add(1)
		}
	}()
	f := &fakeTB{TB: t}
	testkit.Eventually(f, "three", func() bool { return n.Load() >= 3 })
	if f.failed.Load() {
		t.Fatalf("Eventually failed: %s", f.msg)
	}
}

func TestEventuallyFailsNamingWhatItWaitedFor(t *testing.T) {
	f := &fakeTB{TB: t}
	calls := 0
	testkit.EventuallyWithin(f, time.Millisecond, "the impossible", func() bool { calls++; return false })
	if !f.failed.Load() {
		t.Fatal("Eventually did not fail on a condition that never holds")
	}
	if !strings.Contains(f.msg, "the impossible") || !strings.Contains(f.msg, "1ms") {
		t.Fatalf("failure message %q does not name what it waited for and how long", f.msg)
	}
	if calls < 1 {
		t.Fatal("the condition was never tested")
	}
}

// TestRunning checks Running both ways: it sees a goroutine parked in a
// function, and no longer sees it once that goroutine has returned (waited
// for, not slept for).
func TestRunning(t *testing.T) {
	const fn = "github.com/caekit/caekit/internal/testkit_test.parkedForRunning"
	release, done := make(chan struct{}), make(chan struct{})
	started := make(chan struct{})
	go func() {
		defer close(done)
		parkedForRunning(started, release)
	}()
	<-started
	if !testkit.Running(fn) {
		t.Fatal("Running does not see the parked goroutine")
	}
	close(release)
	<-done
	if testkit.Running(fn) {
		t.Fatal("Running still sees a goroutine that returned")
	}
}

//go:noinline
func parkedForRunning(started chan<- struct{}, release <-chan struct{}) {
	close(started)
	<-release
}
