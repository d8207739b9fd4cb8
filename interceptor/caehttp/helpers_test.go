package caehttp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/caehttp"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testIssuer   = "https://login.example/tenant-1/v2.0"
	testAudience = "api://inbox"
	testTenant   = "tenant-1"
	testAuthzURI = "https://login.example/authorize"
	testKID      = "k1"
)

var (
	keyOnce sync.Once
	ecKey   *ecdsa.PrivateKey
)

func signingKey() *ecdsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		ecKey = k
	})
	return ecKey
}

// mint signs an ES256 access token for sub, issued 10 s ago (relative to
// the wall clock the validator also uses), valid for an hour, cp1-capable.
func mint(t testing.TB, sub string, extra jwt.MapClaims) string {
	t.Helper()
	iat := time.Now().Add(-10 * time.Second)
	c := jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": sub, "oid": "oid-" + sub, "tid": testTenant,
		"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(), "xms_cc": []string{"cp1"},
	}
	for k, v := range extra {
		c[k] = v
	}
	return testkit.Minter{Alg: "ES256", KID: testKID, Key: signingKey()}.Mint(t, c)
}

func newValidator(t testing.TB) *token.Validator {
	t.Helper()
	v, err := token.NewValidator(context.Background(),
		token.WithIssuer(testIssuer),
		token.WithAudience(testAudience),
		token.WithStaticKey(testKID, &signingKey().PublicKey),
		token.WithLogger(nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// env is one interceptor.Server with its store.
type env struct {
	srv   *interceptor.Server
	store *revocation.Memory
}

func newEnv(t testing.TB, opts ...interceptor.Option) *env {
	t.Helper()
	e := &env{store: teststore.Memory(t)}
	s, err := interceptor.New(newValidator(t), append([]interceptor.Option{
		interceptor.WithStore(e.store),
		interceptor.WithAuthorizationURI(testAuthzURI),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	e.srv = s
	return e
}

// revoke stores a user-disabled event for sub's object id, now.
func (e *env) revoke(t testing.TB, sub string) revocation.Event {
	t.Helper()
	ev := revocation.Event{
		ID:      "ev-" + sub,
		Type:    revocation.TypeUserDisabled,
		Subject: revocation.ObjectKey(testTenant, "oid-"+sub),
		Time:    time.Now(),
	}
	if err := e.store.Put(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// serve runs h behind the middleware on a real loopback server: HTTP/1.1
// in clear text, or HTTP/2 over TLS (httptest's EnableHTTP2), and returns
// its URL and a client for it.
func serve(t testing.TB, srv *interceptor.Server, h http.Handler, http2 bool, opts ...caehttp.Option) (string, *http.Client) {
	t.Helper()
	mw, err := caehttp.Middleware(srv, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(mw(h))
	if http2 {
		ts.EnableHTTP2 = true
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	c := ts.Client()
	t.Cleanup(c.CloseIdleConnections)
	return ts.URL, c
}

func get(t testing.TB, c *http.Client, url, tok string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

var protocols = []struct {
	name   string
	http2  bool
	protoM int
}{{"HTTP1.1", false, 1}, {"HTTP2", true, 2}}
