package policy_test

// Tests for issue 13 item 2 (step-up lock-out): the challenge memory is
// cleared for (rule, subject) as soon as the subject passes the rule, the
// plain denial is kept for a token first seen within a short window after
// the challenge (and of the challenged session, when tokens carry a sid),
// and the client keeps the step-up claims on its proactive refreshes.

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
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
	// Claims requests as the caekit client sends them: the cp1 capability
	// (Entra's CAE capability, https://learn.microsoft.com/entra/identity-platform/claims-challenge),
	// plus the auth context of a step-up challenge.
	baseClaims    = `{"access_token":{"xms_cc":{"values":["cp1"]}}}`
	steppedClaims = `{"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c1"}}}`
)

// fakeClock is the server interceptor's clock: it starts at the wall clock
// (the test IdP stamps tokens with it) and only moves when the test says.
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// rawEnv is a real gRPC server on loopback with the caekit interceptor and a
// policy engine, called by a plain gRPC client that attaches the tokens the
// test chooses (fetched from the test IdP over HTTP).
type rawEnv struct {
	idp   *testidp.IdP
	eng   *policy.Engine
	src   *httpsource.Source
	api   inboxv1.InboxServiceClient
	clock *fakeClock
}

func startRaw(t *testing.T, p *policy.Policy, idpSees string, opts ...policy.Option) *rawEnv {
	t.Helper()
	e := &rawEnv{idp: newTestIdP(t, idpSees), clock: &fakeClock{}}
	e.eng = newEngine(t, p, opts...)
	srv, err := interceptor.New(newValidatorFor(t, e.idp), interceptor.WithClock(e.clock.now),
		interceptor.WithChecks(e.eng.Checks()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	gs := grpc.NewServer(srv.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(gs, newInbox())
	conn := testkit.ServeGRPC(t, gs)
	e.api = inboxv1.NewInboxServiceClient(conn)
	if e.src, err = httpsource.New(e.idp.URL()+"/token", httpsource.WithClientCredentials(idpClient, idpSecret)); err != nil {
		t.Fatal(err)
	}
	return e
}

// token fetches a new token for the claims request.
func (e *rawEnv) token(t *testing.T, claims string) string {
	t.Helper()
	tok, err := e.src.Token(context.Background(), client.TokenRequest{Scopes: []string{idpScope}, Claims: claims})
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// outcome is what a call got: "ok", "challenge" (Unauthenticated with an
// insufficient_claims www-authenticate) or "denied" (plain PermissionDenied).
func (e *rawEnv) call(t *testing.T, tok, xff string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	if xff != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", xff)
	}
	var trl metadata.MD
	_, err := e.api.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "m1"}, grpc.Trailer(&trl))
	switch {
	case err == nil:
		return "ok"
	case status.Code(err) == codes.Unauthenticated && strings.Contains(strings.Join(trl.Get("www-authenticate"), " "), "insufficient_claims"):
		return "challenge"
	case status.Code(err) == codes.PermissionDenied:
		return "denied"
	}
	t.Fatalf("unexpected error: %v", err)
	return ""
}

func expect(t *testing.T, step, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %s, want %s", step, got, want)
	}
}

// TestStepUpThenBaseRefreshIsChallenged is the reproducer: after a
// completed step-up, the client's proactive refresh (base claims only) got
// a plain PermissionDenied, with no challenge, for up to an hour, because
// the memory of the step-up challenge judged the refreshed token an answer
// to it. Passing the rule now clears the memory: the refreshed token is
// challenged (and can step up again).
func TestStepUpThenBaseRefreshIsChallenged(t *testing.T) {
	e := startRaw(t, authContextPolicy(), "127.0.0.1")
	expect(t, "base token", e.call(t, e.token(t, baseClaims), ""), "challenge")
	expect(t, "stepped-up token", e.call(t, e.token(t, steppedClaims), ""), "ok")
	expect(t, "proactive refresh with base claims", e.call(t, e.token(t, baseClaims), ""), "challenge")
	expect(t, "stepped up again", e.call(t, e.token(t, steppedClaims), ""), "ok")
}

// TestStepUpSecondDevice: a second device of the same user, behind the same
// address, with its own base token. Before the fix it was locked out
// (plain denial) once the first device had been challenged.
func TestStepUpSecondDevice(t *testing.T) {
	e := startRaw(t, authContextPolicy(), "127.0.0.1")
	// Device 1 is challenged and steps up.
	expect(t, "device 1 base", e.call(t, e.token(t, baseClaims), ""), "challenge")
	expect(t, "device 1 stepped up", e.call(t, e.token(t, steppedClaims), ""), "ok")
	// Device 2 comes along: challenged, then steps up.
	expect(t, "device 2 base", e.call(t, e.token(t, baseClaims), ""), "challenge")
	expect(t, "device 2 stepped up", e.call(t, e.token(t, steppedClaims), ""), "ok")
}

