package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caekit/caekit/internal/backoff"
	"github.com/caekit/caekit/revocation"
	mirrorhook "github.com/caekit/caekit/revocation/internal/mirror"
)

// ErrClosed is returned by Put after Close.
var ErrClosed = errors.New("redisstore: store is closed")

// ErrNotReplicated is wrapped by Put when fewer replicas than WithReplicaAcks
// asks for confirmed the write in time. The event is on the primary but not
// acknowledged: the caller must not acknowledge it, and the transmitter
// delivers it again.
var ErrNotReplicated = errors.New("redisstore: event not confirmed by enough Redis replicas")

// putScript stores the event in KEYS[1] unless the key already holds an event
// at the same time or later, and publishes it when stored. ARGV: the encoded
// event, its TTL in milliseconds, the channel, "1" when a WAIT follows, and
// the change log's length. When KEYS[2], the change log, is given, a stored
// event is also appended to it (XADD, field "e", trimmed with MAXLEN ~) in
// the same atomic step, so that the log's order is the order of the writes.
// It returns 1 when stored, 0 when an event at least as new was already
// there. In that case it publishes the stored event again (a retried Put
// follows a failure, which may have lost the first message with a dying
// primary; replicas apply it idempotently), and, when a WAIT follows,
// rewrites the value already held (keeping its TTL) so that the WAIT covers
// it: WAIT confirms a connection's own writes, and a retried Put must not be
// acknowledged on the strength of an earlier write no replica may have. It
// does not append to the log again: the key and its log entry were written
// by one script, so they reach a replica together. Without a change log it
// touches one key only, so it is valid in Redis Cluster; PUBLISH in a script
// reaches every node.
var putScript = redis.NewScript(`
local old = redis.call('GET', KEYS[1])
if old and string.sub(old, 1, 2) == '1,' and string.sub(old, 3, 22) >= string.sub(ARGV[1], 3, 22) then
  if ARGV[4] == '1' then
    redis.call('SET', KEYS[1], old, 'KEEPTTL')
  end
  redis.call('PUBLISH', ARGV[3], old)
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[2] then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'e', ARGV[1])
end
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
`)

const (
	scanCount     = 4096 // keys per SCAN and per pipeline of GETs
	minBackoff    = 10 * time.Millisecond
	subscribeWait = 30 * time.Second // New's bound when ctx has no deadline
)

// Store is a revocation.Store shared by replicas through Redis. Each replica
// keeps a local mirror (a revocation.Memory) that Lookup reads; Put writes to
// Redis first and the other replicas' mirrors follow through Pub/Sub and the
// change log. See the package documentation for the design.
//
// A Store is safe for concurrent use. Call Close to stop its goroutine.
type Store struct {
	cfg       config
	client    redis.UniversalClient
	ownClient bool
	mirror    *revocation.Memory
	mw        mirrorhook.Writer[revocation.Event] // mirror's unexported write hooks
	log       *slog.Logger
	channel   string
	pattern   string
	logKey    string      // the change log (WithChangeLog); "" when off
	logOff    atomic.Bool // Redis refused a position mark: read no log

	// syncMu serialises resynchronisations and catch-ups; cursor, under it,
	// is the newest change-log entry such that the mirror holds every event
	// the log had up to it (zero when unknown).
	syncMu    sync.Mutex
	cursor    logPos
	marks     uint64        // position marks written, under syncMu
	nonce     string        // this store's random name, in its marks
	fullSyncs atomic.Uint64 // full reloads (SCAN) completed
	catchUps  atomic.Uint64 // catch-ups from the change log completed

	epoch       time.Time    // monotonic base for lastContact
	lastContact atomic.Int64 // time.Since(epoch) at the last confirmed contact
	overflow    atomic.Bool  // the mirror refused an event that Redis holds
	overflows   atomic.Uint64
	closed      atomic.Bool
	acks        int // replicas that must confirm a write (WAIT); 0: none

	// applyMu orders mirror writes against the removal step of a
	// resynchronisation; touched, non-nil while a resync runs, collects the
	// subjects written meanwhile, which that step must keep.
	applyMu     sync.Mutex
	touched     map[revocation.Key]struct{}
	touchedFull bool // touched hit its bound: removal is skipped
	absent      map[revocation.Key]absentEntry

	// Owned by the run goroutine.
	ignoredHints uint64
	lastHintWarn time.Time

	errStale    error
	errOverflow error
	errClosedH  error

	ctx    context.Context
	cancel context.CancelFunc
	psMu   sync.Mutex
	ps     *redis.PubSub
	done   chan struct{}
	once   sync.Once
	closeE error
}

var _ revocation.Store = (*Store)(nil)

// New returns a Store that shares state through client, which may be a
// single-node, Sentinel (failover) or Cluster client. It subscribes to the
// event channel and loads every unexpired event from Redis into the mirror
// before it returns, so a replica started after an event enforces it at
// once. It fails if Redis cannot be reached before ctx is done: ctx bounds
// this initialisation only, and the store lives on after ctx ends until
// Close. Invalid arguments are all reported at once, joined with
// errors.Join. The caller keeps ownership of client: Close does not close
// it.
//
// Build client with ContextTimeoutEnabled set (redis.Options,
// redis.FailoverOptions, redis.ClusterOptions or redis.UniversalOptions):
// without it go-redis ignores context deadlines on socket I/O, so a Put
// against an unresponsive Redis returns only after the client's ReadTimeout
// (3 s by default) whatever the deadline of its ctx, holding up the SSF push
// request that called it. New does not change a caller's client; it logs a
// warning when it can see that the option is off. (Put does not race the
// command against ctx in a goroutine instead: the abandoned command would
// keep its pooled connection and could still succeed after Put reported
// failure, and the goroutine would outlive the call.)
func New(ctx context.Context, client redis.UniversalClient, opts ...Option) (*Store, error) {
	return newStore(ctx, client, false, opts)
}

