package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/policy"
	"github.com/caekit/caekit/policy/location"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// A micro benchmark calls one server-side piece directly, without gRPC
// transport, so that its cost and allocations are its own.

var unaryInfo = &grpc.UnaryServerInfo{FullMethod: inboxv1.InboxService_GetMessage_FullMethodName}

var microReq = &inboxv1.GetMessageRequest{Id: "42"}

func microHandler(ctx context.Context, req any) (any, error) {
	return service{}.GetMessage(ctx, req.(*inboxv1.GetMessageRequest))
}

// incomingContext is what a real gRPC server hands the interceptor: the
// metadata grpc-go puts there for a call from grpc-go, and a loopback peer.
func incomingContext(raw string) context.Context {
	md := metadata.MD{
		":authority":    {"127.0.0.1:50051"},
		"content-type":  {"application/grpc"},
		"user-agent":    {"grpc-go/" + grpc.Version},
		"authorization": {"Bearer " + raw},
	}
	ctx := metadata.NewIncomingContext(context.Background(), md)
	return peer.NewContext(ctx, &peer.Peer{Addr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:50000")), LocalAddr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:50051"))})
}

func loopUnary(b *testing.B, ctx context.Context, u grpc.UnaryServerInterceptor) {
	if _, err := u(ctx, microReq, unaryInfo, handlerFunc); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := u(ctx, microReq, unaryInfo, handlerFunc); err != nil {
			b.Fatal(err)
		}
	}
}

// handlerFunc is called through a variable, as gRPC calls handlers, so that
// the compiler cannot inline it and drop the response allocation.
var handlerFunc grpc.UnaryHandler = microHandler

// benchHandlerOnly is the baseline: the handler without an interceptor.
func benchHandlerOnly(b *testing.B) {
	ctx := incomingContext("x")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := handlerFunc(ctx, microReq); err != nil {
			b.Fatal(err)
		}
	}
}

// benchNaiveInterceptor calls the Naive case's interceptor directly.
func benchNaiveInterceptor(fx *fixtures, alg string) func(*testing.B) {
	return func(b *testing.B) {
		s, err := fx.signer(alg)
		if err != nil {
			b.Fatal(err)
		}
		raw, err := s.mint(1, "sid-micro")
		if err != nil {
			b.Fatal(err)
		}
		loopUnary(b, incomingContext(raw), auth.UnaryServerInterceptor(naiveAuth(alg, s.public())))
	}
}

// benchIntrospectionInterceptor calls the Introspection case's interceptor
// directly; each call still goes to the loopback HTTP endpoint.
func benchIntrospectionInterceptor(fx *fixtures) func(*testing.B) {
	return func(b *testing.B) {
		s, err := fx.signer(algRS256)
		if err != nil {
			b.Fatal(err)
		}
		as, err := startAuthServer()
		if err != nil {
			b.Fatal(err)
		}
		defer as.close()
		in := newIntrospector(as.url)
		defer in.close()
		c := tokenClaims(1, "sid-micro", time.Now())
		raw, err := s.sign(c)
		if err != nil {
			b.Fatal(err)
		}
		as.register(raw, c)
		loopUnary(b, incomingContext(raw), auth.UnaryServerInterceptor(in.authFunc))
	}
}

// benchCAEInterceptor calls caekit's unary interceptor directly: token
// validation (cache on or off), the revocation check over a store of
// entries events, and the location policy of ranges ranges.
func benchCAEInterceptor(fx *fixtures, alg string, cache bool, entries, ranges int) func(*testing.B) {
	return benchCAEUnary(fx, alg, cache, entries, ranges, false)
}

// microObserved is the name of the benchCAEObserved case.
const microObserved = "caekit cache hit, OTel SDK + JSON log"

// benchCAEObserved is benchCAEInterceptor (cache hit) with the OpenTelemetry
// SDK (Prometheus exporter) as caekit's meter provider and a slog JSON
// handler writing to io.Discard as its logger: caekit's own per-call cost as
// deployed with observability on.
func benchCAEObserved(fx *fixtures) func(*testing.B) {
	return benchCAEUnary(fx, algRS256, true, defaultEntries, defaultRanges, true)
}