// TestStepUpSecondSessionWhileChallengeOpen: device 2 arrives while device
// 1's challenge is still unanswered. When tokens carry a sid (Entra's
// session id, https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference),
// a token of another session is no answer to device 1's challenge: it is
// challenged, not denied. A token of the challenged session that still
// lacks the context is the IdP's answer, and gets the plain denial.
func TestStepUpSecondSessionWhileChallengeOpen(t *testing.T) {
	e := startRaw(t, authContextPolicy(), "127.0.0.1")
	setSID := func(sid string) {
		e.idp.SetClaim("sid", sid)
	}
	setSID("session-1")
	expect(t, "device 1 base", e.call(t, e.token(t, baseClaims), ""), "challenge")
	setSID("session-2")
	expect(t, "device 2 base, device 1 not answered yet", e.call(t, e.token(t, baseClaims), ""), "challenge")
	// Device 1's IdP ignores the step-up request: its answer still lacks c1.
	setSID("session-1")
	expect(t, "device 1 answer without c1", e.call(t, e.token(t, baseClaims), ""), "denied")
}

// TestStepUpAnswerWindow: a new token that still lacks the context gets the
// plain denial only when it is first seen within the answer window after the
// challenge. Later it is no answer to that challenge (a refresh, a new
// login): it is challenged and a new round starts, whose answer is again
// judged within the window, so a client that can never satisfy the rule
// still costs at most one IdP round trip per window.
func TestStepUpAnswerWindow(t *testing.T) {
	e := startRaw(t, authContextPolicy(), "127.0.0.1")
	expect(t, "base", e.call(t, e.token(t, baseClaims), ""), "challenge")
	answer := e.token(t, baseClaims) // the IdP did not grant c1
	expect(t, "answer within the window", e.call(t, answer, ""), "denied")
	expect(t, "the same answer again", e.call(t, answer, ""), "denied")
	e.clock.advance(policy.DefaultChallengeAnswerWindow + time.Minute)
	expect(t, "the same answer, later", e.call(t, answer, ""), "denied")
	expect(t, "a new token after the window", e.call(t, e.token(t, baseClaims), ""), "challenge")
	expect(t, "its answer within the new window", e.call(t, e.token(t, baseClaims), ""), "denied")
}

// proxiedLocationPolicy admits only hq; loopback is the trusted proxy, so
// the test picks the caller's address with x-forwarded-for.
func proxiedLocationPolicy() *policy.Policy {
	return &policy.Policy{
		Locations: []policy.Location{{Name: "hq", Ranges: prefixes("203.0.113.0/24")}},
		Rules:     []policy.Rule{{Methods: []string{"*"}, AllowLocations: []string{"hq"}}},
		ClientIP:  policy.ClientIP{TrustedProxies: prefixes("127.0.0.0/8")},
	}
}

// TestLocationReturnToChallengedAddress: a caller challenged at an address
// outside the allowed location moves into it (passes), then returns. Before
// the fix its newer token was judged an answer to the old challenge at that
// address and denied outright; now passing the rule clears the memory and
// the return is challenged. The loop guard still holds: the answer to that
// challenge, seen from the same address, gets the plain denial.
func TestLocationReturnToChallengedAddress(t *testing.T) {
	const outside, inside = "198.51.100.1", "203.0.113.9"
	e := startRaw(t, proxiedLocationPolicy(), "192.0.2.50") // the IdP sees yet another address
	expect(t, "outside", e.call(t, e.token(t, baseClaims), outside), "challenge")
	tok := e.token(t, baseClaims)
	expect(t, "inside", e.call(t, tok, inside), "ok")
	expect(t, "back outside", e.call(t, tok, outside), "challenge")
	expect(t, "answer from outside", e.call(t, e.token(t, baseClaims), outside), "denied")
}

