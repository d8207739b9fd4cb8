package logout_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation/logout"
)

// TestMetricsAndLogs guards the observability the SSF receiver has too:
// MetricEvents counts requests by channel, outcome and error code, and the
// logs carry the token's short hash but never the token.
func TestMetricsAndLogs(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	var logs testkit.LogBuffer
	e := newEnv(t, logout.WithMeterProvider(mp), logout.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	good := e.idp.sign(t, e.idp.logoutClaims(), nil)
	bad := e.idp.sign(t, with(e.idp.logoutClaims(), "nonce", "n", "jti", "other"), nil)
	e.postLogout(t, good)
	e.postLogout(t, good)
	e.postLogout(t, bad)
	e.postGTR(t, e.gtrJWT(t, e.gtrClaims()), `{"sub_id":{"format":"opaque","id":"alice"}}`)
	e.postGTR(t, "", `{}`)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != logout.MetricEvents {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				ch, _ := dp.Attributes.Value(logout.AttrChannel)
				oc, _ := dp.Attributes.Value(logout.AttrOutcome)
				k := ch.AsString() + " " + oc.AsString()
				if code, ok := dp.Attributes.Value(logout.AttrErrorCode); ok {
					k += " " + code.AsString()
				}
				got[k] = dp.Value
			}
		}
	}
	want := map[string]int64{
		"backchannel_logout stored":                      1,
		"backchannel_logout replayed invalid_request":    1,
		"backchannel_logout rejected invalid_request":    1,
		"global_token_revocation stored":                 1,
		"global_token_revocation rejected invalid_token": 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	l := logs.String()
	for _, raw := range []string{good, bad} {
		if strings.Contains(l, raw[strings.LastIndexByte(raw, '.')+1:]) || strings.Contains(l, raw[:40]) {
			t.Fatal("a token was logged")
		}
	}
	if !strings.Contains(l, "token="+tokenHash(good)) {
		t.Errorf("the logs do not name the token by its hash:\n%s", l)
	}
}
