package main

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTTPCasesAuthenticate: the HTTP caekit case really enforces (the
// benchmark token gets 200, no token and a forged token get 401), the bare
// case serves without a token, a load run over both completes, and a load
// run whose requests are refused fails instead of reporting a throughput.
func TestHTTPCasesAuthenticate(t *testing.T) {
	fx := newFixtures()
	t.Cleanup(fx.close)
	bare, err := newHTTPEnv(fx, httpBareName, false, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bare.close)
	cae, err := newHTTPEnv(fx, httpCAEName, true, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cae.close)
	other, err := newSigner(algRS256)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.mint(1, "sid-bench-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		e      *env
		tok    string
		status int
	}{
		{bare, "", http.StatusOK}, {cae, cae.token, http.StatusOK},
		{cae, "", http.StatusUnauthorized}, {cae, forged, http.StatusUnauthorized},
	} {
		req, err := c.e.http.newRequest(c.tok)
		if err != nil {
			t.Fatal(err)
		}
		if c.tok == "" {
			req.Header.Del("Authorization")
		}
		err = c.e.http.get(req)
		if got := err == nil; got != (c.status == http.StatusOK) || (err != nil && !strings.Contains(err.Error(), "401")) {
			t.Errorf("%s, token %.10q: %v, want HTTP %d", c.e.spec.Name, c.tok, err, c.status)
		}
	}
	for _, st := range runInterleaved([]*env{bare, cae}, 2, 0, 40*time.Millisecond, 20*time.Millisecond) {
		if st.err != nil || st.result.Calls == 0 {
			t.Fatalf("interleaved HTTP run: %+v %v", st.result, st.err)
		}
	}
	cae.token = forged
	if _, err := runUnary(cae, 2, 0, 20*time.Millisecond); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("refused requests: err = %v, want an HTTP 401 failure", err)
	}
}

// TestSSECutMeasurement: the SSE cut measurement ends each response by an
// event put into the store (a response that kept going would time out the
// sample and fail it).
func TestSSECutMeasurement(t *testing.T) {
	fx := newFixtures()
	t.Cleanup(fx.close)
	e, err := newHTTPEnv(fx, "HTTP caekit (writable store)", true, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	l, err := measureSSECut(e, 3)
	if err != nil || l.N != 3 || l.P99us <= 0 || l.P50us > l.P99us {
		t.Fatalf("measureSSECut = %+v, %v", l, err)
	}
	bare, err := newHTTPEnv(fx, httpBareName, false, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bare.close)
	if _, err := measureSSECut(bare, 1); err == nil {
		t.Fatal("measureSSECut on a case without caekit did not fail")
	}
}

// BenchmarkHTTP runs GET /v1/messages/42 over HTTP/1.1 keep-alive on
// loopback, with and without caekit's middleware, at c workers.
func BenchmarkHTTP(b *testing.B) {
	fx := sharedFixtures()
	for i, name := range []string{httpBareName, httpCAEName} {
		for _, c := range []int{1, 64} {
			b.Run(strings.ReplaceAll(name, " ", "_")+"/c="+itoa(c), func(b *testing.B) {
				e, err := newHTTPEnv(fx, name, i == 1, false)
				if err != nil {
					b.Fatal(err)
				}
				defer e.close()
				par := max(1, c/runtime.GOMAXPROCS(0))
				n := par * runtime.GOMAXPROCS(0) // RunParallel's goroutines: about c
				reqs := make(chan *http.Request, n)
				for range n {
					r, err := e.http.newRequest(e.token)
					if err != nil {
						b.Fatal(err)
					}
					reqs <- r
				}
				b.ReportAllocs()
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := <-reqs
					defer func() { reqs <- r }()
					for pb.Next() {
						if err := e.http.get(r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkHTTPMiddleware is the middleware alone (httptest.NewRecorder,
// cache hit) beside the handler alone: allocations per request.
func BenchmarkHTTPMiddleware(b *testing.B) {
	b.Run("handler", benchHTTPHandlerOnly)
	b.Run("caekit", benchHTTPMiddleware(sharedFixtures()))
}

// BenchmarkSSECut is the time from an event put into the store to the
// client seeing the SSE response end (ns/op is that time).
func BenchmarkSSECut(b *testing.B) {
	e, err := newHTTPEnv(sharedFixtures(), "HTTP caekit (writable store)", true, true)
	if err != nil {
		b.Fatal(err)
	}
	defer e.close()
	for i := range b.N {
		if _, err := sseCutOnce(e, "sid-bench-sse-"+itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
