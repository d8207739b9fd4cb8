package interceptor_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// flagCheck denies every call once its flag is set, and announces the
// change to its OnChange subscribers (interceptor.ChangeNotifier), like a
// policy engine reloading its file.
type flagCheck struct {
	deny atomic.Bool
	mu   sync.Mutex
	subs map[int]func()
	next int
}

func (f *flagCheck) Check(context.Context, *interceptor.Request) *interceptor.Denial {
	if f.deny.Load() {
		return &interceptor.Denial{Code: codes.PermissionDenied, Reason: caev1.Reason_REASON_LOCATION, Description: "flag set"}
	}
	return nil
}

func (f *flagCheck) UsesMetadata() bool { return false }

func (f *flagCheck) OnChange(fn func()) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[int]func(){}
	}
	id := f.next
	f.next++
	f.subs[id] = fn
	return func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
	}
}

func (f *flagCheck) set() {
	f.deny.Store(true)
	f.mu.Lock()
	fns := make([]func(), 0, len(f.subs))
	for _, fn := range f.subs {
		fns = append(fns, fn)
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func (f *flagCheck) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// TestChangeNotifierRechecksIdleStream guards issue 13 item 12 at the
// interceptor level: a check that changes its mind (here a flag, in the
// policy engine a reload) used to affect an open stream only at its next
// message. The Server now subscribes to checks implementing ChangeNotifier
// and re-checks every open stream on a change, idle ones included (the
// handler below waits in Recv); Close unsubscribes.
func TestChangeNotifierRechecksIdleStream(t *testing.T) {
	fc := &flagCheck{}
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(fc)}})
	if n := fc.subscribers(); n != 1 {
		t.Fatalf("subscribers = %d, want 1", n)
	}
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{})))
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&inboxv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	fc.set() // no message follows: only the notification can end the stream
	_, err = chat.Recv()
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("idle stream after the change: %v, want PermissionDenied", err)
	}
	e.srv.Close()
	if n := fc.subscribers(); n != 0 {
		t.Fatalf("subscribers after Close = %d, want 0", n)
	}
}
