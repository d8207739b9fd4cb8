package policy_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/testidp"
	"github.com/caekit/caekit/policy"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

const (
	idpIssuer   = testidp.Issuer
	idpAudience = testidp.Audience
	idpScope    = testidp.Scope
	idpClient   = testidp.ClientID
	idpSecret   = testidp.ClientSecret
	getMessage  = "/example.inbox.v1.InboxService/GetMessage"
)

// newTestIdP starts the kit's test IdP, issuing client-credentials tokens
// for alice that carry the address the IdP "sees" in ipaddr. It honours the
// nbf and acrs parts of a claims request (unless told to ignore acrs, like
// an IdP whose conditional access does not define the context).
func newTestIdP(t testing.TB, ipaddr string) *testidp.IdP {
	i := testidp.New()
	t.Cleanup(i.Close)
	i.SetClaim("sub", "alice")
	i.SetClaim("oid", "oid-alice")
	i.SetClaim("idtyp", nil)
	i.SetClaim("ipaddr", ipaddr)
	return i
}

// requests returns the claims parameter of each token request so far.
func requests(i *testidp.IdP) []string {
	var out []string
	for _, r := range i.Requests() {
		out = append(out, r.Claims)
	}
	return out
}

// newInbox returns the kit's Inbox, reading the caller from the
// interceptor's claims: GetMessage answers "hello <subject>", Chat echoes.
func newInbox() *testkit.Inbox {
	return &testkit.Inbox{Subject: testkit.ClaimsSubject(interceptor.ClaimsFromContext, func(c *interceptor.Claims) string { return c.Subject })}
}

type e2e struct {
	idp *testidp.IdP
	eng *policy.Engine
	api inboxv1.InboxServiceClient
}

func newValidatorFor(t testing.TB, idp *testidp.IdP) *token.Validator {
	v, err := token.NewValidator(context.Background(), token.WithIssuer(idpIssuer), token.WithAudience(idpAudience),
		token.WithStaticKey(testidp.KID, idp.PublicKey()), token.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// startE2E runs a real gRPC server on 127.0.0.1 with the caekit server
// interceptors and the policy engine, and a client with the caekit client
// interceptors that fetches tokens from the test IdP over HTTP.
func startE2E(t *testing.T, p *policy.Policy, idpSees string) *e2e {
	t.Helper()
	e := &e2e{idp: newTestIdP(t, idpSees), eng: newEngine(t, p, policy.WithClientID("api://inbox"))}
	srv, err := interceptor.New(newValidatorFor(t, e.idp),
		interceptor.WithAuthorizationURI(e.idp.URL()+"/authorize"),
		interceptor.WithChecks(e.eng.Checks()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	gs := grpc.NewServer(srv.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(gs, newInbox())
	src, err := httpsource.New(e.idp.URL()+"/token", httpsource.WithClientCredentials(idpClient, idpSecret))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := client.New(src, client.WithScopes(idpScope), client.WithInsecure(), client.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	conn := testkit.ServeGRPC(t, gs, cli.DialOptions()...)
	t.Cleanup(func() {
		_ = conn.Close()
		_ = cli.Close()
	})
	e.api = inboxv1.NewInboxServiceClient(conn)
	return e
}

func (e *e2e) get(ctx context.Context) (*inboxv1.GetMessageResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return e.api.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "m1"})
}

func e2ePolicy() *policy.Policy {
	return &policy.Policy{
		Locations: []policy.Location{
			{Name: "hq", Trusted: true, Ranges: prefixes("203.0.113.0/24")},
			{Name: "loopback", Ranges: prefixes("127.0.0.0/8", "::1/128")},
		},
		Rules: []policy.Rule{{Methods: []string{"/example.inbox.v1.InboxService/*"}, AllowLocations: []string{"hq"}}},
	}
}

// The IdP sees the client at an hq address, the service sees it at loopback:
// one challenge, one new token, then a plain denial; no loop.
func TestE2ELocationMismatchNoLoop(t *testing.T) {
	e := startE2E(t, e2ePolicy(), "203.0.113.7")
	_, err := e.get(context.Background())
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "127.0.0.1") {
		t.Fatalf("err = %v, want PermissionDenied naming the address", err)
	}
	reqs := requests(e.idp)
	if len(reqs) != 2 || !strings.Contains(reqs[1], `"nbf"`) {
		t.Fatalf("IdP requests = %q, want the initial one and one re-acquisition with nbf", reqs)
	}
	// The next call is denied at once, without another trip to the IdP.
	if _, err := e.get(context.Background()); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("second call: %v", err)
	}
	if n := len(requests(e.idp)); n != 2 {
		t.Fatalf("IdP requests = %d after the second call, want 2", n)
	}

	// The administrator adds the loopback location: the same token now works.
	p := e2ePolicy()
	p.Rules[0].AllowLocations = append(p.Rules[0].AllowLocations, "loopback")
	if err := e.eng.Update(p); err != nil {
		t.Fatal(err)
	}
	resp, err := e.get(context.Background())
	if err != nil || resp.GetBody() != "hello alice" {
		t.Fatalf("after update: %v, %v", resp, err)
	}
}

// The IdP saw the same address the service sees: no challenge at all.
func TestE2ELocationDeniedPlainWhenIdPSawSameAddress(t *testing.T) {
	e := startE2E(t, e2ePolicy(), "127.0.0.1")
	_, err := e.get(context.Background())
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("err = %v", err)
	}
	if n := len(requests(e.idp)); n != 1 {
		t.Fatalf("IdP requests = %d, want 1 (no challenge)", n)
	}
}

func TestE2ETrustedProxy(t *testing.T) {
	withXFF := metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", "198.51.100.1, 203.0.113.9")

	// Loopback is not a trusted proxy: the forged header is ignored.
	e := startE2E(t, e2ePolicy(), "127.0.0.1")
	if _, err := e.get(withXFF); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("forged header believed: %v", err)
	}

	// Loopback is the trusted proxy: the right-most other hop (hq) counts.
	p := e2ePolicy()
	p.ClientIP.TrustedProxies = prefixes("127.0.0.0/8")
	e = startE2E(t, p, "203.0.113.9")
	if _, err := e.get(withXFF); err != nil {
		t.Fatalf("proxied hq caller: %v", err)
	}
	if _, err := e.get(context.Background()); status.Code(err) == codes.OK {
		t.Fatal("the proxy itself admitted without a header")
	}
}

