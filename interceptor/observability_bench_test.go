package interceptor_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/internal/testkit/teststore"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// benchObserved is BenchmarkUnaryInterceptorCacheHit with observability
// switched on: metrics into an OpenTelemetry SDK, an audit hook, and
// optionally logging fields as a go-grpc-middleware logging interceptor
// before this one would have put them in the context.
func benchObserved(b *testing.B, withLoggingFields bool, extra ...interceptor.Option) {
	store := teststore.Memory(b)
	for i := range 10_000 {
		_ = store.Put(context.Background(), revocation.Event{Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey(testIssuer, "other-"+strconv.Itoa(i)), Time: time.Now()})
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	opts := append([]interceptor.Option{interceptor.WithStore(store), interceptor.WithAuthorizationURI(testAuthzURI),
		interceptor.WithMeterProvider(mp), interceptor.WithAuditHook(func(context.Context, interceptor.AuditRecord) {})}, extra...)
	s, err := interceptor.New(newValidator(b), opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	md := metadata.Pairs("authorization", "Bearer "+mint(b, tok{sid: "s-bench", jti: "j-bench"}))
	ctx := metadata.NewIncomingContext(context.Background(), md)
	if withLoggingFields {
		ctx = logging.InjectFields(ctx, logging.Fields{"grpc.service", "example.inbox.v1.InboxService", "grpc.method", "GetMessage"})
	}
	unary := s.UnaryServerInterceptor()
	req := &inboxv1.GetMessageRequest{Id: "1"}
	if _, err := unary(ctx, req, benchInfo, benchHandler); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	defer func() { b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op") }()
	for b.Loop() {
		if withLoggingFields {
			// The logging interceptor gives every call fresh fields.
			b.StopTimer()
			ctx = logging.InjectFields(metadata.NewIncomingContext(context.Background(), md), logging.Fields{"grpc.method", "GetMessage"})
			b.StartTimer()
		}
		if _, err := unary(ctx, req, benchInfo, benchHandler); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnaryInterceptorCacheHitSDKMetrics: the cache-hit path recording
// into a real OpenTelemetry SDK.
func BenchmarkUnaryInterceptorCacheHitSDKMetrics(b *testing.B) { benchObserved(b, false) }

// BenchmarkUnaryInterceptorCacheHitLoggingFields: as above, with a logging
// interceptor's fields in the context, which the interceptor adds to.
func BenchmarkUnaryInterceptorCacheHitLoggingFields(b *testing.B) { benchObserved(b, true) }

// BenchmarkUnaryInterceptorCacheHitSDKJSONLog is the case issue 16 asks
// for: caekit with the OpenTelemetry SDK installed and a slog handler
// writing JSON to io.Discard (caekit logs denials only; allowed calls must
// not pay for the logger).
func BenchmarkUnaryInterceptorCacheHitSDKJSONLog(b *testing.B) {
	benchObserved(b, false, interceptor.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
}

// BenchmarkUnaryInterceptorCacheHitSDKJSONLogSampled is
// BenchmarkUnaryInterceptorCacheHitSDKJSONLog recording the duration of one
// allowed call in 64 (WithAllowedDurationEvery).
func BenchmarkUnaryInterceptorCacheHitSDKJSONLogSampled(b *testing.B) {
	benchObserved(b, false, interceptor.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))), interceptor.WithAllowedDurationEvery(64))
}
