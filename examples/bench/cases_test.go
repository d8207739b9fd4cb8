package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/policy"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// startCase starts sp for t, skipping t when the case cannot run here.
func startCase(t *testing.T, fx *fixtures, sp spec) *env {
	t.Helper()
	e, err := newEnv(fx, sp)
	if errors.Is(err, errNoRedis) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

// Every case must really enforce what it claims, or its numbers mean
// nothing: the benchmark token passes, a missing token and a token signed
// by another key do not (except for Bare).
func TestCasesAuthenticate(t *testing.T) {
	fx := newFixtures()
	t.Cleanup(fx.close)
	for _, sp := range mainSpecs() {
		sp.Entries = 100 // keep the test fast
		t.Run(sp.Slug, func(t *testing.T) {
			e := startCase(t, fx, sp)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cl := e.clients[0]
			resp, err := cl.GetMessage(bearerContext(ctx, e.token), &inboxv1.GetMessageRequest{Id: "7"})
			if err != nil {
				t.Fatalf("valid token refused: %v", err)
			}
			if resp.GetId() != "7" || resp.GetBody() != messageBody {
				t.Fatalf("response = %v", resp)
			}
			if sp.Kind == kindBare {
				return
			}
			if _, err := cl.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "7"}); status.Code(err) != codes.Unauthenticated {
				t.Errorf("no token: err = %v, want Unauthenticated", err)
			}
			other, err := newSigner(sp.Alg)
			if err != nil {
				t.Fatal(err)
			}
			forged, err := other.mint(1, "sid-bench-1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.GetMessage(bearerContext(ctx, forged), &inboxv1.GetMessageRequest{Id: "7"}); status.Code(err) != codes.Unauthenticated {
				t.Errorf("token signed by another key: err = %v, want Unauthenticated", err)
			}
			st, err := cl.WatchInbox(ctx, &inboxv1.WatchInboxRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("stream without token: err = %v, want Unauthenticated", err)
			}
		})
	}
}

// A load run whose calls fail must fail, not report a throughput.
func TestRunUnaryFailsOnRefusedCalls(t *testing.T) {
	fx := newFixtures()
	t.Cleanup(fx.close)
	e := startCase(t, fx, spec{Name: "naive", Kind: kindNaive, Alg: algEdDSA})
	if _, err := runUnary(e, 2, 0, 50*time.Millisecond); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	e.token = "not-a-token"
	if _, err := runUnary(e, 2, 0, 50*time.Millisecond); status.Code(errors.Unwrap(err)) != codes.Unauthenticated && !strings.Contains(fmt.Sprint(err), "Unauthenticated") {
		t.Fatalf("refused calls: err = %v, want an Unauthenticated failure", err)
	}
}

func TestStreamMeasurements(t *testing.T) {
	fx := newFixtures()
	t.Cleanup(fx.close)
	e := startCase(t, fx, spec{Name: "caekit", Kind: kindCAECache, Alg: algEdDSA, Entries: 10, Ranges: 10, Writable: true})
	for _, client := range []bool{false, true} {
		sr, err := runStream(e, 1, 0, 50*time.Millisecond, client)
		if err != nil || sr.Messages == 0 || sr.NsPerMsg <= 0 {
			t.Fatalf("runStream(client %v) = %+v, %v", client, sr, err)
		}
	}
	l, err := measureStreamCut(e, 0, 3)
	if err != nil || l.N != 3 || l.P99us <= 0 || l.P50us > l.P99us {
		t.Fatalf("measureStreamCut = %+v, %v", l, err)
	}
}

func TestRedisMeasurements(t *testing.T) {
	fx := newFixtures()
	t.Cleanup(fx.close)
	e := startCase(t, fx, spec{Name: "redis", Kind: kindCAERedis, Alg: algEdDSA, Entries: 50, Ranges: 10})
	if len(e.stores) != 3 || len(e.cae) != 3 {
		t.Fatalf("%d stores, %d servers, want 3 replicas", len(e.stores), len(e.cae))
	}
	l, err := measureStreamCut(e, 2, 2)
	if err != nil || l.N != 2 {
		t.Fatalf("measureStreamCut across replicas = %+v, %v", l, err)
	}
	l, err = measurePropagation(e.stores, 5)
	if err != nil || l.N != 5 || l.MaxUs <= 0 {
		t.Fatalf("measurePropagation = %+v, %v", l, err)
	}
}

// The location policy must allow the loopback benchmark client and refuse
// other addresses, with exactly the number of ranges asked for.
func TestBenchPolicy(t *testing.T) {
	for _, n := range []int{10, 5000} {
		p, err := benchPolicy(n)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, l := range p.Locations {
			got += len(l.Ranges)
		}
		if got != n {
			t.Errorf("benchPolicy(%d) has %d ranges", n, got)
		}
		eng, err := policy.NewEngine(p, policy.WithLogger(discard))
		if err != nil {
			t.Fatalf("benchPolicy(%d): %v", n, err)
		}
		req := func(ip string) *interceptor.Request {
			return &interceptor.Request{
				FullMethod: inboxv1.InboxService_GetMessage_FullMethodName,
				Claims:     &interceptor.Claims{TenantID: tenantID, ObjectID: "o", IssuedAt: time.Now()},
				Peer:       net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 5000)),
				Now:        time.Now(),
			}
		}
		if d := eng.Check(context.Background(), req("127.0.0.1")); d != nil {
			t.Errorf("ranges=%d: loopback denied: %s", n, d.Description)
		}
		for _, ip := range []string{"198.51.100.7", "192.0.2.1"} {
			if d := eng.Check(context.Background(), req(ip)); d == nil {
				t.Errorf("ranges=%d: %s allowed", n, ip)
			}
		}
	}
	if _, err := benchPolicy(2); err == nil {
		t.Error("benchPolicy(2) succeeded")
	}
}

