package interceptor_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// tcpEnv is a server with the interceptors on a real 127.0.0.1 TCP listener.
type tcpEnv struct {
	inbox  *testkit.Inbox
	client inboxv1.InboxServiceClient
}

func newTCPEnv(t *testing.T, v interceptor.Validator, opts ...interceptor.Option) *tcpEnv {
	t.Helper()
	s, err := interceptor.New(v, append([]interceptor.Option{interceptor.WithAuthorizationURI(testAuthzURI)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(s.ServerOptions()...)
	e := &tcpEnv{inbox: newInbox()}
	inboxv1.RegisterInboxServiceServer(gs, e.inbox)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.client = inboxv1.NewInboxServiceClient(conn)
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		<-done
		s.Close()
	})
	return e
}

// signRawES256 signs exact header and payload JSON with the test key.
func signRawES256(t testing.TB, header, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	signing := enc([]byte(header)) + "." + enc([]byte(payload))
	sig, err := jwt.SigningMethodES256.Sign(signing, signingKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc(sig)
}

// TestAdversarialTokensOverGRPC sends hostile tokens through the interceptors
// over a real TCP connection, on a unary call and on a stream, and checks
// each is refused with Unauthenticated and the right CAE reason, that the
// handler never runs, and that nothing a token names is fetched.
func TestAdversarialTokensOverGRPC(t *testing.T) {
	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { evilHits.Add(1) }))
	defer evil.Close()
	// Two accepted issuers: the key must name both (token.WithStaticKeyFor).
	const tenantTmpl = "https://login.example/{tid}/v2.0"
	v, err := token.NewValidator(context.Background(), token.WithIssuer(testIssuer), token.WithAudience(testAudience),
		token.WithTenantIssuer(tenantTmpl, "tenant-1"),
		token.WithStaticKeyFor(testKID, &signingKey(t).PublicKey, testIssuer, tenantTmpl), token.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	e := newTCPEnv(t, v)

	now := time.Now()
	times := fmt.Sprintf(`"iat":%d,"exp":%d`, now.Add(-time.Minute).Unix(), now.Add(time.Hour).Unix())
	hdr := `{"alg":"ES256","kid":"` + testKID + `"}`
	body := func(members string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":%q,"tid":%q,%s,%s}`, testIssuer, testAudience, testTenant, times, members)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	attacker := func(hdr jwt.MapClaims) string {
		return testkit.Minter{Alg: "ES256", Key: other}.MintHeader(t, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "x",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}, hdr)
	}

	rows := []struct {
		name   string
		token  string
		reason caev1.Reason
	}{
		{"duplicate sub", signRawES256(t, hdr, body(`"sub":"alice","sub":"admin"`)), caev1.Reason_REASON_TOKEN_INVALID},
		{"duplicate alg", signRawES256(t, `{"alg":"none","alg":"ES256","kid":"`+testKID+`"}`, body(`"sub":"alice"`)), caev1.Reason_REASON_TOKEN_INVALID},
		{"duplicate iss via escape", signRawES256(t, hdr, body(`"sub":"a","\u0069ss":"https://evil.example"`)), caev1.Reason_REASON_TOKEN_INVALID},
		{"deeply nested payload", signRawES256(t, hdr, body(`"sub":"a","x":`+deep)), caev1.Reason_REASON_TOKEN_INVALID},
		{"crit header", signRawES256(t, `{"alg":"ES256","kid":"`+testKID+`","crit":["exp"]}`, body(`"sub":"a"`)), caev1.Reason_REASON_TOKEN_INVALID},
		{"jku and x5u to an attacker's server", attacker(jwt.MapClaims{"kid": "evil", "jku": evil.URL, "x5u": evil.URL}), caev1.Reason_REASON_TOKEN_INVALID},
		{"trusted kid, attacker's key in jwk", attacker(jwt.MapClaims{"kid": testKID, "jwk": map[string]any{"kty": "EC"}}), caev1.Reason_REASON_TOKEN_INVALID},
		{"kid path traversal", attacker(jwt.MapClaims{"kid": "../../etc/passwd"}), caev1.Reason_REASON_TOKEN_INVALID},
		{"kid URL", attacker(jwt.MapClaims{"kid": evil.URL + "/k"}), caev1.Reason_REASON_TOKEN_INVALID},
		{"unlisted tenant", mint(t, tok{extra: jwt.MapClaims{"iss": "https://login.example/tenant-2/v2.0", "tid": "tenant-2"}}), caev1.Reason_REASON_TOKEN_INVALID},
		{"iat in the future", mint(t, tok{iat: now.Add(time.Hour), exp: now.Add(2 * time.Hour)}), caev1.Reason_REASON_TOKEN_INVALID},
		{"expired", mint(t, tok{iat: now.Add(-2 * time.Hour), exp: now.Add(-time.Hour)}), caev1.Reason_REASON_TOKEN_EXPIRED},
		{"huge token", mint(t, tok{extra: jwt.MapClaims{"pad": strings.Repeat("p", 20<<10)}}), caev1.Reason_REASON_TOKEN_INVALID},
		{"truncated signature", mint(t, tok{})[:100], caev1.Reason_REASON_TOKEN_INVALID},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(testCtx(t), "authorization", "Bearer "+row.token)
			var h, tr metadata.MD
			resp, err := e.client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}, grpc.Header(&h), grpc.Trailer(&tr))
			if err == nil {
				t.Fatalf("unary call allowed: %v", resp)
			}
			d := readDenial(t, err, h, tr)
			assertChallenge(t, d, challenge.ErrorInvalidToken, row.reason)
			if strings.Contains(d.msg, row.token) || strings.Contains(d.wwwAuth[0], row.token) {
				t.Fatal("the token leaked into the denial")
			}

			// The same token on a server stream: refused before the handler.
			w, err := e.client.WatchInbox(ctx, &inboxv1.WatchInboxRequest{IntervalMs: 5})
			if err == nil {
				_, err = w.Recv()
			}
			if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated {
				t.Fatalf("stream: %v, want Unauthenticated", err)
			}
		})
	}
	select {
	case name := <-e.inbox.Returned:
		t.Fatalf("handler %s ran for a refused token", name)
	default:
	}
	if n := evilHits.Load(); n != 0 {
		t.Fatalf("a URL named by a token was fetched %d times", n)
	}

	// Control: a genuine token works on both.
	ctx := metadata.AppendToOutgoingContext(testCtx(t), "authorization", "Bearer "+mint(t, tok{}))
	if _, err := e.client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}); err != nil {
		t.Fatalf("control: %v", err)
	}
}

