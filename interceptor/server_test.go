package interceptor_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

func TestUnaryAllowed(t *testing.T) {
	e := newEnv(t, envOpt{})
	resp, err, _, _ := e.callUnary(withToken(testCtx(t), mint(t, tok{sub: "alice"})))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSubject() != "alice" {
		t.Fatalf("handler saw subject %q, want alice (claims in context)", resp.GetSubject())
	}
}

func TestStreamsAllowed(t *testing.T) {
	e := newEnv(t, envOpt{})
	ctx := withToken(testCtx(t), mint(t, tok{}))

	w, err := e.client.WatchInbox(ctx, &inboxv1.WatchInboxRequest{IntervalMs: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := w.Recv(); err != nil {
			t.Fatalf("watch recv %d: %v", i, err)
		}
	}

	up, err := e.client.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := up.Send(&inboxv1.UploadRequest{Data: []byte("abc")}); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := up.CloseAndRecv()
	if err != nil || sum.GetCount() != 5 || sum.GetBytes() != 15 {
		t.Fatalf("upload: %v %v", sum, err)
	}

	chat, err := e.client.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c"} {
		if err := chat.Send(&inboxv1.ChatRequest{Text: m}); err != nil {
			t.Fatal(err)
		}
		r, err := chat.Recv()
		if err != nil || r.GetText() != m {
			t.Fatalf("chat echo %v %v", r, err)
		}
	}
	if err := chat.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("chat end: %v", err)
	}
}

// Every call shape refuses a revoked token with the same challenge.
func TestAllCallShapesDenied(t *testing.T) {
	e := newEnv(t, envOpt{})
	raw := mint(t, tok{sid: "s-shapes"})
	evTime := time.Now().Truncate(time.Second)
	if err := e.store.Put(context.Background(), revocation.Event{
		ID: "evt-shapes", Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey(testIssuer, "s-shapes"), Time: evTime,
	}); err != nil {
		t.Fatal(err)
	}
	ctx := withToken(testCtx(t), raw)
	check := func(name string, err error, h, tr metadata.MD) {
		t.Helper()
		d := readDenial(t, err, h, tr)
		assertChallenge(t, d, challenge.ErrorInsufficientClaims, caev1.Reason_REASON_SESSION_REVOKED)
		wantClaims := `{"access_token":{"nbf":{"essential":true,"value":"` + strconv.FormatInt(evTime.Unix()+1, 10) + `"}}}`
		if d.cc.GetClaims() != wantClaims {
			t.Fatalf("%s: claims %s, want %s", name, d.cc.GetClaims(), wantClaims)
		}
		if d.cc.GetEventId() != "evt-shapes" || !d.cc.GetEventTime().AsTime().Equal(evTime) {
			t.Fatalf("%s: event %v", name, d.cc)
		}
		if len(h.Get(challenge.MetadataKey)) != 0 {
			t.Fatalf("%s: www-authenticate unexpectedly in headers: %v", name, h)
		}
	}

	_, err, h, tr := e.callUnary(ctx)
	check("unary", err, h, tr)

	w, err := e.client.WatchInbox(ctx, &inboxv1.WatchInboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Recv()
	h, _ = w.Header()
	check("server stream", err, h, w.Trailer())

	up, err := e.client.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = up.CloseAndRecv()
	h, _ = up.Header()
	check("client stream", err, h, up.Trailer())

	chat, err := e.client.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = chat.Recv()
	h, _ = chat.Header()
	check("bidi stream", err, h, chat.Trailer())
}

func TestEveryEventTypeHasItsReason(t *testing.T) {
	e := newEnv(t, envOpt{})
	for _, typ := range revocation.Types() {
		t.Run(typ.String(), func(t *testing.T) {
			sid := "s-" + typ.String()
			raw := mint(t, tok{sid: sid})
			ctx := withToken(testCtx(t), raw)
			if _, err, _, _ := e.callUnary(ctx); err != nil {
				t.Fatalf("before the event: %v", err)
			}
			if err := e.store.Put(context.Background(), revocation.Event{
				Type: typ, Subject: revocation.SessionKey(testIssuer, sid), Time: time.Now(),
			}); err != nil {
				t.Fatal(err)
			}
			_, err, h, tr := e.callUnary(ctx)
			d := readDenial(t, err, h, tr)
			want := interceptor.ReasonForType(typ)
			assertChallenge(t, d, challenge.ErrorInsufficientClaims, want)
			// Independent of the mapping table: the ErrorInfo reason is the
			// event type's name in UPPER_SNAKE.
			if got := d.info.GetReason(); got != strings.ToUpper(typ.String()) {
				t.Fatalf("ErrorInfo reason %q for %s", got, typ)
			}
		})
	}
}

func TestEventKeysOfEveryKind(t *testing.T) {
	e := newEnv(t, envOpt{})
	now := time.Now()
	cases := []struct {
		name string
		k    tok
		key  revocation.Key
	}{
		{"object", tok{sub: "k-obj"}, revocation.ObjectKey(testTenant, "oid-k-obj")},
		{"iss_sub", tok{sub: "k-isssub"}, revocation.IssuerSubjectKey(testIssuer, "k-isssub")},
		{"token", tok{sub: "k-tok", jti: "jti-1"}, revocation.TokenKey(testIssuer, "jti-1")},
		{"email", tok{sub: "k-mail", extra: jwt.MapClaims{"email": "Mail@Example.COM"}}, revocation.EmailKey("mail@example.com")},
		{"client", tok{sub: "k-cl", extra: jwt.MapClaims{"azp": "client-9"}}, revocation.ClientKey(testIssuer, "client-9")},
		{"device", tok{sub: "k-dev", extra: jwt.MapClaims{"deviceid": "dev-9"}}, revocation.DeviceKey(testIssuer, "dev-9")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := withToken(testCtx(t), mint(t, c.k))
			if err := e.store.Put(context.Background(), revocation.Event{Type: revocation.TypeUserDisabled, Subject: c.key, Time: now}); err != nil {
				t.Fatal(err)
			}
			_, err, h, tr := e.callUnary(ctx)
			assertChallenge(t, readDenial(t, err, h, tr), challenge.ErrorInsufficientClaims, caev1.Reason_REASON_USER_DISABLED)
		})
	}
}

