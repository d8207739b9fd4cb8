package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// results is everything one driver run measured; the driver writes it as
// JSON for the chart program.
type results struct {
	Generated string     `json:"generated"`
	Mode      string     `json:"mode"`
	Command   string     `json:"command"`
	Machine   machine    `json:"machine"`
	Settings  settings   `json:"settings"`
	Unary     []unaryRow `json:"unary"`
	Extra     []unaryRow `json:"extra,omitempty"`
	// HTTP is the REST handler without and with caekit's net/http middleware.
	HTTP   []unaryRow  `json:"http,omitempty"`
	Stream []streamRow `json:"stream"`
	// ClientStream is the same measurement on Upload, a client stream.
	ClientStream []streamRow  `json:"client_stream,omitempty"`
	Micro        []microRow   `json:"micro"`
	Latency      []latencyRow `json:"latency"`
	Targets      []target     `json:"targets"`
	Notes        []string     `json:"notes,omitempty"`
}

type machine struct {
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	// LoadBefore and LoadAfter are the 1-minute load averages when the run
	// started and ended: anything else running skews the numbers.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
}

type settings struct {
	WarmupSec   float64 `json:"warmup_sec"`
	DurationSec float64 `json:"duration_sec"`
	SliceSec    float64 `json:"slice_sec"`
	StreamSec   float64 `json:"stream_sec"`
	MicroRounds int     `json:"micro_rounds"`
	BenchTime   string  `json:"benchtime"`
	Conns       int     `json:"conns"`
	Concurrency []int   `json:"concurrency"`
	Entries     int     `json:"revocation_entries"`
	Ranges      int     `json:"location_ranges"`
	CutSamples  int     `json:"cut_samples"`
	PropSamples int     `json:"propagation_samples"`
}

type unaryRow struct {
	Name    string       `json:"name"`
	Skipped string       `json:"skipped,omitempty"`
	Error   string       `json:"error,omitempty"`
	Runs    []loadResult `json:"runs,omitempty"`
}

// at returns the run at concurrency c.
func (r *unaryRow) at(c int) (loadResult, bool) {
	for _, l := range r.Runs {
		if l.Concurrency == c {
			return l, true
		}
	}
	return loadResult{}, false
}

type streamRow struct {
	Name    string `json:"name"`
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
	streamResult
}