// benchCAEUnary is the body of benchCAEInterceptor and benchCAEObserved.
func benchCAEUnary(fx *fixtures, alg string, cache bool, entries, ranges int, observed bool) func(*testing.B) {
	return func(b *testing.B) {
		s, err := fx.signer(alg)
		if err != nil {
			b.Fatal(err)
		}
		m, err := fx.memory(entries)
		if err != nil {
			b.Fatal(err)
		}
		k := kindCAECache
		if !cache {
			k = kindCAENoCache
		}
		var opts []interceptor.Option
		if observed {
			obs, err := newObservability()
			if err != nil {
				b.Fatal(err)
			}
			defer obs.close()
			opts = append(opts, interceptor.WithMeterProvider(obs.mp), interceptor.WithLogger(obs.log))
		}
		srv, v, err := newCAE(s, spec{Kind: k, Alg: alg, Entries: entries, Ranges: ranges}, m, opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		defer srv.Close()
		raw, err := s.mint(1, "sid-micro")
		if err != nil {
			b.Fatal(err)
		}
		loopUnary(b, incomingContext(raw), srv.UnaryServerInterceptor())
	}
}

// benchRevocationLookup is revocation.Memory.Lookup at entries events, a
// miss and a hit alternating (as BenchmarkMemoryLookup in package revocation).
func benchRevocationLookup(fx *fixtures, entries int) func(*testing.B) {
	return func(b *testing.B) {
		m, err := fx.memory(entries)
		if err != nil {
			b.Fatal(err)
		}
		keys := []revocation.Key{revocation.SessionKey(issuer, "sid-bench-1"), revocationEvent(entries/2, time.Now()).Subject}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			m.Lookup(keys[i&1])
		}
	}
}

// benchLocationLookup is location.Table.Lookup over the policy's ranges, a
// hit (the loopback office) and a miss alternating.
func benchLocationLookup(ranges int) func(*testing.B) {
	return func(b *testing.B) {
		p, err := benchPolicy(ranges)
		if err != nil {
			b.Fatal(err)
		}
		tb, err := location.NewTable(p.Locations)
		if err != nil {
			b.Fatal(err)
		}
		probes := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.1")}
		b.ReportAllocs()
		b.ResetTimer()
		hits := 0
		for i := 0; b.Loop(); i++ {
			hits += len(tb.Lookup(probes[i&1]))
		}
		if hits == 0 {
			b.Fatal("no location matched 127.0.0.1")
		}
	}
}

// benchPolicyCheck is the policy engine's location check for an allowed call.
func benchPolicyCheck(ranges int) func(*testing.B) {
	return func(b *testing.B) {
		p, err := benchPolicy(ranges)
		if err != nil {
			b.Fatal(err)
		}
		eng, err := policy.NewEngine(p, policy.WithLogger(discard))
		if err != nil {
			b.Fatal(err)
		}
		r := &check.Request{
			FullMethod: inboxv1.InboxService_GetMessage_FullMethodName,
			Claims:     &interceptor.Claims{TenantID: tenantID, ObjectID: "oid-user-1", IssuedAt: time.Now()},
			Peer:       net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:50000")),
			Now:        time.Now(),
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if d := eng.Check(ctx, r); d != nil {
				b.Fatalf("denied: %s", d.Description)
			}
		}
	}
}

// microCase names one micro benchmark.
type microCase struct {
	Group, Name string
	Run         func(*testing.B)
}