// An event older than the token (delivered late) does not revoke it; one in
// the same second does.
func TestEventBeforeIssueDoesNotRevoke(t *testing.T) {
	e := newEnv(t, envOpt{})
	iat := time.Now().Add(-time.Minute).Truncate(time.Second)
	ctx := withToken(testCtx(t), mint(t, tok{sid: "s-late", iat: iat}))
	if err := e.store.Put(context.Background(), revocation.Event{
		Type: revocation.TypePasswordChanged, Subject: revocation.SessionKey(testIssuer, "s-late"), Time: iat.Add(-time.Second),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err, _, _ := e.callUnary(ctx); err != nil {
		t.Fatalf("an event before iat revoked the token: %v", err)
	}
	if err := e.store.Put(context.Background(), revocation.Event{
		Type: revocation.TypePasswordChanged, Subject: revocation.SessionKey(testIssuer, "s-late"), Time: iat.Add(500 * time.Millisecond),
	}); err != nil {
		t.Fatal(err)
	}
	_, err, h, tr := e.callUnary(ctx)
	assertChallenge(t, readDenial(t, err, h, tr), challenge.ErrorInsufficientClaims, caev1.Reason_REASON_PASSWORD_CHANGED)
}

// The exact Entra form, with fixed clocks so the base64 is a constant.
func TestChallengeExactString(t *testing.T) {
	const evUnix = 1604106651
	now := func() time.Time { return time.Unix(evUnix+60, 0) }
	store := teststore.Memory(t, revocation.WithClock(now))
	e := newEnv(t, envOpt{
		validator: newValidator(t, token.WithClock(now)),
		store:     store,
		opts:      []interceptor.Option{interceptor.WithClock(now)},
	})
	raw := mint(t, tok{sub: "exact", iat: time.Unix(evUnix-100, 0), exp: time.Unix(evUnix+3600, 0)})
	if err := store.Put(context.Background(), revocation.Event{
		Type: revocation.TypeUserDisabled, Subject: revocation.IssuerSubjectKey(testIssuer, "exact"), Time: time.Unix(evUnix, 0),
	}); err != nil {
		t.Fatal(err)
	}
	_, err, h, tr := e.callUnary(withToken(testCtx(t), raw))
	d := readDenial(t, err, h, tr)
	assertChallenge(t, d, challenge.ErrorInsufficientClaims, caev1.Reason_REASON_USER_DISABLED)
	want := `Bearer realm="", authorization_uri="https://login.example/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNjA0MTA2NjUyIn19fQ=="`
	if d.wwwAuth[0] != want {
		t.Fatalf("www-authenticate\n got %s\nwant %s", d.wwwAuth[0], want)
	}
	b64 := strings.TrimSuffix(strings.SplitN(want, `claims="`, 2)[1], `"`)
	js, err := base64.StdEncoding.DecodeString(b64)
	// The challenge asks for the second after the event (issue 12 item 2): a
	// token issued in the event's own second is still revoked.
	if err != nil || string(js) != `{"access_token":{"nbf":{"essential":true,"value":"1604106652"}}}` {
		t.Fatalf("claims decode: %s %v", js, err)
	}
	if d.info.GetMetadata()["claims"] != b64 || d.info.GetMetadata()["event_time"] != "1604106651" ||
		d.info.GetMetadata()["authorization_uri"] != testAuthzURI {
		t.Fatalf("ErrorInfo metadata %v", d.info.GetMetadata())
	}
}

// A client without cp1 gets a plain invalid_token rejection, but is revoked all the same.
func TestNonCapableClientRevokedWithoutClaims(t *testing.T) {
	e := newEnv(t, envOpt{})
	ctx := withToken(testCtx(t), mint(t, tok{sid: "s-nocp1", noCaps: true}))
	if _, err, _, _ := e.callUnary(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Put(context.Background(), revocation.Event{
		Type: revocation.TypeUserRiskHigh, Subject: revocation.SessionKey(testIssuer, "s-nocp1"), Time: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	_, err, h, tr := e.callUnary(ctx)
	d := readDenial(t, err, h, tr)
	assertChallenge(t, d, challenge.ErrorInvalidToken, caev1.Reason_REASON_USER_RISK_HIGH)
	if strings.Contains(d.wwwAuth[0], "claims=") || !strings.Contains(d.wwwAuth[0], `error="invalid_token", error_description="token revoked`) {
		t.Fatalf("www-authenticate %s", d.wwwAuth[0])
	}

	// xms_cc is compared case-insensitively; WithChallengeAll challenges anyone.
	ctx = withToken(testCtx(t), mint(t, tok{sid: "s-nocp1", caps: []string{"CP1"}}))
	_, err, h, tr = e.callUnary(ctx)
	assertChallenge(t, readDenial(t, err, h, tr), challenge.ErrorInsufficientClaims, caev1.Reason_REASON_USER_RISK_HIGH)

	e2 := newEnv(t, envOpt{store: e.store, opts: []interceptor.Option{interceptor.WithChallengeAll()}})
	_, err, h, tr = e2.callUnary(withToken(testCtx(t), mint(t, tok{sid: "s-nocp1", noCaps: true})))
	assertChallenge(t, readDenial(t, err, h, tr), challenge.ErrorInsufficientClaims, caev1.Reason_REASON_USER_RISK_HIGH)
}

func TestBadTokensRejected(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	v := newValidator(t, token.WithStaticKey("rsa1", &rsaKey.PublicKey))
	e := newEnv(t, envOpt{validator: v})
	now := time.Now()
	b64 := base64.RawURLEncoding.EncodeToString

	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	claims := jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "x", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	hsConfused := func(secret []byte) string {
		return testkit.Minter{Alg: "HS256", KID: "rsa1", Key: secret}.Mint(t, claims)
	}
	unknownKID := testkit.Minter{Alg: "ES256", KID: "nope", Key: signingKey(t)}.Mint(t, claims)
	payload, _ := json.Marshal(claims)
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(payload) + "."
	wrongISS := mint(t, tok{extra: jwt.MapClaims{"iss": "https://evil.example"}})
	wrongAUD := mint(t, tok{extra: jwt.MapClaims{"aud": "api://other"}})
	expired := mint(t, tok{iat: now.Add(-3 * time.Hour), exp: now.Add(-2 * time.Hour)})
	future := mint(t, tok{nbf: now.Add(time.Hour)})
	good := mint(t, tok{})
	tampered := good[:strings.LastIndexByte(good, '.')] + "." + b64([]byte(strings.Repeat("x", 64)))

	cases := []struct {
		name, auth string
		reason     caev1.Reason
	}{
		{"missing", "", caev1.Reason_REASON_TOKEN_INVALID},
		{"not bearer", "Basic dXNlcjpwYXNz", caev1.Reason_REASON_TOKEN_INVALID},
		{"empty bearer", "Bearer ", caev1.Reason_REASON_TOKEN_INVALID},
		{"alg none", "Bearer " + algNone, caev1.Reason_REASON_TOKEN_INVALID},
		{"HS256 with RSA public key DER", "Bearer " + hsConfused(pubDER), caev1.Reason_REASON_TOKEN_INVALID},
		{"HS256 with RSA public key PEM", "Bearer " + hsConfused(pubPEM), caev1.Reason_REASON_TOKEN_INVALID},
		{"unknown kid", "Bearer " + unknownKID, caev1.Reason_REASON_TOKEN_INVALID},
		{"wrong iss", "Bearer " + wrongISS, caev1.Reason_REASON_TOKEN_INVALID},
		{"wrong aud", "Bearer " + wrongAUD, caev1.Reason_REASON_TOKEN_INVALID},
		{"expired", "Bearer " + expired, caev1.Reason_REASON_TOKEN_EXPIRED},
		{"nbf in future", "Bearer " + future, caev1.Reason_REASON_TOKEN_INVALID},
		{"bad signature", "Bearer " + tampered, caev1.Reason_REASON_TOKEN_INVALID},
		{"garbage base64", "Bearer !!!.@@@.###", caev1.Reason_REASON_TOKEN_INVALID},
		{"oversized", "Bearer " + strings.Repeat("a", 12<<10) + "." + strings.Repeat("b", 6<<10) + ".c", caev1.Reason_REASON_TOKEN_INVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			if c.auth != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.auth)
			}
			_, err, h, tr := e.callUnary(ctx)
			d := readDenial(t, err, h, tr)
			assertChallenge(t, d, challenge.ErrorInvalidToken, c.reason)
			if d.cc.GetErrorDescription() == "" || !strings.Contains(d.wwwAuth[0], "error_description=") {
				t.Fatalf("no description of what was wrong: %v", d.cc)
			}
			if tok := strings.TrimPrefix(c.auth, "Bearer "); len(tok) > 8 && (strings.Contains(d.msg, tok) || strings.Contains(d.wwwAuth[0], tok)) {
				t.Fatal("the token leaked into the denial")
			}
		})
	}

	t.Run("two authorization values", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(testCtx(t), "authorization", "Bearer "+good, "authorization", "Bearer "+good)
		_, err, h, tr := e.callUnary(ctx)
		d := readDenial(t, err, h, tr)
		assertChallenge(t, d, challenge.ErrorInvalidToken, caev1.Reason_REASON_TOKEN_INVALID)
		if !strings.Contains(d.msg, "exactly one") {
			t.Fatalf("message %q", d.msg)
		}
	})
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(testCtx(t), "authorization", "bEaReR "+good)
		if _, err, _, _ := e.callUnary(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestJWKSOverHTTP(t *testing.T) {
	k := signingKey(t)
	jwks := map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": testKID, "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(k.PublicKey.X.FillBytes(make([]byte, 32))),
		"y": base64.RawURLEncoding.EncodeToString(k.PublicKey.Y.FillBytes(make([]byte, 32))),
	}}}
	var fetches atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jwks)
	}))
	defer hs.Close()
	v, err := token.NewValidator(context.Background(),
		token.WithIssuer(testIssuer), token.WithAudience(testAudience), token.WithJWKSURL(hs.URL), token.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	e := newEnv(t, envOpt{validator: v})
	ctx := withToken(testCtx(t), mint(t, tok{sid: "s-jwks"}))
	if _, err, _, _ := e.callUnary(ctx); err != nil {
		t.Fatal(err)
	}
	if fetches.Load() == 0 {
		t.Fatal("JWKS never fetched")
	}
	if err := e.store.Put(context.Background(), revocation.Event{Type: revocation.TypeMFAEnabled, Subject: revocation.SessionKey(testIssuer, "s-jwks"), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err, h, tr := e.callUnary(ctx)
	assertChallenge(t, readDenial(t, err, h, tr), challenge.ErrorInsufficientClaims, caev1.Reason_REASON_MFA_ENABLED)
}

func TestExemptions(t *testing.T) {
	register := func(gs *grpc.Server) { healthpb.RegisterHealthServer(gs, health.NewServer()) }
	hreq := &healthpb.HealthCheckRequest{}

	e := newEnv(t, envOpt{register: register})
	if _, err := healthpb.NewHealthClient(e.conn).Check(testCtx(t), hreq); codes.Unauthenticated != statusCode(err) {
		t.Fatalf("health without exemption: %v", err)
	}

	e = newEnv(t, envOpt{register: register, opts: []interceptor.Option{interceptor.WithExempt(interceptor.HealthAndReflection())}})
	if _, err := healthpb.NewHealthClient(e.conn).Check(testCtx(t), hreq); err != nil {
		t.Fatalf("health exempt: %v", err)
	}
	if _, err, _, _ := e.callUnary(testCtx(t)); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("GetMessage must still need a token: %v", err)
	}

	e = newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithExemptMethods(inboxv1.InboxService_GetMessage_FullMethodName)}})
	resp, err, _, _ := e.callUnary(testCtx(t))
	if err != nil || resp.GetSubject() != "<none>" {
		t.Fatalf("exempt method: %v %v", resp, err)
	}
	up, err := e.client.Upload(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.CloseAndRecv(); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("Upload must not be exempt: %v", err)
	}

	e = newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithExemptMethods("/example.inbox.v1.InboxService/")}})
	up, err = e.client.Upload(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.CloseAndRecv(); err != nil {
		t.Fatalf("whole service exempt: %v", err)
	}
}

