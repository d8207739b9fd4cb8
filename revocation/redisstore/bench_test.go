package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

// BenchmarkPropagation measures, per event, the time from the start of Put on
// replica A until replicas B and C both return the event from Lookup (their
// subscribers run once it is visible). Events are sent one at a time. Run
// with at least 1,000 events:
//
//	go test -run '^$' -bench Propagation -benchtime 2000x ./revocation/redisstore/
func BenchmarkPropagation(b *testing.B) {
	srv := redistest.Start(b)
	a, rb, rc := open(b, srv.URL()), open(b, srv.URL()), open(b, srv.URL())
	var (
		mu      sync.Mutex
		pending = map[string]chan struct{}{}
		seen    = map[string]int{}
	)
	watch := func(s *redisstore.Store) {
		s.Subscribe(func(ev revocation.Event) {
			if _, ok := s.Lookup(ev.Subject); !ok {
				b.Error("notified before the event is visible")
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[ev.ID]++; seen[ev.ID] == 2 {
				close(pending[ev.ID])
			}
		})
	}
	watch(rb)
	watch(rc)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprint("e", i)
		done := make(chan struct{})
		mu.Lock()
		pending[id] = done
		mu.Unlock()
		ev := revocation.Event{ID: id, Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey("https://idp.test", id), Time: time.Now()}
		start := time.Now()
		if err := a.Put(ctx, ev); err != nil {
			b.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			b.Fatalf("event %d did not reach B and C within 5s", i)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}

// BenchmarkLookup is the hot path: a hit in the local mirror plus Health.
func BenchmarkLookup(b *testing.B) {
	srv := redistest.Start(b)
	s := open(b, srv.URL())
	k := revocation.ObjectKey("72f988bf-86f1-41af-91ab-2d7cd011db47", "4a6e1b2c-1d2e-4f5a-8b9c-0d1e2f3a4b5c")
	if err := s.Put(context.Background(), revocation.Event{Type: revocation.TypeUserDisabled, Subject: k, Time: time.Now()}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := s.Lookup(k); !ok || s.Health() != nil {
			b.Fatal("miss")
		}
	}
}

// BenchmarkHealth is the per-call health check.
func BenchmarkHealth(b *testing.B) {
	srv := redistest.Start(b)
	s := open(b, srv.URL())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.Health() != nil {
			b.Fatal("unhealthy")
		}
	}
}

// BenchmarkPutLatency measures Put on loopback against a primary with one
// replica, acknowledging without waiting for the replica (wait=0) and after
// WAIT 1 (wait=1), one event at a time:
//
//	go test -run '^$' -bench PutLatency -benchtime 2000x ./revocation/redisstore/
func BenchmarkPutLatency(b *testing.B) {
	primary := redistest.Start(b)
	redistest.Start(b, redistest.ReplicaOf(primary.Addr()))
	redistest.WaitReplicas(b, primary.Addr(), 1)
	for _, n := range []int{0, 1} {
		b.Run(fmt.Sprintf("wait=%d", n), func(b *testing.B) {
			s := open(b, primary.URL(), redisstore.WithReplicaAcks(n, 5*time.Second), redisstore.WithPrefix(fmt.Sprintf("bench%d:", n)))
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ev := revocation.Event{ID: fmt.Sprint("e", i), Type: revocation.TypeSessionRevoked,
					Subject: revocation.SessionKey("https://idp.test", fmt.Sprint("sid-", i)), Time: time.Now()}
				start := time.Now()
				if err := s.Put(ctx, ev); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
			}
			b.ReportMetric(pct(0.50), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
		})
	}
}
