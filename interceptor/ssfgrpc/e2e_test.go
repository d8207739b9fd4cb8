package ssfgrpc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/ssfgrpc"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	idpIssuer   = "https://idp.example.test"
	apiAudience = "api://inbox"
	pushAuth    = "Bearer e2e-push-secret"
)

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

type world struct {
	tr      *ssftest.Transmitter
	key     *rsa.PrivateKey
	store   *failStore
	pushURL string
	conn    *grpc.ClientConn
}

type failStore struct {
	*revocation.Memory
	fail atomic.Bool
}

func (f *failStore) Put(ctx context.Context, ev revocation.Event) error {
	if f.fail.Load() {
		return errors.New("down")
	}
	return f.Memory.Put(ctx, ev)
}

func (w *world) token(t *testing.T, sub, sid string, roles ...string) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{
		"iss": idpIssuer, "aud": apiAudience, "sub": sub, "sid": sid,
		"iat": now.Add(-30 * time.Second).Unix(), "nbf": now.Add(-30 * time.Second).Unix(), "exp": now.Add(time.Hour).Unix(),
		"xms_cc": []string{"cp1"}, "jti": sub + sid,
	}
	if len(roles) > 0 {
		c["roles"] = roles
	}
	return testkit.Minter{Alg: "RS256", KID: "at1", Key: w.key}.Mint(t, c)
}

func setup(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{tr: ssftest.New(), key: key, store: &failStore{Memory: teststore.Memory(t)}}
	t.Cleanup(w.tr.Close)

	rcv, err := receiver.New(ctx, receiver.WithIssuer(w.tr.Issuer), receiver.WithAudience(ssftest.Audience),
		receiver.WithStore(w.store), receiver.WithPushAuthorization(pushAuth),
		// The transmitter's session ids are those of the IdP's access tokens.
		receiver.WithSubjectMapper(ssf.DefaultMapper{TokenIssuer: idpIssuer}),
		receiver.WithEmailDomains("example.com"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rcv.Close() })
	push := httptest.NewServer(rcv)
	t.Cleanup(push.Close)
	w.pushURL = push.URL

	v, err := token.NewValidator(ctx, token.WithIssuer(idpIssuer), token.WithAudience(apiAudience), token.WithStaticKey("at1", &key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	ic, err := interceptor.New(v, interceptor.WithStore(w.store), interceptor.WithChecks(ssfgrpc.RequireRole("")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ic.Close() })
	gs := grpc.NewServer(ic.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(gs, &testkit.Inbox{WatchEvery: 20 * time.Millisecond, Subject: testkit.ClaimsSubject(interceptor.ClaimsFromContext, func(c *interceptor.Claims) string { return c.Subject })})
	caev1.RegisterSecurityEventServiceServer(gs, ssfgrpc.New(rcv))
	w.conn = testkit.ServeGRPC(t, gs)
	return w
}

// TestPushedSessionRevokedEndsCallsAndStreams: a session-revoked SET pushed by
// the transmitter makes the next call fail with a claims challenge and ends an
// open stream.
func TestPushedSessionRevokedEndsCallsAndStreams(t *testing.T) {
	w := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := inboxv1.NewInboxServiceClient(w.conn)
	cred := grpc.PerRPCCredentials(bearer(w.token(t, "alice", "sid-42")))

	if _, err := client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}, cred); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	stream, err := client.WatchInbox(ctx, &inboxv1.WatchInboxRequest{IntervalMs: 20}, cred)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("stream before revocation: %v", err)
	}

	set, jti := w.tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{
		"format":  "complex",
		"user":    map[string]any{"format": "iss_sub", "iss": idpIssuer, "sub": "alice"},
		"session": map[string]any{"format": "opaque", "id": "sid-42"},
	})
	if status, body, err := ssftest.Push(ctx, w.pushURL, pushAuth, set); err != nil || status != 202 {
		t.Fatalf("push: %d %s %v", status, body, err)
	}

	// The open stream ends with a claims challenge.
	var serr error
	for {
		if _, serr = stream.Recv(); serr != nil {
			break
		}
	}
	if status.Code(serr) != codes.Unauthenticated {
		t.Fatalf("stream ended with %v", serr)
	}
	ch, ok := challenge.FromError(serr, stream.Trailer())
	if !ok || ch.Reason != caev1.Reason_REASON_SESSION_REVOKED || !ch.InsufficientClaims() || ch.EventID != jti {
		t.Fatalf("stream challenge %+v %v", ch, ok)
	}

	// The next unary call fails with a claims challenge.
	_, err = client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "2"}, cred)
	ch, ok = challenge.FromError(err)
	if status.Code(err) != codes.Unauthenticated || !ok || ch.Reason != caev1.Reason_REASON_SESSION_REVOKED || ch.Claims == "" {
		t.Fatalf("unary after revocation: %v %+v", err, ch)
	}

	// Another session of the same user is unaffected.
	other := grpc.PerRPCCredentials(bearer(w.token(t, "alice", "sid-43")))
	if _, err := client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "3"}, other); err != nil {
		t.Fatalf("other session: %v", err)
	}
}

