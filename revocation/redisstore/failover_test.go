package redisstore_test

// Failover under load (issue 18). Three store replicas, each serving gRPC
// through the CAE interceptors, enforce events while a writer pushes one new
// revocation every few milliseconds through them in turn (in the Sentinel
// scenario as CAEP SETs through an SSF receiver in front of each replica,
// elsewhere with Store.Put), retrying a failed delivery through the next
// replica as an SSF transmitter retries a 503. In the middle, Redis fails:
// the Sentinel primary or one Cluster master is SIGKILLed, or two replicas
// are cut off by proxies. Checkers poll Lookup and Health on every replica,
// as the interceptors do per call, and measure
//   - the longest window in which a replica was healthy (calls allowed) but
//     did not yet enforce an acknowledged event: a revoked token accepted;
//   - the longest window in which Health failed: calls refused with
//     Unavailable.
//
// After the fault, every replica must recover without a restart and enforce
// every acknowledged event (checked on the mirrors, and for a sample over
// gRPC with tokens of the revoked sessions); the staleness policy must be
// observed (FailClosed replicas refuse calls while out of touch,
// KeepLastKnown ones never do).
//
// The short form runs in go test ./...; the long form (failover_long_test.go)
// behind the build tag "failover", see the README.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// transmitters is how many events are delivered at once.
const transmitters = 4

// loadPlan is one failover scenario's timing.
type loadPlan struct {
	interval time.Duration // between two new events
	warmup   time.Duration // load before the fault
	after    time.Duration // load after the fault starts
	heal     func()        // ends the fault (nil: nothing to heal)
	healIn   time.Duration // how long after the fault heal may run
	healWhen func() bool   // and once this holds (nil: at once)
	// lossExpected reports lost acknowledged events instead of failing
	// (the WAIT 0 comparison runs).
	lossExpected bool
	// event and send, when set, replace the default delivery (Put on the
	// store replica): event makes event i, send delivers it to a replica.
	event func(i int) revocation.Event
	send  func(ctx context.Context, replica int, ev revocation.Event) error
}

// viaSSF makes the plan push every event as a CAEP session-revoked SET
// through an SSF receiver (RFC 8935 push over loopback HTTP) in front of
// each store replica; a push answered with anything but 202 is retried.
func viaSSF(t *testing.T, plan loadPlan, rs []*replica) loadPlan {
	t.Helper()
	tr := ssftest.New()
	t.Cleanup(tr.Close)
	urls := make([]string, len(rs))
	for i, r := range rs {
		rcv, err := receiver.New(context.Background(),
			receiver.WithIssuer(tr.Issuer), receiver.WithAudience(ssftest.Audience), receiver.WithStore(r.store),
			receiver.WithPushAuthorization("Bearer failover"), receiver.WithLogger(quiet),
			// The sessions are those of the gRPC replicas' tokens.
			receiver.WithSubjectMapper(ssf.DefaultMapper{TokenIssuer: e2eIssuer}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rcv.Close() })
		srv := httptest.NewServer(rcv)
		t.Cleanup(srv.Close)
		urls[i] = srv.URL
	}
	var mu sync.Mutex
	sets := map[string]string{}
	plan.event = func(i int) revocation.Event {
		sid := fmt.Sprintf("sid-%d", i)
		set, jti := tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{"format": "opaque", "id": sid})
		mu.Lock()
		sets[jti] = set
		mu.Unlock()
		return revocation.Event{ID: jti, Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey(e2eIssuer, sid)}
	}
	plan.send = func(ctx context.Context, replica int, ev revocation.Event) error {
		mu.Lock()
		set := sets[ev.ID]
		mu.Unlock()
		code, body, err := ssftest.Push(ctx, urls[replica], "Bearer failover", set)
		if err != nil {
			return err
		}
		if code != http.StatusAccepted {
			return fmt.Errorf("push answered %d: %s", code, body)
		}
		return nil
	}
	return plan
}

// replica is one store replica under observation.
type replica struct {
	name   string
	store  *redisstore.Store
	policy redisstore.StalenessPolicy

	mu          sync.Mutex
	seen        map[string]bool
	accepted    map[string]time.Duration // time healthy without the event
	unavailable time.Duration            // longest Health != nil window
	sawStale    bool
	healthyOK   bool // Health nil at the end
}

