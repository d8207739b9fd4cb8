package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/examples/internal/server"
	"github.com/caekit/caekit/internal/testkit"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startIdP(t *testing.T) *idp.IdP {
	t.Helper()
	p, err := idp.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func start(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := server.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func token(t *testing.T, p *idp.IdP, user string) string {
	t.Helper()
	resp, err := http.PostForm(p.TokenURL(), url.Values{"grant_type": {"password"}, "username": {user}, "password": {idp.Password},
		"claims": {`{"access_token":{"xms_cc":{"values":["cp1"]}}}`}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr idp.TokenResponse
	if err := jsonDecode(resp, &tr); err != nil {
		t.Fatal(err)
	}
	return tr.AccessToken
}

func TestServerAuthHealthAndDecisionLog(t *testing.T) {
	p := startIdP(t)
	var logs testkit.LogBuffer
	s := start(t, server.Config{
		Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0", Issuer: p.Issuer(), Audience: p.Audience(),
		EventsAuth: "Bearer push", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	cc := dial(t, s.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Health and reflection need no token.
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	rs, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	lr, err := rs.Recv()
	if err != nil || !strings.Contains(lr.String(), "example.inbox.v1.InboxService") {
		t.Fatalf("reflection: %v %v", lr, err)
	}
	_ = rs.CloseSend()

	inbox := inboxv1.NewInboxServiceClient(cc)
	if _, err := inbox.GetMessage(ctx, &inboxv1.GetMessageRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	tok := token(t, p, "carol")
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	r, err := inbox.GetMessage(actx, &inboxv1.GetMessageRequest{Id: "9"})
	if err != nil || r.GetSubject() != "carol" {
		t.Fatalf("with token: %v %v", r, err)
	}

	// A push without the configured Authorization is refused.
	resp, err := http.Post(s.EventsURL(), "application/secevent+jwt", strings.NewReader("x.y.z"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("unauthenticated push: %d", resp.StatusCode)
	}

	sub, _ := p.Subject("carol")
	l := logs.String()
	for _, want := range []string{
		"msg=decision method=/example.inbox.v1.InboxService/GetMessage subject=- outcome=deny reason=TOKEN_INVALID code=Unauthenticated",
		"msg=decision method=/example.inbox.v1.InboxService/GetMessage subject=" + sub + " outcome=allow code=OK",
	} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	if strings.Contains(l, tok) || strings.Contains(l, tok[:40]) {
		t.Error("the token was logged")
	}
}

func TestServerMetrics(t *testing.T) {
	p := startIdP(t)
	s := start(t, server.Config{
		Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0", Issuer: p.Issuer(), Audience: p.Audience(),
		EventsAuth: "Bearer push", Metrics: true, Logger: slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inbox := inboxv1.NewInboxServiceClient(dial(t, s.Addr()))
	if _, err := inbox.GetMessage(ctx, &inboxv1.GetMessageRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token(t, p, "carol"))
	if _, err := inbox.GetMessage(actx, &inboxv1.GetMessageRequest{}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.MetricsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`caekit_server_decisions_total{caekit_outcome="allow",otel_scope_name=`,
		`caekit_reason="TOKEN_INVALID"`,
		`caekit_revocation_store_healthy`,
		`rpc_server_call_duration_seconds_count{`, // the same gRPC server metrics as the -no-auth baseline
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
}

func TestServerNoAuth(t *testing.T) {
	s := start(t, server.Config{Addr: "127.0.0.1:0", NoAuth: true, Logger: slog.New(slog.DiscardHandler)})
	if s.EventsURL() != "" || s.Store() != nil {
		t.Fatal("NoAuth server has an events endpoint or a store")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := inboxv1.NewInboxServiceClient(dial(t, s.Addr())).GetMessage(ctx, &inboxv1.GetMessageRequest{})
	if err != nil || r.GetSubject() != "" {
		t.Fatalf("%v %v", r, err)
	}
}

func TestServerBadConfig(t *testing.T) {
	p := startIdP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name, cfg := range map[string]server.Config{
		"store":  {Store: "postgres://x", Issuer: p.Issuer()},
		"issuer": {Issuer: "http://127.0.0.1:1"},
		"policy": {Issuer: p.Issuer(), PolicyFile: "/nonexistent/policy.yaml"},
	} {
		cfg.Addr, cfg.EventsAddr, cfg.Logger = "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler)
		if s, err := server.Start(ctx, cfg); err == nil {
			_ = s.Close()
			t.Errorf("%s: Start accepted a bad configuration", name)
		}
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
