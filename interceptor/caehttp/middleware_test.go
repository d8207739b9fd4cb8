package caehttp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/caehttp"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/internal/testkit"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// hello answers "hello <subject>" from the claims the middleware put in
// the request context.
var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := interceptor.ClaimsFromContext(r.Context())
	if !ok {
		http.Error(w, "no claims", http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, "hello "+c.Subject)
})

func readProblem(t *testing.T, resp *http.Response) (caehttp.Problem, string) {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != caehttp.ProblemContentType {
		t.Fatalf("Content-Type %q, want %q; body %s", ct, caehttp.ProblemContentType, b)
	}
	var p caehttp.Problem
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("problem body %s: %v", b, err)
	}
	return p, string(b)
}

func TestMiddlewareAllows(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			url, c := serve(t, e.srv, hello, p.http2)
			resp := get(t, c, url+"/v1/messages/1", mint(t, "alice", nil))
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(b) != "hello alice" {
				t.Fatalf("got %d %q, want 200 \"hello alice\"", resp.StatusCode, b)
			}
			if resp.ProtoMajor != p.protoM {
				t.Fatalf("served over HTTP/%d, want HTTP/%d", resp.ProtoMajor, p.protoM)
			}
		})
	}
}

// TestChallengeMatchesGRPCTrailer guards the promise that an HTTP client
// sees the very challenge a gRPC client gets: the WWW-Authenticate header
// of a revoked token is byte-identical to the www-authenticate trailer the
// gRPC interceptors send for the same token and event, so the Azure SDKs'
// BearerTokenPolicy answers it unchanged.
func TestChallengeMatchesGRPCTrailer(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			url, c := serve(t, e.srv, hello, p.http2)
			gs := grpc.NewServer(e.srv.ServerOptions()...)
			inboxv1.RegisterInboxServiceServer(gs, testkit.NewInbox())
			client := inboxv1.NewInboxServiceClient(testkit.ServeBufconn(t, gs))

			tok := mint(t, "bob", nil)
			ev := e.revoke(t, "bob")

			var trailer metadata.MD
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
			_, err := client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}, grpc.Trailer(&trailer))
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("gRPC: %v, want Unauthenticated", err)
			}
			want := trailer.Get(challenge.MetadataKey)
			if len(want) != 1 {
				t.Fatalf("gRPC trailer www-authenticate = %q", want)
			}

			resp := get(t, c, url+"/v1/messages/1", tok)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("HTTP status %d, want 401", resp.StatusCode)
			}
			got := resp.Header.Values("WWW-Authenticate")
			if len(got) != 1 || got[0] != want[0] {
				t.Fatalf("WWW-Authenticate\n %q\nwant the gRPC trailer\n %q", got, want[0])
			}
			ch, err := challenge.Parse(got...)
			if err != nil || !ch.InsufficientClaims() {
				t.Fatalf("challenge %q: %v, insufficient_claims=%v", got[0], err, err == nil && ch.InsufficientClaims())
			}
			prob, body := readProblem(t, resp)
			if prob.Status != 401 || prob.Reason != "USER_DISABLED" || prob.Type != caehttp.ProblemTypePrefix+"USER_DISABLED" ||
				prob.EventID != ev.ID || prob.Title != "Unauthorized" || prob.Detail == "" {
				t.Fatalf("problem %+v", prob)
			}
			if strings.Contains(body, tok) || strings.Contains(body, strings.Split(tok, ".")[2]) {
				t.Fatalf("problem body contains the token: %s", body)
			}
		})
	}
}

// TestPlainDenialIs403 guards the non-challenge rendering: a check's
// PermissionDenied without claims is 403 with a problem body and no
// WWW-Authenticate (a client must not try to answer it with a new token).
func TestPlainDenialIs403(t *testing.T) {
	deny := check.CheckFunc(func(_ context.Context, r *check.Request) *check.Denial {
		if r.FullMethod != "GET /admin" {
			return nil
		}
		return &check.Denial{Code: codes.PermissionDenied, Reason: caev1.Reason_REASON_LOCATION, Description: "not from here"}
	})
	e := newEnv(t, interceptor.WithChecks(deny))
	url, c := serve(t, e.srv, hello, false)
	resp := get(t, c, url+"/admin", mint(t, "carol", nil))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	if h := resp.Header.Values("WWW-Authenticate"); len(h) != 0 {
		t.Fatalf("WWW-Authenticate %q on a plain denial", h)
	}
	prob, _ := readProblem(t, resp)
	if prob.Status != 403 || prob.Reason != "LOCATION" || prob.Detail != "not from here" {
		t.Fatalf("problem %+v", prob)
	}
	// The route name the check saw comes from the request (no ServeMux
	// pattern): the same check lets other paths through.
	ok := get(t, c, url+"/v1/messages/1", mint(t, "carol", nil))
	ok.Body.Close()
	if ok.StatusCode != http.StatusOK {
		t.Fatalf("other path: %d", ok.StatusCode)
	}
}

