package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/caekit/caekit/examples/internal/inbox"
	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/caeconnect"
	"github.com/caekit/caekit/interceptor/caehttp"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/proto/example/inbox/v1/inboxv1connect"
)

// The HTTP front door (Config.HTTPAddr).
const (
	// DefaultHTTPAddr is the listen address cmd examples/server gives the
	// HTTP front door (-http-addr).
	DefaultHTTPAddr = "127.0.0.1:8502"
	// MessagePattern is the REST route of one message, as JSON.
	MessagePattern = "GET /v1/messages/{id}"
	// WatchPattern is the Server-Sent Events route: one event per message.
	WatchPattern = "GET /v1/inbox/watch"
	// WatchPath is WatchPattern's path.
	WatchPath = "/v1/inbox/watch"
	// MaxConnectMessage bounds a Connect, gRPC or gRPC-Web message the HTTP
	// front door reads (gRPC's default receive limit, 4 MiB).
	MaxConnectMessage = 4 << 20
	// maxQueryParam bounds the interval_ms query parameter's length.
	maxQueryParam = 16
)

// Message is the REST representation of a message (GET /v1/messages/{id}).
type Message struct {
	// ID is the message id.
	ID string `json:"id"`
	// Body is the message text.
	Body string `json:"body"`
	// Subject is the caller the server saw in the token ("" without one).
	Subject string `json:"subject,omitempty"`
}

// WatchEvent is the data of one Server-Sent Event of GET /v1/inbox/watch.
type WatchEvent struct {
	// Seq is the message's sequence number, from 1 (also the event's id).
	Seq int64 `json:"seq"`
	// Body is the message text.
	Body string `json:"body"`
}

// listenHTTP opens the HTTP front door's listener, if configured: before
// caekit is built, so that the RFC 9728 metadata URL can name its port.
func (s *Server) listenHTTP() error {
	if s.cfg.HTTPAddr == "" {
		return nil
	}
	var err error
	if s.apiLis, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("server: listen %s: %w", s.cfg.HTTPAddr, err)
	}
	return nil
}

// resource is the protected resource identifier of the HTTP front door
// (RFC 9728 §1.2): Config.Resource or http://<HTTPAddr>.
func (s *Server) resource() string {
	if s.cfg.Resource != "" {
		return s.cfg.Resource
	}
	return "http://" + s.apiLis.Addr().String()
}

// setupHTTPAPI builds the HTTP front door on s.apiLis: the Inbox service
// through connect-go (Connect, gRPC-Web, gRPC), the REST and SSE routes and,
// with caekit, the RFC 9728 metadata document. Every route goes through
// the same observability (decision log and metrics) as the gRPC server; in
// the CAE mode, through the same interceptor.Server as the gRPC server.
func (s *Server) setupHTTPAPIWith(dl *decisionLog, rm *rpcMetrics) error {
	if s.apiLis == nil {
		return nil
	}
	obs, err := newObserver(dl, rm, s.mp)
	if err != nil {
		return fmt.Errorf("server: HTTP metrics: %w", err)
	}
	svc := inbox.New(subject)
	guard := func(h http.Handler) http.Handler { return h }
	connectIcs := []connect.Interceptor{obs.connectInterceptor()}
	mux := http.NewServeMux()
	if s.caekit != nil {
		mw, err := caehttp.Middleware(s.caekit)
		if err != nil {
			return fmt.Errorf("server: HTTP middleware: %w", err)
		}
		guard = mw
		ci, err := caeconnect.NewServerInterceptor(s.caekit)
		if err != nil {
			return fmt.Errorf("server: connect interceptor: %w", err)
		}
		connectIcs = append(connectIcs, ci)
		_, meta, err := caehttp.ProtectedResourceMetadata(s.caekit, caehttp.WithResource(s.resource()))
		if err != nil {
			return fmt.Errorf("server: protected resource metadata: %w", err)
		}
		mux.Handle("GET "+caehttp.WellKnownPath, meta) // outside the middleware: fetched without a token
	}
	connectIcs = append(connectIcs, tapConnect{})
	path, h := inboxv1connect.NewInboxServiceHandler(svc.Connect(), connect.WithInterceptors(connectIcs...),
		connect.WithReadMaxBytes(MaxConnectMessage))
	mux.Handle(path, h)
	route := func(pattern string, h http.Handler) {
		mux.Handle(pattern, obs.http(guard(tapHTTP(h))))
	}
	route(MessagePattern, messageHandler(svc))
	route(WatchPattern, watchHandler(svc))

	ctx, cancel := context.WithCancel(context.Background())
	s.apiCancel = cancel
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true) // h2c: HTTP/2 without TLS, for gRPC and loopback
	s.api = &http.Server{
		Handler:           mux,
		Protocols:         p,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		// No ReadTimeout or WriteTimeout: streams (SSE, Connect streams)
		// live as long as their token, and caekit ends them.
	}
	return nil
}