func TestPublishOverGRPC(t *testing.T) {
	w := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pub := caev1.NewSecurityEventServiceClient(w.conn)
	set, jti := w.tr.Event(ssf.RISCAccountDisabled, nil, map[string]any{"format": "iss_sub", "iss": idpIssuer, "sub": "bob"})

	// Without the role: PermissionDenied, nothing stored.
	noRole := grpc.PerRPCCredentials(bearer(w.token(t, "svc", "s1")))
	if _, err := pub.Publish(ctx, &caev1.PublishRequest{Set: set}, noRole); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("without role: %v", err)
	}
	if _, ok := w.store.Lookup(revocation.IssuerSubjectKey(idpIssuer, "bob")); ok {
		t.Fatal("stored without the role")
	}

	withRole := grpc.PerRPCCredentials(bearer(w.token(t, "svc", "s2", "Other", ssfgrpc.DefaultRole)))
	// Store outage: Unavailable, then the retry succeeds.
	w.store.fail.Store(true)
	if _, err := pub.Publish(ctx, &caev1.PublishRequest{Set: set}, withRole); status.Code(err) != codes.Unavailable {
		t.Fatalf("outage: %v", err)
	}
	w.store.fail.Store(false)
	res, err := pub.Publish(ctx, &caev1.PublishRequest{Set: set}, withRole)
	if err != nil || res.GetJti() != jti || res.GetDuplicate() || res.GetEventType() != ssf.RISCAccountDisabled {
		t.Fatalf("publish: %v %v", res, err)
	}
	if ev, ok := w.store.Lookup(revocation.IssuerSubjectKey(idpIssuer, "bob")); !ok || ev.Type != revocation.TypeUserDisabled {
		t.Fatalf("not stored: %+v", ev)
	}
	res, err = pub.Publish(ctx, &caev1.PublishRequest{Set: set}, withRole)
	if err != nil || !res.GetDuplicate() || res.GetJti() != jti {
		t.Fatalf("redelivery: %v %v", res, err)
	}

	// A SET whose kid the transmitter's JWKS does not publish, while the
	// JWKS cannot be refreshed: Unavailable, to be published again, not a
	// refusal; nothing stored.
	unknownKID := w.tr.SignWith(w.tr.Claims(ssf.RISCAccountDisabled, nil, map[string]any{"format": "iss_sub", "iss": idpIssuer, "sub": "carol"}),
		map[string]any{"kid": "not-yet-published"})
	w.tr.SetJWKSDown(true)
	_, err = pub.Publish(ctx, &caev1.PublishRequest{Set: unknownKID}, withRole)
	w.tr.SetJWKSDown(false)
	if status.Code(err) != codes.Unavailable || reason(err) != "" {
		t.Fatalf("unknown kid, JWKS down: %v (reason %q), want Unavailable", err, reason(err))
	}
	// Once the JWKS is fetched successfully and still lacks the kid: RFC
	// 8935 invalid_key (issue 12 item 3).
	_, err = pub.Publish(ctx, &caev1.PublishRequest{Set: unknownKID}, withRole)
	if status.Code(err) != codes.InvalidArgument || reason(err) != receiver.CodeInvalidKey {
		t.Fatalf("unknown kid after a successful refresh: %v (reason %q), want InvalidArgument invalid_key", err, reason(err))
	}
	if _, ok := w.store.Lookup(revocation.IssuerSubjectKey(idpIssuer, "carol")); ok {
		t.Fatal("a SET with an unknown kid was stored")
	}

	// A refused SET: InvalidArgument with the RFC 8935 code as ErrorInfo reason.
	c := w.tr.Claims(ssf.RISCAccountDisabled, nil, map[string]any{"format": "email", "email": "x@example.com"})
	c["aud"] = "https://wrong"
	_, err = pub.Publish(ctx, &caev1.PublishRequest{Set: w.tr.Sign(c)}, withRole)
	if reason(err) != receiver.CodeInvalidAudience || status.Code(err) != codes.InvalidArgument {
		t.Fatalf("wrong audience: %v (reason %q)", err, reason(err))
	}
	_, err = pub.Publish(ctx, &caev1.PublishRequest{Set: "garbage"}, withRole)
	if reason(err) != receiver.CodeInvalidRequest || strings.Contains(status.Convert(err).Message(), "garbage") {
		t.Fatalf("garbage: %v", err)
	}
}

