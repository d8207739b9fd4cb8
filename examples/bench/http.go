package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor/caehttp"
	"github.com/caekit/caekit/revocation"
)

// The HTTP cases: the same REST handler (GET /v1/messages/{id}, a JSON
// message) served over HTTP/1.1 on loopback without and with caekit's
// net/http middleware (caehttp, verified-token cache on, the main table's
// revocation store and policy), driven by the same closed loop as the gRPC
// cases with a keep-alive client, the two taking turns slice by slice.
const (
	httpBareName = "HTTP handler"
	httpCAEName  = "HTTP caekit middleware, cache on"
	messagePath  = "/v1/messages/42"
	watchPath    = "/v1/inbox/watch"
)

// Names of the HTTP micro benchmarks and latency measurement.
const (
	microHTTPHandler = "HTTP handler only (httptest.NewRecorder)"
	microHTTPCAE     = "HTTP caekit middleware, cache hit (httptest.NewRecorder)"
	latCutHTTP       = "SSE cut: Put into memory store → HTTP client sees the event stream end"
)

// httpTarget is how an env drives HTTP: its base URL and a keep-alive client.
type httpTarget struct {
	base   string
	client *http.Client
}

// httpMessage is the JSON the REST handler answers.
type httpMessage struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// restMux is the handler every HTTP case serves; guard wraps each route
// (the identity for the bare case, caekit's middleware otherwise).
func restMux(guard func(http.Handler) http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/messages/{id}", guard(http.HandlerFunc(restMessage)))
	mux.Handle("GET "+watchPath, guard(http.HandlerFunc(sseWatch)))
	return mux
}

// restMessage answers GET /v1/messages/{id} with a fixed message, as the
// gRPC service's GetMessage does.
func restMessage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(httpMessage{ID: r.PathValue("id"), Subject: "Quarterly report", Body: messageBody})
}

// sseWatch sends one Server-Sent Event, then idles until the request ends
// (the client goes away, or caekit cuts it).
func sseWatch(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "id: 1\nevent: message\ndata: {\"seq\":1}\n\n")
	_ = http.NewResponseController(w).Flush()
	<-r.Context().Done()
}

