package caehttp_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/caehttp"
	"github.com/caekit/caekit/internal/testkit/testcae"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mint signs a cp1-capable access token for sub, issued 10 s ago by the
// wall clock the validator also reads (testcae.Mint).
var mint = testcae.Mint

// env is one interceptor.Server with its store.
type env struct {
	srv   *interceptor.Server
	store *revocation.Memory
}

func newEnv(t testing.TB, opts ...interceptor.Option) *env {
	t.Helper()
	e := &env{store: teststore.Memory(t)}
	e.srv = testcae.Server(t, testcae.Validator(t), e.store, opts...)
	return e
}

// revoke stores a user-disabled event for sub's object id, now.
func (e *env) revoke(t testing.TB, sub string) revocation.Event {
	t.Helper()
	return testcae.Revoke(t, e.store, sub)
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