type microRow struct {
	Group       string  `json:"group"`
	Name        string  `json:"name"`
	N           int     `json:"n"`
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`
	Error       string  `json:"error,omitempty"`
}

type latencyRow struct {
	Name    string `json:"name"`
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
	latencyResult
}

type target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Result   string `json:"result"` // met, missed, skipped
	Note     string `json:"note,omitempty"`
}

func machineInfo() machine {
	m := machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPU: "unknown", LoadBefore: loadAverage()}
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			m.CPU = strings.TrimSpace(v)
			break
		}
	}
	return m
}

func (r *results) find(rows []unaryRow, name string) *unaryRow {
	for i := range rows {
		if rows[i].Name == name {
			return &rows[i]
		}
	}
	return nil
}

func (r *results) micro(name string) *microRow {
	for i := range r.Micro {
		if r.Micro[i].Name == name && r.Micro[i].Error == "" {
			return &r.Micro[i]
		}
	}
	return nil
}

func (r *results) latency(name string) *latencyRow {
	for i := range r.Latency {
		if r.Latency[i].Name == name {
			return &r.Latency[i]
		}
	}
	return nil
}

// loadAverage returns the 1-minute load average, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

// markdown writes the report.
func (r *results) markdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	m := r.Machine
	p("Measured %s (%s mode) on %s, %d logical CPUs (GOMAXPROCS %d), %s %s/%s; 1-minute load average %s before, %s after the run.\n",
		r.Generated, r.Mode, m.CPU, m.NumCPU, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch, m.LoadBefore, m.LoadAfter)
	s := r.Settings
	p("Each unary point: %.2gs warm-up, then %.2gs measured in %.2gs slices, the cases taking turns slice by slice; closed loop, %d client connections; caekit cases: %s revocation entries, %d location ranges. Micro benchmarks: fastest of %d runs of %s.\n\n",
		s.WarmupSec, s.DurationSec, s.SliceSec, s.Conns, count(s.Entries), s.Ranges, s.MicroRounds, s.BenchTime)

	bare := r.find(r.Unary, "Bare")
	// Observed cases (+ SDK/log) are compared with the observed Bare.
	obsBare := r.find(r.Unary, observedBareName)
	ratio := func(row *unaryRow, l loadResult, c int) string {
		bare := bare
		if strings.HasSuffix(row.Name, "+ SDK/log") {
			bare = obsBare
		}
		if bare == nil {
			return "–"
		}
		b, ok := bare.at(c)
		if !ok || b.RPS == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", l.RPS/b.RPS)
	}
	if len(r.Unary) > 0 {
		p("### Unary GetMessage over loopback TCP\n\n")
		p("| Case | req/s c=1 | req/s c=8 | req/s c=64 | ×Bare c=1 / 8 / 64 | p50 / p99 c=1 (µs) | p50 / p99 c=64 (µs) | allocs/call | Δ allocs vs Bare |\n")
		p("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		bareAllocs := 0.0
		if bare != nil {
			if b, ok := bare.at(64); ok {
				bareAllocs = b.AllocsPerCall
			}
		}
		for i := range r.Unary {
			row := &r.Unary[i]
			if row.Skipped != "" || row.Error != "" {
				why := row.Skipped
				if why == "" {
					why = "error: " + row.Error
				}
				p("| %s | skipped: %s | | | | | | | |\n", row.Name, mdEscape(why))
				continue
			}
			cells := []string{row.Name}
			var ratios []string
			for _, c := range []int{1, 8, 64} {
				l, ok := row.at(c)
				if !ok {
					cells = append(cells, "–")
					ratios = append(ratios, "–")
					continue
				}
				cells = append(cells, fmt.Sprintf("%.0f", l.RPS))
				ratios = append(ratios, ratio(row, l, c))
			}
			cells = append(cells, strings.Join(ratios, " / "))
			for _, c := range []int{1, 64} {
				if l, ok := row.at(c); ok {
					cells = append(cells, fmt.Sprintf("%.0f / %.0f", l.P50us, l.P99us))
				} else {
					cells = append(cells, "–")
				}
			}
			if l, ok := row.at(64); ok {
				cells = append(cells, fmt.Sprintf("%.1f", l.AllocsPerCall), fmt.Sprintf("%+.1f", l.AllocsPerCall-bareAllocs))
			} else {
				cells = append(cells, "–", "–")
			}
			p("| %s |\n", strings.Join(cells, " | "))
		}
		p("\n×Bare of the \"+ SDK/log\" rows is relative to %s: both run the OpenTelemetry SDK with a Prometheus exporter, gRPC server metrics like otelgrpc's and one JSON access-log line per call (to io.Discard), as the example server does in both its modes; caekit records into the same SDK.\n", observedBareName)
		p("\nallocs/call: process-wide runtime.MemStats delta per call at c=64 (client + server + the introspection endpoint, all in this process); the client side is the same in every case, so Δ vs Bare is the server-side extra.\n\n")

	}

	if len(r.Extra) > 0 {
		p("### More unary variants at c=64 (taking turns with a Bare server of their own)\n\n| Case | req/s | ×Bare | p50 / p99 (µs) | allocs/call |\n|---|--:|--:|--:|--:|\n")
		if eb := r.find(r.Extra, "Bare"); eb != nil {
			bare = eb
		}
		for i := range r.Extra {
			row := &r.Extra[i]
			l, ok := row.at(64)
			if !ok {
				p("| %s | skipped: %s | | | |\n", row.Name, mdEscape(row.Skipped+row.Error))
				continue
			}
			p("| %s | %.0f | %s | %.0f / %.0f | %.1f |\n", row.Name, l.RPS, ratio(row, l, 64), l.P50us, l.P99us, l.AllocsPerCall)
		}
		p("\n")
	}

	if len(r.HTTP) > 0 {
		p("### HTTP: GET /v1/messages/42 over HTTP/1.1 keep-alive, loopback TCP\n\n")
		p("The same handler without and with caekit's net/http middleware (caehttp; cache on, %s revocation entries, %d location ranges), taking turns slice by slice like the gRPC cases; closed loop, one keep-alive connection per worker.\n\n", count(s.Entries), s.Ranges)
		p("| Case | req/s c=1 | req/s c=8 | req/s c=64 | ×handler c=1 / 8 / 64 | p50 / p99 c=1 (µs) | p50 / p99 c=64 (µs) | allocs/call |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
		hb := r.find(r.HTTP, httpBareName)
		for i := range r.HTTP {
			row := &r.HTTP[i]
			if row.Skipped != "" || row.Error != "" {
				p("| %s | skipped: %s | | | | | | |\n", row.Name, mdEscape(row.Skipped+row.Error))
				continue
			}
			cells := []string{row.Name}
			var ratios []string
			for _, c := range []int{1, 8, 64} {
				l, ok := row.at(c)
				if !ok {
					cells, ratios = append(cells, "–"), append(ratios, "–")
					continue
				}
				cells = append(cells, fmt.Sprintf("%.0f", l.RPS))
				rat := "–"
				if hb != nil {
					if b, ok := hb.at(c); ok && b.RPS > 0 {
						rat = fmt.Sprintf("%.2f", l.RPS/b.RPS)
					}
				}
				ratios = append(ratios, rat)
			}
			cells = append(cells, strings.Join(ratios, " / "))
			for _, c := range []int{1, 64} {
				if l, ok := row.at(c); ok {
					cells = append(cells, fmt.Sprintf("%.0f / %.0f", l.P50us, l.P99us))
				} else {
					cells = append(cells, "–")
				}
			}
			if l, ok := row.at(64); ok {
				cells = append(cells, fmt.Sprintf("%.1f", l.AllocsPerCall))
			} else {
				cells = append(cells, "–")
			}
			p("| %s |\n", strings.Join(cells, " | "))
		}
		p("\n")
	}

	streamTable := func(rows []streamRow, title string) {
		var bs, obs *streamRow
		for i := range rows {
			if rows[i].Error != "" {
				continue
			}
			switch rows[i].Name {
			case "Bare":
				bs = &rows[i]
			case observedBareName:
				obs = &rows[i]
			}
		}
		p("%s\n\n", title)
		p("| Case | msgs/s | ×Bare | ns/msg | Δ ns/msg vs Bare | allocs/msg |\n|---|--:|--:|--:|--:|--:|\n")
		for i := range rows {
			row := &rows[i]
			if row.Skipped != "" || row.Error != "" {
				p("| %s | skipped: %s | | | | |\n", row.Name, mdEscape(row.Skipped+row.Error))
				continue
			}
			rat, delta := "–", "–"
			base := bs
			if strings.HasSuffix(row.Name, "+ SDK/log") {
				base = obs
			}
			if base != nil {
				rat = fmt.Sprintf("%.2f", row.MsgsPerSec/base.MsgsPerSec)
				delta = fmt.Sprintf("%+.0f", row.NsPerMsg-base.NsPerMsg)
			}
			p("| %s | %.0f | %s | %.0f | %s | %.1f |\n", row.Name, row.MsgsPerSec, rat, row.NsPerMsg, delta, row.AllocsPerMsg)
		}
		p("\n")
	}
	if len(r.Stream) > 0 {
		streamTable(r.Stream, "### Server stream WatchInbox: per-message cost (1 stream, server sends back to back)")
	}
	if len(r.ClientStream) > 0 {
		streamTable(r.ClientStream, "### Client stream Upload: per-message cost (1 stream, client sends back to back)")
	}
	if len(r.Stream) > 0 || len(r.ClientStream) > 0 {
		p("caekit re-checks on every message what may change without notice (the store's health, checks not declaring `check.TimeIndependent`); the revocation look-ups and the policy run again only after an event, a policy change or a periodic re-check (a generation counter per stream). Naive and Introspection check once, when the stream opens.\n\n")
	}

	p("### Server-side micro benchmarks (called directly, no transport)\n\n| Group | Benchmark | ns/op | allocs/op | B/op |\n|---|---|--:|--:|--:|\n")
	for _, mr := range r.Micro {
		if mr.Group == "matrix" {
			continue
		}
		if mr.Error != "" {
			p("| %s | %s | error: %s | | |\n", mr.Group, mr.Name, mdEscape(mr.Error))
			continue
		}
		p("| %s | %s | %s | %d | %d |\n", mr.Group, mr.Name, ns(mr.NsPerOp), mr.AllocsPerOp, mr.BytesPerOp)
	}
	var matrix []microRow
	for _, mr := range r.Micro {
		if mr.Group == "matrix" {
			matrix = append(matrix, mr)
		}
	}
	if len(matrix) > 0 {
		p("\n### caekit interceptor (cache hit) by revocation entries and location ranges: ns/op (allocs/op)\n\n")
		p("| Revocation entries | 10 ranges | 5,000 ranges |\n|--:|--:|--:|\n")
		for i := 0; i+1 < len(matrix); i += 2 {
			a, b := matrix[i], matrix[i+1]
			ent := strings.TrimPrefix(strings.Split(a.Name, ",")[1], " ")
			p("| %s | %s (%d) | %s (%d) |\n", strings.TrimSuffix(ent, " entries"), ns(a.NsPerOp), a.AllocsPerOp, ns(b.NsPerOp), b.AllocsPerOp)
		}
	}
	p("\n### Enforcement latency\n\n| Measurement | samples | p50 | p99 | max |\n|---|--:|--:|--:|--:|\n")
	for _, l := range r.Latency {
		if l.Skipped != "" || l.Error != "" {
			p("| %s | skipped: %s | | | |\n", l.Name, mdEscape(l.Skipped+l.Error))
			continue
		}
		p("| %s | %d | %s | %s | %s |\n", l.Name, l.N, us(l.P50us), us(l.P99us), us(l.MaxUs))
	}
	p("\n### Targets\n\n| Target | Goal | Measured | Result | Note |\n|---|---|---|---|---|\n")
	for _, t := range r.Targets {
		res := map[string]string{"met": "✅ met", "missed": "❌ missed", "skipped": "– skipped"}[t.Result]
		p("| %s | %s | %s | %s | %s |\n", t.Name, t.Goal, t.Measured, res, mdEscape(t.Note))
	}
	for _, n := range r.Notes {
		p("\n%s\n", n)
	}
}

func mdEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

func ns(v float64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.1f µs", v/1000)
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f ns", v)
	}
	return fmt.Sprintf("%.1f ns", v)
}

func us(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}
