package interceptor_test

import (
	"context"
	"crypto/ecdsa"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/testcae"
	"github.com/caekit/caekit/internal/testkit/teststore"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// The test identity provider's parameters and signing key (testcae's,
// under the names the package's tests use).
const (
	testIssuer   = testcae.Issuer
	testAudience = testcae.Audience
	testTenant   = testcae.Tenant
	testAuthzURI = testcae.AuthorizationURI
	testKID      = testcae.KID
)

func signingKey(testing.TB) *ecdsa.PrivateKey { return testcae.Key() }

// tok describes a test token; zero fields get defaults in mint.
type tok struct {
	sub, sid, jti string
	caps          []string
	iat, exp, nbf time.Time
	noCaps        bool
	extra         jwt.MapClaims
}

// mint signs an ES256 access token with the test key: testcae.Claims
// with k's fields set over them.
func mint(t testing.TB, k tok) string {
	t.Helper()
	if k.iat.IsZero() {
		k.iat = time.Now().Add(-10 * time.Second)
	}
	if k.sub == "" {
		k.sub = "user-1"
	}
	c := testcae.Claims(k.sub, k.iat)
	if !k.exp.IsZero() {
		c["exp"] = k.exp.Unix()
	}
	if k.caps == nil && !k.noCaps {
		k.caps = []string{"cp1"}
	}
	if len(k.caps) > 0 {
		c["xms_cc"] = k.caps
	} else {
		delete(c, "xms_cc")
	}
	if !k.nbf.IsZero() {
		c["nbf"] = k.nbf.Unix()
	}
	if k.sid != "" {
		c["sid"] = k.sid
	}
	if k.jti != "" {
		c["jti"] = k.jti
	}
	for n, v := range k.extra {
		if v == nil { // a nil extra omits the claim (JSON null is a wrong-type claim)
			delete(c, n)
			continue
		}
		c[n] = v
	}
	return testcae.Sign(t, c)
}

// newValidator is testcae.Validator: the test key's validator, closed at
// cleanup.
var newValidator = testcae.Validator

// newInbox returns the kit's Inbox, reading the caller from the
// interceptor's claims.
func newInbox() *testkit.Inbox {
	in := testkit.NewInbox()
	in.Subject = claimsSubject
	return in
}

// claimsSubject is the subject of the claims the interceptor put in ctx.
var claimsSubject = testkit.ClaimsSubject(interceptor.ClaimsFromContext, func(c *interceptor.Claims) string { return c.Subject })

// env is one server+client pair over bufconn.
type env struct {
	srv    *interceptor.Server
	store  *revocation.Memory
	inbox  *testkit.Inbox
	client inboxv1.InboxServiceClient
	conn   *grpc.ClientConn
}

type envOpt struct {
	validator interceptor.Validator
	store     revocation.Store
	opts      []interceptor.Option
	register  func(*grpc.Server)
}

func newEnv(t testing.TB, eo envOpt) *env {
	t.Helper()
	e := &env{inbox: newInbox()}
	if eo.validator == nil {
		eo.validator = newValidator(t)
	}
	if eo.store == nil {
		e.store = teststore.Memory(t)
		eo.store = e.store
	}
	s := testcae.Server(t, eo.validator, eo.store, eo.opts...) // closes last: after the connection is closed and the server stopped
	e.srv = s
	gs := grpc.NewServer(s.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(gs, e.inbox)
	if eo.register != nil {
		eo.register(gs)
	}
	e.conn = testkit.ServeBufconn(t, gs)
	e.client = inboxv1.NewInboxServiceClient(e.conn)
	return e
}

func withToken(ctx context.Context, raw string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+raw)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// denial is what a client can read of a denial.
type denial struct {
	code      codes.Code
	msg       string
	cc        *caev1.ClaimsChallenge
	info      *errdetails.ErrorInfo
	wwwAuth   []string // from the trailer
	headerMD  metadata.MD
	trailerMD metadata.MD
}

func readDenial(t testing.TB, err error, header, trailer metadata.MD) denial {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || err == nil {
		t.Fatalf("not a status error: %v", err)
	}
	d := denial{code: st.Code(), msg: st.Message(), headerMD: header, trailerMD: trailer, wwwAuth: trailer.Get(challenge.MetadataKey)}
	for _, x := range st.Details() {
		switch x := x.(type) {
		case *caev1.ClaimsChallenge:
			d.cc = x
		case *errdetails.ErrorInfo:
			d.info = x
		}
	}
	return d
}

// callUnary calls GetMessage and returns the error with header and trailer.
func (e *env) callUnary(ctx context.Context) (*inboxv1.GetMessageResponse, error, metadata.MD, metadata.MD) {
	var h, tr metadata.MD
	resp, err := e.client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}, grpc.Header(&h), grpc.Trailer(&tr))
	return resp, err, h, tr
}

// assertChallenge checks that a denial carries a consistent challenge in all
// three places (ClaimsChallenge, ErrorInfo, www-authenticate trailer).
func assertChallenge(t testing.TB, d denial, wantErr string, wantReason caev1.Reason) {
	t.Helper()
	if d.code != codes.Unauthenticated {
		t.Fatalf("code %v (%s), want Unauthenticated", d.code, d.msg)
	}
	if d.cc == nil || d.info == nil {
		t.Fatalf("details missing: cc=%v info=%v", d.cc, d.info)
	}
	if len(d.wwwAuth) != 1 {
		t.Fatalf("www-authenticate trailer values %q, want exactly one", d.wwwAuth)
	}
	if d.cc.GetWwwAuthenticate() != d.wwwAuth[0] {
		t.Fatalf("ClaimsChallenge.www_authenticate %q != trailer %q", d.cc.GetWwwAuthenticate(), d.wwwAuth[0])
	}
	if d.cc.GetError() != wantErr || d.info.GetMetadata()["error"] != wantErr {
		t.Fatalf("error %q / %q, want %q", d.cc.GetError(), d.info.GetMetadata()["error"], wantErr)
	}
	if d.cc.GetReason() != wantReason || d.info.GetReason() != challenge.ReasonName(wantReason) {
		t.Fatalf("reason %v / %q, want %v", d.cc.GetReason(), d.info.GetReason(), wantReason)
	}
	if d.info.GetDomain() != challenge.ErrorInfoDomain {
		t.Fatalf("domain %q", d.info.GetDomain())
	}
	if wantErr == challenge.ErrorInvalidToken && (d.cc.GetClaims() != "" || d.info.GetMetadata()["claims"] != "") {
		t.Fatalf("invalid_token denial carries claims: %v", d.cc)
	}
}

// waitReturned waits for a handler of the test service to return.
func (e *env) waitReturned(t testing.TB, name string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case n := <-e.inbox.Returned:
			if n == name {
				return
			}
		case <-timeout:
			t.Fatalf("handler %s did not return", name)
		}
	}
}

// unhealthyStore wraps a Memory and reports itself stale on demand.
type unhealthyStore struct {
	*revocation.Memory
	stale atomic.Bool
}

func (u *unhealthyStore) Health() error {
	if u.stale.Load() {
		return revocation.ErrStale
	}
	return nil
}