// NewFromURL is New with a client built from a redis:// or rediss:// URL
// (redis://[user:password@]host:port/db, see redis.ParseURL). The Store owns
// that client and closes it in Close. For Sentinel or Cluster build the
// client with redis.NewUniversalClient and call New. The client has
// ContextTimeoutEnabled set, so Put gives up when its ctx deadline passes.
func NewFromURL(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		// url.Error repeats the URL, which may hold a password: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redisstore: bad Redis URL (want redis://[user:password@]host:port/db or rediss://...): %w", err)
	}
	// Without it go-redis bounds socket reads by ReadTimeout only, and Put
	// would overrun its caller's deadline while Redis is unresponsive.
	o.ContextTimeoutEnabled = true
	client := redis.NewClient(o)
	s, err := newStore(ctx, client, true, opts)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	return s, nil
}

func newStore(ctx context.Context, client redis.UniversalClient, own bool, opts []Option) (*Store, error) {
	var errs []error
	if client == nil {
		errs = append(errs, errors.New("redisstore: nil Redis client"))
	}
	if _, ok := client.(*redis.Ring); ok {
		errs = append(errs, errors.New("redisstore: redis.Ring is not supported (Pub/Sub does not cross Ring shards); use a single-node, Sentinel or Cluster client"))
	}
	cfg := defaults()
	for i, o := range opts {
		if o == nil {
			errs = append(errs, fmt.Errorf("redisstore: option %d is nil", i))
			continue
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if on, known := contextTimeouts(client); known && !on {
		cfg.logger.Warn("redisstore: the Redis client has ContextTimeoutEnabled off, so Put ignores context deadlines and waits up to the client's ReadTimeout while Redis is unresponsive; set ContextTimeoutEnabled in the client's options")
	}
	mirror, err := revocation.NewMemory(
		revocation.WithRetention(cfg.retention),
		revocation.WithMaxEntries(cfg.maxEntries),
		revocation.WithClock(cfg.now),
	)
	if err != nil {
		return nil, fmt.Errorf("redisstore: mirror: %w", err)
	}
	s := &Store{
		cfg:       cfg,
		client:    client,
		ownClient: own,
		mirror:    mirror,
		mw:        mirrorhook.Of[*revocation.Memory, revocation.Event](mirror),
		log:       cfg.logger,
		channel:   cfg.prefix + channelName,
		pattern:   scanPattern(cfg.prefix),
		epoch:     time.Now(),
		done:      make(chan struct{}),
		absent:    make(map[revocation.Key]absentEntry),
	}
	_, isCluster := client.(*redis.ClusterClient)
	if cfg.changeLog > 0 && !isCluster {
		s.logKey = cfg.prefix + changeLogName
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		s.nonce = hex.EncodeToString(b[:])
	}
	// Health must not allocate: its errors are built once.
	s.errStale = fmt.Errorf("redisstore: out of touch with Redis for longer than %v (policy %s): %w",
		cfg.staleAfter, cfg.policy, revocation.ErrStale)
	s.errOverflow = fmt.Errorf("redisstore: local mirror is full (%d entries) and misses events Redis holds: %w",
		cfg.maxEntries, errors.Join(revocation.ErrStale, revocation.ErrFull))
	s.errClosedH = fmt.Errorf("redisstore: store is closed: %w", revocation.ErrStale)

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, subscribeWait)
		defer cancel()
	}
	s.acks = cfg.acks
	if !cfg.acksSet {
		s.acks = s.defaultAcks(ctx)
	}
	// Subscribe first, then load: an event published in between arrives as
	// a message, one stored before is found by the scan. Apply is
	// newest-wins, so seeing an event twice is harmless.
	ps := client.Subscribe(ctx, s.channel)
	if err := s.waitSubscribed(ctx, ps); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("redisstore: subscribe to %q: %w", s.channel, err)
	}
	if err := s.resync(ctx, false); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("redisstore: initial load from Redis: %w", err)
	}
	s.touch()
	s.ps = ps
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run(ps)
	return s, nil
}

// contextTimeouts reports whether client honours context deadlines
// (ContextTimeoutEnabled), and whether that could be determined.
func contextTimeouts(client redis.UniversalClient) (on, known bool) {
	switch c := client.(type) {
	case *redis.Client: // single node and Sentinel failover
		return c.Options().ContextTimeoutEnabled, true
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled, true
	}
	return false, false
}

func (s *Store) waitSubscribed(ctx context.Context, ps *redis.PubSub) error {
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.cfg.heartbeat)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if isTimeout(err) {
				continue
			}
			return err
		}
		if sub, ok := msg.(*redis.Subscription); ok && sub.Kind == "subscribe" && sub.Channel == s.channel {
			return nil
		}
	}
}

