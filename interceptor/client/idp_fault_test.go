package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/testidp"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// IdP token endpoint faults as the client sees them: the endpoint is slow
// (5 s), down (503), or answers garbage, before the client has a token or
// while it holds a valid one. Calls never hang past their deadline, a fault
// does not turn into a request storm, and the client recovers by itself.

type idpFault int32

const (
	faultNone idpFault = iota
	faultSlow
	faultUnavailable
	faultHTML
	faultNoToken
	faultTruncated
)

var faultNames = map[idpFault]string{faultSlow: "slow 5s", faultUnavailable: "503", faultHTML: "200 with HTML",
	faultNoToken: "200 JSON without access_token", faultTruncated: "200 truncated JSON"}

// faultyIdP sits in front of the test IdP's token endpoint, on loopback, and
// injects the current fault; without one it forwards the request.
type faultyIdP struct {
	srv   *httptest.Server
	fault atomic.Int32
	hits  atomic.Int64
}

func newFaultyIdP(t *testing.T, idp *testidp.IdP) *faultyIdP {
	t.Helper()
	f := &faultyIdP{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		switch idpFault(f.fault.Load()) {
		case faultSlow:
			select {
			case <-time.After(slowIdPDelay):
			case <-r.Context().Done():
				return
			}
		case faultUnavailable:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		case faultHTML:
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html><body>Gateway error</body></html>")
			return
		case faultNoToken:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"token_type":"Bearer","expires_in":3600}`)
			return
		case faultTruncated:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"eyJhbGciOi`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, idp.TokenURL(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(f.srv.Close)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	return f
}

func (f *faultyIdP) set(x idpFault) { f.fault.Store(int32(x)) }

// faultySource is an httpsource.Source through a faultyIdP (stored in *f),
// whose tokens ask for a refresh after refreshAfter when it is positive.
func faultySource(t *testing.T, f **faultyIdP, refreshAfter time.Duration) func(*testidp.IdP) client.TokenSource {
	return func(idp *testidp.IdP) client.TokenSource {
		*f = newFaultyIdP(t, idp)
		src, err := httpsource.New((*f).srv.URL+"/token", httpsource.WithPassword(testidp.ClientID, testidp.ClientSecret, testidp.Username, testidp.Password))
		if err != nil {
			panic(err)
		}
		return client.TokenSourceFunc(func(ctx context.Context, req client.TokenRequest) (*client.Token, error) {
			tok, err := src.Token(ctx, req)
			if err == nil && refreshAfter > 0 {
				tok.RefreshAt = time.Now().Add(refreshAfter)
			}
			return tok, err
		})
	}
}

// TestIdPFaultsBeforeFirstToken: with no token yet, every call fails (never
// hangs past its deadline, never reaches the service without a token), the
// fault costs a bounded number of token requests, and once the IdP is
// healthy again the next call succeeds without restarting anything.
func TestIdPFaultsBeforeFirstToken(t *testing.T) {
	for _, fault := range []idpFault{faultSlow, faultUnavailable, faultHTML, faultNoToken, faultTruncated} {
		t.Run(faultNames[fault], func(t *testing.T) {
			t.Parallel()
			var f *faultyIdP
			e := newEnv(t, envConfig{src: faultySource(t, &f, 0)})
			f.set(fault)
			var worst time.Duration
			const calls = 5
			for range calls {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				start := time.Now()
				_, err := e.api.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"})
				d := time.Since(start)
				cancel()
				if err == nil {
					t.Fatal("a call succeeded without a token")
				}
				if c := status.Code(err); c != codes.Unauthenticated && c != codes.Unavailable && c != codes.DeadlineExceeded {
					t.Fatalf("code %v (%v): want Unauthenticated, Unavailable or DeadlineExceeded", c, err)
				}
				worst = max(worst, d)
			}
			if worst > 2*time.Second {
				t.Fatalf("a call took %v with a 300ms deadline", worst)
			}
			if n := e.sends.Load(); n != 0 {
				t.Fatalf("%d calls reached the server without a token", n)
			}
			if n := f.hits.Load(); n > 3*calls {
				t.Fatalf("%d token requests for %d calls", n, calls)
			}
			t.Logf("%s: worst call %v, %d token requests for %d calls", faultNames[fault], worst.Round(time.Millisecond), f.hits.Load(), calls)

			f.set(faultNone)
			testkit.Eventually(t, "recovery", func() bool { return e.get() == nil })
		})
	}
}

// slowIdPDelay is how long the slow IdP takes to answer.
const slowIdPDelay = 5 * time.Second

// TestIdPFaultsWhileTokenValid: the token needs a refresh but the IdP
// misbehaves; calls keep going with the valid token, without waiting for
// the IdP, and the refresh succeeds once it is healthy.
func TestIdPFaultsWhileTokenValid(t *testing.T) {
	for _, fault := range []idpFault{faultSlow, faultUnavailable, faultHTML, faultNoToken, faultTruncated} {
		t.Run(faultNames[fault], func(t *testing.T) {
			t.Parallel()
			var f *faultyIdP
			e := newEnv(t, envConfig{src: faultySource(t, &f, 20*time.Millisecond)})
			if err := e.get(); err != nil {
				t.Fatal(err)
			}
			f.set(fault)
			time.Sleep(30 * time.Millisecond) // past RefreshAt
			var worst time.Duration
			deadline := time.Now().Add(500 * time.Millisecond)
			calls := 0
			for time.Now().Before(deadline) {
				start := time.Now()
				if err := e.get(); err != nil {
					t.Fatalf("call %d failed during the fault: %v", calls, err)
				}
				worst = max(worst, time.Since(start))
				calls++
			}
			// A call that waited for the IdP would take the slow IdP's whole
			// delay (or fail); half of it leaves a loaded machine ample room.
			if worst > slowIdPDelay/2 {
				t.Fatalf("a call waited %v for the IdP", worst)
			}
			if n := f.hits.Load(); n-1 >= int64(calls) || n > 20 {
				t.Fatalf("%d token requests for %d calls: no backoff", n, calls)
			}
			t.Logf("%s: %d calls, worst %v, %d token requests", faultNames[fault], calls, worst.Round(time.Microsecond), f.hits.Load())
			fetched := e.obs.count(client.EventTokenFetched)
			f.set(faultNone)
			testkit.Eventually(t, "a refresh after the fault", func() bool {
				_ = e.get()
				return e.obs.count(client.EventTokenFetched) > fetched
			})
		})
	}
}

// TestIdPFailuresBeforeFirstTokenBackOff: while the client has no token and
// the IdP fails fast, calls must not trigger a token request each, which
// would hit the IdP at the application's call rate exactly when it is
// struggling. Within the backoff (WithRefreshBackoff) after a failed fetch a
// call fails at once with a TokenError that wraps ErrBackingOff and the
// IdP's error; after the backoff the next call tries again, and once the IdP
// is healthy calls succeed.
func TestIdPFailuresBeforeFirstTokenBackOff(t *testing.T) {
	var f *faultyIdP
	e := newEnv(t, envConfig{src: faultySource(t, &f, 0)})
	f.set(faultUnavailable)
	const calls = 50
	backingOff := 0
	for range calls {
		err := e.get()
		if err == nil {
			t.Fatal("a call succeeded without a token")
		}
		if c := status.Code(err); c != codes.Unauthenticated {
			t.Fatalf("code %v (%v), want Unauthenticated", c, err)
		}
		if !errors.Is(err, client.ErrBackingOff) {
			continue
		}
		backingOff++
		var te *client.TokenError
		if !errors.As(err, &te) {
			t.Fatalf("backoff error is not a *TokenError: %T %v", err, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "next attempt in") || !strings.Contains(msg, "503") {
			t.Fatalf("backoff error %q does not say when it retries and why", msg)
		}
	}
	// Backoff 20ms..200ms (the harness's WithRefreshBackoff) over calls that
	// take well under a millisecond each allows a handful of requests.
	if n := f.hits.Load(); n > 10 {
		t.Fatalf("%d token requests for %d calls while the IdP was failing", n, calls)
	}
	if backingOff == 0 {
		t.Fatal("no call failed with ErrBackingOff")
	}
	if n := e.obs.count(client.EventTokenFetchFailed); int64(n) != f.hits.Load() {
		t.Fatalf("%d fetch failures observed for %d token requests", n, f.hits.Load())
	}
	// The backoff ends: a later call asks the IdP again and succeeds.
	f.set(faultNone)
	testkit.Eventually(t, "a call after the IdP recovered", func() bool { return e.get() == nil })
}