// TestBadCredentials guards the authentication failures: each is 401 with
// an invalid_token challenge whose description says what was wrong in HTTP
// terms, and a garbage token is never echoed.
func TestBadCredentials(t *testing.T) {
	e := newEnv(t)
	url, c := serve(t, e.srv, hello, false)
	const garbage = "not-a-jwt-TOPSECRET"
	for _, tc := range []struct {
		name, auth string
		want       string
	}{
		{"missing", "", `missing Authorization header: send "Authorization: Bearer <token>"`},
		{"basic", "Basic dXNlcjpwdw==", `Authorization header is not "Bearer <token>"`},
		{"garbage", "Bearer " + garbage, "invalid token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, url+"/x", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			ch, err := challenge.Parse(resp.Header.Values("WWW-Authenticate")...)
			if err != nil || ch.Error != challenge.ErrorInvalidToken || !strings.Contains(ch.Description, tc.want) {
				t.Fatalf("challenge %+v (%v), want invalid_token with %q", ch, err, tc.want)
			}
			prob, body := readProblem(t, resp)
			if prob.Reason != "TOKEN_INVALID" || !strings.Contains(prob.Detail, tc.want) {
				t.Fatalf("problem %+v", prob)
			}
			if strings.Contains(body, garbage) || strings.Contains(resp.Header.Get("WWW-Authenticate"), garbage) {
				t.Fatalf("the token was echoed: %s", body)
			}
		})
	}
}

// sseHandler streams one event, then waits for the request context and
// reports its cause and the error of a write attempted after it.
type sseResult struct {
	cause, writeErr error
}

func sseHandler(results chan<- sseResult) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		_, err := io.WriteString(w, "data: after the cut\n\n")
		results <- sseResult{cause: context.Cause(r.Context()), writeErr: err}
	})
}

// TestSSECutByStoredEvent guards issue 15's SSE promise (WaveHouse#239:
// streams kept serving after revocation): an open event stream is cut when
// an event about its token is stored. The handler's context is cancelled
// with a *interceptor.DenialError carrying the revocation, the write it
// tries afterwards fails with it, the client's stream ends, and the cut is
// logged as gRPC stream cuts are.
func TestSSECutByStoredEvent(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			var logs testkit.LogBuffer
			e := newEnv(t, interceptor.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			results := make(chan sseResult, 1)
			url, c := serve(t, e.srv, sseHandler(results), p.http2)
			resp := get(t, c, url+"/v1/inbox/watch", mint(t, "dave", nil))
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "data: hello\n" {
				t.Fatalf("first event %q, %v", line, err)
			}

			e.revoke(t, "dave")

			var r sseResult
			select {
			case r = <-results:
			case <-time.After(30 * time.Second): // a hang guard, not a latency assertion
				t.Fatal("the handler's context was not cancelled after the event was stored")
			}
			var d *interceptor.DenialError
			if !errors.As(r.cause, &d) {
				t.Fatalf("context.Cause = %v (%T), want *interceptor.DenialError", r.cause, r.cause)
			}
			if d.Denial().Reason != caev1.Reason_REASON_USER_DISABLED || !d.MidStream() || d.Code() != codes.Unauthenticated {
				t.Fatalf("cause %v: reason %v, mid-stream %v", d, d.Denial().Reason, d.MidStream())
			}
			if ch, err := challenge.Parse(d.Challenge()); err != nil || !ch.InsufficientClaims() {
				t.Fatalf("cause's challenge %q: %v", d.Challenge(), err)
			}
			if !errors.As(r.writeErr, &d) {
				t.Fatalf("write after the cut: %v, want the DenialError", r.writeErr)
			}
			rest, _ := io.ReadAll(br) // the stream ends (EOF or a reset)
			if strings.Contains(string(rest), "after the cut") {
				t.Fatalf("data written after the cut reached the client: %q", rest)
			}
			testkit.Eventually(t, "the cut logged", func() bool {
				s := logs.String()
				return strings.Contains(s, "caekit: call ended") && strings.Contains(s, "reason=USER_DISABLED") && strings.Contains(s, "phase=mid_stream")
			})
		})
	}
}

// TestCutBeforeHeaderWritesChallenge guards a long poll cut before it
// answered: the middleware writes the 401 challenge in its place.
func TestCutBeforeHeaderWritesChallenge(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			waiting := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(waiting)
				<-r.Context().Done()
				w.WriteHeader(http.StatusOK) // refused: the request is cut
			})
			url, c := serve(t, e.srv, h, p.http2)
			tok := mint(t, "erin", nil)
			go func() {
				<-waiting
				e.revoke(t, "erin")
			}()
			resp := get(t, c, url+"/v1/poll", tok)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			ch, err := challenge.Parse(resp.Header.Values("WWW-Authenticate")...)
			if err != nil || !ch.InsufficientClaims() {
				t.Fatalf("challenge: %v", err)
			}
			if prob, _ := readProblem(t, resp); prob.Reason != "USER_DISABLED" {
				t.Fatalf("problem %+v", prob)
			}
		})
	}
}

