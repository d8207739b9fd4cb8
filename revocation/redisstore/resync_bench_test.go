package redisstore

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

// populate writes n events for distinct subjects straight into Redis, as Put
// would store them (same key and encoding), in pipelined batches, with the
// given TTL. Identifiers are typical Entra ones (a tenant GUID, an object GUID,
// a 22-character jti), as in BenchmarkMirrorBytes.
func populate(tb testing.TB, client *redis.Client, prefix string, n int, now time.Time, ttl time.Duration) {
	tb.Helper()
	ctx := context.Background()
	const batch = 10000
	for start := 0; start < n; start += batch {
		_, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j := start; j < min(n, start+batch); j++ {
				ev := revocation.Event{
					ID:      fmt.Sprintf("jti-%018d", j),
					Type:    revocation.TypeUserDisabled,
					Subject: revocation.ObjectKey("72f988bf-86f1-41af-91ab-2d7cd011db47", fmt.Sprintf("4a6e1b2c-1d2e-4f5a-8b9c-%012d", j)),
					Time:    now,
				}
				p.Set(ctx, subjectKey(prefix, ev.Subject), encode(ev), ttl)
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("populate: %v", err)
		}
	}
}

// BenchmarkResync measures the resynchronisation a Store runs after every
// (re)subscription: SCAN over the prefix and pipelined GETs per SCAN batch,
// decoded into the mirror, then the comparison that marks mirrored entries
// Redis no longer holds. Two cases per size:
//
//   - cold: New against a Redis holding n events (an empty mirror fills up;
//     what a replica pays at start);
//
//   - warm: resync of a Store whose mirror already holds the n events (what a
//     replica pays after a reconnect; nothing changes, every event is
//     compared and kept).
//
//   - redis: SCAN and pipelined GETs alone, the floor set by Redis and
//     the network round trips.
//
// It reports ms per resync. Run it with:
//
//	go test -run '^$' -bench Resync -benchtime 3x -timeout 30m ./revocation/redisstore/
//
// The 1M case needs ~1 GB of RAM for redis-server and the mirror.
func BenchmarkResync(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			srv := redistest.Start(b)
			client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
			defer client.Close()
			const prefix = "bench:"
			populate(b, client, prefix, n, time.Now(), time.Hour)
			ctx := context.Background()
			opts := []Option{WithPrefix(prefix), WithResyncInterval(time.Hour)}

			// redis: the floor the resync cannot beat on this machine, SCAN
			// and the same pipelined GETs with nothing decoded or stored.
			b.Run("redis", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					start := time.Now()
					got := 0
					var cursor uint64
					for {
						keys, next, err := client.Scan(ctx, cursor, "bench:*", scanCount).Result()
						if err != nil {
							b.Fatal(err)
						}
						cmds, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
							for _, k := range keys {
								p.Get(ctx, k)
							}
							return nil
						})
						if err != nil {
							b.Fatal(err)
						}
						got += len(cmds)
						if cursor = next; cursor == 0 {
							break
						}
					}
					if got != n {
						b.Fatalf("read %d keys, want %d", got, n)
					}
					b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/resync")
				}
			})
			b.Run("cold", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					runtime.GC()
					start := time.Now()
					s, err := New(ctx, client, opts...)
					if err != nil {
						b.Fatal(err)
					}
					el := time.Since(start)
					if s.Len() != n {
						b.Fatalf("mirror holds %d entries, want %d", s.Len(), n)
					}
					b.ReportMetric(float64(el.Milliseconds()), "ms/resync")
					s.Close()
				}
			})
			b.Run("warm", func(b *testing.B) {
				s, err := New(ctx, client, opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				runtime.GC()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					start := time.Now()
					if err := s.resync(ctx, true); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/resync")
				}
				b.StopTimer()
				if s.Len() != n {
					b.Fatalf("mirror holds %d entries, want %d", s.Len(), n)
				}
			})
		})
	}
}
