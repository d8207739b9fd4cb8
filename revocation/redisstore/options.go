package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/caekit/caekit/revocation"
)

// Defaults.
const (
	// DefaultPrefix namespaces every key and the Pub/Sub channel.
	DefaultPrefix = "caekit:"
	// DefaultStaleAfter is how long the store may be out of touch with Redis
	// before its StalenessPolicy applies.
	DefaultStaleAfter = 30 * time.Second
	// DefaultHeartbeat is how often an idle subscription is pinged.
	DefaultHeartbeat = time.Second
	// MaxPrefixLen bounds the key prefix.
	MaxPrefixLen = 128
	// DefaultResyncInterval is how often a store without a change log (see
	// WithChangeLog; always so in a Cluster) reloads every event from Redis
	// even when its subscription has not failed.
	DefaultResyncInterval = time.Minute
	// DefaultLoggedResyncInterval is that interval for a store with a change
	// log, which catches up on lost messages from the log at every heartbeat
	// and needs the full reload only to notice keys removed by hand and
	// events written without the log.
	DefaultLoggedResyncInterval = 15 * time.Minute
	// DefaultChangeLogLen is the default length of the change log (about
	// 180 bytes per entry in Redis, so about 18 MB).
	DefaultChangeLogLen = 100_000
	// MinChangeLogLen and MaxChangeLogLen bound WithChangeLog (or 0, off).
	// Below the minimum, a burst of events would trim a replica's position
	// between two heartbeats and turn its catch-ups into full reloads.
	MinChangeLogLen = 1000
	MaxChangeLogLen = 100_000_000
	// DefaultReplicaTimeout is how long Put waits for replica
	// acknowledgements (WAIT) when WithReplicaAcks gives no timeout.
	DefaultReplicaTimeout = time.Second
)

// StalenessPolicy says what Health reports once the store has been out of
// touch with Redis for longer than the StaleAfter threshold.
type StalenessPolicy uint8

const (
	// FailClosed (the default) makes Health return an error wrapping
	// revocation.ErrStale: interceptors then refuse calls with Unavailable
	// until the store is back in touch and has resynchronised.
	FailClosed StalenessPolicy = iota
	// KeepLastKnown keeps enforcing the mirror as it was when contact was
	// lost; Health stays nil. Revocations ingested by other replicas during
	// the outage are not enforced here until contact returns.
	KeepLastKnown
)

// String returns "fail_closed" or "keep_last_known".
func (p StalenessPolicy) String() string {
	switch p {
	case FailClosed:
		return "fail_closed"
	case KeepLastKnown:
		return "keep_last_known"
	}
	return fmt.Sprintf("staleness_policy(%d)", uint8(p))
}

// Option configures a Store.
type Option func(*config)

type config struct {
	prefix      string
	retention   time.Duration
	staleAfter  time.Duration
	heartbeat   time.Duration
	policy      StalenessPolicy
	maxEntries  int
	logger      *slog.Logger
	now         func() time.Time
	acks        int  // replicas that must acknowledge a write
	acksSet     bool // WithReplicaAcks given; else New decides from the client
	resyncEvery time.Duration
	resyncSet   bool          // WithResyncInterval given; else New decides from the change log
	changeLog   int           // change log length; 0: no change log
	ackTimeout  time.Duration // WAIT timeout
}

func defaults() config {
	return config{
		prefix:      DefaultPrefix,
		retention:   revocation.DefaultRetention,
		staleAfter:  DefaultStaleAfter,
		heartbeat:   DefaultHeartbeat,
		policy:      FailClosed,
		maxEntries:  revocation.DefaultMaxEntries,
		now:         time.Now,
		ackTimeout:  DefaultReplicaTimeout,
		resyncEvery: DefaultResyncInterval,
		changeLog:   DefaultChangeLogLen,
	}
}

// validate reports every invalid setting, joined with errors.Join.
func (c *config) validate() error {
	var errs []error
	bad := func(e error) { errs = append(errs, e) }
	if c.prefix == "" {
		bad(errors.New("redisstore: prefix must not be empty"))
	}
	if len(c.prefix) > MaxPrefixLen {
		bad(fmt.Errorf("redisstore: prefix is %d bytes, longer than the limit of %d", len(c.prefix), MaxPrefixLen))
	}
	if c.retention <= 0 {
		bad(fmt.Errorf("redisstore: retention must be positive, got %v", c.retention))
	}
	if c.heartbeat <= 0 {
		bad(fmt.Errorf("redisstore: heartbeat must be positive, got %v", c.heartbeat))
	} else {
		if c.staleAfter < 2*c.heartbeat {
			bad(fmt.Errorf("redisstore: stale-after (%v) must be at least twice the heartbeat (%v)", c.staleAfter, c.heartbeat))
		}
		if c.resyncSet && c.resyncEvery < c.heartbeat {
			bad(fmt.Errorf("redisstore: resync interval (%v) must be at least the heartbeat (%v)", c.resyncEvery, c.heartbeat))
		}
	}
	if c.changeLog != 0 && (c.changeLog < MinChangeLogLen || c.changeLog > MaxChangeLogLen) {
		bad(fmt.Errorf("redisstore: change log length must be 0 (off) or %d to %d, got %d", MinChangeLogLen, MaxChangeLogLen, c.changeLog))
	}
	if c.policy != FailClosed && c.policy != KeepLastKnown {
		bad(fmt.Errorf("redisstore: unknown staleness policy %d", c.policy))
	}
	if c.maxEntries <= 0 {
		bad(fmt.Errorf("redisstore: max entries must be positive, got %d", c.maxEntries))
	}
	if c.now == nil {
		bad(errors.New("redisstore: clock must not be nil"))
	}
	if c.acks < 0 {
		bad(fmt.Errorf("redisstore: replica acknowledgements must be 0 or more, got %d", c.acks))
	}
	if c.acks > MaxReplicaAcks {
		bad(fmt.Errorf("redisstore: replica acknowledgements must be at most %d, got %d", MaxReplicaAcks, c.acks))
	}
	if c.acks != 0 && c.ackTimeout <= 0 {
		bad(fmt.Errorf("redisstore: replica acknowledgement timeout must be positive, got %v", c.ackTimeout))
	}
	return errors.Join(errs...)
}

