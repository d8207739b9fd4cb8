package interceptor_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/internal/testkit/teststore"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// TestUnaryCacheHitAllocs guards issue 16 item 1's allocation budget: a
// unary call whose token is in the verified-token cache, recording into an
// OpenTelemetry SDK with a JSON logger (BenchmarkUnaryInterceptorCacheHitSDKJSONLog),
// allocates at most twice: the handler's context with the claims, and
// grpc-go's copy of the authorization values. Every call is still counted
// and its duration recorded.
func TestUnaryCacheHitAllocs(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s, err := interceptor.New(newValidator(t), interceptor.WithStore(teststore.Memory(t)),
		interceptor.WithMeterProvider(mp), interceptor.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))),
		interceptor.WithAuditHook(func(context.Context, interceptor.AuditRecord) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+mint(t, tok{sid: "s-allocs"})))
	unary := s.UnaryServerInterceptor()
	req := &inboxv1.GetMessageRequest{Id: "1"}
	call := func() {
		if _, err := unary(ctx, req, benchInfo, benchHandler); err != nil {
			t.Fatal(err)
		}
	}
	call() // the token's verification, the method's metrics entry
	const runs = 200
	if a := testing.AllocsPerRun(runs, call); a > 2 {
		t.Fatalf("%v allocations per cache-hit call, want at most 2", a)
	}
	got := collect(t, reader)
	h := got[interceptor.MetricCheckDuration].Data.(metricdata.Histogram[float64])
	if len(h.DataPoints) != 1 || h.DataPoints[0].Count != runs+2 { // AllocsPerRun calls once more to warm up
		t.Fatalf("duration points %+v, want one with %d calls", h.DataPoints, runs+2)
	}
}
