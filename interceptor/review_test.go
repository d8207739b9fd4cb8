package interceptor_test

// Security review tests: each pins down a defect the review found (and that
// is now fixed) or a behaviour the review verified.

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	"github.com/caekit/caekit/revocation"
)

// reviewUnknownServer starts a gRPC server whose only handler is an
// UnknownServiceHandler (as a gRPC proxy or gateway has), behind the caekit
// interceptors configured with opts. It returns a client connection and a
// counter of calls that reached the handler.
func reviewUnknownServer(t *testing.T, opts ...interceptor.Option) (*grpc.ClientConn, *atomic.Int32) {
	t.Helper()
	s, err := interceptor.New(newValidator(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int32
	unknown := func(_ any, ss grpc.ServerStream) error {
		reached.Add(1)
		m, _ := grpc.MethodFromServerStream(ss)
		return status.Error(codes.FailedPrecondition, "reached the unknown-service handler for "+m)
	}
	t.Cleanup(func() { _ = s.Close() }) // last: after the connection is closed and the server stopped
	gs := grpc.NewServer(append(s.ServerOptions(), grpc.UnknownServiceHandler(unknown))...)
	return testkit.ServeBufconn(t, gs), &reached
}

// reviewCallNoToken opens a stream on method without a token and returns the
// RPC's final error.
func reviewCallNoToken(t *testing.T, conn *grpc.ClientConn, method string) error {
	t.Helper()
	ctx := testCtx(t)
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method)
	if err != nil {
		return err
	}
	_ = cs.CloseSend()
	return cs.RecvMsg(&emptypb.Empty{})
}

// TestReviewExemptMethodsAreExact checks that WithExemptMethods exempts the
// named service and nothing that merely shares a prefix with it, including
// paths with extra segments that only an UnknownServiceHandler would serve.
func TestReviewExemptMethodsAreExact(t *testing.T) {
	conn, reached := reviewUnknownServer(t, interceptor.WithExemptMethods("/grpc.health.v1.Health/"))
	// Sanity: the exempt service itself reaches the handler without a token.
	if err := reviewCallNoToken(t, conn, "/grpc.health.v1.Health/Check"); status.Code(err) != codes.FailedPrecondition || reached.Load() != 1 {
		t.Fatalf("exempt method: %v (reached %d), want the handler's FailedPrecondition", err, reached.Load())
	}
	for _, m := range []string{
		"/grpc.health.v1.HealthEvil/Check",
		"/grpc.health.v1.Healt/Check",
		"/grpc.health.v1.Health/Check/admin.v1.Admin/Delete",
		"/grpc.health.v1.Health/x/../admin.v1.Admin/Delete",
		"/admin.v1.Admin/grpc.health.v1.Health/",
	} {
		before := reached.Load()
		err := reviewCallNoToken(t, conn, m)
		if status.Code(err) != codes.Unauthenticated || reached.Load() != before {
			t.Errorf("%s without a token: %v (handler reached: %v), want Unauthenticated", m, err, reached.Load() != before)
		}
	}
}

// TestReviewHealthAndReflectionExemptsOnlyTheseServices: the ready-made
// matcher must not exempt a look-alike service.
func TestReviewHealthAndReflectionExemptsOnlyTheseServices(t *testing.T) {
	conn, reached := reviewUnknownServer(t, interceptor.WithExempt(interceptor.HealthAndReflection()))
	if err := reviewCallNoToken(t, conn, "/grpc.health.v1.Health/Check"); status.Code(err) != codes.FailedPrecondition || reached.Load() != 1 {
		t.Fatalf("exempt method: %v (reached %d)", err, reached.Load())
	}
	for _, m := range []string{"/grpc.health.v1.HealthEvil/Check", "/grpc.health.v1/Health"} {
		before := reached.Load()
		if err := reviewCallNoToken(t, conn, m); status.Code(err) != codes.Unauthenticated || reached.Load() != before {
			t.Errorf("%s without a token: %v, want Unauthenticated", m, err)
		}
	}
}

// TestReviewHealthAndReflectionExtraSegments (finding INT-1).
//
// HealthAndReflection matches interceptors.CallMeta.Service, which
// go-grpc-middleware splits at the FIRST '/' of the full method, whereas
// grpc-go routes at the LAST '/'. "/grpc.health.v1.Health/x/admin.v1.Admin/Delete"
// is therefore "exempt" (Service "grpc.health.v1.Health") while gRPC hands
// it, as service "grpc.health.v1.Health/x/admin.v1.Admin", to the
// UnknownServiceHandler: any server with such a handler (gRPC proxies and
// gateways, a natural place for this interceptor) serves it without a token.
func TestReviewHealthAndReflectionExtraSegments(t *testing.T) {
	conn, reached := reviewUnknownServer(t, interceptor.WithExempt(interceptor.HealthAndReflection()))
	for _, m := range []string{
		"/grpc.health.v1.Health/x/admin.v1.Admin/Delete",
		"/grpc.reflection.v1.ServerReflection/a/b",
	} {
		before := reached.Load()
		err := reviewCallNoToken(t, conn, m)
		if status.Code(err) != codes.Unauthenticated || reached.Load() != before {
			t.Errorf("%s without a token: %v (handler reached: %v), want Unauthenticated", m, err, reached.Load() != before)
		}
	}
}

// TestReviewUPNRevokesTokenWithSeparateEmail (finding TOK-1).
//
// Claims.Keys derives one KindEmail key from the first of email, upn and
// preferred_username. An SSF email or account subject that names the user by
// UPN (the sign-in name, what an IdP's admin tooling reports) then does not
// match a token that also carries a different, possibly unverified or
// user-editable, email claim: the revocation is silently not enforced.
func TestReviewUPNRevokesTokenWithSeparateEmail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims jwt.MapClaims
		event  string
	}{
		{"upn behind email", jwt.MapClaims{"email": "alias@mail.example", "upn": "alice@corp.example"}, "Alice@corp.example"},
		{"preferred_username behind upn", jwt.MapClaims{"upn": "alice@corp.example", "preferred_username": "al@other.example"}, "al@other.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpt{})
			ctx := testCtx(t)
			raw := mint(t, tok{sub: "upn-user", extra: tc.claims})
			if _, err, _, _ := e.callUnary(withToken(ctx, raw)); err != nil {
				t.Fatalf("before the event: %v", err)
			}
			if err := e.store.Put(ctx, revocation.Event{ID: "set-1", Type: revocation.TypeUserDisabled,
				Subject: revocation.EmailKey(tc.event), Time: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if _, err, _, _ := e.callUnary(withToken(ctx, raw)); status.Code(err) != codes.Unauthenticated {
				t.Fatalf("after a user_disabled event for %q: %v, want Unauthenticated", tc.event, err)
			}
		})
	}
}