// TestRotatedOutKeyOverGRPC: a token whose key left the JWK Set is still
// served from the verified-token cache during the grace period and refused,
// cache hit or not, once it ends; the denial is TOKEN_INVALID.
func TestRotatedOutKeyOverGRPC(t *testing.T) {
	k := signingKey(t)
	jwk := map[string]string{"kty": "EC", "crv": "P-256", "kid": testKID, "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(k.PublicKey.X.FillBytes(make([]byte, 32))),
		"y": base64.RawURLEncoding.EncodeToString(k.PublicKey.Y.FillBytes(make([]byte, 32)))}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherJWK := map[string]string{"kty": "EC", "crv": "P-256", "kid": "next", "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(other.PublicKey.X.FillBytes(make([]byte, 32))),
		"y": base64.RawURLEncoding.EncodeToString(other.PublicKey.Y.FillBytes(make([]byte, 32)))}
	var rotated atomic.Bool
	var fetches atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		keys := []map[string]string{jwk}
		if rotated.Load() {
			keys = []map[string]string{otherJWK}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	defer hs.Close()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	const grace = 5 * time.Minute
	v, err := token.NewValidator(context.Background(), token.WithIssuer(testIssuer), token.WithAudience(testAudience),
		token.WithJWKSURL(hs.URL), token.WithLogger(nil), token.WithClock(now), token.WithKeyRotationGrace(grace),
		token.WithRefreshInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	e := newTCPEnv(t, v)
	raw := mint(t, tok{exp: time.Now().Add(24 * time.Hour)})
	call := func() error {
		ctx := metadata.AppendToOutgoingContext(testCtx(t), "authorization", "Bearer "+raw)
		_, err := e.client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"})
		return err
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	rotated.Store(true)
	n := fetches.Load()
	deadline := time.Now().Add(5 * time.Second)
	for fetches.Load() < n+2 { // two refreshes: the rotation has been installed
		if time.Now().After(deadline) {
			t.Fatal("no refresh")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := call(); err != nil {
		t.Fatalf("within the grace period: %v", err)
	}
	clock.Add(int64(grace + time.Second))
	err = call()
	if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "withdrawn") {
		t.Fatalf("after the grace period: %v, want Unauthenticated naming the withdrawn key", err)
	}
}
