package interceptor_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit/teststore"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

var benchInfo = &grpc.UnaryServerInfo{FullMethod: inboxv1.InboxService_GetMessage_FullMethodName}

func benchHandler(ctx context.Context, req any) (any, error) { return req, nil }

// benchUnary measures the interceptor's own cost: it is called directly with
// a metadata context and a no-op handler, no gRPC transport involved.
func benchUnary(b *testing.B, vopts ...token.Option) {
	store := teststore.Memory(b)
	// A populated store, so that look-ups hit non-empty shards.
	for i := range 10_000 {
		_ = store.Put(context.Background(), revocation.Event{Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey(testIssuer, "other-"+strconv.Itoa(i)), Time: time.Now()})
	}
	s, err := interceptor.New(newValidator(b, vopts...), interceptor.WithStore(store), interceptor.WithAuthorizationURI(testAuthzURI))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+mint(b, tok{sid: "s-bench", jti: "j-bench"})))
	unary := s.UnaryServerInterceptor()
	req := &inboxv1.GetMessageRequest{Id: "1"}
	if _, err := unary(ctx, req, benchInfo, benchHandler); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	defer func() { b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op") }()
	for b.Loop() {
		if _, err := unary(ctx, req, benchInfo, benchHandler); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnaryBare is the baseline: the handler alone.
func BenchmarkUnaryBare(b *testing.B) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer x"))
	req := &inboxv1.GetMessageRequest{Id: "1"}
	b.ReportAllocs()
	cpu0 := processCPU()
	defer func() { b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op") }()
	for b.Loop() {
		_, _ = benchHandler(ctx, req)
	}
}

// BenchmarkUnaryInterceptorCacheHit: the token is in the verified-token cache;
// the revocation check (7 subject look-ups) still runs on every call.
func BenchmarkUnaryInterceptorCacheHit(b *testing.B) { benchUnary(b) }

// BenchmarkUnaryInterceptorCacheMiss: no verified-token cache, so every call
// verifies the ES256 signature.
func BenchmarkUnaryInterceptorCacheMiss(b *testing.B) { benchUnary(b, token.WithCacheSize(0)) }

// BenchmarkStreamCutLatency measures, over real gRPC (bufconn), the time from
// a revocation event's Put to the client seeing the stream end, while the
// server handler sits in Recv. It reports p50 and p99 in microseconds.
func BenchmarkStreamCutLatency(b *testing.B) {
	e := newEnv(b, envOpt{})
	ctx := context.Background()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		sid := "s-bench-" + strconv.Itoa(i)
		b.StopTimer()
		chat, err := e.client.Chat(withToken(ctx, mint(b, tok{sid: sid})))
		if err != nil {
			b.Fatal(err)
		}
		if err := chat.Send(&inboxv1.ChatRequest{Text: "hi"}); err != nil {
			b.Fatal(err)
		}
		if _, err := chat.Recv(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := e.store.Put(context.Background(), revocation.Event{Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey(testIssuer, sid), Time: time.Now()}); err != nil {
			b.Fatal(err)
		}
		if _, err := chat.Recv(); err == nil {
			b.Fatal("stream not cut")
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(float64(len(lat)-1)*p)].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