func statusCode(err error) codes.Code { return status.Code(err) }

func TestStaleStoreFailsClosed(t *testing.T) {
	st := &unhealthyStore{Memory: teststore.Memory(t)}
	e := newEnv(t, envOpt{store: st})
	ctx := withToken(testCtx(t), mint(t, tok{}))
	if _, err, _, _ := e.callUnary(ctx); err != nil {
		t.Fatal(err)
	}
	st.stale.Store(true)
	_, err, h, tr := e.callUnary(ctx)
	d := readDenial(t, err, h, tr)
	if d.code != codes.Unavailable || d.info.GetReason() != "STATE_UNAVAILABLE" || d.cc != nil || len(d.wwwAuth) != 0 {
		t.Fatalf("stale store: %+v", d)
	}
}

func TestMaxNonCAELifetime(t *testing.T) {
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithMaxNonCAELifetime(90 * time.Minute)}})
	long := tok{exp: time.Now().Add(24 * time.Hour), noCaps: true}
	_, err, h, tr := e.callUnary(withToken(testCtx(t), mint(t, long)))
	d := readDenial(t, err, h, tr)
	assertChallenge(t, d, challenge.ErrorInvalidToken, caev1.Reason_REASON_TOKEN_LIFETIME)
	if !strings.Contains(d.msg, "cp1") {
		t.Fatalf("message %q does not say what to do", d.msg)
	}
	long.noCaps, long.caps = false, []string{"cp1"}
	if _, err, _, _ := e.callUnary(withToken(testCtx(t), mint(t, long))); err != nil {
		t.Fatalf("a CAE client may hold a long-lived token: %v", err)
	}
	if _, err, _, _ := e.callUnary(withToken(testCtx(t), mint(t, tok{noCaps: true}))); err != nil {
		t.Fatalf("a 1h token without cp1: %v", err)
	}
}

