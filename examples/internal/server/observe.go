package server

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/caeconnect"
	"github.com/caekit/caekit/interceptor/caehttp"
	"github.com/caekit/caekit/interceptor/challenge"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// MetricHTTPServerDuration is the HTTP server request-duration histogram
// (OpenTelemetry semantic conventions for HTTP: http.request.method,
// http.route, http.response.status_code).
const MetricHTTPServerDuration = "http.server.request.duration"

// observer is the observability both modes put in front of the HTTP front
// door, outside caekit: the decision log line per request or Connect call,
// the HTTP request-duration histogram and, for Connect, the RPC one.
type observer struct {
	dl      *decisionLog
	rpc     *rpcMetrics
	httpDur metric.Float64Histogram
}

func newObserver(dl *decisionLog, rm *rpcMetrics, mp metric.MeterProvider) (*observer, error) {
	h, err := mp.Meter("github.com/caekit/caekit/examples/internal/server").Float64Histogram(MetricHTTPServerDuration,
		metric.WithUnit("s"), metric.WithDescription("Duration of HTTP requests on the server."))
	if err != nil {
		return nil, err
	}
	return &observer{dl: dl, rpc: rm, httpDur: h}, nil
}

// maxProblem bounds how much of a problem document the recorder keeps.
const maxProblem = 2 << 10

// recorder notes a response's status and, for a problem document, its
// first maxProblem bytes (the decision log reads the reason there).
type recorder struct {
	http.ResponseWriter
	status  int
	problem []byte
	keep    bool
}

// WriteHeader records the status.
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		if code >= 400 {
			mt, _, _ := mime.ParseMediaType(r.Header().Get("Content-Type"))
			r.keep = mt == caehttp.ProblemContentType
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records the start of a problem document.
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if r.keep && len(r.problem) < maxProblem {
		r.problem = append(r.problem, b[:min(len(b), maxProblem-len(r.problem))]...)
	}
	return r.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer (Server-Sent Events need it).
func (r *recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

// Unwrap returns the underlying writer, for http.ResponseController.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// http wraps a route's handler (caekit's middleware inside it, if any).
func (o *observer) http(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := &tap{}
		rec := &recorder{ResponseWriter: w}
		start := time.Now()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), tapKey{}, t)))
		took := time.Since(start)
		code := rec.status
		if code == 0 {
			code = http.StatusOK
		}
		o.httpDur.Record(r.Context(), took.Seconds(), metric.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("http.route", r.Pattern),
			attribute.Int("http.response.status_code", code),
		))
		reason := ""
		cut := cutCause(t.ctx)
		if cut != nil {
			reason = challenge.ReasonName(cut.Denial().Reason)
		} else if len(rec.problem) > 0 {
			var p caehttp.Problem
			if json.Unmarshal(rec.problem, &p) == nil {
				reason = p.Reason
			}
		}
		wa := rec.Header().Get("WWW-Authenticate")
		insufficient := code == http.StatusUnauthorized && (strings.Contains(wa, `error="insufficient_claims"`) || strings.Contains(wa, `error="insufficient_user_authentication"`))
		outcome, level := classify(t, reason, insufficient, code == http.StatusUnauthorized || code == http.StatusForbidden, cut != nil)
		o.dl.line(r.Context(), level, r.Pattern, t, outcome, reason, strconv.Itoa(code), took, func() []string {
			return r.Header.Values("Authorization")
		})
	})
}

func (o *observer) connectInterceptor() connect.Interceptor { return observeConnect{o} }

// observeConnect is the observer's connect.Interceptor, outside caekit's.
type observeConnect struct{ o *observer }

// WrapUnary observes a unary call.
func (c observeConnect) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		t := &tap{}
		start := time.Now()
		resp, err := next(context.WithValue(ctx, tapKey{}, t), req)
		c.o.connect(ctx, req.Spec().Procedure, t, err, time.Since(start), false, req.Header())
		return resp, err
	}
}

// WrapStreamingClient returns next: the server has no clients.
func (observeConnect) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler observes a stream.
func (c observeConnect) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		t := &tap{}
		start := time.Now()
		err := next(context.WithValue(ctx, tapKey{}, t), conn)
		c.o.connect(ctx, conn.Spec().Procedure, t, err, time.Since(start), true, conn.RequestHeader())
		return err
	}
}

func (o *observer) connect(ctx context.Context, procedure string, t *tap, err error, took time.Duration, stream bool, hdr http.Header) {
	code := codes.OK
	if err != nil {
		code = codes.Code(connect.CodeOf(err))
	}
	o.rpc.record(ctx, "connect_rpc", procedure, code, took)
	reason := connectReason(err)
	ch, cerr := caeconnect.ChallengeFromError(err)
	insufficient := err != nil && cerr == nil && (ch.InsufficientClaims() || ch.StepUp())
	outcome, level := classify(t, reason, insufficient, code == codes.Unauthenticated || code == codes.PermissionDenied, stream)
	o.dl.line(ctx, level, procedure, t, outcome, reason, code.String(), took, func() []string { return hdr.Values("Authorization") })
}

// connectReason returns the caekit reason a connect error's details carry, or "".
func connectReason(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	for _, d := range ce.Details() {
		v, verr := d.Value()
		if verr != nil {
			continue
		}
		switch m := v.(type) {
		case *caev1.ClaimsChallenge:
			return challenge.ReasonName(m.GetReason())
		case *errdetails.ErrorInfo:
			if m.GetDomain() == challenge.ErrorInfoDomain {
				return m.GetReason()
			}
		}
	}
	return ""
}

// statusMessage is err's message, without the "rpc error: code = …" prefix
// of a gRPC status error.
func statusMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}