// Put stores ev in Redis, unless Redis already holds an event for the same
// subject at the same time or later, and publishes it to the other replicas;
// then it applies ev to the local mirror and notifies subscribers. It returns
// nil only once Redis has stored ev (or holds a newer event), so the caller
// may acknowledge ev. When Redis cannot be reached it returns an error and
// ev is not stored anywhere. An event already older than the retention is
// accepted and ignored.
func (s *Store) Put(ctx context.Context, ev revocation.Event) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := validate(ev); err != nil {
		return err
	}
	now := s.cfg.now()
	// Before Redis: an event dated far ahead would otherwise be stored with
	// a TTL the sender chose, and refused by every mirror.
	if err := ev.ValidateAt(now); err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	ttl := ev.Time.Add(s.cfg.retention).Sub(now)
	if ttl <= 0 {
		return nil // nothing it could revoke is still valid
	}
	ttlMS := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	key := subjectKey(s.cfg.prefix, ev.Subject)
	if err := s.write(ctx, key, encode(ev), ttlMS); err != nil {
		return fmt.Errorf("redisstore: store %s event %q for %s in Redis: %w", ev.Type, ev.ID, ev.Subject, err)
	}
	changed, err := s.apply(ev)
	if err != nil {
		if errors.Is(err, revocation.ErrFull) {
			s.setOverflow()
		}
		return fmt.Errorf("redisstore: event stored in Redis but not in the local mirror: %w", err)
	}
	if changed {
		s.mw.Notify(ev)
	}
	return nil
}

// Lookup returns the latest event for k from the local mirror. It does not
// touch the network and does not allocate. As with revocation.Memory, an
// event past its retention may be returned until the next sweep.
func (s *Store) Lookup(k revocation.Key) (revocation.Event, bool) { return s.mirror.Lookup(k) }

// Subscribe calls fn for every event that changes the mirror: events Put on
// this replica, events published by other replicas and events found by a
// resynchronisation after a reconnect. fn must not block.
func (s *Store) Subscribe(fn func(revocation.Event)) (unsubscribe func()) {
	return s.mirror.Subscribe(fn)
}

// Health returns nil while look-ups can be trusted. Under FailClosed it
// returns an error wrapping revocation.ErrStale once Staleness exceeds the
// StaleAfter threshold; under either policy it returns such an error when the
// mirror is full and misses events, and after Close. It does not allocate.
func (s *Store) Health() error {
	switch {
	case s.closed.Load():
		return s.errClosedH
	case s.overflow.Load():
		return s.errOverflow
	case s.cfg.policy == FailClosed && s.Staleness() > s.cfg.staleAfter:
		return s.errStale
	}
	return nil
}

// Staleness returns how long ago the store last confirmed that its mirror
// is in step with Redis: a live, resynchronised subscription that answered a
// message or a heartbeat. It stays below about one heartbeat while healthy.
func (s *Store) Staleness() time.Duration {
	d := time.Since(s.epoch) - time.Duration(s.lastContact.Load())
	if d < 0 {
		return 0
	}
	return d
}

// Sweep removes expired events from the local mirror and returns how many it
// removed. The store sweeps on its own about once a minute (more often for a
// short retention); Redis expires its keys by TTL.
func (s *Store) Sweep() int { return s.mirror.Sweep() }

// Len returns the number of subjects in the local mirror, expired ones
// included until swept.
func (s *Store) Len() int { return s.mirror.Len() }

// Close stops the store's goroutine, waits for it to end and, for a Store
// from NewFromURL, closes its Redis client, returning that Close's error. Lookup keeps answering from the mirror; Put fails with
// ErrClosed and Health reports the store as stale. Close is idempotent.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.cancel()
		s.psMu.Lock()
		if s.ps != nil {
			_ = s.ps.Close() // unblocks a pending receive
		}
		s.psMu.Unlock()
		<-s.done
		if s.ownClient {
			s.closeE = s.client.Close()
		}
	})
	return s.closeE
}

func (s *Store) setOverflow() {
	s.overflows.Add(1)
	s.overflow.Store(true)
}

func (s *Store) touch() { s.lastContact.Store(int64(time.Since(s.epoch))) }

// run receives published events, pings the subscription when idle,
// reconnects when it fails and resynchronises after every (re)subscription.
// runExited is called as a store's goroutine returns, right before done is
// closed; tests replace it to check that Close waits for the goroutine.
var runExited = func() {}

