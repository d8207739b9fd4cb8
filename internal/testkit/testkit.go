// Package testkit holds the helpers that caekit's tests share: a
// goroutine-safe log buffer, a polling wait (Eventually), the InboxService
// the interceptor tests call (Inbox), and a token minter (Minter). Its
// sub-package testidp is an OAuth token endpoint on loopback that issues
// CAE-aware access tokens.
//
// It is test support only: it is imported by _test.go files, never by the
// library. It must not import any caekit package whose tests import it (the
// interceptors, token, revocation...), so that no package's in-package tests
// could form an import cycle through it; what a helper needs from those
// packages (reading the caller's subject, say) is passed in as a function.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// LogBuffer is a bytes.Buffer that several goroutines may write to at once:
// the sink of a slog handler whose logs a test reads while servers, stores
// or refresh loops are still logging. The zero value is ready to use.
type LogBuffer struct {
	// Limit, if positive, bounds what is kept: once the buffer holds Limit
	// bytes or more, further writes are dropped (and reported written), so
	// a chatty child process keeps its start-up diagnostics and no more.
	Limit int

	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer, unless Limit is reached.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Limit > 0 && l.b.Len() >= l.Limit {
		return len(p), nil
	}
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// DefaultWait is how long Eventually waits for its condition.
const DefaultWait = 5 * time.Second

// pollEvery is how often Eventually and EventuallyWithin test the condition.
const pollEvery = 5 * time.Millisecond

// Eventually polls cond until it holds, and fails the test (naming what it
// waited for) when DefaultWait passes first. It waits for an effect that
// happens on another goroutine; it asserts nothing about how long that took.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, DefaultWait, what, cond)
}

// EventuallyWithin is Eventually with a deadline of d instead of DefaultWait.
func EventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
			return
		}
		time.Sleep(pollEvery)
	}
}