func TestTargetsAndMarkdown(t *testing.T) {
	run := func(c int, rps float64) loadResult { return loadResult{Concurrency: c, RPS: rps, Calls: 100} }
	r := &results{
		Machine: machine{CPU: "test CPU", GOMAXPROCS: 2},
		Unary: []unaryRow{
			{Name: "Bare", Runs: []loadResult{run(1, 100), run(8, 100), run(64, 1000)}},
			{Name: "Naive (golang-jwt)", Runs: []loadResult{run(64, 400)}},
			{Name: "Introspection", Runs: []loadResult{run(64, 350)}},
			{Name: "caekit, cache on", Runs: []loadResult{run(64, 950)}},
			{Name: "caekit, Redis ×3", Skipped: errNoRedis.Error()},
			{Name: observedBareName, Runs: []loadResult{run(64, 800)}},
			{Name: "caekit, cache on + SDK/log", Runs: []loadResult{run(64, 740)}},
		},
		Stream: []streamRow{
			{Name: "Bare", streamResult: streamResult{MsgsPerSec: 1000, NsPerMsg: 1000}},
			{Name: "caekit, cache on", streamResult: streamResult{MsgsPerSec: 960, NsPerMsg: 1042}},
		},
		ClientStream: []streamRow{
			{Name: "Bare", streamResult: streamResult{MsgsPerSec: 1000, NsPerMsg: 1000}},
			{Name: "caekit, cache on", streamResult: streamResult{MsgsPerSec: 940, NsPerMsg: 1064}},
		},
		Micro: []microRow{
			{Name: "handler only (no interceptor)", NsPerOp: 50, AllocsPerOp: 1},
			{Name: "caekit cache hit", NsPerOp: 3050, AllocsPerOp: 9},
			{Name: microObserved, NsPerOp: 1040, AllocsPerOp: 5},
			{Name: "Memory.Lookup, 1M entries", NsPerOp: 80},
			{Group: "http", Name: microHTTPHandler, NsPerOp: 1000, AllocsPerOp: 3},
			{Group: "http", Name: microHTTPCAE, NsPerOp: 5000, AllocsPerOp: 17},
		},
		HTTP: []unaryRow{
			{Name: httpBareName, Runs: []loadResult{run(64, 1000)}},
			{Name: httpCAEName, Runs: []loadResult{run(64, 960)}},
		},
		Latency: []latencyRow{
			{Name: latCutMemory, latencyResult: latencyResult{N: 10, P50us: 100, P99us: 120_000}},
			{Name: latCutHTTP, latencyResult: latencyResult{N: 10, P50us: 100, P99us: 600}},
		},
	}
	r.evaluate()
	want := map[string]string{
		"caekit (cache on) / Bare, unary c=64":                          "met",    // 0.95
		"caekit (cache on) / Naive, unary c=64":                         "met",    // 2.375
		"caekit (cache on) / Introspection, unary c=64":                 "missed", // 2.71
		"Interceptor overhead per call, cache hit":                      "met",    // 3050 - 50 = 3000 ns, 8 allocs
		"caekit + SDK/log / Bare + SDK/log, unary c=64":                 "missed", // 0.925
		"Server stream, caekit (cache on) / Bare":                       "met",    // 0.96
		"Client stream, caekit (cache on) / Bare":                       "missed", // 0.94
		"Interceptor overhead per call, cache hit, OTel SDK + JSON log": "met",    // 990 ns, 4 allocs
		"Revocation look-up, 1M entries":                                "met",
		"Location look-up, 5,000 ranges":                                "skipped",
		"Open-stream cut after the event reaches the store":             "missed",
		"Redis propagation to 3 replicas":                               "skipped",
		"HTTP middleware (cache on) / same handler, c=64":               "met",    // 0.96
		"HTTP middleware overhead per request, cache hit":               "missed", // 4000 ns, 14 allocs
		"HTTP SSE cut after the event reaches the store":                "met",    // p99 600 µs
	}
	for _, tg := range r.Targets {
		if w, ok := want[tg.Name]; !ok || tg.Result != w {
			t.Errorf("target %q = %s (%s), want %s", tg.Name, tg.Result, tg.Measured, w)
		}
		delete(want, tg.Name)
	}
	if len(want) != 0 {
		t.Errorf("targets not evaluated: %v", want)
	}
	var sb strings.Builder
	r.markdown(&sb)
	md := sb.String()
	for _, s := range []string{"| Bare | 100 | 100 | 1000 | 1.00 / 1.00 / 1.00 |", "| caekit, Redis ×3 | skipped: redis-server not on PATH", "❌ missed", "test CPU",
		"| HTTP caekit middleware, cache on | – | – | 960 | – / – / 0.96 |"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
}

func Example_count() {
	fmt.Println(count(10), count(5000), count(10_000), count(1_000_000))
	// Output: 10 5000 10k 1M
}
