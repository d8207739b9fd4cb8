package idp_test

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/policy"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// TestStepUpEndToEndWithDevIdP: the dev IdP, caekit's gRPC server
// interceptor with an RFC 9470 policy rule, and caekit's client with
// httpsource (password grant, then refresh tokens), over real HTTP and
// gRPC on loopback. The first token (acr ACRPassword) is challenged with
// insufficient_user_authentication; the client asks the IdP with
// acr_values and max_age; the dev IdP steps the session up; the single
// retry passes, and later calls reuse the stepped-up token.
func TestStepUpEndToEndWithDevIdP(t *testing.T) {
	ctx := testContext(t)
	p := start(t)
	v, err := token.NewValidator(ctx, token.WithIssuer(p.Issuer()), token.WithAudience(p.Audience()),
		token.WithDiscovery(p.Issuer()), token.WithInsecureHTTP(), token.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	eng, err := policy.NewEngine(&policy.Policy{Rules: []policy.Rule{{
		Methods: []string{"/example.inbox.v1.InboxService/GetMessage"}, ACRValues: []string{"urn:example:mfa"}, MaxAge: 10 * time.Minute,
	}}}, policy.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := interceptor.New(v, interceptor.WithChecks(eng.Checks()...), interceptor.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	gs := grpc.NewServer(srv.ServerOptions()...)
	var mu sync.Mutex
	var steps []string
	inboxv1.RegisterInboxServiceServer(gs, &testkit.Inbox{Subject: testkit.ClaimsSubject(interceptor.ClaimsFromContext, func(c *interceptor.Claims) string {
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, c.ACR)
		return c.Subject
	})})
	src, err := httpsource.New(p.TokenURL(), httpsource.WithPassword(idp.DefaultPublicClientID, "", "alice", idp.Password))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := client.New(src, client.WithScopes(p.Audience()+"/.default"), client.WithInsecure(), client.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	conn := testkit.ServeGRPC(t, gs, cli.DialOptions()...)
	t.Cleanup(func() { _ = conn.Close(); _ = cli.Close() })
	api := inboxv1.NewInboxServiceClient(conn)
	for i := range 2 {
		if _, err := api.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "m1"}); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(steps) != 2 || steps[0] != "urn:example:mfa" || steps[1] != "urn:example:mfa" {
		t.Fatalf("handler saw acr %q, want the stepped-up acr on both calls", steps)
	}
}