func (s *Store) run(ps *redis.PubSub) {
	defer close(s.done)
	defer runExited() // tests observe that Close waited for this
	defer func() {
		s.psMu.Lock()
		_ = s.ps.Close()
		s.psMu.Unlock()
	}()
	hb := s.cfg.heartbeat
	// needSync asks for a resynchronisation: a catch-up from the change log
	// when there is one and the store's position is still in it, else (or
	// with needFull) a full reload.
	synced, needSync, needFull := true, false, false
	lastRecv, lastFull, lastCatchUp := time.Now(), time.Now(), time.Now()
	failures := 0
	sweepEvery := min(max(s.cfg.retention/4, hb), time.Minute)
	lastSweep := time.Now()
	cluster, isCluster := s.client.(*redis.ClusterClient)
	var epoch int64 = -1
	lastEpochCheck := time.Now()
	// followUp asks for a second resynchronisation a few heartbeats after
	// one caused by a Cluster change or a resubscription in a Cluster: a
	// node that is still joining may not yet receive the messages the other
	// nodes publish.
	followUp := false
	lastAbsentCheck := time.Now()
	for s.ctx.Err() == nil {
		if synced && !needSync && time.Since(lastAbsentCheck) > hb {
			lastAbsentCheck = time.Now()
			if s.absentDue() {
				ctx, cancel := context.WithTimeout(s.ctx, s.cfg.staleAfter)
				err := s.confirmAbsent(ctx)
				cancel()
				if err != nil {
					s.log.Warn("redisstore: could not confirm that removed keys are gone; retrying", "error", err)
				}
			}
		}
		if synced && !needSync {
			switch {
			case time.Since(lastFull) > s.resyncInterval():
				// Bounds the effect of any lost message (without a change
				// log) and of keys removed by hand.
				needSync, needFull = true, true
			case followUp && time.Since(lastFull) > 3*hb:
				needSync, needFull, followUp = true, true, false
			}
		}
		if isCluster && synced && !needSync && time.Since(lastEpochCheck) > hb {
			// A failover in the Cluster does not drop subscriptions on the
			// surviving nodes, but messages published on the failed master
			// may be lost with it: resynchronise when the epoch moves.
			lastEpochCheck = time.Now()
			if e, ok := s.clusterEpoch(cluster); ok {
				if epoch >= 0 && e != epoch {
					s.log.Info("redisstore: the Cluster configuration changed; resynchronising", "epoch", e)
					needSync, needFull, followUp = true, true, true
				}
				epoch = e
			}
		}
		if time.Since(lastSweep) > sweepEvery {
			s.mirror.Sweep()
			lastSweep = time.Now()
		}
		if needSync {
			start := time.Now()
			full, err := s.sync(s.ctx, needFull, true)
			if err != nil {
				if s.ctx.Err() != nil {
					return
				}
				s.log.Warn("redisstore: resynchronisation failed; retrying", "error", err)
				s.sleep(&failures)
				continue
			}
			how := "change log"
			if full {
				how, lastFull = "full reload", time.Now()
			}
			s.log.Info("redisstore: mirror resynchronised with Redis", "channel", s.channel, "from", how,
				"entries", s.mirror.Len(), "took", time.Since(start).Round(time.Millisecond),
				"stale_for", s.Staleness().Round(time.Millisecond))
			needSync, needFull, synced, failures = false, false, true, 0
			lastCatchUp = time.Now()
			s.touch()
		}
		if synced && s.readsLog() && time.Since(lastCatchUp) > hb {
			// Read the change log since the last position: a message lost
			// on a live subscription costs one heartbeat, not a resync
			// interval.
			lastCatchUp = time.Now()
			full, err := s.sync(s.ctx, false, true)
			if s.ctx.Err() != nil {
				return
			}
			if err != nil {
				s.log.Warn("redisstore: could not read the change log; resynchronising", "error", err)
				synced, needSync = false, true
				continue
			}
			if full {
				lastFull = time.Now()
			}
			s.touch()
		}
		msg, err := ps.ReceiveTimeout(s.ctx, hb)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			if !isTimeout(err) {
				if synced {
					s.log.Warn("redisstore: lost the Redis subscription; reconnecting", "error", err)
				}
				synced = false
				s.sleep(&failures)
				continue
			}
			if time.Since(lastRecv) > 3*hb {
				s.log.Warn("redisstore: subscription answered nothing for three heartbeats; reconnecting",
					"heartbeat", hb)
				synced = false
				if ps = s.resubscribe(ps); ps == nil {
					return
				}
				lastRecv = time.Now()
				continue
			}
			if synced && s.overflow.Load() && time.Since(lastFull) > s.cfg.staleAfter {
				needSync, needFull = true, true // try to recover from a full mirror once entries expire
				continue
			}
			_ = ps.Ping(s.ctx) // a failure shows up on the next receive
			continue
		}
		lastRecv = time.Now()
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// A (re)subscription: events may have been missed since
				// the last one; reload before trusting the mirror again.
				synced, needSync, followUp = false, true, isCluster
			}
		case *redis.Message:
			if err := s.applyHint(m.Payload); err != nil {
				// The event could not be confirmed: reload everything
				// (and stay out of touch) until Redis answers again.
				s.log.Warn("redisstore: could not read the key a message names; resynchronising", "error", err)
				synced, needSync = false, true
				continue
			}
			if synced {
				s.touch()
			}
		case *redis.Pong:
			if synced {
				s.touch()
			}
		}
	}
}

// clusterEpoch returns cluster_current_epoch as one node reports it.
func (s *Store) clusterEpoch(c *redis.ClusterClient) (int64, bool) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.heartbeat)
	defer cancel()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_current_epoch:"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n, true
			}
		}
	}
	return 0, false
}

// resubscribe replaces a silent subscription with a new one, or returns nil
// when the store is closing.
func (s *Store) resubscribe(old *redis.PubSub) *redis.PubSub {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	_ = old.Close()
	if s.ctx.Err() != nil {
		return nil
	}
	s.ps = s.client.Subscribe(s.ctx, s.channel)
	return s.ps
}

