package interceptor_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/token"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

type exampleInbox struct {
	inboxv1.UnimplementedInboxServiceServer
}

func (exampleInbox) GetMessage(ctx context.Context, r *inboxv1.GetMessageRequest) (*inboxv1.GetMessageResponse, error) {
	c, _ := interceptor.ClaimsFromContext(ctx)
	return &inboxv1.GetMessageResponse{Id: r.GetId(), Subject: c.Subject}, nil
}

// A server protected by CAE with a static signing key: a call succeeds, a
// password change at the identity provider is recorded in the store, and the
// same token is then answered with a claims challenge in the
// www-authenticate trailer.
func Example() {
	// Fixed clocks keep the output stable; real servers use the defaults.
	now := func() time.Time { return time.Unix(1604106711, 0) } //datelint:ok Entra's documented event time, printed by the example; the clock is injected
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	v, err := token.NewValidator(context.Background(),
		token.WithIssuer("https://login.example/t1/v2.0"),
		token.WithAudience("api://inbox"),
		token.WithStaticKey("k1", &key.PublicKey),
		token.WithClock(now))
	if err != nil {
		panic(err)
	}
	defer v.Close()
	store, err := revocation.NewMemory(revocation.WithClock(now))
	if err != nil {
		panic(err)
	}
	cae, err := interceptor.New(v,
		interceptor.WithStore(store),
		interceptor.WithAuthorizationURI("https://login.example/authorize"),
		interceptor.WithExempt(interceptor.HealthAndReflection()),
		interceptor.WithClock(now))
	if err != nil {
		panic(err)
	}
	defer cae.Close()

	srv := grpc.NewServer(cae.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(srv, exampleInbox{})
	lis := bufconn.Listen(1 << 16)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///inbox",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := inboxv1.NewInboxServiceClient(conn)

	// A CAE-capable client's token (xms_cc: cp1), issued a minute ago.
	j := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://login.example/t1/v2.0", "aud": "api://inbox", "sub": "alice",
		"iat": now().Add(-time.Minute).Unix(), "exp": now().Add(time.Hour).Unix(), "xms_cc": []string{"cp1"},
	})
	j.Header["kid"] = "k1"
	raw, _ := j.SignedString(key)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+raw)

	resp, err := client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"})
	fmt.Println(resp.GetSubject(), err)

	_ = store.Put(context.Background(), revocation.Event{
		Type:    revocation.TypePasswordChanged,
		Subject: revocation.IssuerSubjectKey("https://login.example/t1/v2.0", "alice"),
		Time:    time.Unix(1604106651, 0), //datelint:ok Entra's documented event time, printed; the store's clock is injected
	})
	// The challenge asks for nbf 1604106652, the second after the event:
	// a token issued in the event's own second would still be revoked.
	var trailer metadata.MD
	_, err = client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}, grpc.Trailer(&trailer))
	fmt.Println(status.Code(err))
	fmt.Println(trailer.Get("www-authenticate")[0])
	// Output:
	// alice <nil>
	// Unauthenticated
	// Bearer realm="", authorization_uri="https://login.example/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNjA0MTA2NjUyIn19fQ=="
}

// Metrics go to any OpenTelemetry MeterProvider (here the SDK with a manual
// reader; in production, one with a Prometheus or OTLP exporter), and an
// audit hook sees every denial, with the token's hash but never the token.
func Example_observability() {
	now := func() time.Time { return time.Unix(1604106711, 0) } //datelint:ok Entra's documented event time, printed by the example; the clock is injected
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v, err := token.NewValidator(context.Background(),
		token.WithIssuer("https://login.example/t1/v2.0"), token.WithAudience("api://inbox"),
		token.WithStaticKey("k1", &key.PublicKey), token.WithClock(now))
	if err != nil {
		panic(err)
	}
	defer v.Close()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	audit := make(chan interceptor.AuditRecord, 16) // hand records off; never block the call

	store, err := revocation.NewMemory(revocation.WithClock(now))
	if err != nil {
		panic(err)
	}
	cae, err := interceptor.New(v,
		interceptor.WithStore(store),
		interceptor.WithClock(now),
		interceptor.WithMeterProvider(mp),
		interceptor.WithAuditHook(func(_ context.Context, r interceptor.AuditRecord) {
			select {
			case audit <- r:
			default: // full: drop rather than stall the caller (count it in production)
			}
		}))
	if err != nil {
		panic(err)
	}
	defer cae.Close()
	srv := grpc.NewServer(cae.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(srv, exampleInbox{})
	lis := bufconn.Listen(1 << 16)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///inbox",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := inboxv1.NewInboxServiceClient(conn)

	j := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://login.example/t1/v2.0", "aud": "api://inbox", "sub": "alice", "sid": "session-1",
		"iat": now().Add(-time.Minute).Unix(), "exp": now().Add(time.Hour).Unix(),
	})
	j.Header["kid"] = "k1"
	raw, _ := j.SignedString(key)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+raw)

	_, _ = client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"})
	_ = store.Put(context.Background(), revocation.Event{ID: "evt-42", Type: revocation.TypeSessionRevoked,
		Subject: revocation.SessionKey("https://login.example/t1/v2.0", "session-1"), Time: now()})
	_, _ = client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"})

	r := <-audit
	fmt.Println("audit:", r.Phase, r.Method, r.Subject, r.ReasonName(), r.EventID, r.TokenHash == token.Hash(raw))

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != interceptor.MetricDecisions {
				continue
			}
			var lines []string
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				outcome, _ := dp.Attributes.Value(interceptor.AttrOutcome)
				reason, _ := dp.Attributes.Value(interceptor.AttrReason)
				lines = append(lines, fmt.Sprintf("%s %s %d", outcome.AsString(), reason.AsString(), dp.Value))
			}
			sort.Strings(lines)
			fmt.Println(strings.Join(lines, "\n"))
		}
	}
	// Output:
	// audit: unary /example.inbox.v1.InboxService/GetMessage alice SESSION_REVOKED evt-42 true
	// allow  1
	// deny SESSION_REVOKED 1
}