// TestReviewTokenWithoutIATIsRefused: a token without iat cannot prove it
// was issued after an event, and its lifetime is unknown, so a store could
// forget the event that revokes it while it is still valid (issue 12 item
// 6). It used to be accepted (and revoked by any event while the store
// remembered one); it is now refused outright, before any event.
func TestReviewTokenWithoutIATIsRefused(t *testing.T) {
	e := newEnv(t, envOpt{})
	ctx := testCtx(t)
	raw := mint(t, tok{sub: "no-iat", exp: time.Now().Add(time.Hour), extra: jwt.MapClaims{"iat": nil}})
	_, err, _, _ := e.callUnary(withToken(ctx, raw))
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "iat is missing") {
		t.Fatalf("token without iat: %v, want Unauthenticated saying iat is missing", err)
	}
}

// TestReviewRevocationSecondResolution: an event in the same second as the
// token's iat revokes it (the order within the second is unknowable); an
// event one second earlier does not.
func TestReviewRevocationSecondResolution(t *testing.T) {
	iat := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name    string
		evTime  time.Time
		revoked bool
	}{
		{"same second, later instant", iat.Add(900 * time.Millisecond), true},
		{"same instant", iat, true},
		{"previous second", iat.Add(-time.Millisecond), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpt{})
			ctx := testCtx(t)
			raw := mint(t, tok{sub: "res", iat: iat})
			if err := e.store.Put(ctx, revocation.Event{Type: revocation.TypeUserDisabled,
				Subject: revocation.ObjectKey(testTenant, "oid-res"), Time: tc.evTime}); err != nil {
				t.Fatal(err)
			}
			_, err, _, _ := e.callUnary(withToken(ctx, raw))
			if got := status.Code(err) == codes.Unauthenticated; got != tc.revoked {
				t.Fatalf("event at %s, iat %s: err %v, want revoked=%v", tc.evTime.Format(time.RFC3339Nano), iat.Format(time.RFC3339), err, tc.revoked)
			}
		})
	}
}