// sleep counts one more failure and waits the kit's backoff for it (from
// minBackoff up to the heartbeat), or until the store closes.
func (s *Store) sleep(failures *int) {
	*failures++
	t := time.NewTimer(backoff.Policy{Min: minBackoff, Max: s.cfg.heartbeat}.Delay(*failures))
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// applyHint handles one Pub/Sub message. A message is only a hint that the
// key of the subject it names has changed: anyone allowed to PUBLISH could
// have sent it. applyHint reads that key from Redis and applies what the key
// holds, if anything, so that a message with no key behind it changes
// nothing. It returns an error only when Redis could not be read.
func (s *Store) applyHint(payload string) error {
	hint, err := decode(payload)
	if err != nil {
		s.ignoredHints++
		if time.Since(s.lastHintWarn) > s.cfg.heartbeat {
			s.log.Warn("redisstore: ignored undecodable messages", "error", err, "ignored_so_far", s.ignoredHints)
			s.lastHintWarn = time.Now()
		}
		return nil
	}
	key := subjectKey(s.cfg.prefix, hint.Subject)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.staleAfter)
	defer cancel()
	var node redis.Cmdable = s.client
	if c, ok := s.client.(*redis.ClusterClient); ok {
		// From the slot's primary, which the writer's script ran on, even
		// if the client routes reads to replicas.
		if node, err = c.MasterForKey(ctx, key); err != nil {
			return fmt.Errorf("primary for %q: %w", key, err)
		}
	}
	v, err := node.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		// At most one line per heartbeat: a flood of forged messages must
		// not become a flood of logs. Only the run goroutine gets here.
		s.ignoredHints++
		if time.Since(s.lastHintWarn) > s.cfg.heartbeat {
			s.log.Warn("redisstore: ignored messages naming a subject Redis holds no event for (forged, or expired since)",
				"subject", hint.Subject.String(), "ignored_so_far", s.ignoredHints)
			s.lastHintWarn = time.Now()
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %q: %w", key, err)
	}
	ev, err := decode(v)
	if err != nil {
		s.log.Warn("redisstore: ignored an undecodable key", "key", key, "error", err)
		return nil
	}
	if ev.Subject != hint.Subject {
		s.log.Warn("redisstore: ignored a key whose event names another subject", "key", key)
		return nil
	}
	s.applyEvent(ev)
	return nil
}

// apply writes ev to the mirror, recording its subject for a
// resynchronisation in progress.
func (s *Store) apply(ev revocation.Event) (bool, error) { return s.applyFrom(ev, false) }

// applyFrom is apply; fromScan is set for the events a resynchronisation
// reads itself, which its seen set already records, so they are not added
// to touched as well (at a million entries that second map was a fifth of
// the resync's time; BenchmarkResync).
func (s *Store) applyFrom(ev revocation.Event, fromScan bool) (bool, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.touched != nil && !fromScan {
		if len(s.touched) < s.cfg.maxEntries {
			s.touched[ev.Subject] = struct{}{}
		} else {
			s.touchedFull = true
		}
	}
	return s.mw.Apply(ev)
}

// write runs putScript for one event and, when replica acknowledgements are
// required, WAIT on the same connection.
func (s *Store) write(ctx context.Context, key, val string, ttlMS int64) error {
	keys := []string{key}
	if s.logKey != "" {
		keys = append(keys, s.logKey)
	}
	if s.acks == 0 {
		return putScript.Run(ctx, s.client, keys, val, ttlMS, s.channel, "0", s.cfg.changeLog).Err()
	}
	var node redis.Cmdable = s.client
	cluster, isCluster := s.client.(*redis.ClusterClient)
	if isCluster {
		// WAIT names no key: send it, with the script, to the key's
		// primary in one pipeline, so that both use one connection.
		n, err := cluster.MasterForKey(ctx, key)
		if err != nil {
			return fmt.Errorf("primary for the key: %w", err)
		}
		node = n
	}
	timeout := s.cfg.ackTimeout
	if dl, ok := ctx.Deadline(); ok {
		// Leave a little of ctx for the reply to arrive.
		if left := time.Until(dl) * 9 / 10; left < timeout {
			timeout = left
		}
	}
	if timeout < time.Millisecond {
		// WAIT with a timeout of 0 would block until the replicas answer.
		return fmt.Errorf("waiting for %d replica(s): %w", s.acks, context.DeadlineExceeded)
	}
	args := []any{val, ttlMS, s.channel, "1", s.cfg.changeLog}
	var (
		cmds []redis.Cmder
		err  error
	)
	for attempt := 0; attempt < 2; attempt++ {
		cmds, err = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			putScript.EvalSha(ctx, p, keys, args...)
			p.Do(ctx, "WAIT", s.acks, timeout.Milliseconds())
			return nil
		})
		if err == nil || attempt > 0 || !redis.HasErrorPrefix(cmds[0].Err(), "NOSCRIPT") {
			break
		}
		if err = putScript.Load(ctx, node).Err(); err != nil {
			break
		}
	}
	if err != nil {
		if isCluster {
			cluster.ReloadState(ctx) // a failover may have moved the slot
		}
		return err
	}
	got, err := cmds[1].(*redis.Cmd).Int64()
	if err != nil {
		return fmt.Errorf("wait for %d replica(s): %w", s.acks, err)
	}
	if got < int64(s.acks) {
		return fmt.Errorf("%w: %d of %d confirmed within %v", ErrNotReplicated, got, s.acks, timeout)
	}
	return nil
}