// WithPrefix namespaces the store's keys and channel. Stores that share a
// prefix share state; use one prefix per deployment. Default DefaultPrefix.
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithRetention sets how long an event stays relevant after its own time: the
// longest token lifetime accepted plus clock leeway. It is both the TTL given
// to the event's key in Redis and the mirror's expiry. Every replica sharing
// a prefix must use the same value. Default revocation.DefaultRetention.
func WithRetention(d time.Duration) Option { return func(c *config) { c.retention = d } }

// WithStaleAfter sets how long the store may be out of touch with Redis
// before the staleness policy applies. Default DefaultStaleAfter.
func WithStaleAfter(d time.Duration) Option { return func(c *config) { c.staleAfter = d } }

// WithHeartbeat sets how often the subscription is pinged when idle; a
// subscription that answers nothing for three heartbeats is reconnected.
// It must be at most half of StaleAfter. Default DefaultHeartbeat.
func WithHeartbeat(d time.Duration) Option { return func(c *config) { c.heartbeat = d } }

// WithStalenessPolicy chooses what Health reports once the store is stale.
// Default FailClosed.
func WithStalenessPolicy(p StalenessPolicy) Option { return func(c *config) { c.policy = p } }

// WithMaxEntries bounds the number of subjects the local mirror holds.
// Default revocation.DefaultMaxEntries.
func WithMaxEntries(n int) Option { return func(c *config) { c.maxEntries = n } }

// WithLogger sets the logger for connection changes and dropped messages.
// Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock sets the clock used for event expiry (mirror expiry and the TTL
// computed for Redis). Staleness is measured on the monotonic clock and is
// not affected. Default time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// MaxReplicaAcks bounds WithReplicaAcks.
const MaxReplicaAcks = 16

// WithReplicaAcks makes Put acknowledge an event only once n Redis replicas
// of the primary that stored it have it too: after the write, Put sends
// WAIT n on the same connection and fails (wrapping ErrNotReplicated) unless
// n replicas confirm within timeout (or before ctx's deadline, if sooner).
// The SSF receiver then answers 503 and the transmitter delivers the event
// again; the write itself stays on the primary and is harmless to repeat.
//
// Redis replicates asynchronously, so without it a primary that dies before
// a replica copies an acknowledged event loses that event for good when a
// replica is promoted. WAIT 1 closes that window for Sentinel and Cluster
// failovers, which promote the replica with the most replicated data (Redis
// does not promise this in every failure sequence: see the README's Redis
// section for what the failover tests measured).
//
// n = 0 turns the wait off. The default, when this option is not given, is 1
// if the client is a Sentinel (failover) or Cluster client whose primaries
// each had at least one connected replica when New ran, and 0 otherwise
// (New logs which it chose). timeout <= 0 means DefaultReplicaTimeout.
func WithReplicaAcks(n int, timeout time.Duration) Option {
	return func(c *config) {
		c.acks, c.acksSet = n, true
		if timeout <= 0 {
			timeout = DefaultReplicaTimeout
		}
		c.ackTimeout = timeout
	}
}

// WithResyncInterval sets how often the store reloads every event from
// Redis (SCAN and GET) although its subscription never failed. Pub/Sub
// delivers at most once: a message can be lost without the subscription
// failing, notably in a Cluster whose node is failing over or rejoining.
// Without a change log such an event is enforced here at the latest one
// interval later; with one, at the next heartbeat, and the full reload only
// notices keys removed by hand (and events stored by a writer that keeps no
// change log, such as an older caekit during a rolling upgrade). It must be
// at least the heartbeat. Default DefaultLoggedResyncInterval with a change
// log, DefaultResyncInterval without.
func WithResyncInterval(d time.Duration) Option {
	return func(c *config) { c.resyncEvery, c.resyncSet = d, true }
}

// WithChangeLog sets the length of the change log: a Redis Stream,
// <prefix>changes, to which Put appends every event it stores, in the same
// atomic step, trimmed to about n entries (XADD MAXLEN ~). A replica records
// its position in the log and, after a reconnect, reads only the changes
// since then instead of reloading every event (SCAN): milliseconds instead of
// seconds at a million events. It also reads the log at every heartbeat, so a
// Pub/Sub message lost on a live connection delays enforcement by one
// heartbeat at most. A replica whose position has left the log (trimmed, or
// lost with a failed primary or a restarted Redis) falls back to the full
// reload. Size n to hold the events of the longest disconnect that should
// not cost a full reload.
//
// n = 0 turns the log off: every resynchronisation is a full reload. In a
// Cluster the log is always off, since one stream would put every write
// through one node and the script could not update a subject's key and the
// stream atomically across hash slots. A store whose Redis user may not
// write the log (XADD; a replica that only enforces) reads none either: it
// logs a warning at start and reloads fully, as with n = 0. Every replica
// sharing a prefix should use the same setting. Default DefaultChangeLogLen.
func WithChangeLog(n int) Option { return func(c *config) { c.changeLog = n } }
