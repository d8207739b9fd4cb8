package interceptor_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/codes"

	"github.com/caekit/caekit/interceptor"
)

// TestCheckDurationKeyedByOutcomeOnly guards issue 16 item 1: the duration
// histogram used to carry rpc.method × outcome, so every allowed call paid
// the SDK's attribute work for two instruments (about half of caekit's
// per-call cost with the SDK on). Now the histogram carries the outcome
// (and a denial's reason) only, and the per-method decision counts, read at
// collection from atomic counters, still add up per method.
func TestCheckDurationKeyedByOutcomeOnly(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	e := newObsEnv(t, nil, interceptor.WithMeterProvider(mp))
	ctx := testCtx(t)
	good := mint(t, tok{sid: "s-ok"})
	for range 5 {
		if err := e.get(withToken(ctx, good)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.get(ctx); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	got := collect(t, reader)
	h, ok := got[interceptor.MetricCheckDuration].Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("duration: %#v", got[interceptor.MetricCheckDuration])
	}
	var keys []string
	for _, dp := range h.DataPoints {
		keys = append(keys, fmt.Sprintf("%s:%d", attrKey(dp.Attributes), dp.Count))
	}
	sort.Strings(keys)
	want := []string{"caekit.outcome=allow:5", "caekit.outcome=deny,caekit.reason=TOKEN_INVALID:1"}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("duration points %v, want %v", keys, want)
	}
	dec := sums(t, got[interceptor.MetricDecisions])
	if dec["caekit.outcome=allow,rpc.method="+getMethod] != 5 || dec["caekit.outcome=deny,caekit.reason=TOKEN_INVALID,rpc.method="+getMethod] != 1 || len(dec) != 2 {
		t.Fatalf("decisions %v", dec)
	}
	s := got[interceptor.MetricDecisions].Data.(metricdata.Sum[int64])
	if !s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality {
		t.Fatalf("decisions is not a cumulative monotonic sum: %+v", s)
	}
}

// TestAllowedDurationEvery guards WithAllowedDurationEvery (issue 16 item
// 1): with n = 4, ten allowed calls put 2 values into the duration
// histogram (the 4th and 8th), a denial is still recorded, and the
// decision counter still counts all ten; n = 0 records no allowed call; a
// negative n is refused by New.
func TestAllowedDurationEvery(t *testing.T) {
	for _, tc := range []struct {
		every, wantAllow int
	}{{4, 2}, {0, 0}, {1, 10}} {
		t.Run(fmt.Sprint("every=", tc.every), func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			e := newObsEnv(t, nil, interceptor.WithMeterProvider(mp), interceptor.WithAllowedDurationEvery(tc.every))
			ctx := testCtx(t)
			good := mint(t, tok{sid: "s-ok"})
			for range 10 {
				if err := e.get(withToken(ctx, good)); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.get(ctx); statusCode(err) != codes.Unauthenticated {
				t.Fatalf("no token: %v", err)
			}
			got := collect(t, reader)
			h, _ := got[interceptor.MetricCheckDuration].Data.(metricdata.Histogram[float64])
			counts := map[string]uint64{}
			for _, dp := range h.DataPoints {
				counts[attrKey(dp.Attributes)] = dp.Count
			}
			if counts["caekit.outcome=allow"] != uint64(tc.wantAllow) || counts["caekit.outcome=deny,caekit.reason=TOKEN_INVALID"] != 1 {
				t.Fatalf("duration counts %v, want %d allowed and 1 denied", counts, tc.wantAllow)
			}
			if dec := sums(t, got[interceptor.MetricDecisions]); dec["caekit.outcome=allow,rpc.method="+getMethod] != 10 {
				t.Fatalf("decisions %v, want 10 allowed", dec)
			}
		})
	}
	if _, err := interceptor.New(newValidator(t), interceptor.WithAllowedDurationEvery(-1)); err == nil || !strings.Contains(err.Error(), "must not be negative") {
		t.Fatalf("New with n = -1: %v, want an error saying n must not be negative", err)
	}
}
