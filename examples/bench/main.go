// Command bench measures caekit side by side with the alternatives a gRPC
// resource API can choose among, over the same InboxService on loopback TCP
// with the same tokens, and prints a markdown report:
//
//   - Bare: no interceptors.
//   - Naive: go-grpc-middleware v2 auth interceptor, golang-jwt RS256
//     verification on every call.
//   - Introspection: an RFC 7662 endpoint on loopback HTTP, called on every call.
//   - caekit, cache off / cache on: JWT validation, revocation check and
//     location policy; without and with the verified-token cache.
//   - caekit, Redis ×3: the same over a Redis-backed store shared by three
//     replicas (skipped when redis-server is not on PATH).
//   - HTTP: a REST handler over HTTP/1.1 keep-alive without and with caekit's
//     net/http middleware (caehttp), taking turns the same way; the
//     middleware alone with httptest.NewRecorder; an SSE response's cut.
//
// Load generator, servers and the introspection endpoint share the
// machine's cores, in every case alike; compare ratios, not absolute numbers.
//
// Usage:
//
//	go run ./examples/bench                     # default, about 2 minutes on 2 cores
//	go run ./examples/bench -quick              # smoke run, about 30 s
//	go run ./examples/bench -full               # 10 s points, more variants end to end (~7 min)
//	go run ./examples/bench -http-only          # only the HTTP cases (~30 s)
//	go run ./examples/bench -json examples/bench/results.json
//	go run ./examples/bench/chart -in examples/bench/results.json -out examples/bench/throughput.svg
//
// The same measurements exist as testing.B benchmarks:
//
//	go test -run '^$' -bench . ./examples/bench
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"testing"
	"time"
)

type config struct {
	mode        string
	warm, dur   time.Duration // per case and concurrency: warm-up, measured time
	slice       time.Duration // the cases take turns in slices this long
	streamDur   time.Duration // measured time per case on a stream
	microRounds int           // micro benchmarks run this often; the fastest counts
	benchtime   string
	cutN, propN int
	concurrency []int
	sensitivity []int
	extra       bool
	skipRedis   bool
	httpOnly    bool // only the HTTP cases: throughput, the middleware micro benchmarks, the SSE cut
}