func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// TestOtherTransmitterCannotRevoke (issue 12 item 7), over real push and
// gRPC: a second transmitter B, whose receiver shares the store but is not
// allowed the IdP's issuer, cannot end alice's calls through an iss_sub
// naming the IdP, through her opaque session id, or through an e-mail of a
// domain it is not allowed; its refusals are 400 invalid_request. The IdP's
// own transmitter still can.
func TestOtherTransmitterCannotRevoke(t *testing.T) {
	w := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	trB := ssftest.New()
	defer trB.Close()
	rcvB, err := receiver.New(ctx, receiver.WithIssuer(trB.Issuer), receiver.WithAudience(ssftest.Audience),
		receiver.WithStore(w.store), receiver.WithPushAuthorization(pushAuth), receiver.WithEmailDomains("b.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer rcvB.Close()
	pushB := httptest.NewServer(rcvB)
	defer pushB.Close()

	client := inboxv1.NewInboxServiceClient(w.conn)
	cred := grpc.PerRPCCredentials(bearer(w.token(t, "alice", "sid-7")))
	call := func() error { _, err := client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}, cred); return err }
	if err := call(); err != nil {
		t.Fatalf("before: %v", err)
	}
	for _, c := range []struct {
		name   string
		event  string
		sub    map[string]any
		status int
	}{
		{"iss_sub naming the IdP", ssf.RISCAccountDisabled, map[string]any{"format": "iss_sub", "iss": idpIssuer, "sub": "alice"}, 400},
		{"e-mail of another domain", ssf.RISCAccountDisabled, map[string]any{"format": "email", "email": "alice@idp.example.test"}, 400},
		{"alice's session id", ssf.CAEPSessionRevoked, map[string]any{"format": "opaque", "id": "sid-7"}, 202}, // B's own session sid-7
	} {
		set, _ := trB.Event(c.event, nil, c.sub)
		st, body, err := ssftest.Push(ctx, pushB.URL, pushAuth, set)
		if err != nil || st != c.status || (st == 400 && !strings.Contains(string(body), "invalid_request")) {
			t.Fatalf("B, %s: %d %s %v, want %d", c.name, st, body, err, c.status)
		}
		if err := call(); err != nil {
			t.Fatalf("after B's %s, alice's call fails: %v", c.name, err)
		}
	}
	// The IdP's own transmitter revokes her session.
	set, _ := w.tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{"format": "opaque", "id": "sid-7"})
	if st, body, err := ssftest.Push(ctx, w.pushURL, pushAuth, set); err != nil || st != 202 {
		t.Fatalf("IdP's transmitter: %d %s %v", st, body, err)
	}
	if err := call(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after the IdP's session-revoked: %v, want a challenge", err)
	}
}
