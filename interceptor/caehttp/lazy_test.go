package caehttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// TestShortAnswerNeverWatched guards the lazy watch (issue 15 throughput):
// short REST answers over real HTTP/1.1 and HTTP/2 are admitted and
// answered without a watch ever starting (Server.LazyWatchStarts stays put),
// while a response that flushes (SSE) starts exactly one.
func TestShortAnswerNeverWatched(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /v1/messages/{id}", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`"}`)
			})
			mux.HandleFunc("GET /v1/inbox/watch", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: hello\n\n")
				http.NewResponseController(w).Flush()
			})
			url, c := serve(t, e.srv, mux, p.http2)
			tok := mint(t, "rest", nil)
			for range 20 {
				resp := get(t, c, url+"/v1/messages/1", tok)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != `{"id":"1"}` {
					t.Fatalf("status %d, body %q", resp.StatusCode, body)
				}
			}
			if n := e.srv.LazyWatchStarts(); n != 0 {
				t.Fatalf("%d watches started for short answers, want 0", n)
			}
			resp := get(t, c, url+"/v1/inbox/watch", tok)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n := e.srv.LazyWatchStarts(); n != 1 {
				t.Fatalf("%d watches started after a flushed response, want 1", n)
			}
		})
	}
}

// TestEventBeforeWatchStartCutsSSE guards the gap the lazy watch opens: an
// event stored after the request was admitted but before its response
// proved long-lived (no write, flush or wait on the context yet) still cuts
// it. The handler's first write starts the watch, which re-evaluates
// because the store changed since admission: the write and the flush are
// refused, the context is cancelled with the revocation, and, nothing
// having been written, the client gets the 401 challenge instead of the
// stream.
func TestEventBeforeWatchStartCutsSSE(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			admitted, proceed := make(chan struct{}), make(chan struct{})
			results := make(chan sseResult, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(admitted)
				<-proceed // not the context: the request is not watched yet
				w.Header().Set("Content-Type", "text/event-stream")
				_, err := io.WriteString(w, "data: hello\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				results <- sseResult{cause: context.Cause(r.Context()), writeErr: err}
			})
			url, c := serve(t, e.srv, h, p.http2)
			go func() {
				<-admitted
				e.revoke(t, "gina")
				close(proceed)
			}()
			resp := get(t, c, url+"/v1/inbox/watch", mint(t, "gina", nil))
			defer resp.Body.Close()
			r := <-results
			var d *interceptor.DenialError
			if !errors.As(r.writeErr, &d) || d.Denial().Reason != caev1.Reason_REASON_USER_DISABLED {
				t.Fatalf("first write = %v, want the USER_DISABLED denial", r.writeErr)
			}
			if !errors.As(r.cause, &d) || !d.MidStream() {
				t.Fatalf("context.Cause = %v, want the mid-stream denial", r.cause)
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if ch, err := challenge.Parse(resp.Header.Values("WWW-Authenticate")...); err != nil || !ch.InsufficientClaims() {
				t.Fatalf("challenge: %v", err)
			}
			if n := e.srv.LazyWatchStarts(); n != 1 {
				t.Fatalf("%d watch starts, want 1", n)
			}
		})
	}
}
