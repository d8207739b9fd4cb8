package redisstore

import (
	"context"
	"fmt"
	"log/slog"
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
//   - catchup: the resynchronisation a replica with a change log runs after
//     a reconnect (the default outside a Cluster): 1,000 events it never
//     heard of are in the log after its position, and it reads only those.
//
//   - reconnect: the same end to end, through a proxy that drops the
//     replica's connections while 1,000 events are stored: from the moment
//     the proxy lets it reconnect until it enforces all of them (this
//     includes the reconnect back-off, up to one heartbeat).
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
			// Quiet: a log line would split the benchmark's result line.
			opts := []Option{WithPrefix(prefix), WithResyncInterval(time.Hour), WithLogger(slog.New(slog.DiscardHandler))}

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
			b.Run("catchup", func(b *testing.B) {
				// No heartbeat catch-up of its own during the benchmark.
				s := openCatchUpBench(b, client, append(opts, WithHeartbeat(time.Hour), WithStaleAfter(2*time.Hour)))
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					unseen := logBehindBack(b, client, prefix, fmt.Sprint("catchup-", i, "-"), 1000)
					b.StartTimer()
					start := time.Now()
					full, err := s.sync(ctx, false, true)
					if err != nil || full {
						b.Fatalf("sync = full %v, %v; want a catch-up", full, err)
					}
					b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms/resync")
					b.StopTimer()
					for _, k := range unseen {
						if _, ok := s.Lookup(k); !ok {
							b.Fatalf("the catch-up missed %v", k)
						}
					}
					b.StartTimer()
				}
			})
			b.Run("reconnect", func(b *testing.B) {
				proxy := redistest.NewProxy(b, srv.Addr())
				via := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true})
				defer via.Close()
				s := openCatchUpBench(b, via, append(opts, WithStaleAfter(time.Minute)))
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					proxy.Cut()
					stored := putDirect(b, client, prefix, fmt.Sprint("reconnect-", i, "-"), 1000)
					b.StartTimer()
					start := time.Now()
					proxy.Restore()
					for _, k := range stored {
						for {
							if _, ok := s.Lookup(k); ok {
								break
							}
							time.Sleep(100 * time.Microsecond)
						}
					}
					b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms/resync")
					if err := s.Health(); err != nil {
						b.Fatalf("Health after the reconnect: %v", err)
					}
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
				if s.Len() < n { // plus those the catch-up cases added
					b.Fatalf("mirror holds %d entries, want at least %d", s.Len(), n)
				}
			})
		})
	}
}

// openCatchUpBench opens a store for the catch-up cases, fails b if a full
// reload runs after New, and resets b's timer.
func openCatchUpBench(b *testing.B, client *redis.Client, opts []Option) *Store {
	s, err := New(context.Background(), client, opts...)
	if err != nil {
		b.Fatal(err)
	}
	fulls := s.fullSyncs.Load()
	b.Cleanup(func() {
		if s.fullSyncs.Load() != fulls {
			b.Error("a full reload ran")
		}
		_ = s.Close()
	})
	runtime.GC()
	b.ResetTimer()
	return s
}

// benchEvent is event i of a batch named tag.
func benchEvent(tag string, i int) revocation.Event {
	return revocation.Event{ID: fmt.Sprint(tag, i), Type: revocation.TypeUserDisabled,
		Subject: revocation.ObjectKey("72f988bf-86f1-41af-91ab-2d7cd011db47", fmt.Sprint(tag, i)), Time: time.Now()}
}

// putDirect stores n events as Put does (the same script: key, change log
// and message) straight through client, and returns their subjects.
func putDirect(tb testing.TB, client *redis.Client, prefix, tag string, n int) []revocation.Key {
	tb.Helper()
	ctx := context.Background()
	keys := make([]revocation.Key, n)
	for i := range keys {
		ev := benchEvent(tag, i)
		keys[i] = ev.Subject
		err := putScript.Run(ctx, client, []string{subjectKey(prefix, ev.Subject), prefix + changeLogName},
			encode(ev), time.Hour.Milliseconds(), prefix+channelName, "0", DefaultChangeLogLen).Err()
		if err != nil {
			tb.Fatalf("put: %v", err)
		}
	}
	return keys
}

// logBehindBack stores n events with a change-log entry each but no
// Pub/Sub message, so that only a catch-up can find them, and returns their
// subjects.
func logBehindBack(tb testing.TB, client *redis.Client, prefix, tag string, n int) []revocation.Key {
	tb.Helper()
	ctx := context.Background()
	keys := make([]revocation.Key, n)
	_, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range keys {
			ev := benchEvent(tag, i)
			keys[i] = ev.Subject
			p.Set(ctx, subjectKey(prefix, ev.Subject), encode(ev), time.Hour)
			p.XAdd(ctx, &redis.XAddArgs{Stream: prefix + changeLogName, Values: []string{logField, encode(ev)}})
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("write behind the store's back: %v", err)
	}
	return keys
}