func authContextPolicy() *policy.Policy {
	return &policy.Policy{
		Locations: []policy.Location{{Name: "loopback", Ranges: prefixes("127.0.0.0/8")}},
		Rules: []policy.Rule{
			{Methods: []string{"/example.inbox.v1.InboxService/*"}, AllowLocations: []string{"loopback"}},
			{Methods: []string{getMessage}, AllowLocations: []string{"loopback"}, AuthContext: []string{"c1"}},
		},
	}
}

// Step-up: the client interceptor re-acquires a token with acrs c1 and the
// retry succeeds.
func TestE2EAuthContextStepUp(t *testing.T) {
	e := startE2E(t, authContextPolicy(), "127.0.0.1")
	resp, err := e.get(context.Background())
	if err != nil || resp.GetBody() != "hello alice" {
		t.Fatalf("GetMessage = %v, %v", resp, err)
	}
	reqs := requests(e.idp)
	if len(reqs) != 2 {
		t.Fatalf("IdP requests = %q, want 2", reqs)
	}
	var cr map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(reqs[1]), &cr); err != nil {
		t.Fatal(err)
	}
	if string(cr["access_token"]["acrs"]) != `{"essential":true,"value":"c1"}` || cr["access_token"]["xms_cc"] == nil {
		t.Fatalf("step-up claims = %s", reqs[1])
	}
	// The stepped-up token is cached and keeps working.
	if _, err := e.get(context.Background()); err != nil || len(requests(e.idp)) != 2 {
		t.Fatalf("second call: %v (IdP requests %d)", err, len(requests(e.idp)))
	}
}

// An IdP that does not grant the context: one step-up attempt, then a plain
// denial that says why.
func TestE2EAuthContextNotGranted(t *testing.T) {
	e := startE2E(t, authContextPolicy(), "127.0.0.1")
	e.idp.SetIgnoreACRS(true)
	_, err := e.get(context.Background())
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "still lacks") {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.get(context.Background()); status.Code(err) != codes.PermissionDenied || len(requests(e.idp)) != 2 {
		t.Fatalf("second call: %v (IdP requests %d, want 2)", err, len(requests(e.idp)))
	}
}