// TestCloseEndsWatchedRequests guards Server.Close on the HTTP surface: a
// watched request is cut with Unavailable (503: the server can no longer
// learn of revocations), not left running unwatched.
func TestCloseEndsWatchedRequests(t *testing.T) {
	e := newEnv(t)
	waiting := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(waiting)
		<-r.Context().Done()
	})
	url, c := serve(t, e.srv, h, false)
	go func() {
		<-waiting
		_ = e.srv.Close()
	}()
	resp := get(t, c, url+"/v1/poll", mint(t, "frank", nil))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if prob, _ := readProblem(t, resp); prob.Reason != "STATE_UNAVAILABLE" {
		t.Fatalf("problem %+v", prob)
	}
}

// TestMiddlewareOptions guards the option errors.
func TestMiddlewareOptions(t *testing.T) {
	e := newEnv(t)
	if _, err := caehttp.Middleware(nil); err == nil {
		t.Fatal("nil server accepted")
	}
	_, err := caehttp.Middleware(e.srv, caehttp.WithRoute(nil), caehttp.WithExempt(nil), nil)
	if err == nil || !strings.Contains(err.Error(), "WithRoute") || !strings.Contains(err.Error(), "WithExempt") || !strings.Contains(err.Error(), "option 2") {
		t.Fatalf("err = %v, want all three named", err)
	}
}

// TestExemptAndPattern guards WithExempt and the ServeMux pattern as the
// route name.
func TestExemptAndPattern(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	rec := check.CheckFunc(func(_ context.Context, r *check.Request) *check.Denial {
		mu.Lock()
		seen[r.FullMethod] = true
		mu.Unlock()
		return nil
	})
	e := newEnv(t, interceptor.WithChecks(rec))
	mw, err := caehttp.Middleware(e.srv, caehttp.WithExempt(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/messages/{id}", mw(hello))
	mux.Handle("GET /healthz", mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })))
	url, c := serve(t, e.srv, mux, false, caehttp.WithExempt(func(*http.Request) bool { return true }))
	if resp := get(t, c, url+"/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("exempt /healthz: %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	resp := get(t, c, url+"/v1/messages/7", mint(t, "gina", nil))
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != http.StatusOK || len(seen) != 1 || !seen["GET /v1/messages/{id}"] {
		t.Fatalf("status %d, checks saw %v, want the pattern", resp.StatusCode, seen)
	}
}

// waitCause serves one watched request whose handler blocks until its
// context ends, runs trigger once the handler is running, and returns the
// context's cause.
func waitCause(t *testing.T, e *env, tok string, trigger func()) error {
	t.Helper()
	causes := make(chan error, 1)
	running := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		close(running)
		<-r.Context().Done()
		causes <- context.Cause(r.Context())
	})
	url, c := serve(t, e.srv, h, false)
	go func() {
		<-running
		trigger()
	}()
	resp := get(t, c, url+"/v1/inbox/watch", tok)
	defer resp.Body.Close()
	select {
	case err := <-causes:
		return err
	case <-time.After(30 * time.Second): // a hang guard, not a latency assertion
		t.Fatal("the request was not cut")
		return nil
	}
}

// TestPolicyChangeCutsWatchedRequest guards the re-check path without a
// store event: a check that starts denying ends an open response once
// RecheckStreams (what a policy reload calls) runs.
func TestPolicyChangeCutsWatchedRequest(t *testing.T) {
	var deny atomic.Bool
	pol := check.CheckFunc(func(context.Context, *check.Request) *check.Denial {
		if deny.Load() {
			return &check.Denial{Code: codes.PermissionDenied, Reason: caev1.Reason_REASON_POLICY, Description: "policy changed"}
		}
		return nil
	})
	e := newEnv(t, interceptor.WithChecks(pol))
	cause := waitCause(t, e, mint(t, "ivan", nil), func() {
		deny.Store(true)
		e.srv.RecheckStreams()
	})
	var d *interceptor.DenialError
	if !errors.As(cause, &d) || d.Denial().Reason != caev1.Reason_REASON_POLICY || d.Code() != codes.PermissionDenied || d.Challenge() != "" {
		t.Fatalf("cause %v, want the policy's plain denial", cause)
	}
}

// TestExpiryCutsWatchedRequest guards the token's expiry on an open
// response: a token with about a second left is cut with TOKEN_EXPIRED
// when it expires (the Server's timer, not a client retry).
func TestExpiryCutsWatchedRequest(t *testing.T) {
	e := newEnv(t)
	exp := time.Now().Add(1500 * time.Millisecond)
	tok := mint(t, "judy", jwt.MapClaims{"exp": exp.Unix()})
	if time.Until(time.Unix(exp.Unix(), 0)) <= 0 {
		t.Skip("the token's whole-second exp is already past")
	}
	cause := waitCause(t, e, tok, func() {})
	var d *interceptor.DenialError
	if !errors.As(cause, &d) || d.Denial().Reason != caev1.Reason_REASON_TOKEN_EXPIRED {
		t.Fatalf("cause %v, want TOKEN_EXPIRED", cause)
	}
}
