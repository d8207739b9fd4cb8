package caehttp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/internal/httpcall"
)

// Option configures Middleware.
type Option func(*config)

type config struct {
	route  func(*http.Request) (string, bool)
	exempt func(*http.Request) bool
	errs   []error
}

// WithRoute sets how a request is named for the checks
// (check.Request.FullMethod) and the metrics (interceptor.AttrMethod):
// route returns the name and whether it is a registered route of the
// server (always recorded under its own name) rather than a name taken
// from the request (recorded only for authenticated callers, at most
// interceptor.MaxMetricMethods of them). Default: the request's ServeMux
// pattern (r.Pattern) when the middleware wraps a handler registered on a
// ServeMux, registered; else the method and path, "GET /v1/messages/42",
// not registered.
func WithRoute(route func(r *http.Request) (name string, registered bool)) Option {
	return func(c *config) {
		if route == nil {
			c.errs = append(c.errs, errors.New("caehttp: WithRoute: route is nil"))
			return
		}
		c.route = route
	}
}

// WithExempt lets the requests for which exempt returns true through
// without a token (health probes, the RFC 9728 metadata document when it is
// served behind the middleware). They are not counted in the metrics.
func WithExempt(exempt func(r *http.Request) bool) Option {
	return func(c *config) {
		if exempt == nil {
			c.errs = append(c.errs, errors.New("caehttp: WithExempt: exempt is nil"))
			return
		}
		c.exempt = exempt
	}
}

func defaultRoute(r *http.Request) (string, bool) {
	if r.Pattern != "" {
		return r.Pattern, true
	}
	return r.Method + " " + r.URL.Path, false
}

// Middleware returns the net/http middleware of srv. Every request that is
// not exempt must carry exactly one "Authorization: Bearer <token>" header;
// it is decided by srv exactly as a gRPC call is (see interceptor.Server).
//
// A refused request never reaches next: it gets WriteError's response. A
// request let in runs next with a context that carries the claims
// (interceptor.ClaimsFromContext). A short answer is decided once, at
// admission, like a gRPC unary call. A long-lived response is watched until
// next returns: the watch starts on its first Flush (an SSE event, a
// streamed chunk; http.ResponseController's Flush included) or on a Write
// more than interceptor.LazyWatchGrace after admission (a response still
// being written, or slow to start) or after a store event or policy change,
// or when next waits on its context's Done channel (a long poll), and
// re-evaluates the request first if
// anything changed since admission (see interceptor.Call.Lazy). Once
// watched, a revocation event about its token, a failing re-check, the
// token's expiry or srv.Close cancels that context with an
// *interceptor.DenialError as context.Cause, every later Write, WriteHeader
// or Flush is refused (Write returns the DenialError), and, if next had not
// written the response header yet, the denial is written instead. A
// response already under way (SSE, chunked) simply ends; the client's next
// request gets the challenge.
//
// The response writer next sees implements http.Flusher and Unwrap, so
// http.ResponseController reaches the server's own writer.
func Middleware(srv *interceptor.Server, opts ...Option) (func(http.Handler) http.Handler, error) {
	if srv == nil {
		return nil, errors.New("caehttp: Middleware: server is nil")
	}
	c := config{route: defaultRoute}
	for i, o := range opts {
		if o == nil {
			c.errs = append(c.errs, fmt.Errorf("caehttp: option %d is nil", i))
			continue
		}
		o(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("caehttp: Middleware(nil handler)")
		}
		return &handler{srv: srv, cfg: c, next: next}
	}, nil
}

type handler struct {
	srv  *interceptor.Server
	cfg  config
	next http.Handler
}

// credentialsName names the Authorization header in denial descriptions.
const credentialsName = "Authorization header"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.exempt != nil && h.cfg.exempt(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	name, registered := h.cfg.route(r)
	// One allocation for the writer and the peer address together.
	rw := &responseWriter{ResponseWriter: w}
	a, err := h.srv.Admit(r.Context(), interceptor.Call{
		Method:        name,
		Registered:    registered,
		Authorization: r.Header.Values("Authorization"),
		Credentials:   credentialsName,
		Peer:          httpcall.PeerInto(r.RemoteAddr, &rw.peer, &rw.ip),
		Metadata:      func() metadata.MD { return httpcall.Metadata(r.Header) },
		Watch:         true,
		Lazy:          true,
	})
	if err != nil {
		WriteError(w, err)
		return
	}
	rw.a = a
	defer func() {
		// Runs on a panic too (net/http recovers it), so the watch always
		// stops with the request.
		if err := a.End(); err != nil && !rw.wrote {
			WriteError(w, err)
		}
	}()
	h.next.ServeHTTP(rw, r.WithContext(a.Context()))
}

// responseWriter is the writer the handler sees: it refuses to write once
// the request is cut.
type responseWriter struct {
	http.ResponseWriter
	a     *interceptor.Admission
	wrote bool // the response header went out (or will with the next write)
	// The request's peer address (interceptor.Call.Peer), kept here so
	// that it costs no allocation of its own.
	peer net.TCPAddr
	ip   [16]byte
}

// WriteHeader sends the header unless the request is cut (Recheck: for a
// request not yet watched, after the store or the policy changed since
// admission, this starts the watch and re-evaluates it first).
func (w *responseWriter) WriteHeader(code int) {
	if w.a.Recheck() != nil {
		return
	}
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write re-runs the checks that may have changed (as a gRPC stream does on
// every message) and writes p, or returns the *interceptor.DenialError; a
// write of a request not yet watched starts the watch if it comes more than
// interceptor.LazyWatchGrace after admission (Admission.Recheck).
func (w *responseWriter) Write(p []byte) (int, error) {
	if err := w.a.Recheck(); err != nil {
		return 0, err
	}
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// WriteString is Write for a string: io.WriteString reaches the server's
// own WriteString, without the copy to []byte a writer without it costs.
func (w *responseWriter) WriteString(s string) (int, error) {
	if err := w.a.Recheck(); err != nil {
		return 0, err
	}
	w.wrote = true
	return io.WriteString(w.ResponseWriter, s)
}

// Flush starts the watch (a flushed response is long-lived) and flushes
// unless the request is cut.
func (w *responseWriter) Flush() {
	if w.a.Watch() != nil {
		return
	}
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the server's writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
