package server

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcMetrics records gRPC server metrics per call, as otelgrpc's server
// stats handler does (semantic conventions for RPC: rpc.system, rpc.service,
// rpc.method, rpc.grpc.status_code on a call-duration histogram), without
// that dependency. Both the CAE mode and the -no-auth baseline install it,
// so that a comparison between them isolates caekit. Like otelgrpc, it
// builds the call's attribute set per call.
type rpcMetrics struct {
	duration metric.Float64Histogram
}

// MetricRPCServerDuration is the gRPC server call-duration histogram.
const MetricRPCServerDuration = "rpc.server.call.duration"

func newRPCMetrics(mp metric.MeterProvider) (*rpcMetrics, error) {
	h, err := mp.Meter("github.com/caekit/caekit/examples/internal/server").Float64Histogram(MetricRPCServerDuration,
		metric.WithUnit("s"), metric.WithDescription("Duration of gRPC calls on the server."))
	if err != nil {
		return nil, err
	}
	return &rpcMetrics{duration: h}, nil
}

func (m *rpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	m.record(ctx, "grpc", info.FullMethod, status.Code(err), time.Since(start))
	return resp, err
}

func (m *rpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	m.record(ss.Context(), "grpc", info.FullMethod, status.Code(err), time.Since(start))
	return err
}

// record records a call of fullMethod by system ("grpc", or
// "connect_rpc" for the HTTP front door's Connect handler, whatever its
// protocol; code is then the Connect code, the same number).
func (m *rpcMetrics) record(ctx context.Context, system, fullMethod string, code codes.Code, d time.Duration) {
	svc, meth, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	m.duration.Record(ctx, d.Seconds(), metric.WithAttributes(
		attribute.String("rpc.system", system),
		attribute.String("rpc.service", svc),
		attribute.String("rpc.method", meth),
		attribute.Int64("rpc.grpc.status_code", int64(code)),
	))
}
