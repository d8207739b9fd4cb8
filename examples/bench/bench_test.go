package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// The benchmarks here measure what the driver (go run ./examples/bench)
// measures, as testing.B benchmarks:
//
//	go test -run '^$' -bench . ./examples/bench
//	go test -run '^$' -bench 'Unary/case=caekit-cache/c=64' -cpuprofile cpu.out ./examples/bench
//
// Unary and stream benchmarks report allocs/op process-wide (client and
// server run in the test process).

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// benchFixtures are shared by every benchmark of one go test run.
var (
	benchFxOnce sync.Once
	benchFx     *fixtures
)

func sharedFixtures() *fixtures {
	benchFxOnce.Do(func() { benchFx = newFixtures() })
	return benchFx
}

// envFor starts sp for b, skipping b when the case cannot run here.
func envFor(b *testing.B, sp spec) *env {
	b.Helper()
	fx := sharedFixtures()
	e, err := newEnv(fx, sp)
	if errors.Is(err, errNoRedis) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		e.close()
		fx.close() // stops redis-server, if any; a later benchmark starts it again
	})
	return e
}

// BenchmarkUnary runs GetMessage calls over loopback TCP, b.N calls shared by
// c workers. It reports req/s and p50/p99 latency.
func BenchmarkUnary(b *testing.B) {
	for _, sp := range mainSpecs() {
		b.Run("case="+sp.Slug, func(b *testing.B) {
			e := envFor(b, sp)
			for _, c := range []int{1, 8, 64} {
				b.Run("c="+strconv.Itoa(c), func(b *testing.B) { benchUnaryCalls(b, e, c) })
			}
		})
	}
}

func benchUnaryCalls(b *testing.B, e *env, conc int) {
	ctx := bearerContext(context.Background(), e.token)
	req := &inboxv1.GetMessageRequest{Id: "42"}
	lats := make([][]time.Duration, conc)
	for w := range lats {
		lats[w] = make([]time.Duration, 0, b.N/conc+1)
	}
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for w := range conc {
		cl := e.clients[w%len(e.clients)]
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := cl.GetMessage(ctx, req); err != nil {
					failed.Store(&err)
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(micros(percentile(all, 0.50)), "p50-µs")
	b.ReportMetric(micros(percentile(all, 0.99)), "p99-µs")
}

// BenchmarkStream receives b.N WatchInbox messages on one stream; ns/op is
// the cost of one message.
func BenchmarkStream(b *testing.B) {
	for _, sp := range mainSpecs() {
		b.Run("case="+sp.Slug, func(b *testing.B) {
			e := envFor(b, sp)
			ctx, cancel := context.WithCancel(bearerContext(context.Background(), e.token))
			defer cancel()
			st, err := e.clients[0].WatchInbox(ctx, &inboxv1.WatchInboxRequest{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Recv(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := st.Recv(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClientStream sends b.N Upload messages on one client stream;
// ns/op is the cost of one message.
func BenchmarkClientStream(b *testing.B) {
	for _, sp := range mainSpecs() {
		b.Run("case="+sp.Slug, func(b *testing.B) {
			e := envFor(b, sp)
			ctx, cancel := context.WithCancel(bearerContext(context.Background(), e.token))
			defer cancel()
			up, err := e.clients[0].Upload(ctx)
			if err != nil {
				b.Fatal(err)
			}
			msg := &inboxv1.UploadRequest{Data: []byte(messageBody)}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := up.Send(msg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if _, err := up.CloseAndRecv(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkInterceptor calls the server-side interceptors directly.
func BenchmarkInterceptor(b *testing.B) {
	seen := map[string]bool{}
	for _, mc := range microCases(sharedFixtures(), nil) {
		if mc.Group != "interceptor" && mc.Group != "alg" && mc.Group != "stream" || seen[mc.Name] {
			continue
		}
		seen[mc.Name] = true
		b.Run(mc.Name, mc.Run)
	}
}

// BenchmarkInterceptorMatrix is the caekit interceptor on a cache hit by
// revocation entries and location ranges.
func BenchmarkInterceptorMatrix(b *testing.B) {
	fx := sharedFixtures()
	for _, n := range []int{0, 10_000, 1_000_000} {
		for _, r := range []int{10, 5000} {
			b.Run(fmt.Sprintf("entries=%d/ranges=%d", n, r), benchCAEInterceptor(fx, algRS256, true, n, r))
		}
	}
}

// BenchmarkRevocationLookup is revocation.Memory.Lookup.
func BenchmarkRevocationLookup(b *testing.B) {
	for _, n := range []int{0, 10_000, 1_000_000} {
		b.Run("entries="+strconv.Itoa(n), benchRevocationLookup(sharedFixtures(), n))
	}
}

// BenchmarkLocationLookup is location.Table.Lookup.
func BenchmarkLocationLookup(b *testing.B) {
	for _, r := range []int{10, 5000} {
		b.Run("ranges="+strconv.Itoa(r), benchLocationLookup(r))
	}
}

// BenchmarkPolicyCheck is the policy engine's check for an allowed call.
func BenchmarkPolicyCheck(b *testing.B) {
	for _, r := range []int{10, 5000} {
		b.Run("ranges="+strconv.Itoa(r), benchPolicyCheck(r))
	}
}

// BenchmarkStreamCut times, per op, a revocation event's Put until the
// client sees its open stream end; it reports p50 and p99. With store=redis
// the event is Put on replica A and the stream is on replica C.
func BenchmarkStreamCut(b *testing.B) {
	for _, tc := range []struct {
		name string
		sp   spec
		conn int
	}{
		{"store=memory", spec{Kind: kindCAECache, Alg: algEdDSA, Entries: defaultEntries, Ranges: defaultRanges, Writable: true}, 0},
		{"store=redis3", spec{Kind: kindCAERedis, Alg: algEdDSA, Entries: defaultEntries, Ranges: defaultRanges}, 2},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := envFor(b, tc.sp)
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				i++
				d, err := streamCutOnce(e, tc.conn, "sid-cut-"+strconv.Itoa(i))
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, d)
			}
			l := summarise(lat)
			b.ReportMetric(l.P50us, "p50-µs")
			b.ReportMetric(l.P99us, "p99-µs")
		})
	}
}

// BenchmarkRedisPropagation times, per op, an event's Put on replica A until
// replicas B and C have it; it reports p50 and p99.
func BenchmarkRedisPropagation(b *testing.B) {
	e := envFor(b, spec{Kind: kindCAERedis, Alg: algEdDSA, Entries: defaultEntries, Ranges: defaultRanges})
	b.ResetTimer()
	l, err := measurePropagation(e.stores, b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(l.P50us, "p50-µs")
	b.ReportMetric(l.P99us, "p99-µs")
}