// defaultAcks is the replica acknowledgement count when WithReplicaAcks was
// not given: 1 for a Sentinel or Cluster client whose primaries all have a
// connected replica, else 0.
func (s *Store) defaultAcks(ctx context.Context) int {
	var (
		kind   string
		counts []int
		err    error
		mu     sync.Mutex
	)
	info := func(ctx context.Context, c redis.Cmdable) error {
		v, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		n := connectedReplicas(v)
		mu.Lock()
		counts = append(counts, n)
		mu.Unlock()
		return nil
	}
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		kind = "cluster"
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return info(ctx, n) })
	case *redis.Client:
		if c.Options().Addr != "FailoverClient" { // what redis.NewFailoverClient sets
			return 0
		}
		kind = "sentinel"
		err = info(ctx, c)
	default:
		return 0
	}
	if err != nil {
		s.log.Warn("redisstore: could not count the primaries' replicas (INFO replication); events are acknowledged without waiting for a replica; set WithReplicaAcks",
			"client", kind, "error", err)
		return 0
	}
	for _, n := range counts {
		if n < 1 {
			s.log.Warn("redisstore: a primary has no connected replica; events are acknowledged without waiting for a replica, and a failover can lose acknowledged events; set WithReplicaAcks",
				"client", kind)
			return 0
		}
	}
	s.log.Info("redisstore: events are acknowledged once one replica has them (WAIT 1)", "client", kind,
		"timeout", s.cfg.ackTimeout)
	return 1
}

// connectedReplicas reads connected_slaves from INFO replication.
func connectedReplicas(info string) int {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// ReplicaAcks returns how many replicas must confirm an event before Put
// returns nil (WithReplicaAcks, or the default New chose).
func (s *Store) ReplicaAcks() int { return s.acks }

func (s *Store) applyEvent(ev revocation.Event) {
	changed, err := s.apply(ev)
	if err != nil {
		if errors.Is(err, revocation.ErrFull) {
			s.setOverflow()
		}
		s.log.Error("redisstore: could not mirror an event", "subject", ev.Subject.String(), "error", err)
		return
	}
	if changed {
		s.mw.Notify(ev)
	}
}

// readsLog reports whether the store follows the change log.
func (s *Store) readsLog() bool { return s.logKey != "" && !s.logOff.Load() }

// resyncInterval is the time between full reloads: WithResyncInterval, else
// the default for a store with or without a change log.
func (s *Store) resyncInterval() time.Duration {
	if !s.cfg.resyncSet && s.readsLog() {
		return DefaultLoggedResyncInterval
	}
	return s.cfg.resyncEvery
}

// errLogGap is wrapped by catchUp when the store's position is not in the
// change log: it has no position yet, or the entry was trimmed, or lost with
// a failed primary or a Redis restarted without it.
var errLogGap = errors.New("redisstore: position not in the change log")

// sync brings the mirror in step with Redis: from the change log when full
// is false and the store's position is still in the log, else by a full
// reload (resync). It reports whether it reloaded fully.
func (s *Store) sync(ctx context.Context, full, notify bool) (bool, error) {
	if !full && s.readsLog() {
		err := s.catchUp(ctx)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, errLogGap) {
			return false, err
		}
		s.log.Info("redisstore: reloading every event from Redis", "reason", err)
	}
	return true, s.resync(ctx, notify)
}

// catchUp applies the changes the change log holds after the store's
// position, and moves the position to the newest entry read. The first entry
// read must be the position itself: its presence proves that the log still
// holds everything after it (Redis trims a stream from its oldest entry, and
// a replica of Redis receives the log in order), so nothing was missed.
//
// A log entry, like a Pub/Sub message, is only a hint: catchUp reads the key
// of every subject whose entry is newer than what the mirror holds and
// applies what the key holds.
func (s *Store) catchUp(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.cursor.id == "" {
		return fmt.Errorf("%w: no position yet", errLogGap)
	}
	ignored := 0
	for {
		msgs, err := s.client.XRangeN(ctx, s.logKey, s.cursor.id, "+", scanCount+1).Result()
		if err != nil {
			return fmt.Errorf("read the change log %q after %s: %w", s.logKey, s.cursor.id, err)
		}
		// The entry must be the one read before, not only have its ID: a
		// primary promoted without the entry, its clock behind the old
		// one's, could give a later entry the same ID.
		if len(msgs) == 0 || posOf(msgs[0]) != s.cursor {
			return fmt.Errorf("%w: entry %s is no longer in %q", errLogGap, s.cursor.id, s.logKey)
		}
		msgs = msgs[1:]
		if len(msgs) == 0 {
			break
		}
		keys := make([]string, 0, len(msgs))
		for _, m := range msgs {
			v, ok := m.Values[logField].(string)
			if !ok {
				continue // a position mark
			}
			ev, err := decode(v)
			if err != nil {
				ignored++
				continue
			}
			if cur, ok := s.mirror.Lookup(ev.Subject); ok && !cur.Time.Before(ev.Time) {
				continue // already mirrored, through Pub/Sub or Put
			}
			keys = append(keys, subjectKey(s.cfg.prefix, ev.Subject))
		}
		if b := s.fetch(ctx, keys); b.err != nil {
			return b.err
		} else if err := s.each(b, s.applyEvent); err != nil {
			return err
		}
		s.cursor = posOf(msgs[len(msgs)-1])
		if len(msgs) < scanCount {
			break
		}
	}
	if ignored > 0 {
		s.log.Warn("redisstore: ignored undecodable change-log entries", "ignored", ignored)
	}
	s.catchUps.Add(1)
	return nil
}

