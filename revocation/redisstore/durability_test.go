package redisstore_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// TestReplicaAcksWaitForTheReplica (issue 18): with WithReplicaAcks(1, …) Put
// returns nil only once a replica has the event. While the only replica is
// frozen (connected, but acknowledging nothing), Put fails with
// ErrNotReplicated, so the receiver answers 503 and the transmitter retries.
// A retry through another store replica, whose script finds the event
// already stored, must fail too: WAIT confirms a connection's own writes,
// so the script rewrites the value it found when a WAIT follows. (Redis
// 7.0.15, tested here, already makes WAIT on a connection with no writes
// wait for the primary's current offset, so this test passes without the
// rewrite too; the rewrite keeps the guarantee on servers that count only
// the connection's own writes.) Once the replica is back, the retry is
// acknowledged and the replica holds the event.
func TestReplicaAcksWaitForTheReplica(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.Start(t, redistest.ReplicaOf(primary.Addr()))
	redistest.WaitReplicas(t, primary.Addr(), 1)
	acks := redisstore.WithReplicaAcks(1, 300*time.Millisecond)
	a, b := open(t, primary.URL(), acks), open(t, primary.URL(), acks)
	if a.ReplicaAcks() != 1 {
		t.Fatalf("ReplicaAcks = %d, want 1", a.ReplicaAcks())
	}
	// On a loaded host a healthy replica may take longer than the timeout
	// to confirm: retry as the transmitter would.
	putEventually := func(s *redisstore.Store, ev revocation.Event) {
		t.Helper()
		testkit.EventuallyWithin(t, waitFor, "Put "+ev.ID+" to be acknowledged", func() bool { return s.Put(context.Background(), ev) == nil })
	}
	putEventually(a, event(revocation.SessionKey("https://idp.test", "sid-ok"), time.Now()))

	replica.Freeze()
	ev := event(revocation.SessionKey("https://idp.test", "sid-frozen"), time.Now())
	if err := a.Put(context.Background(), ev); !errors.Is(err, redisstore.ErrNotReplicated) {
		replica.Thaw()
		t.Fatalf("Put with the replica frozen = %v, want ErrNotReplicated", err)
	}
	if err := b.Put(context.Background(), ev); !errors.Is(err, redisstore.ErrNotReplicated) {
		replica.Thaw()
		t.Fatalf("retried Put through another store with the replica frozen = %v, want ErrNotReplicated", err)
	}
	replica.Thaw()
	putEventually(b, ev)
	got, err := rawClient(t, replica.Addr()).Exists(context.Background(),
		"caekit:rev:session:16:https://idp.test:sid-frozen").Result()
	if err != nil || got != 1 {
		t.Fatalf("the replica does not hold the acknowledged event: %d, %v", got, err)
	}
}

// TestReplicaAcksRespectsContextDeadline: the WAIT is bounded by Put's
// context as well as by the configured timeout.
func TestReplicaAcksRespectsContextDeadline(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.Start(t, redistest.ReplicaOf(primary.Addr()))
	redistest.WaitReplicas(t, primary.Addr(), 1)
	s := open(t, primary.URL(), redisstore.WithReplicaAcks(1, time.Hour))
	replica.Freeze()
	defer replica.Thaw()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.Put(ctx, event(revocation.SessionKey("https://idp.test", "sid-ctx"), time.Now()))
	if !errors.Is(err, redisstore.ErrNotReplicated) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put = %v, want a failure bounded by its context", err)
	}
}

// TestReplicaAcksDefaults (issue 18): without WithReplicaAcks, a single-node
// client waits for no replica; a Sentinel client and a Cluster client whose
// masters have replicas wait for one; a Cluster without replicas for none.
func TestReplicaAcksDefaults(t *testing.T) {
	t.Run("single node", func(t *testing.T) {
		primary := redistest.Start(t)
		redistest.Start(t, redistest.ReplicaOf(primary.Addr()))
		if n := open(t, primary.URL()).ReplicaAcks(); n != 0 {
			t.Fatalf("ReplicaAcks = %d, want 0", n)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		set := redistest.StartSentinel(t, 1, 1)
		if n := openClient(t, sentinelClient(set)).ReplicaAcks(); n != 1 {
			t.Fatalf("ReplicaAcks = %d, want 1", n)
		}
	})
	t.Run("cluster with replicas", func(t *testing.T) {
		c := redistest.StartClusterWithReplicas(t, 3, 1, 0)
		if n := openClient(t, clusterClient(c)).ReplicaAcks(); n != 1 {
			t.Fatalf("ReplicaAcks = %d, want 1", n)
		}
	})
}

// sentinelClient returns a failover client for set, failing fast while no
// primary answers.
func sentinelClient(set *redistest.SentinelSet) redis.UniversalClient {
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            redistest.MasterName,
		SentinelAddrs:         set.SentinelAddrs(),
		DialTimeout:           300 * time.Millisecond,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
	})
}

func clusterClient(c *redistest.Cluster) redis.UniversalClient {
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 c.Addrs(),
		DialTimeout:           300 * time.Millisecond,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
	})
}

// openClient starts a store on client (which it closes at the end of the
// test) with the test heartbeat and staleness.
func openClient(t testing.TB, client redis.UniversalClient, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	opts = append([]redisstore.Option{
		redisstore.WithHeartbeat(testHeartbeat),
		redisstore.WithStaleAfter(testStaleAfter),
		redisstore.WithLogger(quiet),
	}, opts...)
	s, err := redisstore.New(ctx, client, opts...)
	if err != nil {
		_ = client.Close()
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(); _ = client.Close() })
	return s
}