func main() {
	testing.Init() // registers -test.benchtime, which testing.Benchmark reads
	quick := flag.Bool("quick", false, "short smoke run (about 30 s)")
	full := flag.Bool("full", false, "long run: 5 s points, 3 rounds, algorithm and store-size variants end to end")
	jsonOut := flag.String("json", "", "also write the results as JSON to this file (input of ./examples/bench/chart)")
	mdOut := flag.String("md", "", "also write the markdown report to this file")
	noRedis := flag.Bool("no-redis", false, "skip the Redis cases")
	httpOnly := flag.Bool("http-only", false, "measure only the HTTP cases (throughput without and with the middleware, its micro benchmarks, the SSE cut)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench: ")

	cfg := config{mode: "default", warm: 200 * time.Millisecond, dur: 2400 * time.Millisecond, slice: 100 * time.Millisecond,
		streamDur: 1500 * time.Millisecond, microRounds: 3, benchtime: "300ms",
		cutN: 200, propN: 1000, concurrency: []int{1, 8, 64}, sensitivity: []int{0, 10_000, 1_000_000}}
	switch {
	case *quick && *full:
		log.Fatal("-quick and -full exclude each other")
	case *quick:
		cfg.mode, cfg.warm, cfg.dur, cfg.streamDur, cfg.microRounds, cfg.benchtime, cfg.cutN, cfg.propN = "quick", 100*time.Millisecond, 500*time.Millisecond, 300*time.Millisecond, 1, "100ms", 30, 200
	case *full:
		cfg.mode, cfg.warm, cfg.dur, cfg.slice, cfg.streamDur, cfg.benchtime, cfg.cutN, cfg.propN, cfg.extra = "full", 500*time.Millisecond, 10*time.Second, 200*time.Millisecond, 5*time.Second, "1s", 1000, 3000, true
	}
	cfg.skipRedis, cfg.httpOnly = *noRedis, *httpOnly
	if err := flag.Set("test.benchtime", cfg.benchtime); err != nil {
		log.Fatal(err)
	}
	r, err := run(cfg, os.Stderr)
	if err != nil {
		log.Fatal(err)
	}
	r.Command = "go run ./examples/bench " + strings.Join(os.Args[1:], " ")
	var sb strings.Builder
	r.markdown(&sb)
	fmt.Print(sb.String())
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(sb.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// run measures everything cfg asks for; progress goes to logw.
func run(cfg config, logw io.Writer) (*results, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(logw, format+"\n", args...) }
	start := time.Now()
	r := &results{
		Generated: time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Mode:      cfg.mode,
		Machine:   machineInfo(),
		Settings: settings{WarmupSec: cfg.warm.Seconds(), DurationSec: cfg.dur.Seconds(), SliceSec: cfg.slice.Seconds(), StreamSec: cfg.streamDur.Seconds(), MicroRounds: cfg.microRounds, BenchTime: cfg.benchtime,
			Conns: numConns, Concurrency: cfg.concurrency, Entries: defaultEntries, Ranges: defaultRanges, CutSamples: cfg.cutN, PropSamples: cfg.propN},
	}
	fx := newFixtures()
	defer fx.close()

	// Start every case first, so that all run under the same conditions.
	specs := mainSpecs()
	if cfg.httpOnly {
		specs = nil
	}
	envs := make([]*env, len(specs))
	defer func() {
		for _, e := range envs {
			if e != nil {
				e.close()
			}
		}
	}()
	for i, sp := range specs {
		row := unaryRow{Name: sp.Name}
		if sp.Kind == kindCAERedis && cfg.skipRedis {
			row.Skipped = "-no-redis"
		} else if e, err := newEnv(fx, sp); err != nil {
			if errors.Is(err, errNoRedis) {
				row.Skipped = err.Error()
			} else {
				row.Error = err.Error()
			}
			logf("%s: %s%s", sp.Name, row.Skipped, row.Error)
		} else {
			envs[i] = e
		}
		r.Unary = append(r.Unary, row)
	}
	logf("setup: %v", time.Since(start).Round(time.Millisecond))

	// Unary: per concurrency level, the cases take turns in short slices.
	live := make([]*env, 0, len(envs))
	idx := make([]int, 0, len(envs))
	for i, e := range envs {
		if e != nil {
			live, idx = append(live, e), append(idx, i)
		}
	}
	for _, c := range cfg.concurrency {
		for j, st := range runInterleaved(live, c, cfg.warm, cfg.dur, cfg.slice) {
			i := idx[j]
			if st.err != nil {
				if r.Unary[i].Error == "" {
					r.Unary[i].Error = st.err.Error()
				}
				logf("unary %s c=%d: %v", specs[i].Name, c, st.err)
				continue
			}
			r.Unary[i].Runs = append(r.Unary[i].Runs, st.result)
			l := st.result
			logf("unary %-20s c=%-2d %8.0f req/s  p50 %6.0f µs  p99 %6.0f µs  %5.1f allocs/call", specs[i].Name, c, l.RPS, l.P50us, l.P99us, l.AllocsPerCall)
		}
	}

	// Streams: per-message cost, in slices taken in turns as well; server
	// streams (WatchInbox) then client streams (Upload).
	for _, client := range []bool{false, true} {
		if cfg.httpOnly {
			break
		}
		rows := runStreams(live, idx, specs, r.Unary, cfg, client, logf)
		if client {
			r.ClientStream = rows
		} else {
			r.Stream = rows
		}
	}

	if cfg.extra {
		r.Extra = runExtra(fx, cfg, logf)
	}
	for _, e := range envs {
		if e != nil {
			e.close()
		}
	}
	envs = nil
	// HTTP: the REST handler without and with caekit's middleware, in turns.
	r.HTTP = runHTTP(fx, cfg, logf)

	r.Latency = runLatency(fx, cfg, logf)

	for _, mc := range microCases(fx, cfg.sensitivity) {
		if cfg.httpOnly && mc.Group != "http" && mc.Name != "handler only (no interceptor)" && mc.Name != "caekit cache hit" {
			continue
		}
		row := microRow{Group: mc.Group, Name: mc.Name}
		for range cfg.microRounds { // keep the fastest: noise only ever adds time
			res, err := benchmark(mc.Run)
			if err != nil {
				row.Error = err.Error()
				break
			}
			if v := float64(res.T.Nanoseconds()) / float64(res.N); row.N == 0 || v < row.NsPerOp {
				row.N, row.NsPerOp, row.AllocsPerOp, row.BytesPerOp = res.N, v, res.AllocsPerOp(), res.AllocedBytesPerOp()
			}
		}
		logf("micro %-12s %-45s %10s %3d allocs", mc.Group, mc.Name, ns(row.NsPerOp), row.AllocsPerOp)
		r.Micro = append(r.Micro, row)
	}
	r.Machine.LoadAfter = loadAverage()
	r.evaluate()
	r.Notes = append(r.Notes, fmt.Sprintf("Whole run: %v.", time.Since(start).Round(time.Second)))
	logf("done in %v", time.Since(start).Round(time.Second))
	return r, nil
}

// benchmark runs f with testing.Benchmark; a b.Fatal inside f becomes an error.
func benchmark(f func(*testing.B)) (res testing.BenchmarkResult, err error) {
	failed := true
	res = testing.Benchmark(func(b *testing.B) {
		f(b)
		failed = b.Failed()
	})
	if failed || res.N == 0 {
		return res, errors.New("benchmark failed (run it with go test -bench for the message)")
	}
	return res, nil
}

// runLatency measures how fast enforcement follows an event.
func runLatency(fx *fixtures, cfg config, logf func(string, ...any)) []latencyRow {
	var rows []latencyRow
	add := func(name string, l latencyResult, skipped string, err error) {
		row := latencyRow{Name: name, Skipped: skipped, latencyResult: l}
		if err != nil {
			row.Error = err.Error()
		}
		logf("latency %-60s p50 %s  p99 %s  %s%s", name, us(l.P50us), us(l.P99us), row.Skipped, row.Error)
		rows = append(rows, row)
	}
	// HTTP: an SSE response cut by an event put into a writable memory store.
	if e, err := newHTTPEnv(fx, "HTTP caekit (writable store)", true, true); err != nil {
		add(latCutHTTP, latencyResult{}, "", err)
	} else {
		l, err := measureSSECut(e, cfg.cutN)
		add(latCutHTTP, l, "", err)
		e.close()
	}
	if cfg.httpOnly {
		return rows
	}
	// Memory store: a writable one of its own.
	sp := spec{Name: "caekit, cache on (writable store)", Kind: kindCAECache, Alg: algEdDSA, Entries: defaultEntries, Ranges: defaultRanges, Writable: true}
	if e, err := newEnv(fx, sp); err != nil {
		add(latCutMemory, latencyResult{}, "", err)
	} else {
		l, err := measureStreamCut(e, 0, cfg.cutN)
		add(latCutMemory, l, "", err)
		e.close()
	}
	if cfg.skipRedis {
		add(latCutRedis, latencyResult{}, "-no-redis", nil)
		add(latPropagation, latencyResult{}, "-no-redis", nil)
		return rows
	}
	sp = spec{Name: "caekit, Redis ×3", Kind: kindCAERedis, Alg: algEdDSA, Entries: defaultEntries, Ranges: defaultRanges}
	e, err := newEnv(fx, sp)
	if err != nil {
		skipped := ""
		if errors.Is(err, errNoRedis) {
			skipped, err = err.Error(), nil
		}
		add(latCutRedis, latencyResult{}, skipped, err)
		add(latPropagation, latencyResult{}, skipped, err)
		return rows
	}
	defer e.close()
	l, err := measureStreamCut(e, 2, cfg.cutN)
	add(latCutRedis, l, "", err)
	l, err = measurePropagation(e.stores, cfg.propN)
	add(latPropagation, l, "", err)
	return rows
}

// runExtra measures, at c=64, the algorithm and store-size variants end to
// end (full mode only), taking turns with a Bare server of their own, to
// which their ratios refer.
func runExtra(fx *fixtures, cfg config, logf func(string, ...any)) []unaryRow {
	specs := []spec{
		{Name: "Bare", Kind: kindBare, Alg: algRS256},
		{Name: "Naive ES256", Kind: kindNaive, Alg: algES256},
		{Name: "Naive EdDSA", Kind: kindNaive, Alg: algEdDSA},
		{Name: "caekit, cache off, ES256", Kind: kindCAENoCache, Alg: algES256, Entries: defaultEntries, Ranges: defaultRanges},
		{Name: "caekit, cache off, EdDSA", Kind: kindCAENoCache, Alg: algEdDSA, Entries: defaultEntries, Ranges: defaultRanges},
		{Name: "caekit, cache on, 0 entries, 10 ranges", Kind: kindCAECache, Alg: algRS256, Entries: 0, Ranges: 10},
		{Name: "caekit, cache on, 1M entries, 5,000 ranges", Kind: kindCAECache, Alg: algRS256, Entries: 1_000_000, Ranges: 5000},
	}
	rows := make([]unaryRow, len(specs))
	var live []*env
	var idx []int
	for i, sp := range specs {
		rows[i].Name = sp.Name
		e, err := newEnv(fx, sp)
		if err != nil {
			rows[i].Error = err.Error()
			continue
		}
		defer e.close()
		live, idx = append(live, e), append(idx, i)
	}
	for j, st := range runInterleaved(live, 64, cfg.warm, cfg.dur, cfg.slice) {
		i := idx[j]
		if st.err != nil {
			rows[i].Error = st.err.Error()
			continue
		}
		rows[i].Runs = []loadResult{st.result}
		logf("extra %-45s c=64 %8.0f req/s", specs[i].Name, st.result.RPS)
	}
	return rows
}

// runStreams measures one stream of each live case, the cases taking turns
// slice by slice: server streams, or client streams with client set.
func runStreams(live []*env, idx []int, specs []spec, unary []unaryRow, cfg config, client bool, logf func(string, ...any)) []streamRow {
	kind := "stream"
	if client {
		kind = "client-stream"
	}
	streamAcc := make([]streamResult, len(specs))
	streamErr := make([]error, len(specs))
	var streamTime = make([]float64, len(specs))
	for k := range max(1, int(cfg.streamDur/cfg.slice)) {
		for j := range live {
			jj := (j + k) % len(live)
			i := idx[jj]
			if streamErr[i] != nil {
				continue
			}
			sr, err := runStream(live[jj], 1, 20*time.Millisecond, cfg.slice, client)
			if err != nil {
				streamErr[i] = err
				continue
			}
			a := &streamAcc[i]
			a.Streams = 1
			a.Messages += sr.Messages
			a.AllocsPerMsg += sr.AllocsPerMsg * float64(sr.Messages)
			streamTime[i] += sr.Seconds
		}
	}
	var out []streamRow
	for i := range specs {
		row := streamRow{Name: specs[i].Name, Skipped: unary[i].Skipped}
		a := streamAcc[i]
		switch {
		case streamErr[i] != nil:
			row.Error = streamErr[i].Error()
		case a.Messages > 0:
			a.Seconds = streamTime[i]
			a.MsgsPerSec = float64(a.Messages) / a.Seconds
			a.NsPerMsg = 1e9 / a.MsgsPerSec
			a.AllocsPerMsg /= float64(a.Messages)
			row.streamResult = a
			logf("%s %-20s %8.0f msgs/s  %5.0f ns/msg  %4.1f allocs/msg", kind, row.Name, a.MsgsPerSec, a.NsPerMsg, a.AllocsPerMsg)
		case row.Skipped == "":
			row.Error = unary[i].Error
		}
		out = append(out, row)
	}
	return out
}