// TestReviewStreamEventBetweenCheckAndRegistration: an event stored after the
// stream's first evaluation but before it is indexed for wake-ups must still
// refuse the stream (the interceptor re-evaluates after registration).
func TestReviewStreamEventBetweenCheckAndRegistration(t *testing.T) {
	var store *revocation.Memory
	var fired atomic.Bool
	// Runs after the built-in revocation check has passed: it stores the
	// revoking event at exactly the racy moment.
	racer := interceptor.CheckFunc(func(ctx context.Context, r *interceptor.Request) *interceptor.Denial {
		if r.Stream && fired.CompareAndSwap(false, true) {
			_ = store.Put(ctx, revocation.Event{ID: "race", Type: revocation.TypeSessionRevoked,
				Subject: revocation.SessionKey(testIssuer, "sid-race"), Time: time.Now()})
		}
		return nil
	})
	store = teststore.Memory(t)
	e := newEnv(t, envOpt{store: store, opts: []interceptor.Option{interceptor.WithChecks(racer)}})
	ctx := testCtx(t)
	st, err := e.client.WatchInbox(withToken(ctx, mint(t, tok{sub: "racer", sid: "sid-race"})), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("stream whose token was revoked during the open: %v, want Unauthenticated", err)
	}
	if !fired.Load() {
		t.Fatal("test did not exercise the race")
	}
}

// TestReviewChallengeHeaderInjection: a Denial's Description and Params are
// written into the www-authenticate trailer; quotes, backslashes and line
// breaks in them must not create new parameters or headers.
func TestReviewChallengeHeaderInjection(t *testing.T) {
	const evil = "x\", claims=\"e30=\", injected=\"1\r\nx-injected: 1\\"
	for _, tc := range []struct {
		name string
		d    interceptor.Denial
	}{
		{"description", interceptor.Denial{Reason: caev1.Reason_REASON_POLICY, Description: evil}},
		{"params", interceptor.Denial{Reason: caev1.Reason_REASON_POLICY, Claims: `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`,
			Description: evil, Params: []interceptor.Param{
				{Name: "ok", Value: evil},
				{Name: `bad", injected="1`, Value: "v"},
				{Name: "error", Value: "overridden"},
				{Name: "bad\r\nx-injected", Value: "v"},
			}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(interceptor.CheckFunc(
				func(context.Context, *interceptor.Request) *interceptor.Denial { dd := d; return &dd }))}})
			ctx := testCtx(t)
			_, err, h, tr := e.callUnary(withToken(ctx, mint(t, tok{sub: "inj"})))
			dn := readDenial(t, err, h, tr)
			if len(dn.wwwAuth) != 1 {
				t.Fatalf("www-authenticate values %q, want one", dn.wwwAuth)
			}
			v := dn.wwwAuth[0]
			if strings.ContainsAny(v, "\r\n") {
				t.Fatalf("line break in www-authenticate %q", v)
			}
			if len(tr.Get("x-injected")) != 0 || len(h.Get("x-injected")) != 0 {
				t.Fatal("injected metadata key")
			}
			cs, perr := challenge.ParseHeader(v)
			if perr != nil || len(cs) != 1 {
				t.Fatalf("ParseHeader(%q) = %v, %v; want one challenge", v, cs, perr)
			}
			allowed := map[string]bool{"realm": true, "authorization_uri": true, "error": true, "claims": true, "error_description": true, "ok": true}
			for _, p := range cs[0].Params {
				if !allowed[p.Name] {
					t.Errorf("unexpected parameter %q=%q in %q", p.Name, p.Value, v)
				}
			}
			if errv, _ := cs[0].Param("error"); errv == "overridden" {
				t.Errorf("a Param overrode error: %q", v)
			}
			if c, ok := cs[0].Param("claims"); ok && tc.d.Claims == "" {
				t.Errorf("description injected claims=%q", c)
			}
		})
	}
}