// newHTTPEnv starts an HTTP case: caekit's middleware when cae, with a
// store of its own when writable (the SSE cut measurement writes to it).
func newHTTPEnv(fx *fixtures, name string, cae, writable bool) (_ *env, err error) {
	sp := spec{Name: name, Kind: kindBare, Alg: algRS256}
	if cae {
		sp = spec{Name: name, Kind: kindCAECache, Alg: algRS256, Entries: defaultEntries, Ranges: defaultRanges, Writable: writable}
	}
	s, err := fx.signer(sp.Alg)
	if err != nil {
		return nil, err
	}
	e := &env{spec: sp, signer: s}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	guard := func(h http.Handler) http.Handler { return h }
	if cae {
		var m *revocation.Memory
		if writable {
			m, err = newMemory(sp.Entries)
		} else {
			m, err = fx.memory(sp.Entries)
		}
		if err != nil {
			return nil, err
		}
		srv, v, cerr := newCAE(s, sp, m)
		if cerr != nil {
			return nil, cerr
		}
		e.closers = append(e.closers, func() { _ = v.Close() }, func() { _ = srv.Close() })
		e.cae, e.stores = append(e.cae, srv), append(e.stores, revocation.Store(m))
		if guard, err = caehttp.Middleware(srv); err != nil {
			return nil, err
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	hs := &http.Server{Handler: restMux(guard), Protocols: p, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(lis)
	}()
	e.closers = append(e.closers, func() { _ = hs.Close(); <-done })
	cp := new(http.Protocols)
	cp.SetHTTP1(true)
	tr := &http.Transport{Protocols: cp, MaxIdleConnsPerHost: 256, DisableCompression: true, IdleConnTimeout: time.Minute}
	e.closers = append(e.closers, tr.CloseIdleConnections)
	e.http = &httpTarget{base: "http://" + lis.Addr().String(), client: &http.Client{Transport: tr}}
	if e.token, err = e.mintToken(1, "sid-bench-1"); err != nil {
		return nil, err
	}
	return e, nil
}

// httpGet is one closed-loop call: GET the message with the bearer token,
// read the body to the end (so the connection is reused); any status
// but 200 fails the run.
func (t *httpTarget) get(req *http.Request) error {
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return err
}

// newRequest returns the GET request a worker sends again and again.
func (t *httpTarget) newRequest(raw string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodGet, t.base+messagePath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	return req, nil
}

// runHTTP measures the HTTP cases at every concurrency, taking turns.
func runHTTP(fx *fixtures, cfg config, logf func(string, ...any)) []unaryRow {
	names := []string{httpBareName, httpCAEName}
	rows := make([]unaryRow, len(names))
	var live []*env
	var idx []int
	for i, n := range names {
		rows[i].Name = n
		e, err := newHTTPEnv(fx, n, i == 1, false)
		if err != nil {
			rows[i].Error = err.Error()
			continue
		}
		defer e.close()
		live, idx = append(live, e), append(idx, i)
	}
	for _, c := range cfg.concurrency {
		for j, st := range runInterleaved(live, c, cfg.warm, cfg.dur, cfg.slice) {
			i := idx[j]
			if st.err != nil {
				if rows[i].Error == "" {
					rows[i].Error = st.err.Error()
				}
				logf("http %s c=%d: %v", names[i], c, st.err)
				continue
			}
			rows[i].Runs = append(rows[i].Runs, st.result)
			l := st.result
			logf("http  %-34s c=%-2d %8.0f req/s  p50 %6.0f µs  p99 %6.0f µs  %5.1f allocs/call", names[i], c, l.RPS, l.P50us, l.P99us, l.AllocsPerCall)
		}
	}
	return rows
}

// measureSSECut opens an SSE response on a caekit HTTP case with a
// writable store, reads its first event (the handler then idles), puts a
// session-revoked event for the token into the store and times how long
// the client waits for the event stream to end. Each iteration uses a
// fresh session and token.
func measureSSECut(e *env, n int) (latencyResult, error) {
	if e.http == nil || len(e.stores) == 0 {
		return latencyResult{}, errors.New("SSE cut needs a caekit HTTP case")
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		d, err := sseCutOnce(e, "sid-sse-cut-"+strconv.Itoa(i))
		if err != nil {
			return latencyResult{}, fmt.Errorf("SSE cut %d: %w", i, err)
		}
		lat = append(lat, d)
	}
	return summarise(lat), nil
}

func sseCutOnce(e *env, sid string) (time.Duration, error) {
	raw, err := e.mintToken(2, sid)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.http.base+watchPath, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	resp, err := e.http.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("first event: %w", err)
		}
		if strings.HasPrefix(line, "data: ") {
			break
		}
	}
	ev := revocation.Event{ID: "sse-cut-" + sid, Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey(issuer, sid), Time: time.Now()}
	start := time.Now()
	if err := e.stores[0].Put(ctx, ev); err != nil {
		return 0, fmt.Errorf("put: %w", err)
	}
	_, err = io.Copy(io.Discard, br)
	d := time.Since(start)
	if ctx.Err() != nil {
		return 0, errors.New("the event stream was not cut within 10 s")
	}
	_ = err // the end of the stream is what is timed: EOF or a reset alike
	return d, nil
}

// benchHTTPHandlerOnly is the REST handler called directly with a
// recorder: the baseline of benchHTTPMiddleware.
func benchHTTPHandlerOnly(b *testing.B) {
	h := restMux(func(h http.Handler) http.Handler { return h })
	loopHTTP(b, h, "")
}

// benchHTTPMiddleware is the REST handler behind caekit's middleware
// (cache hit), called directly with a recorder: the middleware's own
// cost per request, without transport.
func benchHTTPMiddleware(fx *fixtures) func(*testing.B) {
	return func(b *testing.B) {
		srv, raw := microCAE(b, fx)
		mw, err := caehttp.Middleware(srv)
		if err != nil {
			b.Fatal(err)
		}
		loopHTTP(b, restMux(mw), raw)
	}
}

// loopHTTP serves one GET per iteration into a reset recorder.
func loopHTTP(b *testing.B, h http.Handler, raw string) {
	req := httptest.NewRequest(http.MethodGet, messagePath, nil)
	req.RemoteAddr = "127.0.0.1:50000"
	if raw != "" {
		req.Header.Set("Authorization", "Bearer "+raw)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec.Body.Reset()
		clear(rec.HeaderMap)
		rec.Code, rec.Flushed = 200, false
		h.ServeHTTP(rec, req)
	}
}