// BenchmarkInterceptor measures the whole server interceptor on one unary
// call (token from the verified-token cache, no network), with the policy
// engine's checks and without.
func BenchmarkInterceptor(b *testing.B) {
	idp := newTestIdP(b, "127.0.0.1")
	src, err := httpsource.New(idp.URL()+"/token", httpsource.WithClientCredentials(idpClient, idpSecret))
	if err != nil {
		b.Fatal(err)
	}
	tok, err := src.Token(context.Background(), client.TokenRequest{Scopes: []string{idpScope},
		Claims: `{"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c1"}}}`})
	if err != nil {
		b.Fatal(err)
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok.AccessToken))
	ctx = peerContext(ctx, &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 50000})
	info := &grpc.UnaryServerInfo{FullMethod: getMessage}
	handler := func(ctx context.Context, req any) (any, error) { return req, nil }

	for _, tc := range []struct {
		name string
		opts []interceptor.Option
	}{
		{"policy=off", nil},
		{"policy=on", []interceptor.Option{interceptor.WithChecks(newEngine(b, authContextPolicy()).Checks()...)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv, err := interceptor.New(newValidatorFor(b, idp), tc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			unary := srv.UnaryServerInterceptor()
			if _, err := unary(ctx, "req", info, handler); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := unary(ctx, "req", info, handler); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func peerContext(ctx context.Context, addr net.Addr) context.Context {
	return peer.NewContext(ctx, &peer.Peer{Addr: addr})
}

// TestE2EReloadCutsIdleStream guards issue 13 item 12: a policy reload must
// re-check open streams at once, idle ones included. Before the fix an
// Engine.Update changed nothing for a stream whose handler sat in RecvMsg:
// it went on until its next message (here: until the test's deadline). Now
// the Server subscribes to the Engine's changes (interceptor.ChangeNotifier)
// and the reload ends the stream with the location denial.
func TestE2EReloadCutsIdleStream(t *testing.T) {
	p := &policy.Policy{
		Locations: []policy.Location{{Name: "loopback", Ranges: prefixes("127.0.0.0/8", "::1/128")}},
		Rules:     []policy.Rule{{Methods: []string{"*"}, AllowLocations: []string{"loopback"}}},
	}
	e := startE2E(t, p, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := e.api.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&inboxv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); err != nil || m.GetText() != "hi" {
		t.Fatalf("echo = %v, %v", m, err)
	}
	// The stream is now idle: the handler waits in Recv, the client sends
	// nothing more. The administrator blocks loopback.
	p2 := p.Clone()
	p2.Rules = []policy.Rule{{Methods: []string{"*"}, BlockLocations: []string{"loopback"}}}
	if err := e.eng.Update(p2); err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "blocked location") {
		t.Fatalf("idle stream after the reload: %v, want PermissionDenied from the location policy", err)
	}
}

// TestE2EWatcherReloadCutsIdleStream is TestE2EReloadCutsIdleStream with the
// policy file watcher doing the reload.
func TestE2EWatcherReloadCutsIdleStream(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/policy.yaml"
	allow := "locations:\n  - name: loopback\n    ranges: [127.0.0.0/8]\nrules:\n  - methods: [\"*\"]\n    allow_locations: [loopback]\n"
	block := "locations:\n  - name: loopback\n    ranges: [127.0.0.0/8]\nrules:\n  - methods: [\"*\"]\n    block_locations: [loopback]\n"
	if err := os.WriteFile(path, []byte(allow), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e := startE2E(t, p, "127.0.0.1")
	reloaded := make(chan policy.Reload, 4)
	w, err := policy.Watch(context.Background(), path, e.eng, policy.WithInterval(20*time.Millisecond),
		policy.WithWatchLogger(quiet), policy.WithOnReload(func(r policy.Reload) { reloaded <- r }))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := e.api.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&inboxv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("idle stream after the file changed: %v, want PermissionDenied", err)
	}
	if r := <-reloaded; r.Err != nil {
		t.Fatalf("reload: %v", r.Err)
	}
}
