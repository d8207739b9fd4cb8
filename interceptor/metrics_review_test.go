package interceptor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/caekit/caekit/interceptor"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// metricsUnknownEnv starts a server with the inbox service registered and an
// unknown-service handler (as a gRPC proxy has), its metrics read by reader.
func metricsUnknownEnv(t *testing.T) (*obsEnv, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	e := newObsEnv(t, func(s *interceptor.Server) []grpc.ServerOption {
		return append(s.ServerOptions(), grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error { return nil }))
	}, interceptor.WithMeterProvider(mp))
	return e, reader
}

// callStream opens a stream on method with ctx and returns its final error
// (io.EOF when the handler ended cleanly).
func callStream(ctx context.Context, e *obsEnv, method string) error {
	st, err := e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	_ = st.CloseSend()
	return st.RecvMsg(new(inboxv1.GetMessageResponse))
}

// TestMetricsJunkMethodsFromUnauthenticatedCallers guards issue 13 item 7:
// unauthenticated callers sending junk method names through an unknown-
// service handler used to fill the MaxMetricMethods table, after which a
// real method reported as MethodOther. Now a name is recorded only for
// registered methods or after authentication: the junk lands in MethodOther
// and every real method keeps its name.
func TestMetricsJunkMethodsFromUnauthenticatedCallers(t *testing.T) {
	e, reader := metricsUnknownEnv(t)
	const junk = interceptor.MaxMetricMethods + 8
	noToken := testCtx(t)
	badToken := withToken(testCtx(t), "not.a.token")
	for i := range junk {
		ctx := noToken
		if i%2 == 1 {
			ctx = badToken
		}
		if err := callStream(ctx, e, fmt.Sprintf("/junk.Svc/M%d", i)); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("junk call %d: %v, want Unauthenticated", i, err)
		}
	}
	// Real methods, unauthenticated: a registered stream and a unary call.
	if err := callStream(noToken, e, "/example.inbox.v1.InboxService/Chat"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Chat without a token: %v", err)
	}
	if err := e.get(noToken); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("GetMessage without a token: %v", err)
	}
	// A method served by the unknown-service handler, called with a valid
	// token, is recorded under its name.
	if err := callStream(withToken(testCtx(t), mint(t, tok{})), e, "/proxy.Svc/Real"); !errors.Is(err, io.EOF) {
		t.Fatalf("proxied call with a token: %v", err)
	}

	dec := sums(t, collect(t, reader)[interceptor.MetricDecisions])
	for k := range dec {
		if strings.Contains(k, "junk.Svc") {
			t.Fatalf("junk method name recorded: %s", k)
		}
	}
	if got := dec["caekit.outcome=deny,caekit.reason=TOKEN_INVALID,rpc.method="+interceptor.MethodOther]; got != junk {
		t.Errorf("junk denials under %s = %d, want %d (series: %v)", interceptor.MethodOther, got, junk, dec)
	}
	for _, want := range []string{
		"caekit.outcome=deny,caekit.reason=TOKEN_INVALID,rpc.method=example.inbox.v1.InboxService/Chat",
		"caekit.outcome=deny,caekit.reason=TOKEN_INVALID,rpc.method=" + getMethod,
		"caekit.outcome=allow,rpc.method=proxy.Svc/Real",
	} {
		if dec[want] != 1 {
			t.Errorf("%s = %d, want 1 (series: %v)", want, dec[want], dec)
		}
	}
}

// TestMetricsRegisteredMethodNeverOther guards the other half of issue 13
// item 7: even once authenticated callers have filled the table with
// MaxMetricMethods names served by the unknown-service handler, a registered
// method still reports its own name, never MethodOther.
func TestMetricsRegisteredMethodNeverOther(t *testing.T) {
	e, reader := metricsUnknownEnv(t)
	ctx := withToken(testCtx(t), mint(t, tok{}))
	for i := range interceptor.MaxMetricMethods + 1 {
		if err := callStream(ctx, e, fmt.Sprintf("/proxy.Svc/M%d", i)); !errors.Is(err, io.EOF) {
			t.Fatalf("proxied call %d: %v", i, err)
		}
	}
	chat := e.openChat(t, mint(t, tok{}))
	_ = chat.CloseSend()
	if err := e.get(ctx); err != nil {
		t.Fatal(err)
	}
	dec := sums(t, collect(t, reader)[interceptor.MetricDecisions])
	for _, want := range []string{
		"caekit.outcome=allow,rpc.method=example.inbox.v1.InboxService/Chat",
		"caekit.outcome=allow,rpc.method=" + getMethod,
		"caekit.outcome=allow,rpc.method=" + interceptor.MethodOther,
	} {
		if dec[want] != 1 {
			t.Errorf("%s = %d, want 1", want, dec[want])
		}
	}
}

// TestMetricsRegisterMethods: the streaming methods of a service registered
// with a nil implementation reach the interceptor with a nil srv, like calls
// to an unknown-service handler, so unauthenticated calls to them count as
// MethodOther, unless Server.RegisterMethods names them from the gRPC
// server's service info.
func TestMetricsRegisterMethods(t *testing.T) {
	for _, register := range []bool{false, true} {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		s, err := interceptor.New(newValidator(t), interceptor.WithMeterProvider(mp))
		if err != nil {
			t.Fatal(err)
		}
		gs := grpc.NewServer(s.ServerOptions()...)
		gs.RegisterService(&inboxv1.InboxService_ServiceDesc, nil) // never reached: every call below is denied
		if register {
			s.RegisterMethods(gs)
		}
		lis := bufconn.Listen(1 << 20)
		go func() { _ = gs.Serve(lis) }()
		conn, err := grpc.NewClient("passthrough:///bufnet",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		e := &obsEnv{conn: conn}
		if err := callStream(testCtx(t), e, "/example.inbox.v1.InboxService/Chat"); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("Chat without a token: %v", err)
		}
		dec := sums(t, collect(t, reader)[interceptor.MetricDecisions])
		_ = conn.Close()
		gs.Stop()
		s.Close()
		_ = mp.Shutdown(context.Background())
		want := interceptor.MethodOther
		if register {
			want = "example.inbox.v1.InboxService/Chat"
		}
		if got := dec["caekit.outcome=deny,caekit.reason=TOKEN_INVALID,rpc.method="+want]; got != 1 {
			t.Errorf("RegisterMethods=%v: series %v, want one denial under %s", register, dec, want)
		}
	}
}