// HTTPURL is the base URL of the HTTP front door, or "" without HTTPAddr.
func (s *Server) HTTPURL() string {
	if s.apiLis == nil {
		return ""
	}
	return "http://" + s.apiLis.Addr().String()
}

// ResourceMetadataURL is the RFC 9728 metadata URL of the HTTP front
// door, or "" without HTTPAddr or with NoAuth.
func (s *Server) ResourceMetadataURL() string {
	if s.caekit == nil || s.apiLis == nil {
		return ""
	}
	return s.caekit.ResourceMetadataURL()
}

// messageHandler serves GET /v1/messages/{id}: the message as JSON.
func messageHandler(svc *inbox.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := svc.Message(r.Context(), r.PathValue("id"))
		if err != nil {
			badRequest(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(Message{ID: m.GetId(), Body: m.GetBody(), Subject: m.GetSubject()})
	})
}

// watchHandler serves GET /v1/inbox/watch?interval_ms=N as Server-Sent
// Events (HTML Living Standard §9.2, "Server-sent events": fields id,
// event and data, an empty line ending each event): one "message" event
// per WatchInbox message, until the client goes away or caekit cuts the
// response (the request's context is cancelled; the response then ends).
func watchHandler(svc *inbox.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ms int64
		if v := r.URL.Query().Get("interval_ms"); v != "" {
			var err error
			if len(v) > maxQueryParam {
				badRequest(w, fmt.Errorf("interval_ms is %d bytes, at most %d", len(v), maxQueryParam))
				return
			}
			if ms, err = strconv.ParseInt(v, 10, 32); err != nil {
				badRequest(w, fmt.Errorf("interval_ms %q is not a 32-bit integer", v))
				return
			}
		}
		if _, err := inbox.Interval(int32(ms)); err != nil {
			badRequest(w, err)
			return
		}
		rc := http.NewResponseController(w)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
		w.WriteHeader(http.StatusOK)
		_ = svc.Watch(r.Context(), int32(ms), func(m *inboxv1.WatchInboxResponse) error {
			data, err := json.Marshal(WatchEvent{Seq: m.GetSeq(), Body: m.GetBody()})
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: message\ndata: %s\n\n", m.GetSeq(), data); err != nil {
				return err
			}
			return rc.Flush()
		})
	})
}

// badRequest writes a 400 problem document (RFC 9457) saying what was wrong.
func badRequest(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", caehttp.ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(http.StatusBadRequest), "status": http.StatusBadRequest,
		"detail": statusMessage(err),
	})
}

// closeHTTPAPI ends the HTTP front door: streams are ended by cancelling
// their base context, then the server shuts down within 3 s.
func (s *Server) closeHTTPAPI() error {
	if s.api == nil {
		return nil
	}
	s.apiCancel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var errs []error
	if err := s.api.Shutdown(ctx); err != nil {
		errs = append(errs, err, s.api.Close())
	}
	if s.apiDone != nil {
		if err := <-s.apiDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	s.api = nil
	return errors.Join(errs...)
}

// tapHTTP marks the request as let in (for the decision log), inside caekit.
func tapHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		markCtx(r.Context())
		next.ServeHTTP(w, r)
	})
}

// tapConnect marks the call as let in (for the decision log), inside caekit.
type tapConnect struct{}

// WrapUnary marks the call.
func (tapConnect) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		markCtx(ctx)
		return next(ctx, req)
	}
}

// WrapStreamingClient returns next: the server has no clients.
func (tapConnect) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler marks the stream.
func (tapConnect) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		markCtx(ctx)
		return next(ctx, conn)
	}
}

// cutCause returns the denial that cut a let-in call, from its context.
func cutCause(ctx context.Context) *interceptor.DenialError {
	if ctx == nil {
		return nil
	}
	var d *interceptor.DenialError
	if errors.As(context.Cause(ctx), &d) {
		return d
	}
	return nil
}