// TestClientKeepsStepUpOnProactiveRefresh guards the client half of issue
// 13 item 2: after answering an auth-context challenge, the caekit client's
// proactive refresh used to ask for the base claims only, so the refreshed
// token lacked the auth context and the next call was refused. The client
// now keeps the step-up claims for the scopes that needed them.
func TestClientKeepsStepUpOnProactiveRefresh(t *testing.T) {
	idp := newTestIdP(t, "127.0.0.1")
	eng := newEngine(t, authContextPolicy())
	srv, err := interceptor.New(newValidatorFor(t, idp), interceptor.WithChecks(eng.Checks()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	gs := grpc.NewServer(srv.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(gs, newInbox())
	hs, err := httpsource.New(idp.URL()+"/token", httpsource.WithClientCredentials(idpClient, idpSecret))
	if err != nil {
		t.Fatal(err)
	}
	src := &refreshSoon{src: hs}
	fetched := make(chan client.Event, 16)
	cli, err := client.New(src, client.WithScopes(idpScope), client.WithInsecure(), client.WithLogger(quiet),
		client.WithObserver(client.ObserverFunc(func(_ context.Context, ev client.Event) {
			if ev.Kind == client.EventTokenFetched {
				fetched <- ev
			}
		})))
	if err != nil {
		t.Fatal(err)
	}
	conn := testkit.ServeGRPC(t, gs, cli.DialOptions()...)
	t.Cleanup(func() {
		_ = conn.Close()
		_ = cli.Close()
	})
	api := inboxv1.NewInboxServiceClient(conn)
	get := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := api.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "m1"})
		return err
	}
	next := func(what string) client.Event {
		t.Helper()
		select {
		case ev := <-fetched:
			return ev
		case <-time.After(10 * time.Second): // a hang guard, not a timing assertion
			t.Fatalf("no token fetch: %s", what)
		}
		return client.Event{}
	}
	// Challenged, stepped up, retried: OK. Two fetches: base, then c1.
	if err := get(); err != nil {
		t.Fatalf("first call: %v", err)
	}
	next("base token")
	next("stepped-up token")
	// The stepped-up token is due for refresh (refreshSoon): a call uses it
	// and starts the proactive refresh in the background. Call until the
	// refresh has started (RefreshAt is 1 ms after the fetch).
	var ev client.Event
	for i := 0; ev.Kind == 0; i++ {
		if i == 10000 {
			t.Fatal("no proactive refresh started")
		}
		if err := get(); err != nil {
			t.Fatalf("call that starts the refresh: %v", err)
		}
		select {
		case ev = <-fetched:
		case <-time.After(time.Millisecond):
		}
	}
	if !strings.Contains(ev.Claims, `"acrs"`) {
		t.Fatalf("proactive refresh asked for %s, want the step-up claims kept", ev.Claims)
	}
	// The refreshed token is used without a challenge.
	n := len(requests(idp))
	if err := get(); err != nil {
		t.Fatalf("call with the refreshed token: %v", err)
	}
	if m := len(requests(idp)); m != n {
		t.Fatalf("IdP requests %d -> %d: the refreshed token was challenged", n, m)
	}
}

// refreshSoon marks the first stepped-up token as due for refresh right
// away (as an IdP's refresh_in would, much later), so that the test sees a
// proactive refresh without waiting.
type refreshSoon struct {
	src  client.TokenSource
	mu   sync.Mutex
	done bool
}

func (r *refreshSoon) Token(ctx context.Context, req client.TokenRequest) (*client.Token, error) {
	tok, err := r.src.Token(ctx, req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done && strings.Contains(req.Claims, `"acrs"`) {
		r.done = true
		tok.RefreshAt = time.Now().Add(time.Millisecond)
	}
	return tok, nil
}

// TestAllowPathClearDoesNotAllocate: clearing the challenge memory on the
// allow path allocates nothing, also while the memory holds other callers.
func TestAllowPathClearDoesNotAllocate(t *testing.T) {
	e := newEngine(t, testPolicy())
	ctx := context.Background()
	other := &token.Claims{TenantID: "t", ObjectID: "someone-else", IssuedAt: t0, Hash: "x"}
	if d := e.Check(ctx, req("/pkg.Svc/Admin", "8.8.8.8", other, t0)); d == nil {
		t.Fatal("test setup: other caller allowed")
	}
	if d := e.Check(ctx, req("/pkg.Svc/Admin", "203.0.113.5", other, t0)); d == nil {
		t.Fatal("test setup: other caller allowed without c1")
	}
	r := req("/pkg.Svc/Admin", "203.0.113.5", claimsAt("", t0, "a", "c1"), t0)
	if n := testing.AllocsPerRun(200, func() {
		if e.Check(ctx, r) != nil {
			panic("denied")
		}
	}); n != 0 {
		t.Fatalf("allow path allocates %v times", n)
	}
}