// logPos is a position in the change log: an entry's ID and its value.
type logPos struct{ id, val string }

// posOf returns the position of a change-log entry.
func posOf(m redis.XMessage) logPos {
	if v, ok := m.Values[logField].(string); ok {
		return logPos{m.ID, logField + v}
	}
	v, _ := m.Values[markField].(string)
	return logPos{m.ID, markField + v}
}

// mark appends a position mark, unique to this store, to the change log and
// returns its position. Every event the log held before the mark was stored
// before it.
func (s *Store) mark(ctx context.Context) (logPos, error) {
	s.marks++
	v := s.nonce + "-" + strconv.FormatUint(s.marks, 10)
	id, err := s.client.XAdd(ctx, &redis.XAddArgs{
		Stream: s.logKey, MaxLen: int64(s.cfg.changeLog), Approx: true, Values: []string{markField, v},
	}).Result()
	if err != nil {
		return logPos{}, fmt.Errorf("mark a position in the change log %q: %w", s.logKey, err)
	}
	return logPos{id, markField + v}, nil
}

// resync loads every event under the prefix into the mirror: SCAN over every
// master (in Cluster) and GET in pipelined batches. With a change log, it
// first marks a position in the log, and the position becomes the store's
// once the load is complete: every event stored before the mark is then
// mirrored.
func (s *Store) resync(ctx context.Context, notify bool) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	var pos logPos
	if s.readsLog() {
		var err error
		pos, err = s.mark(ctx)
		var refused redis.Error
		switch {
		case errors.As(err, &refused):
			// Redis answered, with a refusal: a user without XADD (a
			// store that only reads), a read-only replica, or a key of
			// another type. Reload fully instead, as without a log.
			s.logOff.Store(true)
			s.log.Warn("redisstore: Redis refused a position mark in the change log; this store reads no change log, and every resynchronisation reloads every event (as with WithChangeLog(0))",
				"key", s.logKey, "error", err)
		case err != nil:
			return err
		}
	}
	var full atomic.Bool
	overflows := s.overflows.Load()
	// Sized for the mirror, which a resync usually finds unchanged: growing
	// a map of a million keys step by step rehashes it again and again.
	seen := &seenSet{m: make(map[revocation.Key]struct{}, s.mirror.Len())}
	s.applyMu.Lock()
	s.touched, s.touchedFull = make(map[revocation.Key]struct{}), false
	s.applyMu.Unlock()
	defer func() {
		s.applyMu.Lock()
		s.touched = nil
		s.applyMu.Unlock()
	}()
	// scan reads node's keys in batches: one goroutine runs SCAN and the
	// pipelined GETs of each batch while this one decodes and applies the
	// batch before, so that Redis and the decoding overlap. The reader stops
	// at the first error or when scan returns (it drains the channel).
	scan := func(ctx context.Context, node redis.Cmdable) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		batches := make(chan fetched, 2)
		go func() {
			defer close(batches)
			var cursor uint64
			for {
				// TYPE string: the pattern of a prefix also matches the
				// keys of a nested one ("app:" and "app:rev:x:"), whose
				// change log is a stream.
				keys, next, err := node.ScanType(ctx, cursor, s.pattern, scanCount, "string").Result()
				var b fetched
				if err != nil {
					b.err = fmt.Errorf("scan %q: %w", s.pattern, err)
				} else {
					b = s.fetch(ctx, keys)
				}
				select {
				case batches <- b:
				case <-ctx.Done():
					return
				}
				if b.err != nil {
					return
				}
				if cursor = next; cursor == 0 {
					return
				}
			}
		}()
		var err error
		for b := range batches {
			if err != nil {
				continue
			}
			if err = b.err; err == nil {
				err = s.load(b, notify, &full, seen)
			}
			if err != nil {
				cancel()
			}
		}
		if err == nil {
			// The reader also stops, without a batch to say so, when ctx
			// ends (its select may take ctx.Done over sending the error):
			// a resync cut short must not pass for a complete one.
			// BenchmarkResync/n=1000000/cold once reported 553,036 of a
			// million events mirrored by a New that returned no error,
			// after its resync outlived New's 30 s bound on a loaded VM.
			err = ctx.Err()
		}
		return err
	}
	var err error
	if c, ok := s.client.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			// A node the client still takes for a master may have been
			// demoted (and be resynchronising, empty): scan masters only.
			role, err := n.Do(ctx, "ROLE").Slice()
			if err != nil {
				return fmt.Errorf("role of %s: %w", n.Options().Addr, err)
			}
			if len(role) == 0 || role[0] != "master" {
				return fmt.Errorf("%s is no longer a master", n.Options().Addr)
			}
			return scan(ctx, n)
		})
		if err != nil {
			c.ReloadState(ctx)
		}
	} else {
		err = scan(ctx, s.client)
	}
	if err != nil {
		return err
	}
	if n := s.markUnseen(seen.m); n > 0 {
		s.log.Warn("redisstore: resynchronisation found mirrored events Redis no longer holds; they are dropped once their absence is confirmed",
			"candidates", n, "after", s.cfg.staleAfter)
	}
	if full.Load() {
		s.log.Error("redisstore: local mirror is full and misses events; raise WithMaxEntries", "max_entries", s.cfg.maxEntries)
	}
	if full.Load() {
		s.setOverflow()
	} else if s.overflows.Load() == overflows {
		s.overflow.Store(false) // every event Redis holds is mirrored again
	}
	s.cursor = pos
	s.fullSyncs.Add(1)
	return nil
}

