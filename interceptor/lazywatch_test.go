package interceptor_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/testcae"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

func lazyCall(tok string) interceptor.Call {
	return interceptor.Call{Method: "GET /v1/inbox/watch", Authorization: []string{"Bearer " + tok}, Watch: true, Lazy: true}
}

// TestLazyWatchSeesEventBeforeStart guards Call.Lazy's snapshot: an event
// stored between Admit and the watch start cuts the call when its watch
// starts. The start re-evaluates every check because the Server's change
// count moved since Admit; a start that trusted Admit's decision (the
// time-independent checks marked as passed) would let the revoked call run
// on, watched but never told.
func TestLazyWatchSeesEventBeforeStart(t *testing.T) {
	e := newEnv(t, envOpt{})
	a, err := e.srv.Admit(context.Background(), lazyCall(mint(t, tok{sub: "lazy-ev"})))
	if err != nil {
		t.Fatal(err)
	}
	before := e.srv.LazyWatchStarts()
	if a.Watching() {
		t.Fatal("a lazy admission is watched before it proved long-lived")
	}
	testcae.Revoke(t, e.store, "lazy-ev")
	if a.Cut() != nil {
		t.Fatal("an unwatched admission reports a cut")
	}
	err = a.Watch()
	var d *interceptor.DenialError
	if !errors.As(err, &d) || d.Denial().Reason != caev1.Reason_REASON_USER_DISABLED || !d.MidStream() || d.Code() != codes.Unauthenticated {
		t.Fatalf("Watch after the event = %v, want the mid-stream USER_DISABLED denial", err)
	}
	ctx := a.Context()
	select {
	case <-ctx.Done():
	default:
		t.Fatal("the handler's context is not cancelled after the cut")
	}
	if cause := context.Cause(ctx); !errors.As(cause, &d) {
		t.Fatalf("context.Cause = %v, want the DenialError", cause)
	}
	if err := a.End(); !errors.As(err, &d) {
		t.Fatalf("End = %v, want the DenialError", err)
	}
	if n := e.srv.LazyWatchStarts() - before; n != 1 {
		t.Fatalf("%d watch starts, want 1", n)
	}
}

// TestLazyWatchStartsOnDone guards the long-poll trigger: a handler that
// waits on its context's Done channel is watched from then on, so an event
// stored later cancels it (with the DenialError as cause), and the claims
// stay readable from the context.
func TestLazyWatchStartsOnDone(t *testing.T) {
	e := newEnv(t, envOpt{})
	a, err := e.srv.Admit(context.Background(), lazyCall(mint(t, tok{sub: "lazy-done"})))
	if err != nil {
		t.Fatal(err)
	}
	defer a.End()
	ctx := a.Context()
	if c, ok := interceptor.ClaimsFromContext(ctx); !ok || c.Subject != "lazy-done" {
		t.Fatalf("claims %v, %v", c, ok)
	}
	if context.Cause(ctx) != nil || ctx.Err() != nil {
		t.Fatal("a fresh admission's context is done")
	}
	done := ctx.Done()
	if !a.Watching() {
		t.Fatal("waiting on Done did not start the watch")
	}
	testcae.Revoke(t, e.store, "lazy-done")
	<-done // the hang guard is the test timeout
	var d *interceptor.DenialError
	if cause := context.Cause(ctx); !errors.As(cause, &d) || d.Denial().Reason != caev1.Reason_REASON_USER_DISABLED {
		t.Fatalf("context.Cause = %v, want USER_DISABLED", cause)
	}
	if c, ok := interceptor.ClaimsFromContext(ctx); !ok || c.Subject != "lazy-done" {
		t.Fatalf("claims after the cut %v, %v", c, ok)
	}
}

