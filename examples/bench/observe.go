package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
)

// observability is what a deployed server runs around its handlers whether
// or not it uses caekit, as the example server does in both of its modes:
// the OpenTelemetry SDK with a Prometheus exporter (on a registry of its
// own, scraped by nobody: the cost is in recording), gRPC server metrics
// like otelgrpc's (a call-duration histogram with rpc.system, rpc.service,
// rpc.method and rpc.grpc.status_code, the attribute set built per call),
// and one access-log line per call through a slog JSON handler writing to
// io.Discard. The "observed" cases install it; caekit then also records its
// own metrics into the same SDK and logs through the same logger.
type observability struct {
	mp       *sdkmetric.MeterProvider
	log      *slog.Logger
	duration metric.Float64Histogram
}

func newObservability() (*observability, error) {
	exp, err := otelprom.New(otelprom.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	o := &observability{
		mp:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	if o.duration, err = o.mp.Meter("bench").Float64Histogram("rpc.server.call.duration", metric.WithUnit("s")); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *observability) close() { _ = o.mp.Shutdown(context.Background()) }

type subjectKey struct{}

// outer is the outermost interceptor: metrics and the access-log line.
func (o *observability) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	sub := new(string)
	resp, err := h(context.WithValue(ctx, subjectKey{}, sub), req)
	o.record(ctx, info.FullMethod, *sub, err, time.Since(start))
	return resp, err
}

func (o *observability) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	sub := new(string)
	err := h(srv, &ctxStream{ss, context.WithValue(ss.Context(), subjectKey{}, sub)})
	o.record(ss.Context(), info.FullMethod, *sub, err, time.Since(start))
	return err
}

// tapUnary is the innermost interceptor: it learns the caller's subject
// (from caekit's claims, "-" without caekit) for the access log.
func tapUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	tapSubject(ctx)
	return h(ctx, req)
}

func tapStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	tapSubject(ss.Context())
	return h(srv, ss)
}

func tapSubject(ctx context.Context) {
	p, ok := ctx.Value(subjectKey{}).(*string)
	if !ok {
		return
	}
	*p = "-"
	if c, ok := interceptor.ClaimsFromContext(ctx); ok {
		*p = c.Subject
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

func (o *observability) record(ctx context.Context, fullMethod, sub string, err error, d time.Duration) {
	svc, meth, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	code := status.Code(err)
	o.duration.Record(ctx, d.Seconds(), metric.WithAttributes(
		attribute.String("rpc.system", "grpc"),
		attribute.String("rpc.service", svc),
		attribute.String("rpc.method", meth),
		attribute.Int64("rpc.grpc.status_code", int64(code)),
	))
	if sub == "" {
		sub = "-"
	}
	o.log.LogAttrs(ctx, slog.LevelInfo, "access",
		slog.String("method", fullMethod), slog.String("subject", sub),
		slog.String("code", code.String()), slog.Duration("took", d))
}

// wrap returns the server options of an observed case: the observability
// interceptors around inner (caekit's, or none for Bare).
func (o *observability) wrap(inner []grpc.ServerOption) []grpc.ServerOption {
	opts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(o.unary), grpc.ChainStreamInterceptor(o.stream)}
	opts = append(opts, inner...)
	return append(opts, grpc.ChainUnaryInterceptor(tapUnary), grpc.ChainStreamInterceptor(tapStream))
}
