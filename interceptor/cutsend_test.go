package interceptor_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// sendProbe watches, per stream, the sends that pass through the caekit
// interceptor to gRPC's ServerStream, and the moment the caekit interceptor
// returns: an interceptor chained before it wraps the stream it is given.
type sendProbe struct {
	inflight   atomic.Int32 // sends inside the real ServerStream.SendMsg
	returned   atomic.Bool  // the caekit interceptor has returned
	violations atomic.Int32 // sends in flight at, or started after, that return
}

type probedStream struct {
	grpc.ServerStream
	p *sendProbe
}

func (ps *probedStream) SendMsg(m any) error {
	ps.p.inflight.Add(1)
	if ps.p.returned.Load() {
		ps.p.violations.Add(1)
	}
	err := ps.ServerStream.SendMsg(m)
	ps.p.inflight.Add(-1)
	return err
}

// TestCutDuringSendNeverOverlapsStatus guards issue 13 item 13: when a
// revocation cuts a stream whose handler is sending as fast as it can, the
// caekit interceptor returns (and gRPC writes the status) while the handler
// goroutine may be inside, or about to enter, ServerStream.SendMsg. gRPC
// does not allow a SendMsg to overlap the handler's return. Sends are now
// serialised with the cut: the interceptor waits for a send in flight, and
// once it returns no send reaches the transport. Run under -race: many
// iterations (bounded), each with a handler flooding SendMsg.
func TestCutDuringSendNeverOverlapsStatus(t *testing.T) {
	store := teststore.Memory(t)
	s, err := interceptor.New(newValidator(t), interceptor.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	outer := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		p := &sendProbe{}
		err := h(srv, &probedStream{ServerStream: ss, p: p})
		p.returned.Store(true)
		if p.inflight.Load() != 0 {
			p.violations.Add(1)
		}
		probes <- p
		return err
	}
	flood := func(_ any, ss grpc.ServerStream) error {
		for {
			if err := ss.SendMsg(&inboxv1.WatchInboxResponse{}); err != nil {
				return err
			}
		}
	}
	t.Cleanup(func() { _ = s.Close() }) // last: after the connection is closed and the server stopped
	gs := grpc.NewServer(
		grpc.ChainStreamInterceptor(outer, s.StreamServerInterceptor()),
		grpc.UnknownServiceHandler(flood))
	conn := testkit.ServeBufconn(t, gs)

	const iterations = 200
	for i := range iterations {
		sid := fmt.Sprintf("flood-%d", i)
		ctx, cancel := context.WithCancel(withToken(testCtx(t), mint(t, tok{sid: sid})))
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/flood.v1.Flood/Flood")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SendMsg(&inboxv1.WatchInboxRequest{}); err != nil {
			t.Fatal(err)
		}
		_ = st.CloseSend()
		var m inboxv1.WatchInboxResponse
		for range 1 + i%7 {
			if err := st.RecvMsg(&m); err != nil {
				t.Fatalf("iteration %d: %v", i, err)
			}
		}
		putSession(t, store, sid, revocation.TypeSessionRevoked)
		for err == nil {
			err = st.RecvMsg(&m)
		}
		cancel()
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("iteration %d: stream ended with %v, want the revocation's Unauthenticated", i, err)
		}
		if p := <-probes; p.violations.Load() != 0 {
			t.Fatalf("iteration %d: a SendMsg overlapped or followed the interceptor's return (%d times)", i, p.violations.Load())
		}
	}
}

var probes = make(chan *sendProbe, 1)

// TestCutNotHeldByBlockedSend: the wait for a send in flight is bounded
// (MaxSendFenceWait). A client that stops reading blocks the handler in
// SendMsg (HTTP/2 flow control); a revocation must still end the stream
// without the client reading anything first. With a 64 KiB window and 16
// KiB messages the handler blocks at about its 9th send (grpc-go v1.85), so
// the cut below takes the bounded path (-v logs a cut after ~250 ms); a
// fence without the bound hangs here until the test's deadline.
func TestCutNotHeldByBlockedSend(t *testing.T) {
	store := teststore.Memory(t)
	s, err := interceptor.New(newValidator(t), interceptor.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan error, 1)
	deep := make(chan struct{}) // closed when the handler starts its 8th send
	outer := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		err := h(srv, ss)
		returned <- err
		return err
	}
	flood := func(_ any, ss grpc.ServerStream) error {
		big := &inboxv1.WatchInboxResponse{Body: strings.Repeat("x", 16<<10)}
		for i := 1; ; i++ {
			if i == 8 {
				close(deep)
			}
			if err := ss.SendMsg(big); err != nil {
				return err
			}
		}
	}
	t.Cleanup(func() { _ = s.Close() }) // last: after the connection is closed and the server stopped
	gs := grpc.NewServer(grpc.ChainStreamInterceptor(outer, s.StreamServerInterceptor()), grpc.UnknownServiceHandler(flood))
	conn := testkit.ServeBufconn(t, gs,
		// A fixed 64 KiB window (no BDP growth): the handler's 16 KiB
		// messages soon fill it and the write quota, and it blocks in
		// SendMsg.
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	ctx, cancel := context.WithCancel(withToken(testCtx(t), mint(t, tok{sid: "blocked"})))
	defer cancel()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/flood.v1.Flood/Flood")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&inboxv1.WatchInboxRequest{}); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	select { // the handler is flooding, the client reads nothing: it blocks
	case <-deep:
	case <-testCtx(t).Done():
		t.Fatal("the handler did not start sending")
	}
	start := time.Now()
	putSession(t, store, "blocked", revocation.TypeSessionRevoked)
	select {
	case err := <-returned:
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("interceptor returned %v, want the revocation", err)
		}
		t.Logf("cut after %v (MaxSendFenceWait %v)", time.Since(start), interceptor.MaxSendFenceWait)
	case <-testCtx(t).Done():
		t.Fatal("the cut waited for a send blocked on a client that does not read")
	}
}
