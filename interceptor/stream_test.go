package interceptor_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/internal/testkit/teststore"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// cutBudget is a generous bound for an event to end a stream in tests; the
// real latency is measured by BenchmarkStreamCutLatency.
const cutBudget = time.Second

func putSession(t testing.TB, st revocation.Store, sid string, typ revocation.Type) {
	t.Helper()
	if err := st.Put(context.Background(), revocation.Event{ID: "evt-" + sid, Type: typ, Subject: revocation.SessionKey(testIssuer, sid), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func waitUnwatched(t testing.TB, s *interceptor.Server) { waitWatched(t, s, 0) }

func waitWatched(t testing.TB, s *interceptor.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for interceptor.Watching(s) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams watched, want %d", interceptor.Watching(s), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// The bidi handler sits in Recv, ignoring its context; the event still ends
// the RPC at once with the full challenge, and the handler then returns.
func TestStreamCutWhileHandlerBlockedInRecv(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{sid: "s-chat"})))
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&inboxv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	// The handler is now back in Recv with nothing to receive.
	start := time.Now()
	putSession(t, e.store, "s-chat", revocation.TypeUserDisabled)
	_, err = chat.Recv()
	elapsed := time.Since(start)
	d := readDenial(t, err, nil, chat.Trailer())
	assertChallenge(t, d, challenge.ErrorInsufficientClaims, caev1.Reason_REASON_USER_DISABLED)
	if d.cc.GetEventId() != "evt-s-chat" {
		t.Fatalf("event id %q", d.cc.GetEventId())
	}
	if elapsed > cutBudget {
		t.Fatalf("stream ended %v after the event", elapsed)
	}
	e.waitReturned(t, "chat")
	waitUnwatched(t, e.srv)
}

func TestServerStreamCut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	w, err := e.client.WatchInbox(withToken(testCtx(t), mint(t, tok{sid: "s-watch"})), &inboxv1.WatchInboxRequest{IntervalMs: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := w.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	putSession(t, e.store, "s-watch", revocation.TypePasswordChanged)
	for {
		_, err = w.Recv()
		if err != nil {
			break
		}
	}
	assertChallenge(t, readDenial(t, err, nil, w.Trailer()), challenge.ErrorInsufficientClaims, caev1.Reason_REASON_PASSWORD_CHANGED)
	e.waitReturned(t, "watch")
	if e.inbox.CtxDone.Load() == 0 {
		t.Fatal("the handler's context was not cancelled")
	}
	waitUnwatched(t, e.srv)
}

func TestClientStreamCut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	up, err := e.client.Upload(withToken(testCtx(t), mint(t, tok{sid: "s-up"})))
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Send(&inboxv1.UploadRequest{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitWatched(t, e.srv, 1) // the server side is open and in Recv
	putSession(t, e.store, "s-up", revocation.TypeDeviceNotCompliant)
	e.waitReturned(t, "upload") // ended by the event alone, the client never closed
	_, err = up.CloseAndRecv()
	assertChallenge(t, readDenial(t, err, nil, up.Trailer()), challenge.ErrorInsufficientClaims, caev1.Reason_REASON_DEVICE_NOT_COMPLIANT)
	waitUnwatched(t, e.srv)
}

func TestStreamOfNonCapableClientCutWithoutClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{sid: "s-nocap-stream", noCaps: true})))
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&inboxv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	putSession(t, e.store, "s-nocap-stream", revocation.TypeSessionRevoked)
	_, err = chat.Recv()
	assertChallenge(t, readDenial(t, err, nil, chat.Trailer()), challenge.ErrorInvalidToken, caev1.Reason_REASON_SESSION_REVOKED)
	e.waitReturned(t, "chat")
}

func TestEventForOtherSubjectLeavesStreamAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{sid: "s-mine"})))
	if err != nil {
		t.Fatal(err)
	}
	putSession(t, e.store, "s-someone-else", revocation.TypeUserDisabled)
	// Also an old event for this very session: it predates the token.
	if err := e.store.Put(context.Background(), revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.SessionKey(testIssuer, "s-mine"), Time: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b"} {
		if err := chat.Send(&inboxv1.ChatRequest{Text: m}); err != nil {
			t.Fatal(err)
		}
		if r, err := chat.Recv(); err != nil || r.GetText() != m {
			t.Fatalf("echo %v %v", r, err)
		}
	}
	if err := chat.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	waitUnwatched(t, e.srv)
}

func TestStreamEndsAtTokenExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second) // 1-2 s away
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{sid: "s-exp", exp: exp})))
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&inboxv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	_, err = chat.Recv()
	if late := time.Since(exp); late < 0 || late > cutBudget {
		t.Fatalf("stream ended %v after exp", late)
	}
	assertChallenge(t, readDenial(t, err, nil, chat.Trailer()), challenge.ErrorInvalidToken, caev1.Reason_REASON_TOKEN_EXPIRED)
	e.waitReturned(t, "chat")
}

// A check that starts denying is caught on the next message, without any event.
func TestStreamRecheckedOnEachMessage(t *testing.T) {
	t.Parallel()
	var deny atomic.Bool
	policy := interceptor.CheckFunc(func(context.Context, *interceptor.Request) *interceptor.Denial {
		if deny.Load() {
			return &interceptor.Denial{Reason: caev1.Reason_REASON_POLICY, Description: "policy changed"}
		}
		return nil
	})
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(policy)}})
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{})))
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&inboxv1.ChatRequest{Text: "ok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	deny.Store(true)
	if err := chat.Send(&inboxv1.ChatRequest{Text: "refused"}); err != nil {
		t.Fatal(err)
	}
	r, err := chat.Recv()
	if err == nil {
		t.Fatalf("message %q echoed after the check denied", r.GetText())
	}
	d := readDenial(t, err, nil, chat.Trailer())
	assertChallenge(t, d, challenge.ErrorInvalidToken, caev1.Reason_REASON_POLICY)
	if d.msg != "policy changed" {
		t.Fatalf("message %q", d.msg)
	}
	e.waitReturned(t, "chat")
}

func TestStreamRecheckIntervalCatchesStaleStore(t *testing.T) {
	t.Parallel()
	st := &unhealthyStore{Memory: teststore.Memory(t)}
	e := newEnv(t, envOpt{store: st, opts: []interceptor.Option{interceptor.WithStreamRecheckInterval(20 * time.Millisecond)}})
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{})))
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&inboxv1.ChatRequest{Text: "ok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	st.stale.Store(true)
	_, err = chat.Recv()
	d := readDenial(t, err, nil, chat.Trailer())
	if d.code != codes.Unavailable || d.info.GetReason() != "STATE_UNAVAILABLE" || len(d.wwwAuth) != 0 {
		t.Fatalf("%+v", d)
	}
	e.waitReturned(t, "chat")
}

func TestCloseEndsOpenStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{})))
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&inboxv1.ChatRequest{Text: "ok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	e.srv.Close()
	_, err = chat.Recv()
	if d := readDenial(t, err, nil, chat.Trailer()); d.code != codes.Unavailable {
		t.Fatalf("%+v", d)
	}
	e.waitReturned(t, "chat")
	waitUnwatched(t, e.srv)
}

// Client cancellation ends the stream as without the interceptor, and
// nothing stays watched.
func TestStreamClientCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	ctx, cancel := context.WithCancel(withToken(testCtx(t), mint(t, tok{sid: "s-cancel"})))
	chat, err := e.client.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&inboxv1.ChatRequest{Text: "ok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	if interceptor.Watching(e.srv) != 1 {
		t.Fatalf("watching %d streams, want 1", interceptor.Watching(e.srv))
	}
	cancel()
	e.waitReturned(t, "chat")
	waitUnwatched(t, e.srv)
}

type panickyInbox struct {
	inboxv1.UnimplementedInboxServiceServer
}

func (panickyInbox) Chat(grpc.BidiStreamingServer[inboxv1.ChatRequest, inboxv1.ChatResponse]) error {
	panic("handler bug")
}

// A handler panic surfaces on the interceptor's goroutine, where a recovery
// interceptor chained before ours can catch it.
func TestStreamHandlerPanicReachesOuterRecovery(t *testing.T) {
	t.Parallel()
	s, err := interceptor.New(newValidator(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var recovered atomic.Value
	recovery := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				recovered.Store(p)
				err = status.Error(codes.Internal, "recovered")
			}
		}()
		return h(srv, ss)
	}
	lis := bufconn.Listen(1 << 16)
	gs := grpc.NewServer(grpc.ChainStreamInterceptor(recovery, s.StreamServerInterceptor()))
	inboxv1.RegisterInboxServiceServer(gs, panickyInbox{})
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	chat, err := inboxv1.NewInboxServiceClient(conn).Chat(withToken(testCtx(t), mint(t, tok{})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); status.Code(err) != codes.Internal || recovered.Load() != "handler bug" {
		t.Fatalf("err %v, recovered %v", err, recovered.Load())
	}
}