func TestCustomChecksRunInOrderAfterRevocation(t *testing.T) {
	var calls []string
	var sawMD atomic.Bool
	first := interceptor.CheckFunc(func(_ context.Context, r *interceptor.Request) *interceptor.Denial {
		calls = append(calls, "first")
		if r.Claims == nil || r.FullMethod != inboxv1.InboxService_GetMessage_FullMethodName || r.Now.IsZero() || r.Peer == nil {
			t.Errorf("request %+v", r)
		}
		if len(r.Metadata.Get("x-tenant-hint")) == 1 {
			sawMD.Store(true)
		}
		if r.Claims.Subject == "stepup" {
			return &interceptor.Denial{
				Reason:      caev1.Reason_REASON_AUTH_CONTEXT,
				Claims:      challenge.AuthContextClaims("c1"),
				Description: "this method requires authentication context c1",
				Params:      []interceptor.Param{{Name: "cc_type", Value: "authcontext"}},
			}
		}
		return nil
	})
	second := interceptor.CheckFunc(func(context.Context, *interceptor.Request) *interceptor.Denial {
		calls = append(calls, "second")
		return nil
	})
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(first, second)}})
	ctx := metadata.AppendToOutgoingContext(withToken(testCtx(t), mint(t, tok{})), "x-tenant-hint", "t1")
	if _, err, _, _ := e.callUnary(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls, ",") != "first,second" || !sawMD.Load() {
		t.Fatalf("calls %v, metadata seen %v", calls, sawMD.Load())
	}
	calls = nil
	_, err, h, tr := e.callUnary(withToken(testCtx(t), mint(t, tok{sub: "stepup"})))
	d := readDenial(t, err, h, tr)
	assertChallenge(t, d, challenge.ErrorInsufficientClaims, caev1.Reason_REASON_AUTH_CONTEXT)
	want := `Bearer realm="", authorization_uri="https://login.example/authorize", error="insufficient_claims", claims="` +
		base64.StdEncoding.EncodeToString([]byte(`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`)) + `", cc_type="authcontext"`
	if d.wwwAuth[0] != want {
		t.Fatalf("got  %s\nwant %s", d.wwwAuth[0], want)
	}
	if strings.Join(calls, ",") != "first" {
		t.Fatalf("first denial must win: %v", calls)
	}

	// Revocation runs first: a revoked token never reaches custom checks.
	calls = nil
	if err := e.store.Put(context.Background(), revocation.Event{Type: revocation.TypeUserDeleted, Subject: revocation.IssuerSubjectKey(testIssuer, "gone"), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err, h, tr = e.callUnary(withToken(testCtx(t), mint(t, tok{sub: "gone"})))
	assertChallenge(t, readDenial(t, err, h, tr), challenge.ErrorInsufficientClaims, caev1.Reason_REASON_USER_DELETED)
	if len(calls) != 0 {
		t.Fatalf("custom checks ran for a revoked token: %v", calls)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	v := newValidator(t)
	if _, err := interceptor.New(nil); err == nil {
		t.Fatal("nil validator accepted")
	}
	bad := map[string]interceptor.Option{
		"relative authorization URI": interceptor.WithAuthorizationURI("/authorize"),
		"ftp authorization URI":      interceptor.WithAuthorizationURI("ftp://x/authorize"),
		"empty capability":           interceptor.WithCapability(""),
		"nil store":                  interceptor.WithStore(nil),
		"nil check":                  interceptor.WithChecks(nil),
		"negative lifetime":          interceptor.WithMaxNonCAELifetime(-time.Second),
		"bad exempt method":          interceptor.WithExemptMethods("GetMessage"),
		"nil matcher":                interceptor.WithExempt(nil),
		"nil logger":                 interceptor.WithLogger(nil),
		"nil clock":                  interceptor.WithClock(nil),
		"tiny recheck interval":      interceptor.WithStreamRecheckInterval(time.Microsecond),
		"quote in realm":             interceptor.WithRealm(`a"b`),
	}
	for name, o := range bad {
		s, err := interceptor.New(v, o)
		if err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "interceptor: ") {
			t.Errorf("%s: error %q lacks context", name, err)
		}
	}
	s, err := interceptor.New(v, interceptor.WithLogger(slog.New(slog.DiscardHandler)), interceptor.WithCapability("CP1"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Store() == nil {
		t.Fatal("no default store")
	}
	s.Close()
	s.Close() // idempotent
}

func TestClosedServerRefuses(t *testing.T) {
	e := newEnv(t, envOpt{})
	ctx := withToken(testCtx(t), mint(t, tok{}))
	e.srv.Close()
	_, err, h, tr := e.callUnary(ctx)
	if d := readDenial(t, err, h, tr); d.code != codes.Unavailable || d.info.GetReason() != "STATE_UNAVAILABLE" {
		t.Fatalf("after Close: %+v", d)
	}
}

// Denials are logged with the token's hash prefix, never the token.
func TestLogsNeverContainTokens(t *testing.T) {
	var buf testkit.LogBuffer
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithLogger(slog.New(slog.NewTextHandler(&buf, nil)))}})
	good := mint(t, tok{sid: "s-log"})
	forged := good[:strings.LastIndexByte(good, '.')] + ".AAAA"
	if _, err, _, _ := e.callUnary(withToken(testCtx(t), forged)); statusCode(err) != codes.Unauthenticated {
		t.Fatal(err)
	}
	putSession(t, e.store, "s-log", revocation.TypeUserDeleted)
	if _, err, _, _ := e.callUnary(withToken(testCtx(t), good)); statusCode(err) != codes.Unauthenticated {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, forged) || strings.Contains(out, good) || strings.Contains(out, good[:40]) {
		t.Fatalf("a token leaked into the log:\n%s", out)
	}
	for _, want := range []string{token.Hash(forged), token.Hash(good), "reason=TOKEN_INVALID", "reason=USER_DELETED", "method=" + inboxv1.InboxService_GetMessage_FullMethodName} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// What the server emits, the challenge package's client-side parsers read back.
func TestChallengeRoundTripsThroughClientParsers(t *testing.T) {
	e := newEnv(t, envOpt{})
	evTime := time.Now().Truncate(time.Second)
	if err := e.store.Put(context.Background(), revocation.Event{ID: "evt-rt", Type: revocation.TypeRefreshTokensRevoked, Subject: revocation.SessionKey(testIssuer, "s-rt"), Time: evTime}); err != nil {
		t.Fatal(err)
	}
	_, err, _, tr := e.callUnary(withToken(testCtx(t), mint(t, tok{sid: "s-rt"})))
	got, xerr := challenge.Extract(err, tr)
	if xerr != nil {
		t.Fatal(xerr)
	}
	wantClaims := `{"access_token":{"nbf":{"essential":true,"value":"` + strconv.FormatInt(evTime.Unix()+1, 10) + `"}}}`
	if got.Error != challenge.ErrorInsufficientClaims || got.Claims != wantClaims || got.AuthorizationURI != testAuthzURI ||
		got.Reason != caev1.Reason_REASON_REFRESH_TOKENS_REVOKED || !got.EventTime.Equal(evTime) || got.EventID != "evt-rt" {
		t.Fatalf("Extract: %+v", got)
	}
	parsed, perr := challenge.Parse(tr.Get(challenge.MetadataKey)...)
	if perr != nil || parsed.Claims != wantClaims || parsed.Error != challenge.ErrorInsufficientClaims {
		t.Fatalf("Parse: %+v %v", parsed, perr)
	}
}

// metadataFree is a check that declares it never reads Request.Metadata.
type metadataFree struct{ saw *atomic.Bool }

func (m metadataFree) Check(_ context.Context, r *interceptor.Request) *interceptor.Denial {
	if r.Metadata != nil {
		m.saw.Store(true)
	}
	return nil
}

func (metadataFree) UsesMetadata() bool { return false }

func TestMetadataCopiedOnlyForChecksThatUseIt(t *testing.T) {
	var sawFree, sawPlain atomic.Bool
	free := metadataFree{saw: &sawFree}
	e := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(free)}})
	ctx := metadata.AppendToOutgoingContext(withToken(testCtx(t), mint(t, tok{})), "x-hint", "1")
	if _, err, _, _ := e.callUnary(ctx); err != nil {
		t.Fatal(err)
	}
	if sawFree.Load() {
		t.Fatal("metadata was copied although every check declared UsesMetadata() == false")
	}
	plain := interceptor.CheckFunc(func(_ context.Context, r *interceptor.Request) *interceptor.Denial {
		if r.Metadata.Get("x-hint") != nil {
			sawPlain.Store(true)
		}
		return nil
	})
	e2 := newEnv(t, envOpt{opts: []interceptor.Option{interceptor.WithChecks(free, plain)}})
	ctx = metadata.AppendToOutgoingContext(withToken(testCtx(t), mint(t, tok{})), "x-hint", "1")
	if _, err, _, _ := e2.callUnary(ctx); err != nil {
		t.Fatal(err)
	}
	if !sawPlain.Load() {
		t.Fatal("a check without MetadataUser did not get the metadata")
	}
}
