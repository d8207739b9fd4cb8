package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

// Redis faults under load: Redis paused (CLIENT PAUSE, and SIGSTOP, which
// freezes it as DEBUG SLEEP would; DEBUG is disabled by default since Redis
// 7), killed and restarted, while two replicas write events and a third
// (KeepLastKnown) reads. Throughout, no fail-closed replica may be healthy
// while missing an event acknowledged more than the staleness window ago
// (that would allow a revoked token); after recovery every acknowledged
// event is on every replica.

// redisPID returns the process id of the server at addr.
func redisPID(t *testing.T, addr string) int {
	t.Helper()
	info, err := redistest.Command(addr, "INFO server")
	if err != nil {
		t.Fatalf("INFO server: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no process_id in INFO server")
	return 0
}

type acked struct {
	ev revocation.Event
	at time.Time // when Put returned nil
}

func TestFaultsUnderLoad(t *testing.T) {
	srv := redistest.Start(t, redistest.WithPersistence())
	a := open(t, srv.URL())
	b := open(t, srv.URL())
	c := open(t, srv.URL(), redisstore.WithStalenessPolicy(redisstore.KeepLastKnown))
	failClosed := map[string]*redisstore.Store{"A": a, "B": b}
	// An acknowledged event may be missing from a healthy fail-closed
	// replica only until its staleness threshold passes: StaleAfter, plus a
	// heartbeat, plus scheduling margin.
	const window = testStaleAfter + 2*testHeartbeat + 500*time.Millisecond

	var (
		mu       sync.Mutex
		acks     []acked
		failed   atomic.Int64
		wrong    atomic.Int64
		checks   atomic.Int64
		staleObs atomic.Int64
		slowest  atomic.Int64 // nanoseconds, the longest Put
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for name, w := range map[string]*redisstore.Store{"A": a, "B": b} {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				ev := event(revocation.ObjectKey("t", fmt.Sprintf("%s-%d", name, i)), time.Now())
				pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				start := time.Now()
				err := w.Put(pctx, ev)
				cancel()
				for d := int64(time.Since(start)); ; {
					old := slowest.Load()
					if d <= old || slowest.CompareAndSwap(old, d) {
						break
					}
				}
				if err != nil {
					failed.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				mu.Lock()
				acks = append(acks, acked{ev, time.Now()})
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	// The checker: a healthy fail-closed replica must know every event
	// acknowledged more than window ago.
	wg.Go(func() {
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			<-tick.C
			mu.Lock()
			snap := acks
			mu.Unlock()
			cutoff := time.Now().Add(-window)
			for name, s := range failClosed {
				if s.Health() != nil {
					staleObs.Add(1)
					continue
				}
				for _, k := range snap {
					if k.at.After(cutoff) {
						break // acks are appended in time order per writer; close enough
					}
					checks.Add(1)
					if sees(s, k.ev)() {
						continue
					}
					// Re-check in the order that rules out a resync in between.
					if s.Health() == nil && !sees(s, k.ev)() {
						if wrong.Add(1) <= 5 {
							t.Errorf("replica %s healthy but missing %s, acknowledged %v ago", name, k.ev.Subject, time.Since(k.at).Round(time.Millisecond))
						}
					}
				}
			}
		}
	})

	healthy := func(what string) {
		t.Helper()
		testkit.EventuallyWithin(t, waitFor, what, func() bool { return a.Health() == nil && b.Health() == nil && c.Health() == nil })
	}
	phase := func(name string, fault func()) {
		t.Helper()
		before := len(snapshot(&mu, &acks))
		start := time.Now()
		fault()
		healthy("recovery after " + name)
		t.Logf("%s: recovered %v after the fault began; %d events acknowledged meanwhile, %d puts failed so far",
			name, time.Since(start).Round(time.Millisecond), len(snapshot(&mu, &acks))-before, failed.Load())
	}

	time.Sleep(300 * time.Millisecond)
	phase("CLIENT PAUSE 1500 ALL", func() {
		if _, err := redistest.Command(srv.Addr(), "CLIENT PAUSE 1500 ALL"); err != nil {
			t.Fatalf("CLIENT PAUSE: %v", err)
		}
		time.Sleep(1600 * time.Millisecond)
	})
	phase("SIGSTOP for 1.5s", func() {
		pid := redisPID(t, srv.Addr())
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP: %v", err)
		}
		resumed := false
		t.Cleanup(func() {
			if !resumed {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		})
		time.Sleep(1500 * time.Millisecond)
		testkit.EventuallyWithin(t, waitFor, "fail-closed replicas to report stale while Redis is frozen", func() bool {
			return errors.Is(a.Health(), revocation.ErrStale) && errors.Is(b.Health(), revocation.ErrStale)
		})
		if err := c.Health(); err != nil {
			t.Errorf("keep-last-known replica Health = %v, want nil", err)
		}
		_ = syscall.Kill(pid, syscall.SIGCONT)
		resumed = true
	})
	phase("SIGKILL and restart", func() {
		srv.Kill()
		time.Sleep(time.Second)
		srv.Restart()
	})
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()

	// No event lost: every acknowledged event reaches every replica.
	all := snapshot(&mu, &acks)
	for name, s := range map[string]*redisstore.Store{"A": a, "B": b, "C (keep last known)": c} {
		testkit.EventuallyWithin(t, waitFor, "replica "+name+" to hold every acknowledged event", func() bool {
			for _, k := range all {
				got, ok := s.Lookup(k.ev.Subject)
				if !ok || got.Time.Before(k.ev.Time) {
					return false
				}
			}
			return s.Health() == nil
		})
	}
	t.Logf("%d events acknowledged, %d puts refused during faults, %d look-ups checked, %d stale observations, %d violations; slowest Put %v (context deadline 300ms)",
		len(all), failed.Load(), checks.Load(), staleObs.Load(), wrong.Load(), time.Duration(slowest.Load()).Round(time.Millisecond))
	if len(all) == 0 || failed.Load() == 0 {
		t.Fatalf("the load did not exercise both outcomes (%d acknowledged, %d failed)", len(all), failed.Load())
	}
}

func snapshot(mu *sync.Mutex, acks *[]acked) []acked {
	mu.Lock()
	defer mu.Unlock()
	return *acks
}

// TestPutRespectsContextDeadline: with Redis frozen, Put must give up when
// its context does, not hold the SSF push request that called it. go-redis
// ignores context deadlines on socket I/O unless the client has
// ContextTimeoutEnabled, so Put used to wait for the client's read timeout
// (1 s in these tests, 3 s by default); NewFromURL now sets the option.
func TestPutRespectsContextDeadline(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redisstore.WithStalenessPolicy(redisstore.KeepLastKnown))
	pid := redisPID(t, srv.Addr())
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Put(ctx, event(revocation.ObjectKey("t", "frozen"), time.Now()))
	d := time.Since(start)
	if err == nil {
		t.Fatal("Put succeeded while Redis was frozen")
	}
	if d > 500*time.Millisecond {
		t.Fatalf("Put returned after %v with a 200ms context deadline: %v", d, err)
	}
}

// TestNewWithCallersClientAndContextTimeouts: a client passed to New with
// ContextTimeoutEnabled also bounds Put by its ctx while Redis is frozen,
// and New warns about a client without it (whose Put would overrun).
func TestNewWithCallersClientAndContextTimeouts(t *testing.T) {
	srv := redistest.Start(t)
	newClient := func(ctxTimeouts bool) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1,
			ReadTimeout: 2 * time.Second, ContextTimeoutEnabled: ctxTimeouts})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	newStore := func(c *redis.Client) (*redisstore.Store, string) {
		var buf testkit.LogBuffer
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		s, err := redisstore.New(ctx, c, redisstore.WithHeartbeat(testHeartbeat),
			redisstore.WithStalenessPolicy(redisstore.KeepLastKnown),
			redisstore.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s, buf.String()
	}
	if _, logged := newStore(newClient(false)); !strings.Contains(logged, "ContextTimeoutEnabled") {
		t.Errorf("New with a client without ContextTimeoutEnabled logged %q, want a warning naming the option", logged)
	}
	s, logged := newStore(newClient(true))
	if strings.Contains(logged, "ContextTimeoutEnabled") {
		t.Errorf("New with ContextTimeoutEnabled warned: %q", logged)
	}

	pid := redisPID(t, srv.Addr())
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Put(ctx, event(revocation.ObjectKey("t", "frozen-new"), time.Now()))
	if d := time.Since(start); err == nil || d > 500*time.Millisecond {
		t.Fatalf("Put with a 200ms deadline against frozen Redis = %v after %v; want an error within the deadline", err, d)
	}
}