// loadReport is what a scenario measured.
type loadReport struct {
	pushed, acked       int
	enforced            map[string]int           // per replica, after recovery
	acceptedOn          map[string]time.Duration // per replica: longest window a revoked token was accepted
	unavailableOn       map[string]time.Duration // per replica: longest Unavailable window
	longestAccepted     time.Duration
	longestAcceptedOn   string
	longestUnavailable  time.Duration
	longestUnavailOn    string
	putFailures         int
	failoverToRecovered time.Duration
	ackedIDs            []int // the numbers of the acknowledged events (sid-<n>)
}

func (r loadReport) String() string {
	round := func(m map[string]time.Duration) map[string]time.Duration {
		o := make(map[string]time.Duration, len(m))
		for k, v := range m {
			o[k] = v.Round(time.Millisecond)
		}
		return o
	}
	return fmt.Sprintf("events pushed %d, acknowledged %d, enforced after recovery %v; failed deliveries (retried) %d; "+
		"longest window a revoked token was accepted %v (%s), per replica %v; longest Unavailable window %v (%s), per replica %v; fault to full recovery %v",
		r.pushed, r.acked, r.enforced, r.putFailures, r.longestAccepted.Round(time.Millisecond), r.longestAcceptedOn, round(r.acceptedOn),
		r.longestUnavailable.Round(time.Millisecond), r.longestUnavailOn, round(r.unavailableOn), r.failoverToRecovered.Round(time.Millisecond))
}

