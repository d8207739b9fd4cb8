package testkit_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/internal/testkit"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// subjectFromMetadata stands in for interceptor.ClaimsFromContext: the
// caller's subject is the "sub" metadata, if any.
func subjectFromMetadata(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("sub"); len(v) > 0 {
		return v[0], true
	}
	return "", false
}

// serveInbox serves in over bufconn and returns a client for it.
func serveInbox(t *testing.T, in *testkit.Inbox) inboxv1.InboxServiceClient {
	t.Helper()
	gs := grpc.NewServer()
	inboxv1.RegisterInboxServiceServer(gs, in)
	return inboxv1.NewInboxServiceClient(testkit.ServeBufconn(t, gs))
}

func TestInboxGetMessage(t *testing.T) {
	in := testkit.NewInbox()
	in.Subject = subjectFromMetadata
	c := serveInbox(t, in)
	ctx := context.Background()
	resp, err := c.GetMessage(metadata.AppendToOutgoingContext(ctx, "sub", "alice"), &inboxv1.GetMessageRequest{Id: "7"})
	if err != nil || resp.GetId() != "7" || resp.GetBody() != "hello alice" || resp.GetSubject() != "alice" {
		t.Fatalf("known caller: %v, %v", resp, err)
	}
	resp, err = c.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "8"})
	if err != nil || resp.GetBody() != "hello" || resp.GetSubject() != testkit.NoSubject {
		t.Fatalf("unknown caller: %v, %v", resp, err)
	}
	in.RequireSubject = true
	if _, err := c.GetMessage(ctx, &inboxv1.GetMessageRequest{}); status.Code(err) != codes.Internal {
		t.Fatalf("RequireSubject without a caller: %v, want Internal", err)
	}
}

func TestInboxStreamsEchoCountAndReportTheirReturn(t *testing.T) {
	in := testkit.NewInbox()
	c := serveInbox(t, in)
	ctx := context.Background()

	// Chat echoes, and ends cleanly when the client closes its side.
	chat, err := c.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&inboxv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if m, err := chat.Recv(); err != nil || m.GetText() != "hi" {
		t.Fatalf("chat echo: %v, %v", m, err)
	}
	if err := chat.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("chat after CloseSend: %v, want EOF", err)
	}
	if got := <-in.Returned; got != "chat" {
		t.Fatalf("returned %q, want chat", got)
	}

	// Upload counts messages and bytes, in the reply and in Uploaded.
	up, err := c.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"ab", "cde"} {
		if err := up.Send(&inboxv1.UploadRequest{Data: []byte(d)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := up.CloseAndRecv()
	if err != nil || r.GetCount() != 2 || r.GetBytes() != 5 || in.Uploaded.Load() != 2 {
		t.Fatalf("upload: %v, %v, Uploaded=%d", r, err, in.Uploaded.Load())
	}
	if got := <-in.Returned; got != "upload" {
		t.Fatalf("returned %q, want upload", got)
	}

	// WatchInbox numbers its messages; a cancelled stream's handler returns
	// with its context done.
	wctx, cancel := context.WithCancel(ctx)
	w, err := c.WatchInbox(wctx, &inboxv1.WatchInboxRequest{IntervalMs: 1})
	if err != nil {
		t.Fatal(err)
	}
	for want := int64(1); want <= 3; want++ {
		m, err := w.Recv()
		if err != nil || m.GetSeq() != want {
			t.Fatalf("watch message %d: %v, %v", want, m, err)
		}
	}
	cancel()
	if got := <-in.Returned; got != "watch" {
		t.Fatalf("returned %q, want watch", got)
	}
	if in.CtxDone.Load() != 1 {
		t.Fatalf("CtxDone = %d, want 1 (only the cancelled watch)", in.CtxDone.Load())
	}
}

// WatchEvery applies when the request names no interval; the ticker must not
// be given zero (time.NewTicker panics on it).
func TestInboxWatchWithoutInterval(t *testing.T) {
	for _, every := range []int{0, 1} {
		in := &testkit.Inbox{}
		if every > 0 {
			in.WatchEvery = time.Millisecond
		}
		c := serveInbox(t, in)
		ctx, cancel := context.WithCancel(context.Background())
		w, err := c.WatchInbox(ctx, &inboxv1.WatchInboxRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := w.Recv(); err != nil || m.GetSeq() != 1 {
			t.Fatalf("WatchEvery=%d: %v, %v", every, m, err)
		}
		cancel()
	}
}

type claims struct{ sub string }

// ClaimsSubject reads the subject only from claims that are there.
func TestClaimsSubject(t *testing.T) {
	have := true
	from := func(context.Context) (*claims, bool) {
		if have {
			return &claims{sub: "alice"}, true
		}
		return nil, false // reading sub from nil claims would panic
	}
	subject := testkit.ClaimsSubject(from, func(c *claims) string { return c.sub })
	if s, ok := subject(context.Background()); !ok || s != "alice" {
		t.Fatalf("with claims: %q, %v", s, ok)
	}
	have = false
	if s, ok := subject(context.Background()); ok || s != "" {
		t.Fatalf("without claims: %q, %v", s, ok)
	}
}

// ServeGRPC serves over real loopback TCP; the dial options given are used.
func TestServeGRPC(t *testing.T) {
	gs := grpc.NewServer()
	inboxv1.RegisterInboxServiceServer(gs, &testkit.Inbox{})
	var intercepted bool
	conn := testkit.ServeGRPC(t, gs, grpc.WithUnaryInterceptor(func(ctx context.Context, m string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, o ...grpc.CallOption) error {
		intercepted = true
		return inv(ctx, m, req, reply, cc, o...)
	}))
	if !strings.HasPrefix(conn.Target(), "127.0.0.1:") {
		t.Fatalf("target %q is not loopback TCP", conn.Target())
	}
	resp, err := inboxv1.NewInboxServiceClient(conn).GetMessage(context.Background(), &inboxv1.GetMessageRequest{Id: "1"})
	if err != nil || resp.GetId() != "1" || !intercepted {
		t.Fatalf("call: %v, %v, dial option used: %v", resp, err, intercepted)
	}
}

// ServeBufconn serves in memory; the dial options given are used.
func TestServeBufconn(t *testing.T) {
	gs := grpc.NewServer()
	inboxv1.RegisterInboxServiceServer(gs, &testkit.Inbox{})
	conn := testkit.ServeBufconn(t, gs, grpc.WithUserAgent("kit-test"))
	if conn.Target() != "passthrough:///bufnet" {
		t.Fatalf("target %q is not bufconn", conn.Target())
	}
	resp, err := inboxv1.NewInboxServiceClient(conn).GetMessage(context.Background(), &inboxv1.GetMessageRequest{Id: "2"})
	if err != nil || resp.GetId() != "2" {
		t.Fatalf("call: %v, %v", resp, err)
	}
}
