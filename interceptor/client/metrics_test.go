package client_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/internal/testkit"
)

// clientCounts returns each counter's values by rendered attribute set.
func clientCounts(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			s, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			out[m.Name] = map[string]int64{}
			for _, dp := range s.DataPoints {
				k := ""
				for _, kv := range dp.Attributes.ToSlice() {
					k += string(kv.Key) + "=" + kv.Value.Emit() + ","
				}
				out[m.Name][k] = dp.Value
			}
		}
	}
	return out
}

// A revoked token draws a challenge and one retry; both are counted, as are
// the two token fetches, and the configured Observer still sees the events.
func TestMetricsChallengesRetriesFetches(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	e := newEnv(t, envConfig{clientOpts: []client.Option{client.WithMeterProvider(mp)}})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	got := clientCounts(t, reader)
	const m = "rpc.method=example.inbox.v1.InboxService/GetMessage,"
	if v := got[client.MetricChallenges]["caekit.client.challenge_error=insufficient_claims,caekit.reason=SESSION_REVOKED,"+m]; v != 1 {
		t.Fatalf("challenges: %v", got[client.MetricChallenges])
	}
	if v := got[client.MetricRetries]["caekit.outcome=retried,"+m]; v != 1 || len(got[client.MetricRetries]) != 1 {
		t.Fatalf("retries: %v", got[client.MetricRetries])
	}
	if v := got[client.MetricTokenFetches]["caekit.outcome=success,"]; v != 2 {
		t.Fatalf("fetches: %v", got[client.MetricTokenFetches])
	}
	if e.obs.count(client.EventChallenge) != 1 || e.obs.count(client.EventRetry) != 1 {
		t.Fatalf("observer events %+v", e.obs.events)
	}
}

// A failed proactive refresh while the token is still valid is counted as a
// stale failure.
func TestMetricsRefreshFailures(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	e := newEnv(t, envConfig{src: soonRefresh(10 * time.Millisecond), clientOpts: []client.Option{client.WithMeterProvider(mp)}})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.idp.SetDown(true)
	testkit.Eventually(t, "a counted refresh failure", func() bool {
		_ = e.get()
		return clientCounts(t, reader)[client.MetricTokenFetches]["caekit.client.stale=true,caekit.outcome=failure,"] >= 1
	})
	e.idp.SetDown(false)
}
