package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/internal/testkit/testidp"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// fakeTime is an injected clock whose sleep advances it.
type fakeTime struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return nil
}

// askedAt records when (by the fake clock) the source was asked for a token
// in answer to a challenge. Its source ignores the claims parameter, as most
// identity providers do (mode b of the dev IdP): it issues at once.
type askedAt struct {
	mu    sync.Mutex
	times []time.Time
}

func (a *askedAt) source(clock *fakeTime, inner client.TokenSource) client.TokenSource {
	return client.TokenSourceFunc(func(ctx context.Context, req client.TokenRequest) (*client.Token, error) {
		if req.ChallengeClaims != "" {
			a.mu.Lock()
			a.times = append(a.times, clock.Now())
			a.mu.Unlock()
		}
		req.Claims, req.ChallengeClaims = "", ""
		return inner.Token(ctx, req)
	})
}

// challengeOnce answers the first call with a revocation challenge asking for
// the given claims, and lets every later call through to caekit's server.
func challengeOnce(claims string) func(ctx context.Context, call func() error) error {
	var once sync.Once
	return func(ctx context.Context, call func() error) error {
		var challenged bool
		once.Do(func() { challenged = true })
		if !challenged {
			return call()
		}
		c := &challenge.Challenge{Claims: claims, Reason: caev1.Reason_REASON_SESSION_REVOKED}
		return c.Status(codes.Unauthenticated, "token revoked").Err()
	}
}

// TestChallengeNotBeforeWait guards issue 12 item 2 on the client side: an
// IdP that ignores the claims parameter issues at once, so a token asked for
// during the event's second would be refused again. The client therefore
// asks its TokenSource only once its clock reaches the requested nbf, waiting
// at most MaxNotBeforeWait. Clocks are injected: no wall-clock luck.
func TestChallengeNotBeforeWait(t *testing.T) {
	// The fake clock starts 300 ms into a second near now (tokens from the
	// loopback IdP expire by the wall clock); only its offsets matter.
	s := time.Now().Unix()
	start := time.Unix(s, 300_000_000)
	for _, tc := range []struct {
		name   string
		claims string
		sleeps []time.Duration
	}{
		{"nbf the second after the event", challenge.NotBeforeClaims(time.Unix(s+1, 0)), []time.Duration{700 * time.Millisecond}},
		{"nbf already reached", challenge.NotBeforeClaims(time.Unix(s, 0)), nil},
		{"nbf far ahead: bounded wait, then ask", challenge.NotBeforeClaims(time.Unix(s+3600, 0)), []time.Duration{client.MaxNotBeforeWait}},
		{"no nbf (step-up)", challenge.AuthContextClaims("c1"), nil},
		{"unreadable nbf: ask at once", `{"access_token":{"nbf":{"essential":true,"value":"soon"}}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeTime{now: start}
			asked := &askedAt{}
			e := newEnv(t, envConfig{
				wrap:       challengeOnce(tc.claims),
				src:        func(idp *testidp.IdP) client.TokenSource { return asked.source(clock, mustSource(idp)) },
				clientOpts: []client.Option{client.WithTestClock(clock.Now, clock.Sleep)},
			})
			if err := e.get(); err != nil {
				t.Fatalf("challenged call: %v", err)
			}
			if e.obs.count(client.EventChallenge) != 1 || e.obs.count(client.EventRetry) != 1 {
				t.Fatalf("events %+v: want one challenge and one retry", e.obs.events)
			}
			clock.mu.Lock()
			sleeps := clock.sleeps
			clock.mu.Unlock()
			if len(sleeps) != len(tc.sleeps) || (len(sleeps) == 1 && sleeps[0] != tc.sleeps[0]) {
				t.Fatalf("waits %v, want %v", sleeps, tc.sleeps)
			}
			asked.mu.Lock()
			defer asked.mu.Unlock()
			if len(asked.times) != 1 {
				t.Fatalf("%d challenge fetches, want 1", len(asked.times))
			}
			nbf, _ := challenge.RequestedNotBefore(tc.claims)
			if want := min(nbf.Sub(start), client.MaxNotBeforeWait); want > 0 && asked.times[0].Before(start.Add(want)) {
				t.Fatalf("source asked at %v, before the wait for nbf %d ended", asked.times[0], nbf.Unix())
			}
		})
	}
}

// TestChallengeNotBeforeWaitEndsWithClose: the wait for a challenge's nbf is
// owned by the client; Close ends it (the default, timer-based wait), the
// source is never asked, and no goroutine outlives the client (goleak in
// TestMain).
func TestChallengeNotBeforeWaitEndsWithClose(t *testing.T) {
	asked := &askedAt{}
	clock := &fakeTime{now: time.Now()}
	// A wait that lasts until something ends it, and says when it began:
	// Close must come during the wait, not before it (Close before the
	// fetch starts refuses it with ErrClosed instead, as it should).
	waiting := make(chan struct{})
	var began sync.Once
	sleep := func(ctx context.Context, d time.Duration) error {
		began.Do(func() { close(waiting) })
		<-ctx.Done()
		return ctx.Err()
	}
	e := newEnv(t, envConfig{
		// nbf an hour ahead of the client's clock.
		wrap:       challengeOnce(challenge.NotBeforeClaims(time.Now().Add(time.Hour))),
		src:        func(idp *testidp.IdP) client.TokenSource { return asked.source(clock, mustSource(idp)) },
		clientOpts: []client.Option{client.WithTestClock(clock.Now, sleep)},
	})
	done := make(chan error, 1)
	go func() { done <- e.get() }()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the client never began to wait for the challenge's nbf")
	}
	if err := e.cli.Close(); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("error %v: want the challenged call's own error", err)
	}
	e.obs.mu.Lock()
	var why error
	for _, ev := range e.obs.events {
		if ev.Kind == client.EventNotRetried {
			why = ev.Err
		}
	}
	e.obs.mu.Unlock()
	if !errors.Is(why, context.Canceled) {
		t.Fatalf("not retried because %v: want the wait ended by Close", why)
	}
	asked.mu.Lock()
	defer asked.mu.Unlock()
	if len(asked.times) != 0 {
		t.Fatal("the source was asked after Close ended the wait")
	}
}