// TestLazyRecheckAfterChange guards the write trigger: a write (Recheck) of
// a lazily admitted call right after admission, with nothing changed,
// starts no watch; once anything changed (here RecheckStreams after a
// policy turned to deny), the next write starts the watch, re-evaluates,
// and is refused.
func TestLazyRecheckAfterChange(t *testing.T) {
	var deny atomic.Bool
	pol := check.CheckFunc(func(context.Context, *check.Request) *check.Denial {
		if deny.Load() {
			return &check.Denial{Code: codes.PermissionDenied, Reason: caev1.Reason_REASON_POLICY, Description: "policy changed"}
		}
		return nil
	})
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(pol)}})
	a, err := e.srv.Admit(context.Background(), lazyCall(mint(t, tok{sub: "lazy-write"})))
	if err != nil {
		t.Fatal(err)
	}
	defer a.End()
	if err := a.Recheck(); err != nil {
		t.Fatal(err)
	}
	if a.Watching() {
		t.Fatal("a write right after admission, nothing changed, started the watch")
	}
	deny.Store(true)
	e.srv.RecheckStreams() // reaches no index entry: the call is not watched
	var d *interceptor.DenialError
	if err := a.Recheck(); !errors.As(err, &d) || d.Denial().Reason != caev1.Reason_REASON_POLICY {
		t.Fatalf("write after the change = %v, want the policy denial", err)
	}
	if !a.Watching() {
		t.Fatal("the write after a change did not start the watch")
	}
}

// TestAdmitWatchDeniedAtOpen guards the eager watch's open: a denial by
// the re-check right after indexing records the cut, which wakes the call;
// before the fix that wake started a re-check goroutine on an Admission
// whose watch was not set yet (a nil dereference that crashed the
// process). Now Admit refuses the call once, at stream open.
func TestAdmitWatchDeniedAtOpen(t *testing.T) {
	var calls atomic.Int32
	second := check.CheckFunc(func(context.Context, *check.Request) *check.Denial {
		if calls.Add(1) == 2 { // the re-check after indexing
			return &check.Denial{Code: codes.PermissionDenied, Reason: caev1.Reason_REASON_POLICY, Description: "changed during the open"}
		}
		return nil
	})
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(second)}})
	c := lazyCall(mint(t, tok{sub: "eager-open"}))
	c.Lazy = false
	a, err := e.srv.Admit(context.Background(), c)
	var d *interceptor.DenialError
	if a != nil || !errors.As(err, &d) || d.MidStream() || d.Denial().Reason != caev1.Reason_REASON_POLICY {
		t.Fatalf("Admit = %v, %v, want a refusal at open", a, err)
	}
	testkit.Eventually(t, "no re-check after the refusal", func() bool { return calls.Load() == 2 })
}

// TestRecheckDenialCancelsContextAtOnce guards the order a front door
// relies on: when Recheck (a write, a Connect Send) returns the denial, the
// handler's context is already cancelled with it as cause. Before the fix
// only the re-check goroutine published the cut, so a handler reading
// context.Cause right after its failed Send could see nil (a flaky failure
// of caeconnect's TestStreamCutByStoredEvent, about 1 run in 20 under
// -race). The check here is not TimeIndependent, so the write's re-check is
// the first to see it deny.
func TestRecheckDenialCancelsContextAtOnce(t *testing.T) {
	var deny atomic.Bool
	pol := check.CheckFunc(func(context.Context, *check.Request) *check.Denial {
		if deny.Load() {
			return &check.Denial{Code: codes.PermissionDenied, Reason: caev1.Reason_REASON_POLICY, Description: "denied on write"}
		}
		return nil
	})
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(pol)}})
	for _, lazy := range []bool{false, true} {
		c := lazyCall(mint(t, tok{sub: "recheck-cause"}))
		c.Lazy = lazy
		a, err := e.srv.Admit(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Watch(); err != nil {
			t.Fatal(err)
		}
		deny.Store(true)
		var d *interceptor.DenialError
		if err := a.Recheck(); !errors.As(err, &d) {
			t.Fatalf("lazy %v: Recheck = %v, want the denial", lazy, err)
		}
		if cause := context.Cause(a.Context()); !errors.As(cause, &d) || d.Denial().Reason != caev1.Reason_REASON_POLICY {
			t.Fatalf("lazy %v: context.Cause right after the failed Recheck = %v, want the denial", lazy, cause)
		}
		_ = a.End()
		deny.Store(false)
	}
}