// TestAckedEventSurvivesFailoverOnlyWithReplicaAcks (issue 18) makes the
// failure the durability option exists for happen on purpose: the links
// from the Sentinel primary to both replicas drop every byte, an event is
// put, and the primary is SIGKILLed. Without replica acknowledgements the
// store acknowledged the event, which is then lost with the primary; with
// WAIT 1 the SSF receiver in front of the store answers the push 503
// (Put fails with ErrNotReplicated), the transmitter retries, and the retry
// after the failover is acknowledged (202) and enforced.
//
// It also shows the price of a resynchronisation that mirrors Redis: the
// replica that acknowledged the lost event drops it from its mirror too,
// once it has confirmed that Redis no longer holds it.
func TestAckedEventSurvivesFailoverOnlyWithReplicaAcks(t *testing.T) {
	set := redistest.StartSentinel(t, 2, 1, redistest.WithReplicationLinks())
	noWait := openClient(t, sentinelClient(set), redisstore.WithReplicaAcks(0, 0))
	wait1 := openClient(t, sentinelClient(set), redisstore.WithReplicaAcks(1, 300*time.Millisecond))
	// The WAIT 1 replica receives its event as a CAEP SET over SSF push.
	tr := ssftest.New()
	t.Cleanup(tr.Close)
	rcv, err := receiver.New(context.Background(), receiver.WithIssuer(tr.Issuer), receiver.WithAudience(ssftest.Audience),
		receiver.WithStore(wait1), receiver.WithPushAuthorization("Bearer d"), receiver.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rcv.Close() })
	push := httptest.NewServer(rcv)
	t.Cleanup(push.Close)
	set1, jti := tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{"format": "opaque", "id": "sid-kept"})
	kept := revocation.Event{ID: jti, Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey(tr.Issuer, "sid-kept")}
	pushKept := func() (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		code, body, err := ssftest.Push(ctx, push.URL, "Bearer d", set1)
		if err != nil {
			return 0, err.Error()
		}
		return code, string(body)
	}

	for _, l := range set.Links {
		l.Stall()
	}
	lost := event(revocation.SessionKey("https://idp.test", "sid-lost"), time.Now())
	put(t, noWait, lost) // acknowledged on the primary's word alone
	if code, body := pushKept(); code != http.StatusServiceUnavailable {
		t.Fatalf("push to the WAIT 1 replica while no replica receives writes = %d %s, want 503", code, body)
	}
	set.Primary.Kill()
	for _, l := range set.Links {
		l.Restore()
	}
	testkit.EventuallyWithin(t, waitFor, "the Sentinel to promote a replica", func() bool {
		p := set.CurrentPrimary()
		return p != "" && p != set.Primary.Addr()
	})
	// The transmitter delivers the unacknowledged event again.
	testkit.EventuallyWithin(t, waitFor, "the retried push to be acknowledged", func() bool {
		code, _ := pushKept()
		return code == http.StatusAccepted
	})
	fresh := openClient(t, sentinelClient(set))
	if got, ok := fresh.Lookup(kept.Subject); !ok || got.ID != jti {
		t.Fatal("the event acknowledged with WAIT 1 is not in Redis after the failover")
	}
	if _, ok := fresh.Lookup(lost.Subject); ok {
		t.Fatal("the event acknowledged without WAIT survived; the scenario did not reproduce the loss")
	}
	testkit.EventuallyWithin(t, waitFor, "every replica to enforce the retried event", func() bool {
		a, okA := noWait.Lookup(kept.Subject)
		b, okB := wait1.Lookup(kept.Subject)
		return okA && okB && a.ID == jti && b.ID == jti
	})
	testkit.EventuallyWithin(t, waitFor, "the replica that acknowledged the lost event to drop it", func() bool {
		_, ok := noWait.Lookup(lost.Subject)
		return !ok
	})
}

// TestPeriodicResyncFindsUnannouncedKeys: Pub/Sub may lose a message
// without the subscription failing (a Cluster node failing over or
// rejoining); WithResyncInterval bounds how long such an event goes
// unenforced. Here a key is written with no message at all.
func TestPeriodicResyncFindsUnannouncedKeys(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redisstore.WithResyncInterval(200*time.Millisecond))
	rc := rawClient(t, srv.Addr())
	if err := rc.Set(context.Background(), "caekit:rev:session:16:https://idp.test:sid-quiet",
		forge("sid-quiet", time.Now(), "quiet"), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyWithin(t, waitFor, "the periodic resynchronisation to load the key", func() bool {
		got, ok := s.Lookup(revocation.SessionKey("https://idp.test", "sid-quiet"))
		return ok && got.ID == "quiet"
	})
}

func TestDurabilityOptionErrors(t *testing.T) {
	srv := redistest.Start(t)
	for name, opt := range map[string]redisstore.Option{
		"negative replica acks":      redisstore.WithReplicaAcks(-1, time.Second),
		"too many replica acks":      redisstore.WithReplicaAcks(redisstore.MaxReplicaAcks+1, time.Second),
		"resync below the heartbeat": redisstore.WithResyncInterval(time.Millisecond),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		s, err := redisstore.NewFromURL(ctx, srv.URL(), opt)
		cancel()
		if err == nil {
			_ = s.Close()
			t.Errorf("%s: New succeeded", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}