// runLoad drives the scenario: load, fault (at warmup), heal, recovery.
// It fails t if an acknowledged event is not enforced on every replica
// after recovery, or if a replica breaks its staleness policy.
func runLoad(t *testing.T, replicas []*replica, fault func(), plan loadPlan) loadReport {
	t.Helper()
	type ack struct {
		ev revocation.Event
		at time.Time
	}
	var (
		mu       sync.Mutex
		acks     []ack
		pushed   int
		failures int
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	queue := make(chan revocation.Event, 1<<16)
	deliver := func(i int, ev revocation.Event) {
		for try := i; ctx.Err() == nil; try++ {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			var err error
			if plan.send != nil {
				err = plan.send(pctx, try%len(replicas), ev)
			} else {
				err = replicas[try%len(replicas)].store.Put(pctx, ev)
			}
			pcancel()
			if err == nil {
				mu.Lock()
				acks = append(acks, ack{ev, time.Now()})
				mu.Unlock()
				return
			}
			mu.Lock()
			failures++
			mu.Unlock()
			select { // a transmitter's retry delay
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
	// Checkers: one per replica, polling as calls would.
	checkDone := make(chan struct{})
	var cwg sync.WaitGroup
	for _, r := range replicas {
		r.seen, r.accepted = map[string]bool{}, map[string]time.Duration{}
		cwg.Add(1)
		go func(r *replica) {
			defer cwg.Done()
			last := time.Now()
			var downSince time.Time
			for {
				select {
				case <-checkDone:
					return
				default:
				}
				now := time.Now()
				healthy := r.store.Health() == nil
				mu.Lock()
				pending := acks
				mu.Unlock()
				r.mu.Lock()
				if !healthy {
					r.sawStale = true
					if downSince.IsZero() {
						downSince = now
					}
					r.unavailable = max(r.unavailable, now.Sub(downSince))
				} else {
					downSince = time.Time{}
				}
				for _, a := range pending {
					id := a.ev.ID
					if r.seen[id] {
						continue
					}
					if got, ok := r.store.Lookup(a.ev.Subject); ok && got.ID == id {
						r.seen[id] = true
						continue
					}
					if healthy {
						r.accepted[id] += now.Sub(maxTime(last, a.at))
					}
				}
				r.mu.Unlock()
				last = now
				time.Sleep(time.Millisecond)
			}
		}(r)
	}

	// A few transmitters deliver the events in order, each retrying one
	// event until it is acknowledged, as an SSF push stream does.
	for w := 0; w < transmitters; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			i := w
			for ev := range queue {
				deliver(i, ev)
				i++
			}
		}(w)
	}
	start := time.Now()
	faultAt := start.Add(plan.warmup)
	end := faultAt.Add(plan.after)
	faulted, healed := false, plan.heal == nil
	for i := 0; time.Now().Before(end); i++ {
		if !faulted && time.Now().After(faultAt) {
			fault()
			faulted, faultAt = true, time.Now()
		}
		if faulted && !healed && time.Since(faultAt) > plan.healIn && (plan.healWhen == nil || plan.healWhen()) {
			plan.heal()
			healed = true
		}
		ev := revocation.Event{
			ID: fmt.Sprintf("fo-%d", i), Type: revocation.TypeSessionRevoked,
			Subject: revocation.SessionKey(e2eIssuer, fmt.Sprintf("sid-%d", i)), Time: time.Now(),
		}
		if plan.event != nil {
			ev = plan.event(i)
		}
		mu.Lock()
		pushed++
		mu.Unlock()
		queue <- ev
		time.Sleep(plan.interval)
	}
	close(queue)
	if !healed {
		plan.heal()
	}
	// Every pushed event is eventually acknowledged (the transmitter
	// retries), and every replica recovers and enforces every one.
	deadline := time.Now().Add(20 * time.Second)
	recovered := func() bool {
		mu.Lock()
		n, all := len(acks), acks
		p := pushed
		mu.Unlock()
		if n != p {
			return false
		}

		for _, r := range replicas {
			if r.store.Health() != nil {
				return false
			}
			for _, a := range all {
				if got, ok := r.store.Lookup(a.ev.Subject); !ok || got.ID != a.ev.ID {
					return false
				}
			}
		}
		return true
	}
	for !recovered() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rep := loadReport{enforced: map[string]int{}, acceptedOn: map[string]time.Duration{}, unavailableOn: map[string]time.Duration{},
		failoverToRecovered: time.Since(faultAt)}
	cancel()
	for range queue { // let the transmitters end
	}
	wg.Wait()
	close(checkDone)
	cwg.Wait()

	mu.Lock()
	rep.pushed, rep.acked, rep.putFailures = pushed, len(acks), failures
	all := acks
	mu.Unlock()
	for _, a := range all {
		var n int
		if _, err := fmt.Sscanf(a.ev.Subject.ID, "sid-%d", &n); err == nil {
			rep.ackedIDs = append(rep.ackedIDs, n)
		}
	}
	for _, r := range replicas {
		n := 0
		var missing []string
		for _, a := range all {
			if got, ok := r.store.Lookup(a.ev.Subject); ok && got.ID == a.ev.ID {
				n++
			} else if len(missing) < 5 {
				missing = append(missing, a.ev.ID)
			}
		}
		rep.enforced[r.name] = n
		if n != len(all) && plan.lossExpected {
			t.Logf("%s: %d of %d acknowledged events enforced after recovery: %d acknowledged events lost (expected without replica acknowledgements)",
				r.name, n, len(all), len(all)-n)
		} else if n != len(all) {
			t.Errorf("%s: %d of %d acknowledged events enforced after recovery (missing e.g. %v): an acknowledged event was lost",
				r.name, n, len(all), missing)
		}
		if err := r.store.Health(); err != nil {
			t.Errorf("%s did not recover without a restart: %v", r.name, err)
		}
		if r.policy == redisstore.KeepLastKnown && r.sawStale {
			t.Errorf("%s (keep_last_known) refused calls during the fault", r.name)
		}
		rep.unavailableOn[r.name] = r.unavailable
		for id, d := range r.accepted {
			rep.acceptedOn[r.name] = max(rep.acceptedOn[r.name], d)
			if d > rep.longestAccepted {
				rep.longestAccepted, rep.longestAcceptedOn = d, r.name+" "+id
			}
		}
		if r.unavailable > rep.longestUnavailable {
			rep.longestUnavailable, rep.longestUnavailOn = r.unavailable, r.name
		}
	}
	if rep.pushed != rep.acked {
		t.Errorf("%d events pushed, only %d acknowledged within 20 s of the end of the load", rep.pushed, rep.acked)
	}
	return rep
}

// serveAll has each store replica serve gRPC through the CAE interceptors
// and returns the check to run after recovery (checkOverGRPC).
func serveAll(t *testing.T, rs []*replica) func(acked []int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clients := make([]inboxv1.InboxServiceClient, len(rs))
	for i, r := range rs {
		clients[i] = serve(t, &key.PublicKey, r.store)
	}
	issued := time.Now().Add(-time.Minute)
	return func(acked []int) { checkOverGRPC(t, key, issued, clients, acked) }
}

// checkOverGRPC calls every gRPC replica after recovery: a token of a
// session revoked by an acknowledged event (a sample of up to 100) is
// refused with Unauthenticated, and a token of a session nothing revoked
// is served.
func checkOverGRPC(t *testing.T, key *ecdsa.PrivateKey, issued time.Time, clients []inboxv1.InboxServiceClient, acked []int) {
	t.Helper()
	call := func(c inboxv1.InboxServiceClient, sid string) error {
		raw := testkit.Minter{Alg: "ES256", KID: "k1", Key: key}.Mint(t, jwt.MapClaims{
			"iss": e2eIssuer, "aud": e2eAudience, "sub": "user-" + sid, "sid": sid, "xms_cc": []string{"cp1"},
			"iat": issued.Unix(), "exp": issued.Add(time.Hour).Unix(),
		})
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+raw), 5*time.Second)
		defer cancel()
		_, err := c.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"})
		return err
	}
	// Unavailable is the fail-closed answer of a replica whose heartbeat
	// lapsed again after recovery (seen on a loaded CI machine): it serves
	// nothing, so it is asked again, for at most 10 s, until it answers for
	// real. A revoked token served (OK) is still a failure at once.
	settled := func(c inboxv1.InboxServiceClient, sid string) error {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := call(c, sid)
			if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	step := max(1, len(acked)/100)
	for i, c := range clients {
		if err := settled(c, "sid-never-revoked"); err != nil {
			t.Errorf("gRPC replica %d refused a valid token after recovery: %v", i, err)
		}
		for k := 0; k < len(acked); k += step {
			sid := fmt.Sprintf("sid-%d", acked[k])
			if err := settled(c, sid); status.Code(err) != codes.Unauthenticated {
				t.Errorf("gRPC replica %d: token of revoked session %s: %v, want Unauthenticated", i, sid, err)
			}
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// failoverOpts are the store options of the failover scenarios.
func failoverOpts(p redisstore.StalenessPolicy, extra ...redisstore.Option) []redisstore.Option {
	return append([]redisstore.Option{redisstore.WithStalenessPolicy(p)}, extra...)
}

// threeReplicas opens store replicas A, B (FailClosed) and C (KeepLastKnown)
// on clients made by newClient.
func threeReplicas(t *testing.T, newClient func() redis.UniversalClient, extra ...redisstore.Option) []*replica {
	t.Helper()
	var rs []*replica
	for i, p := range []redisstore.StalenessPolicy{redisstore.FailClosed, redisstore.FailClosed, redisstore.KeepLastKnown} {
		rs = append(rs, &replica{
			name:   fmt.Sprintf("%c(%s)", 'A'+i, p),
			store:  openClient(t, newClient(), failoverOpts(p, extra...)...),
			policy: p,
		})
	}
	return rs
}

// checkFailClosedObserved: a FailClosed replica out of touch for longer than
// StaleAfter must have refused calls. A Sentinel or Cluster failover keeps
// every replica out of touch for at least the down-after period, longer than
// the tests' StaleAfter.
func checkFailClosedObserved(t *testing.T, rs []*replica, names ...string) {
	t.Helper()
	for _, r := range rs {
		for _, n := range names {
			if r.name[:1] == n && !r.sawStale {
				t.Errorf("%s never refused calls although it was out of touch with Redis longer than StaleAfter", r.name)
			}
		}
	}
}

// sentinelFailover is the Sentinel scenario: the primary is SIGKILLed
// under load.
func sentinelFailover(t *testing.T, plan loadPlan, ssfPush bool, extra ...redisstore.Option) loadReport {
	set := redistest.StartSentinel(t, 2, 1)
	if set.DownAfter <= testStaleAfter {
		t.Fatalf("the scenario needs a down-after (%v) longer than StaleAfter (%v)", set.DownAfter, testStaleAfter)
	}
	rs := threeReplicas(t, func() redis.UniversalClient { return sentinelClient(set) }, extra...)
	check := serveAll(t, rs)
	if ssfPush {
		plan = viaSSF(t, plan, rs)
	}
	rep := runLoad(t, rs, set.Primary.Kill, plan)
	checkFailClosedObserved(t, rs, "A", "B")
	check(rep.ackedIDs)
	testkit.EventuallyWithin(t, waitFor, "the Sentinel to report the new primary", func() bool { return set.CurrentPrimary() != set.Primary.Addr() })
	return rep
}

// clusterFailover is the Cluster scenario: one master of three (each with a
// replica) is SIGKILLed under load.
func clusterFailover(t *testing.T, plan loadPlan, extra ...redisstore.Option) loadReport {
	c := redistest.StartClusterWithReplicas(t, 3, 1, time.Second)
	rs := threeReplicas(t, func() redis.UniversalClient { return clusterClient(c) }, extra...)
	victim := c.Masters()[0]
	// With one replica per master, the promoted replica has none left: a
	// supervisor restarts the killed node, which rejoins as its replica, and
	// WAIT 1 can be met again for those slots.
	plan.heal, plan.healWhen = victim.Restart, func() bool { return len(c.Masters()) == 3 }
	plan.healIn = max(plan.healIn, 500*time.Millisecond)
	check := serveAll(t, rs)
	rep := runLoad(t, rs, victim.Kill, plan)
	check(rep.ackedIDs)
	if len(c.Masters()) != 3 {
		t.Errorf("after the kill %d masters serve the slots, want 3 (a replica promoted)", len(c.Masters()))
	}
	return rep
}

// partition is the partition scenario: replicas B (FailClosed) and C
// (KeepLastKnown) reach Redis through proxies that are cut during the burst,
// while A keeps acknowledging events.
func partition(t *testing.T, plan loadPlan) loadReport {
	srv := redistest.Start(t)
	pb, pc := redistest.NewProxy(t, srv.Addr()), redistest.NewProxy(t, srv.Addr())
	client := func(addr string) redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 300 * time.Millisecond, ReadTimeout: time.Second,
			MaxRetries: -1, ContextTimeoutEnabled: true})
	}
	rs := []*replica{
		{name: "A(fail_closed)", store: openClient(t, client(srv.Addr())), policy: redisstore.FailClosed},
		{name: "B(fail_closed, cut off)", store: openClient(t, client(pb.Addr())), policy: redisstore.FailClosed},
		{name: "C(keep_last_known, cut off)", store: openClient(t, client(pc.Addr()),
			redisstore.WithStalenessPolicy(redisstore.KeepLastKnown)), policy: redisstore.KeepLastKnown},
	}
	plan.heal = func() { pb.Restore(); pc.Restore() }
	check := serveAll(t, rs)
	rep := runLoad(t, rs, func() { pb.Cut(); pc.Cut() }, plan)
	check(rep.ackedIDs)
	checkFailClosedObserved(t, rs, "B")
	if rs[0].sawStale {
		t.Errorf("A, never cut off, refused calls")
	}
	return rep
}

var shortPlan = loadPlan{interval: 5 * time.Millisecond, warmup: 500 * time.Millisecond, after: 3 * time.Second}

func TestFailoverSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("failover scenario: skipped in -short")
	}
	rep := sentinelFailover(t, shortPlan, true)
	t.Logf("sentinel, primary SIGKILLed, WAIT 1 (default), events pushed through SSF receivers: %s", rep)
}

func TestFailoverCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("failover scenario: skipped in -short")
	}
	rep := clusterFailover(t, shortPlan)
	t.Logf("cluster, one master SIGKILLed, WAIT 1 (default): %s", rep)
}

func TestFailoverPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("failover scenario: skipped in -short")
	}
	plan := shortPlan
	plan.after, plan.healIn = 2*time.Second, time.Second
	rep := partition(t, plan)
	t.Logf("partition, two replicas cut off for 1 s: %s", rep)
}
