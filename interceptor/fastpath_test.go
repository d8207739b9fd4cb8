package interceptor_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/internal/testkit/teststore"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// countingCheck is a flagCheck (ChangeNotifier) that counts its calls and
// declares itself time-independent as ti says.
type countingCheck struct {
	flagCheck
	ti    bool
	calls atomic.Int64
}

func (c *countingCheck) Check(ctx context.Context, r *interceptor.Request) *interceptor.Denial {
	c.calls.Add(1)
	return c.flagCheck.Check(ctx, r)
}

func (c *countingCheck) TimeIndependent() bool { return c.ti }

// bump tells the subscribers of a change that does not change the decision.
func (c *countingCheck) bump() {
	c.mu.Lock()
	fns := make([]func(), 0, len(c.subs))
	for _, fn := range c.subs {
		fns = append(fns, fn)
	}
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// echo sends n messages on a Chat stream and reads each echo back.
func echo(t *testing.T, chat inboxv1.InboxService_ChatClient, n int) {
	t.Helper()
	for i := range n {
		if err := chat.Send(&inboxv1.ChatRequest{Text: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := chat.Recv(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTimeIndependentCheckSkippedWhileNothingChanged guards issue 16 item 2:
// a check declaring interceptor.TimeIndependent used to run on every message
// of a stream (twice per echoed message: RecvMsg and SendMsg), which made a
// back-to-back stream pay for the revocation look-ups and the policy on
// every message. Now it runs only when the stream's generation moved: here
// not at all during 20 round trips, and again on the first message after a
// ChangeNotifier change.
func TestTimeIndependentCheckSkippedWhileNothingChanged(t *testing.T) {
	t.Parallel()
	cc := &countingCheck{ti: true}
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(cc)}})
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{sid: "s-fast"})))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, chat, 1) // the stream is open and has passed
	opened := cc.calls.Load()
	echo(t, chat, 20)
	if got := cc.calls.Load(); got != opened {
		t.Fatalf("time-independent check ran %d times during 20 round trips with nothing changed, want 0", got-opened)
	}
	cc.bump() // a change: the next message evaluates again
	echo(t, chat, 1)
	if got := cc.calls.Load(); got <= opened {
		t.Fatalf("time-independent check did not run after a change (calls %d, %d before)", got, opened)
	}
	// A revocation still ends the stream (the event bumps its generation
	// and wakes it).
	if err := e.store.Put(context.Background(), revocation.Event{Type: revocation.TypeSessionRevoked,
		Subject: revocation.SessionKey(testIssuer, "s-fast"), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after revocation: %v, want Unauthenticated", err)
	}
}

// TestOtherChecksStillRunOnEveryMessage guards the backward compatibility of
// the Check contract: a check that does not implement TimeIndependent, or
// returns false, still runs on every message (RecvMsg and SendMsg).
func TestOtherChecksStillRunOnEveryMessage(t *testing.T) {
	t.Parallel()
	var plain atomic.Int64
	pc := interceptor.CheckFunc(func(context.Context, *interceptor.Request) *interceptor.Denial {
		plain.Add(1)
		return nil
	})
	cc := &countingCheck{ti: false}
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(pc, cc)}})
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{})))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, chat, 1)
	p0, c0 := plain.Load(), cc.calls.Load()
	echo(t, chat, 20)
	if got := plain.Load() - p0; got < 40 {
		t.Fatalf("CheckFunc ran %d times in 20 round trips, want at least 40", got)
	}
	if got := cc.calls.Load() - c0; got < 40 {
		t.Fatalf("check with TimeIndependent() false ran %d times in 20 round trips, want at least 40", got)
	}
}

// TestFastPathStillFailsClosedOnUnhealthyStore guards that skipping the
// revocation look-ups on messages does not skip the store's health: a store
// turning unhealthy without any event (a Redis mirror going stale) refuses
// the next message, with no periodic re-check configured.
func TestFastPathStillFailsClosedOnUnhealthyStore(t *testing.T) {
	t.Parallel()
	st := &unhealthyStore{Memory: teststore.Memory(t)}
	e := newEnv(t, envOpt{store: st})
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{})))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, chat, 3)
	st.stale.Store(true)
	if err := chat.Send(&inboxv1.ChatRequest{Text: "after"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("message on an unhealthy store: %v, want Unavailable", err)
	}
}
