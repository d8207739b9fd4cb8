package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

const (
	testHeartbeat  = 50 * time.Millisecond
	testStaleAfter = 300 * time.Millisecond
	waitFor        = 10 * time.Second
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// open starts a store on url (a redis:// URL) that fails fast when Redis is
// gone, and closes it at the end of the test.
func open(t testing.TB, url string, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	opts = append([]redisstore.Option{
		redisstore.WithHeartbeat(testHeartbeat),
		redisstore.WithStaleAfter(testStaleAfter),
		redisstore.WithLogger(quiet),
	}, opts...)
	s, err := redisstore.NewFromURL(ctx, url+"?dial_timeout=500ms&max_retries=0&read_timeout=1s", opts...)
	if err != nil {
		t.Fatalf("NewFromURL: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func rawClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var evSeq atomic.Int64

func event(k revocation.Key, at time.Time) revocation.Event {
	return revocation.Event{
		ID:      fmt.Sprintf("jti-%d", evSeq.Add(1)),
		Type:    revocation.TypeUserDisabled,
		Subject: k,
		Time:    at,
	}
}

func sees(s *redisstore.Store, ev revocation.Event) func() bool {
	return func() bool {
		got, ok := s.Lookup(ev.Subject)
		return ok && got.Time.Equal(ev.Time) && got.ID == ev.ID
	}
}

func put(t testing.TB, s *redisstore.Store, ev revocation.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := s.Put(ctx, ev); err != nil {
		t.Fatalf("Put(%v): %v", ev.Subject, err)
	}
}

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func count(s *redisstore.Store) *counter {
	c := &counter{n: map[string]int{}}
	s.Subscribe(func(ev revocation.Event) {
		c.mu.Lock()
		c.n[ev.ID]++
		c.mu.Unlock()
	})
	return c
}

func (c *counter) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

func TestEventVisibleOnEveryReplica(t *testing.T) {
	srv := redistest.Start(t)
	a, b, c := open(t, srv.URL()), open(t, srv.URL()), open(t, srv.URL())
	cb, cc := count(b), count(c)
	ev := event(revocation.ObjectKey("tenant", "user-1"), time.Now())

	put(t, a, ev)
	if !sees(a, ev)() {
		t.Fatal("the writing replica does not see its own event after Put returned")
	}
	testkit.EventuallyWithin(t, waitFor, "replicas B and C to see the event", func() bool { return sees(b, ev)() && sees(c, ev)() })
	testkit.EventuallyWithin(t, waitFor, "subscribers on B and C to be notified", func() bool { return cb.get(ev.ID) == 1 && cc.get(ev.ID) == 1 })

	// An older event for the same subject changes nothing and notifies no one.
	older := event(ev.Subject, ev.Time.Add(-time.Minute))
	put(t, c, older)
	marker := event(revocation.SessionKey("https://idp.test", "marker"), time.Now())
	put(t, c, marker)
	testkit.EventuallyWithin(t, waitFor, "B to see the marker", sees(b, marker))
	for _, s := range []*redisstore.Store{a, b, c} {
		if !sees(s, ev)() {
			t.Fatal("an older event replaced a newer one")
		}
	}
	if n := cb.get(older.ID); n != 0 {
		t.Fatalf("subscriber notified %d times of an older event", n)
	}
	for _, s := range []*redisstore.Store{a, b, c} {
		if err := s.Health(); err != nil {
			t.Fatalf("Health = %v", err)
		}
		if st := s.Staleness(); st > testStaleAfter {
			t.Fatalf("Staleness = %v on a healthy store", st)
		}
	}
}

func TestLateReplicaLoadsExistingEvents(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv.URL())
	evs := make([]revocation.Event, 1100) // more than one SCAN batch
	for i := range evs {
		evs[i] = event(revocation.ObjectKey("t", fmt.Sprint("u", i)), time.Now())
		put(t, a, evs[i])
	}
	late := open(t, srv.URL())
	// No waiting: New returns only after the initial load.
	for _, ev := range evs {
		if !sees(late, ev)() {
			t.Fatalf("late replica does not see %v", ev.Subject)
		}
	}
	if late.Len() != len(evs) {
		t.Fatalf("late replica holds %d entries, want %d", late.Len(), len(evs))
	}
}

func TestConcurrentWritersNewestWins(t *testing.T) {
	srv := redistest.Start(t)
	stores := []*redisstore.Store{open(t, srv.URL()), open(t, srv.URL()), open(t, srv.URL())}
	subject := revocation.ObjectKey("t", "contended")
	base := time.Now().Add(-time.Hour)
	var (
		mu     sync.Mutex
		newest revocation.Event
		wg     sync.WaitGroup
	)
	for w := 0; w < 9; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			for i := 0; i < 40; i++ {
				ev := event(subject, base.Add(time.Duration(rand.IntN(3600_000_000))*time.Microsecond))
				if err := s.Put(context.Background(), ev); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				mu.Lock()
				if ev.Time.After(newest.Time) {
					newest = ev
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, s := range stores {
		testkit.EventuallyWithin(t, waitFor, fmt.Sprintf("replica %d to hold the newest event", i), sees(s, newest))
	}
	v, err := rawClient(t, srv.Addr()).Get(context.Background(), "caekit:rev:object:1:t:contended").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(v, newest.ID) {
		t.Fatalf("Redis holds %q, want the newest event %s", v, newest.ID)
	}
}

func TestExpiry(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv.Addr())
	ctx := context.Background()

	t.Run("ttl and mirror expiry follow the clock", func(t *testing.T) {
		var now atomic.Int64
		now.Store(time.Now().UnixNano())
		clock := func() time.Time { return time.Unix(0, now.Load()) }
		s := open(t, srv.URL(), redisstore.WithRetention(time.Hour), redisstore.WithClock(clock), redisstore.WithPrefix("clock:"))
		ev := event(revocation.SessionKey("https://idp.test", "sid-clock"), clock())
		put(t, s, ev)
		ttl, err := rc.PTTL(ctx, "clock:rev:session:16:https://idp.test:sid-clock").Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= time.Hour-5*time.Second || ttl > time.Hour {
			t.Fatalf("PTTL = %v, want just under the 1h retention", ttl)
		}
		now.Add(int64(time.Hour + time.Second))
		if n := s.Sweep(); n != 1 {
			t.Fatalf("Sweep removed %d entries, want 1", n)
		}
		if _, ok := s.Lookup(ev.Subject); ok {
			t.Fatal("mirror still returns an event older than the retention")
		}
	})

	t.Run("redis expires the key at the end of the window", func(t *testing.T) {
		s := open(t, srv.URL(), redisstore.WithRetention(time.Hour), redisstore.WithPrefix("ttl:"))
		ev := event(revocation.SessionKey("https://idp.test", "sid-ttl"), time.Now().Add(-time.Hour+300*time.Millisecond))
		put(t, s, ev)
		key := "ttl:rev:session:16:https://idp.test:sid-ttl"
		ttl, err := rc.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > 300*time.Millisecond {
			t.Fatalf("PTTL = %v, %v; want (0, 300ms]", ttl, err)
		}
		testkit.EventuallyWithin(t, waitFor, "Redis to expire the key", func() bool { return rc.Exists(ctx, key).Val() == 0 })
		s.Sweep()
		if _, ok := s.Lookup(ev.Subject); ok {
			t.Fatal("the mirror still holds an event Redis expired")
		}
	})

	t.Run("an already expired event is accepted and not stored", func(t *testing.T) {
		s := open(t, srv.URL(), redisstore.WithRetention(time.Hour), redisstore.WithPrefix("old:"))
		ev := event(revocation.SessionKey("https://idp.test", "sid-old"), time.Now().Add(-2*time.Hour))
		put(t, s, ev)
		if n := rc.Exists(ctx, "old:rev:session:16:https://idp.test:sid-old").Val(); n != 0 {
			t.Fatal("an expired event was written to Redis")
		}
		if _, ok := s.Lookup(ev.Subject); ok {
			t.Fatal("an expired event is in the mirror")
		}
	})
}

// Redis is killed mid-run and restarted: events written before survive,
// Put during the outage fails, staleness is reported, fail-closed is
// honoured, and every replica recovers, including events written by another
// replica while this one was still disconnected.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.WithPersistence())
	writer := open(t, srv.URL(), redisstore.WithStalenessPolicy(redisstore.KeepLastKnown))
	closed := open(t, srv.URL()) // FailClosed is the default
	proxy := redistest.NewProxy(t, srv.Addr())
	late := open(t, proxy.URL(), redisstore.WithStalenessPolicy(redisstore.FailClosed))

	before := event(revocation.ObjectKey("t", "before"), time.Now())
	put(t, writer, before)
	testkit.EventuallyWithin(t, waitFor, "every replica to see the first event", func() bool { return sees(closed, before)() && sees(late, before)() })

	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	during := event(revocation.ObjectKey("t", "during"), time.Now())
	err := writer.Put(ctx, during)
	cancel()
	if err == nil {
		t.Fatal("Put succeeded while Redis was down")
	}
	if _, ok := writer.Lookup(during.Subject); ok {
		t.Fatal("an event that failed to reach Redis is enforced locally")
	}

	testkit.EventuallyWithin(t, waitFor, "the fail-closed replica to report stale", func() bool { return errors.Is(closed.Health(), revocation.ErrStale) })
	if err := writer.Health(); err != nil {
		t.Fatalf("keep-last-known replica Health = %v, want nil", err)
	}
	testkit.EventuallyWithin(t, waitFor, "staleness to pass the threshold", func() bool { return writer.Staleness() > testStaleAfter })
	for _, s := range []*redisstore.Store{writer, closed, late} {
		if !sees(s, before)() {
			t.Fatal("a replica forgot the last known state during the outage")
		}
	}

	// Keep one replica away from Redis across the restart; an event written
	// meanwhile must reach it when it reconnects.
	proxy.Cut()
	srv.Restart()
	rc := rawClient(t, srv.Addr())
	if n := rc.Exists(context.Background(), "caekit:rev:object:1:t:before").Val(); n != 1 {
		t.Fatal("an event acknowledged before the kill did not survive the restart")
	}
	testkit.EventuallyWithin(t, waitFor, "the fail-closed replica to recover", func() bool { return closed.Health() == nil })
	after := event(revocation.ObjectKey("t", "after"), time.Now())
	put(t, writer, after)
	testkit.EventuallyWithin(t, waitFor, "connected replicas to see the new event", func() bool { return sees(closed, after)() })
	if sees(late, after)() || !errors.Is(late.Health(), revocation.ErrStale) {
		t.Fatal("the disconnected replica must not see the event and must report stale")
	}
	proxy.Restore()
	testkit.EventuallyWithin(t, waitFor, "the disconnected replica to catch up", func() bool { return sees(late, after)() && late.Health() == nil })
	if !sees(late, before)() {
		t.Fatal("the reconnected replica lost an old event")
	}
}

// A replica cut off (connections reset) and one behind a black hole (no
// error, just silence) both catch up on events they missed, and their
// subscribers hear about them.
func TestPartitionedReplicaCatchesUp(t *testing.T) {
	for _, mode := range []string{"cut", "stall"} {
		t.Run(mode, func(t *testing.T) {
			srv := redistest.Start(t)
			proxy := redistest.NewProxy(t, srv.Addr())
			a := open(t, srv.URL())
			b := open(t, proxy.URL())
			cb := count(b)
			if mode == "cut" {
				proxy.Cut()
			} else {
				proxy.Stall()
			}
			testkit.EventuallyWithin(t, waitFor, "B to report stale", func() bool { return errors.Is(b.Health(), revocation.ErrStale) })
			missed := event(revocation.ClientKey("https://idp.test", "app-1"), time.Now())
			put(t, a, missed)
			if sees(b, missed)() {
				t.Fatal("B saw an event through a partition")
			}
			proxy.Restore()
			testkit.EventuallyWithin(t, waitFor, "B to catch up", func() bool { return sees(b, missed)() && b.Health() == nil })
			testkit.EventuallyWithin(t, waitFor, "B's subscriber to hear of the missed event", func() bool { return cb.get(missed.ID) == 1 })
		})
	}
}

func TestPutRejectsInvalidEvents(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	good := event(revocation.ObjectKey("t", "o"), time.Now())
	for name, ev := range map[string]revocation.Event{
		"no subject":   {Type: good.Type, Time: good.Time},
		"no type":      {Subject: good.Subject, Time: good.Time},
		"no time":      {Type: good.Type, Subject: good.Subject},
		"long id":      {Type: good.Type, Subject: revocation.SessionKey("https://idp.test", strings.Repeat("x", redisstore.MaxSubjectIDLen+1)), Time: good.Time},
		"long scope":   {Type: good.Type, Subject: revocation.ObjectKey(strings.Repeat("x", redisstore.MaxScopeLen+1), "o"), Time: good.Time},
		"long eventID": {ID: strings.Repeat("x", redisstore.MaxEventIDLen+1), Type: good.Type, Subject: good.Subject, Time: good.Time},
	} {
		if err := s.Put(context.Background(), ev); err == nil {
			t.Errorf("%s: Put accepted %+v", name, ev)
		}
	}
	rc := rawClient(t, srv.Addr())
	if keys := rc.Keys(context.Background(), "caekit:rev:*").Val(); len(keys) != 0 {
		t.Fatalf("invalid events reached Redis: %q", keys)
	}
	// The change log holds only the position mark of the initial load.
	for _, m := range rc.XRange(context.Background(), "caekit:changes", "-", "+").Val() {
		if _, ok := m.Values["m"]; !ok {
			t.Fatalf("invalid events reached the change log: %v", m.Values)
		}
	}
}

func TestUndecodableDataIsIgnored(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv.Addr())
	ctx := context.Background()
	rc.Set(ctx, "caekit:rev:object:1:t:garbage", "not an event", 0)
	ok := event(revocation.ObjectKey("t", "ok"), time.Now())
	a := open(t, srv.URL())
	put(t, a, ok)
	b := open(t, srv.URL()) // loads past the garbage key
	if !sees(b, ok)() {
		t.Fatal("a garbage key stopped the initial load")
	}
	rc.Publish(ctx, "caekit:events", "1,garbage")
	next := event(revocation.ObjectKey("t", "next"), time.Now())
	put(t, a, next)
	testkit.EventuallyWithin(t, waitFor, "B to keep applying events after a garbage message", sees(b, next))
	if err := a.Put(ctx, event(revocation.ObjectKey("t", "garbage"), time.Now())); err != nil {
		t.Fatalf("Put over a garbage key: %v", err)
	}
}

func TestPrefixesIsolate(t *testing.T) {
	srv := redistest.Start(t)
	x := open(t, srv.URL(), redisstore.WithPrefix("x:"))
	y1 := open(t, srv.URL(), redisstore.WithPrefix("y:"))
	y2 := open(t, srv.URL(), redisstore.WithPrefix("y:"))
	ex := event(revocation.DeviceKey("https://idp.test", "d"), time.Now())
	ey := event(revocation.DeviceKey("https://idp.test", "e"), time.Now())
	put(t, x, ex)
	put(t, y1, ey)
	testkit.EventuallyWithin(t, waitFor, "y2 to see y1's event", sees(y2, ey))
	if _, ok := y2.Lookup(ex.Subject); ok {
		t.Fatal("an event crossed prefixes")
	}
	y3 := open(t, srv.URL(), redisstore.WithPrefix("y:"))
	if _, ok := y3.Lookup(ex.Subject); ok || y3.Len() != 1 {
		t.Fatalf("a new y: replica loaded %d entries, want only y's", y3.Len())
	}
	for _, k := range rawClient(t, srv.Addr()).Keys(context.Background(), "*").Val() {
		if !strings.HasPrefix(k, "x:rev:") && !strings.HasPrefix(k, "y:rev:") && k != "x:changes" && k != "y:changes" {
			t.Fatalf("key %q outside the configured prefixes", k)
		}
	}
}

func TestMirrorFullFailsHealth(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv.URL())
	small := open(t, srv.URL(), redisstore.WithMaxEntries(2), redisstore.WithStalenessPolicy(redisstore.KeepLastKnown))
	for i := 0; i < 3; i++ {
		put(t, a, event(revocation.SessionKey("https://idp.test", fmt.Sprint("s", i)), time.Now()))
	}
	testkit.EventuallyWithin(t, waitFor, "the full mirror to fail Health", func() bool { return errors.Is(small.Health(), revocation.ErrFull) })
	if !errors.Is(small.Health(), revocation.ErrStale) {
		t.Fatal("a full mirror's Health error does not wrap ErrStale")
	}
	err := small.Put(context.Background(), event(revocation.SessionKey("https://idp.test", "s9"), time.Now()))
	if !errors.Is(err, revocation.ErrFull) {
		t.Fatalf("Put into a full mirror = %v, want ErrFull", err)
	}
}

func TestConstructorErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := redisstore.NewFromURL(ctx, "redis://user:s3cret@127.0.0.1:notaport/0"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad URL: err = %v; want an error without the password", err)
	}
	if _, err := redisstore.NewFromURL(ctx, "http://127.0.0.1:1/0"); err == nil {
		t.Fatal("accepted a non-redis URL")
	}
	if _, err := redisstore.New(ctx, nil); err == nil {
		t.Fatal("accepted a nil client")
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	if _, err := redisstore.New(ctx, ring); err == nil {
		t.Fatal("accepted a Ring client")
	}
	// Nothing listens on a port we just freed: New must fail, not hang.
	srv := redistest.Start(t)
	url := srv.URL()
	srv.Kill()
	if _, err := redisstore.NewFromURL(ctx, url); err == nil {
		t.Fatal("New succeeded without Redis")
	}
	for name, opt := range map[string]redisstore.Option{
		"empty prefix": redisstore.WithPrefix(""),
		"long prefix":  redisstore.WithPrefix(strings.Repeat("p", redisstore.MaxPrefixLen+1)),
		"retention":    redisstore.WithRetention(0),
		"heartbeat":    redisstore.WithHeartbeat(-1),
		"stale after":  redisstore.WithStaleAfter(time.Millisecond),
		"policy":       redisstore.WithStalenessPolicy(9),
		"max entries":  redisstore.WithMaxEntries(0),
		"clock":        redisstore.WithClock(nil),
	} {
		if _, err := redisstore.NewFromURL(ctx, url, opt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCloseKeepsCallersClient(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv.Addr())
	ctx := context.Background()
	s, err := redisstore.New(ctx, rc, redisstore.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	ev := event(revocation.ObjectKey("t", "o"), time.Now())
	if err := s.Put(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("Close closed the caller's client: %v", err)
	}
	if err := s.Put(ctx, ev); !errors.Is(err, redisstore.ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
	if !errors.Is(s.Health(), revocation.ErrStale) {
		t.Fatal("Health after Close must fail")
	}
	if _, ok := s.Lookup(ev.Subject); !ok {
		t.Fatal("Lookup after Close lost the mirror")
	}
}

// In Redis Cluster, subject keys spread over every master: events written
// through one replica reach the others (PUBLISH crosses nodes) and a late
// replica loads them all (SCAN on every master).
func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	newClient := func() redis.UniversalClient {
		c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cl.Addrs(), IsClusterMode: true, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	openC := func() *redisstore.Store {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		s, err := redisstore.New(ctx, newClient(), redisstore.WithLogger(quiet),
			redisstore.WithHeartbeat(testHeartbeat), redisstore.WithStaleAfter(testStaleAfter))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := openC(), openC()
	evs := make([]revocation.Event, 60)
	for i := range evs {
		evs[i] = event(revocation.ObjectKey("t", fmt.Sprint("cluster-user-", i)), time.Now())
		put(t, a, evs[i])
	}
	for _, ev := range evs {
		testkit.EventuallyWithin(t, waitFor, "B to see every event", sees(b, ev))
	}
	// The keys really are spread: every master holds some.
	for _, addr := range cl.Addrs() {
		n, err := redistest.Command(addr, "DBSIZE")
		if err != nil || n == "0" {
			t.Fatalf("master %s holds %s keys (%v); want keys on every master", addr, n, err)
		}
	}
	late := openC()
	for _, ev := range evs {
		if !sees(late, ev)() {
			t.Fatalf("late replica missed %v", ev.Subject)
		}
	}
	if err := late.Health(); err != nil {
		t.Fatal(err)
	}
	// No change log in a Cluster: the script could not update a subject's
	// key and the log atomically across hash slots.
	if n, err := newClient().Exists(context.Background(), "caekit:changes").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS caekit:changes = %d (%v), want 0", n, err)
	}
}