// seenSet collects the subjects a resynchronisation found in Redis.
type seenSet struct {
	mu sync.Mutex
	m  map[revocation.Key]struct{}
}

func (s *seenSet) add(k revocation.Key) {
	s.mu.Lock()
	s.m[k] = struct{}{}
	s.mu.Unlock()
}

// markUnseen starts making the mirror a copy of what a complete scan found:
// every entry whose subject Redis did not hold (deleted by hand, or forged
// into the mirror) becomes a candidate for removal, except entries written
// since the scan began, which Redis held when they were written. It returns
// the number of new candidates. confirmAbsent removes them later.
//
// Removal lifts a revocation, so it is not done on the strength of one scan:
// during a failover a node can briefly claim to be the primary of data it
// does not hold (a replica being promoted, a primary restarted empty), and a
// scan of it would miss keys that exist.
func (s *Store) markUnseen(seen map[revocation.Key]struct{}) int {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.touchedFull {
		return 0 // cannot tell which entries were written meanwhile
	}
	now := time.Now()
	n := 0
	s.mirror.Range(func(ev revocation.Event) bool {
		if _, ok := seen[ev.Subject]; ok {
			return true
		}
		if _, ok := s.touched[ev.Subject]; ok {
			return true
		}
		if _, ok := s.absent[ev.Subject]; ok {
			return true
		}
		if len(s.absent) >= s.cfg.maxEntries {
			return false
		}
		s.absent[ev.Subject] = absentEntry{ev: ev, since: now}
		n++
		return true
	})
	return n
}

// absentEntry is a mirrored event a resynchronisation did not find in Redis.
type absentEntry struct {
	ev    revocation.Event
	since time.Time
}

// confirmAbsent removes from the mirror the candidates of markUnseen whose
// key has been missing for at least StaleAfter and is still missing when
// read again through the client (which routes to the key's primary). A
// candidate whose key exists again is applied instead. It returns an error
// only when Redis could not be read; the candidates are then kept.
func (s *Store) confirmAbsent(ctx context.Context) error {
	s.applyMu.Lock()
	var due []absentEntry
	for _, a := range s.absent {
		if time.Since(a.since) >= s.cfg.staleAfter {
			due = append(due, a)
		}
	}
	s.applyMu.Unlock()
	removed := 0
	for _, a := range due {
		key := subjectKey(s.cfg.prefix, a.ev.Subject)
		v, err := s.client.Get(ctx, key).Result()
		switch {
		case errors.Is(err, redis.Nil):
			if s.mw.Remove(a.ev) {
				removed++
			}
		case err != nil:
			return fmt.Errorf("get %q: %w", key, err)
		default:
			if ev, err := decode(v); err == nil && ev.Subject == a.ev.Subject {
				s.applyEvent(ev)
			}
		}
		s.applyMu.Lock()
		delete(s.absent, a.ev.Subject)
		s.applyMu.Unlock()
	}
	if removed > 0 {
		s.log.Warn("redisstore: removed mirrored events Redis no longer holds", "removed", removed)
	}
	return nil
}

func (s *Store) absentDue() bool {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	for _, a := range s.absent {
		if time.Since(a.since) >= s.cfg.staleAfter {
			return true
		}
	}
	return false
}

// fetched is one batch of a resynchronisation: keys from SCAN and the
// pipelined GETs of them, or the error that ended the scan.
type fetched struct {
	keys []string
	cmds []redis.Cmder
	err  error
}

// fetch reads keys with pipelined GETs.
func (s *Store) fetch(ctx context.Context, keys []string) fetched {
	if len(keys) == 0 {
		return fetched{}
	}
	// Through the store's client, which routes each GET to its slot's owner.
	cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fetched{err: fmt.Errorf("get %d keys: %w", len(keys), err)}
	}
	return fetched{keys: keys, cmds: cmds}
}

// load decodes one batch of a full reload into the mirror.
func (s *Store) load(b fetched, notify bool, full *atomic.Bool, seen *seenSet) error {
	return s.each(b, func(ev revocation.Event) {
		seen.add(ev.Subject)
		changed, err := s.applyFrom(ev, true)
		if err != nil {
			if errors.Is(err, revocation.ErrFull) {
				full.Store(true)
			}
			return
		}
		if changed && notify {
			s.mw.Notify(ev)
		}
	})
}

// each calls fn for every event of a fetched batch that decodes and belongs
// to the key it was read from; a key gone since (expired, or named by a
// forged hint) is skipped.
func (s *Store) each(b fetched, fn func(revocation.Event)) error {
	keys := b.keys
	for i, c := range b.cmds {
		v, err := c.(*redis.StringCmd).Result()
		if errors.Is(err, redis.Nil) {
			continue // expired between SCAN and GET
		}
		if err != nil {
			return fmt.Errorf("get %q: %w", keys[i], err)
		}
		ev, err := decode(v)
		if err != nil {
			s.log.Warn("redisstore: ignored an undecodable key", "key", keys[i], "error", err)
			continue
		}
		if subjectKey(s.cfg.prefix, ev.Subject) != keys[i] {
			s.log.Warn("redisstore: ignored a key whose event names another subject", "key", keys[i])
			continue
		}
		fn(ev)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
