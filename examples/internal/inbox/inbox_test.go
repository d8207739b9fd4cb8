package inbox_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/caekit/caekit/examples/internal/inbox"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T) inboxv1.InboxServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	inbox.New(func(context.Context) string { return "alice" }).Register(s)
	go func() { _ = s.Serve(lis) }()
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); s.Stop() })
	return inboxv1.NewInboxServiceClient(cc)
}

func TestShapes(t *testing.T) {
	c := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	r, err := c.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "7"})
	if err != nil || r.GetSubject() != "alice" || r.GetId() != "7" {
		t.Fatalf("GetMessage = %v, %v", r, err)
	}
	if _, err := c.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: string(make([]byte, 300))}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("long id: %v", err)
	}

	wctx, wcancel := context.WithCancel(ctx)
	w, err := c.WatchInbox(wctx, &inboxv1.WatchInboxRequest{IntervalMs: 10})
	if err != nil {
		t.Fatal(err)
	}
	for want := int64(1); want <= 3; want++ {
		m, err := w.Recv()
		if err != nil || m.GetSeq() != want {
			t.Fatalf("watch %d: %v %v", want, m, err)
		}
	}
	wcancel()
	if _, err := w.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: %v", err)
	}
	bad, _ := c.WatchInbox(ctx, &inboxv1.WatchInboxRequest{IntervalMs: 1})
	if _, err := bad.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("interval 1ms: %v", err)
	}

	ch, err := c.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hi", "there"} {
		if err := ch.Send(&inboxv1.ChatRequest{Text: s}); err != nil {
			t.Fatal(err)
		}
		if m, err := ch.Recv(); err != nil || m.GetText() != s {
			t.Fatalf("chat echo %v %v", m, err)
		}
	}
	_ = ch.CloseSend()
	if _, err := ch.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("chat end: %v", err)
	}

	up, err := c.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := up.Send(&inboxv1.UploadRequest{Data: []byte("abcd")}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := up.CloseAndRecv()
	if err != nil || res.GetCount() != 3 || res.GetBytes() != 12 {
		t.Fatalf("upload %v %v", res, err)
	}
}
