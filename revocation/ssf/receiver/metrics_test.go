package receiver_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
)

// eventCounts collects caekit.ssf.events by "type outcome delivery [code]".
func eventCounts(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "caekit.ssf.events" {
				continue
			}
			if m.Unit != "{event}" {
				t.Fatalf("unit %q", m.Unit)
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				typ, _ := dp.Attributes.Value("caekit.ssf.event_type")
				outcome, _ := dp.Attributes.Value("caekit.outcome")
				delivery, _ := dp.Attributes.Value("caekit.ssf.delivery")
				k := typ.AsString() + " " + outcome.AsString() + " " + delivery.AsString()
				if code, ok := dp.Attributes.Value("caekit.ssf.error_code"); ok {
					k += " " + code.AsString()
				}
				out[k] = dp.Value
			}
		}
	}
	return out
}

func TestMetricsEventsByTypeAndOutcome(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	var logs testkit.LogBuffer
	e := newEnv(t, receiver.WithMeterProvider(mp), receiver.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	tr := e.tr
	session := map[string]any{"format": "opaque", "id": "sid-m"}

	stored, _ := tr.Event(ssf.CAEPSessionRevoked, nil, session)
	for range 2 { // the second delivery is a duplicate
		if st, er := e.push(t, stored); st != 202 {
			t.Fatalf("push: %d %v", st, er)
		}
	}
	recorded, _ := tr.Event(ssf.CAEPSessionEstablished, nil, session)
	unknown, _ := tr.Event("https://example.com/event-type/custom", nil, session)
	wrongAud := tr.Claims(ssf.RISCAccountDisabled, nil, session)
	wrongAud["aud"] = "someone-else"
	for _, set := range []string{recorded, unknown} {
		if st, er := e.push(t, set); st != 202 {
			t.Fatalf("push: %d %v", st, er)
		}
	}
	if st, _ := e.push(t, tr.Sign(wrongAud)); st != 400 {
		t.Fatalf("wrong audience accepted: %d", st)
	}
	if st, _ := e.push(t, "not-a-set"); st != 400 {
		t.Fatalf("garbage accepted: %d", st)
	}
	e.store.fail.Store(true)
	failing, _ := tr.Event(ssf.RISCAccountDisabled, nil, session)
	if st, _ := e.push(t, failing); st != 503 {
		t.Fatalf("store failure answered %d", st)
	}
	e.store.fail.Store(false)
	// The JWKS endpoint is down: the unknown kid cannot be looked up (503).
	tr.SetJWKSDown(true)
	unknownKID := tr.SignWith(tr.Claims(ssf.RISCAccountDisabled, nil, session), map[string]any{"kid": "not-published"})
	if st, _ := e.push(t, unknownKID); st != 503 {
		t.Fatalf("unknown kid answered %d", st)
	}
	tr.SetJWKSDown(false)
	direct, _ := tr.Event(ssf.RISCAccountPurged, nil, session)
	if _, err := e.r.Receive(context.Background(), []byte(direct)); err != nil {
		t.Fatal(err)
	}

	got := eventCounts(t, reader)
	want := map[string]int64{
		"caep.session-revoked stored push":        1,
		"caep.session-revoked duplicate push":     1,
		"caep.session-established recorded push":  1,
		"_OTHER unknown_type push":                1,
		"_OTHER rejected push invalid_audience":   1, // refused before its event type is trusted
		"_OTHER rejected push invalid_request":    1,
		"risc.account-disabled store_failed push": 1,
		"_OTHER keys_unavailable push":            1, // unverified: its event type is not trusted
		"risc.account-purged stored direct":       1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %v\nwant %v", got, want)
	}
	// The configured Observer still sees every SET.
	if n := e.obs.count(receiver.OutcomeStored) + e.obs.count(receiver.OutcomeRejected); n != 4 {
		t.Fatalf("observer saw %d stored+rejected, want 4", n)
	}
	// Log lines name the outcome.
	out := logs.String()
	for _, w := range []string{"outcome=stored", "outcome=duplicate", "outcome=rejected", "outcome=store_failed", "outcome=keys_unavailable", "outcome=unknown_type", "iss=" + tr.Issuer} {
		if !strings.Contains(out, w) {
			t.Errorf("logs lack %q:\n%s", w, out)
		}
	}
}

func TestMetricsJWKSRefreshFailures(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	e := newEnv(t, receiver.WithMeterProvider(mp), receiver.WithLimits(receiver.Limits{JWKSRefresh: 20 * time.Millisecond, UnknownKIDRefresh: 20 * time.Millisecond}))
	e.tr.SetJWKSDown(true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == "caekit.ssf.jwks.refresh.failures" {
					if s := m.Data.(metricdata.Sum[int64]); len(s.DataPoints) == 1 && s.DataPoints[0].Value > 0 {
						return
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no JWKS refresh failure counted while the JWKS endpoint is down")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