// microCases lists the micro benchmarks the driver runs.
func microCases(fx *fixtures, sensitivity []int) []microCase {
	cs := []microCase{
		{"interceptor", "handler only (no interceptor)", benchHandlerOnly},
		{"interceptor", "Naive RS256", benchNaiveInterceptor(fx, algRS256)},
		{"interceptor", "Introspection (loopback HTTP)", benchIntrospectionInterceptor(fx)},
		{"interceptor", "caekit cache hit", benchCAEInterceptor(fx, algRS256, true, defaultEntries, defaultRanges)},
		{"interceptor", microObserved, benchCAEObserved(fx)},
		{"http", microHTTPHandler, benchHTTPHandlerOnly},
		{"http", microHTTPCAE, benchHTTPMiddleware(fx)},
		{"stream", "stream SendMsg, no interceptor", benchStreamBare},
		{"stream", "stream SendMsg, caekit (re-check per message)", benchCAEStream(fx)},
	}
	for _, alg := range allAlgs {
		cs = append(cs,
			microCase{"alg", "Naive " + alg, benchNaiveInterceptor(fx, alg)},
			microCase{"alg", "caekit cache off " + alg, benchCAEInterceptor(fx, alg, false, defaultEntries, defaultRanges)})
	}
	for _, n := range sensitivity {
		cs = append(cs, microCase{"revocation", fmt.Sprintf("Memory.Lookup, %s entries", count(n)), benchRevocationLookup(fx, n)})
	}
	for _, r := range []int{10, 5000} {
		cs = append(cs,
			microCase{"location", fmt.Sprintf("location.Table.Lookup, %s ranges", count(r)), benchLocationLookup(r)},
			microCase{"location", fmt.Sprintf("policy Engine.Check, %s ranges", count(r)), benchPolicyCheck(r)})
	}
	for _, n := range sensitivity {
		for _, r := range []int{10, 5000} {
			cs = append(cs, microCase{"matrix", fmt.Sprintf("caekit cache hit, %s entries, %s ranges", count(n), count(r)),
				benchCAEInterceptor(fx, algRS256, true, n, r)})
		}
	}
	return cs
}

// count renders 10000 as "10k" and 1000000 as "1M".
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 10_000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	default:
		return fmt.Sprintf("%d", n)
	}
}

// nullStream is a grpc.ServerStream without transport: it accepts every
// message and has nothing to receive. The stream micro benchmarks use it to
// isolate what an interceptor adds per message.
type nullStream struct{ ctx context.Context }

func (s *nullStream) SetHeader(metadata.MD) error  { return nil }
func (s *nullStream) SendHeader(metadata.MD) error { return nil }
func (s *nullStream) SetTrailer(metadata.MD)       {}
func (s *nullStream) Context() context.Context     { return s.ctx }
func (s *nullStream) SendMsg(any) error            { return nil }
func (s *nullStream) RecvMsg(any) error            { return io.EOF }

var watchInfo = &grpc.StreamServerInfo{FullMethod: inboxv1.InboxService_WatchInbox_FullMethodName, IsServerStream: true}

// sendN is a WatchInbox handler that sends b.N messages.
func sendN(b *testing.B) grpc.StreamHandler {
	return func(_ any, ss grpc.ServerStream) error {
		msg := &inboxv1.WatchInboxResponse{Body: messageBody}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			msg.Seq = int64(i)
			if err := ss.SendMsg(msg); err != nil {
				return err
			}
		}
		b.StopTimer()
		return nil
	}
}

// benchStreamBare sends messages on a stream without an interceptor.
func benchStreamBare(b *testing.B) {
	if err := sendN(b)(nil, &nullStream{ctx: incomingContext("x")}); err != nil {
		b.Fatal(err)
	}
}

// benchCAEStream sends messages through caekit's stream interceptor, which
// re-runs the checks (revocation, policy, expiry) before every message.
// microCAE returns the default caekit case (RS256, cache on, 10k entries,
// 10 ranges) and a token for it, closed when b ends: what the stream and
// HTTP micro benchmarks run.
func microCAE(b *testing.B, fx *fixtures) (*interceptor.Server, string) {
	s, err := fx.signer(algRS256)
	if err != nil {
		b.Fatal(err)
	}
	m, err := fx.memory(defaultEntries)
	if err != nil {
		b.Fatal(err)
	}
	srv, v, err := newCAE(s, spec{Kind: kindCAECache, Alg: algRS256, Entries: defaultEntries, Ranges: defaultRanges}, m)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = v.Close() })
	b.Cleanup(func() { _ = srv.Close() })
	raw, err := s.mint(1, "sid-micro")
	if err != nil {
		b.Fatal(err)
	}
	return srv, raw
}

func benchCAEStream(fx *fixtures) func(*testing.B) {
	return func(b *testing.B) {
		srv, raw := microCAE(b, fx)
		if err := srv.StreamServerInterceptor()(nil, &nullStream{ctx: incomingContext(raw)}, watchInfo, sendN(b)); err != nil {
			b.Fatal(err)
		}
	}
}
