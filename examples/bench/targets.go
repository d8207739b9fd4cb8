package main

import "fmt"

// evaluate fills r.Targets from the measurements.
func (r *results) evaluate() {
	cpu := float64(r.Machine.GOMAXPROCS)
	c64 := func(name string) (loadResult, bool) {
		row := r.find(r.Unary, name)
		if row == nil || row.Skipped != "" || row.Error != "" {
			return loadResult{}, false
		}
		return row.at(64)
	}
	ratioPair := func(name, caeName, other string, goal float64) {
		cae, caeOK := c64(caeName)
		t := target{Name: name, Goal: fmt.Sprintf("≥ %.2f", goal)}
		o, ok := c64(other)
		if !caeOK || !ok || o.RPS == 0 {
			t.Result, t.Measured, t.Note = "skipped", "–", "a case did not run"
			r.Targets = append(r.Targets, t)
			return
		}
		ratio := cae.RPS / o.RPS
		t.Measured = fmt.Sprintf("%.2f (%.0f / %.0f req/s)%s", ratio, cae.RPS, o.RPS, paired(cae, o))
		t.Result = result(ratio >= goal)
		// With every core busy at c=64, CPU time per call ≈ cores / throughput.
		t.Note = fmt.Sprintf("CPU per call (client+server, %.0f cores / req/s): caekit %.1f µs, %s %.1f µs",
			cpu, cpu/cae.RPS*1e6, other, cpu/o.RPS*1e6)
		r.Targets = append(r.Targets, t)
	}
	ratioTarget := func(name, other string, goal float64) { ratioPair(name, "caekit, cache on", other, goal) }
	ratioTarget("caekit (cache on) / Bare, unary c=64", "Bare", 0.90)
	ratioPair("caekit + SDK/log / Bare + SDK/log, unary c=64", "caekit, cache on + SDK/log", observedBareName, 0.95)
	streamTarget := func(name string, rows []streamRow, caeName, other string) {
		t := target{Name: name, Goal: "≥ 0.95"}
		var c, o *streamRow
		for i := range rows {
			switch rows[i].Name {
			case caeName:
				c = &rows[i]
			case other:
				o = &rows[i]
			}
		}
		if c == nil || o == nil || c.Error != "" || o.Error != "" || c.Skipped != "" || o.Skipped != "" || o.MsgsPerSec == 0 {
			t.Result, t.Measured, t.Note = "skipped", "–", "a case did not run"
		} else {
			ratio := c.MsgsPerSec / o.MsgsPerSec
			t.Measured = fmt.Sprintf("%.2f (%.0f / %.0f msgs/s)", ratio, c.MsgsPerSec, o.MsgsPerSec)
			t.Result = result(ratio >= 0.95)
			t.Note = fmt.Sprintf("Δ %+.0f ns per message", c.NsPerMsg-o.NsPerMsg)
		}
		r.Targets = append(r.Targets, t)
	}
	streamTarget("Server stream, caekit (cache on) / Bare", r.Stream, "caekit, cache on", "Bare")
	streamTarget("Client stream, caekit (cache on) / Bare", r.ClientStream, "caekit, cache on", "Bare")
	{
		t := target{Name: "HTTP middleware (cache on) / same handler, c=64", Goal: "≥ 0.95"}
		var c, o *unaryRow
		for i := range r.HTTP {
			switch r.HTTP[i].Name {
			case httpCAEName:
				c = &r.HTTP[i]
			case httpBareName:
				o = &r.HTTP[i]
			}
		}
		cl, cok := loadAt(c, 64)
		ol, ook := loadAt(o, 64)
		if !cok || !ook || ol.RPS == 0 {
			t.Result, t.Measured, t.Note = "skipped", "–", "a case did not run"
		} else {
			ratio := cl.RPS / ol.RPS
			t.Measured = fmt.Sprintf("%.2f (%.0f / %.0f req/s)%s", ratio, cl.RPS, ol.RPS, paired(cl, ol))
			t.Result = result(ratio >= 0.95)
			t.Note = fmt.Sprintf("CPU per request (client+server, %.0f cores / req/s): middleware %.1f µs, handler %.1f µs", cpu, cpu/cl.RPS*1e6, cpu/ol.RPS*1e6)
		}
		r.Targets = append(r.Targets, t)
	}
	// overheadTarget is a micro benchmark's cost minus its base case's,
	// against a time and an allocation bound.
	overheadTarget := func(name, goal, bench, base string, maxNs float64, maxAllocs int64, note string) {
		t := target{Name: name, Goal: goal}
		m, b := r.micro(bench), r.micro(base)
		if m == nil || b == nil {
			t.Result, t.Measured = "skipped", "–"
		} else {
			d, a := m.NsPerOp-b.NsPerOp, m.AllocsPerOp-b.AllocsPerOp
			t.Measured = fmt.Sprintf("%s, %d allocs", ns(d), a)
			t.Result = result(d <= maxNs && a <= maxAllocs)
			t.Note = note
		}
		r.Targets = append(r.Targets, t)
	}
	overheadTarget("HTTP middleware overhead per request, cache hit", "≤ 3 µs, ≤ 10 allocs", microHTTPCAE, microHTTPHandler, 3000, 10, "caehttp middleware + handler into an httptest.ResponseRecorder, minus the handler alone")
	ratioTarget("caekit (cache on) / Naive, unary c=64", "Naive (golang-jwt)", 2.0)
	ratioTarget("caekit (cache on) / Introspection, unary c=64", "Introspection", 3.0)

	overheadTarget("Interceptor overhead per call, cache hit", "≤ 3 µs, ≤ 10 allocs", "caekit cache hit", "handler only (no interceptor)", 3000, 10, "UnaryServerInterceptor called directly minus the bare handler; 7 revocation look-ups + location policy")
	overheadTarget("Interceptor overhead per call, cache hit, OTel SDK + JSON log", "≤ 1 µs, ≤ 4 allocs", microObserved, "handler only (no interceptor)", 1000, 4, "as above, caekit recording into the OTel SDK (Prometheus exporter) and logging to a slog JSON handler on io.Discard")
	nsTarget := func(name, bench string, goal float64, note string) {
		t := target{Name: name, Goal: fmt.Sprintf("≤ %.0f ns, 0 allocs", goal), Note: note}
		m := r.micro(bench)
		if m == nil {
			t.Result, t.Measured = "skipped", "–"
		} else {
			t.Measured = fmt.Sprintf("%s, %d allocs", ns(m.NsPerOp), m.AllocsPerOp)
			t.Result = result(m.NsPerOp <= goal && m.AllocsPerOp == 0)
		}
		r.Targets = append(r.Targets, t)
	}
	nsTarget("Revocation look-up, 1M entries", "Memory.Lookup, 1M entries", 100, "revocation.Memory.Lookup, miss and hit alternating")
	nsTarget("Location look-up, 5,000 ranges", "location.Table.Lookup, 5000 ranges", 200, "location.Table.Lookup, hit and miss alternating")
	latTarget := func(name, meas string) {
		t := target{Name: name, Goal: "p99 ≤ 100 ms"}
		l := r.latency(meas)
		switch {
		case l == nil:
			t.Result, t.Measured = "skipped", "–"
		case l.Skipped != "" || l.Error != "":
			t.Result, t.Measured, t.Note = "skipped", "–", l.Skipped+l.Error
		default:
			t.Measured = fmt.Sprintf("p99 %s (p50 %s, n=%d)", us(l.P99us), us(l.P50us), l.N)
			t.Result = result(l.P99us <= 100_000)
		}
		r.Targets = append(r.Targets, t)
	}
	latTarget("Open-stream cut after the event reaches the store", latCutMemory)
	latTarget("HTTP SSE cut after the event reaches the store", latCutHTTP)
	latTarget("Redis propagation to 3 replicas", latPropagation)
}

// paired describes a and b's paired-slice ratio (pairedRatio), or nothing
// when they did not run interleaved.
func paired(a, b loadResult) string {
	med, q1, q3, n := pairedRatio(a, b)
	if n < 4 {
		return ""
	}
	return fmt.Sprintf("; paired slices: median %.2f (quartiles %.2f–%.2f, n=%d)", med, q1, q3, n)
}

// loadAt returns row's run at concurrency c, if row ran.
func loadAt(row *unaryRow, c int) (loadResult, bool) {
	if row == nil || row.Skipped != "" || row.Error != "" {
		return loadResult{}, false
	}
	return row.at(c)
}

func result(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// Names of the latency measurements.
const (
	latCutMemory   = "Stream cut: Put into memory store → client sees the stream end"
	latCutRedis    = "Stream cut via Redis: Put on replica A → stream on replica C ends"
	latPropagation = "Redis propagation: Put on replica A → visible on B and C"
)
