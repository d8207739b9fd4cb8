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
	prefix     string
	retention  time.Duration
	staleAfter time.Duration
	heartbeat  time.Duration
	policy     StalenessPolicy
	maxEntries int
	logger     *slog.Logger
	now        func() time.Time
}

func defaults() config {
	return config{
		prefix:     DefaultPrefix,
		retention:  revocation.DefaultRetention,
		staleAfter: DefaultStaleAfter,
		heartbeat:  DefaultHeartbeat,
		policy:     FailClosed,
		maxEntries: revocation.DefaultMaxEntries,
		now:        time.Now,
	}
}

func (c *config) validate() error {
	switch {
	case c.prefix == "":
		return errors.New("redisstore: prefix must not be empty")
	case len(c.prefix) > MaxPrefixLen:
		return fmt.Errorf("redisstore: prefix is %d bytes, longer than the limit of %d", len(c.prefix), MaxPrefixLen)
	case c.retention <= 0:
		return fmt.Errorf("redisstore: retention must be positive, got %v", c.retention)
	case c.heartbeat <= 0:
		return fmt.Errorf("redisstore: heartbeat must be positive, got %v", c.heartbeat)
	case c.staleAfter < 2*c.heartbeat:
		return fmt.Errorf("redisstore: stale-after (%v) must be at least twice the heartbeat (%v)", c.staleAfter, c.heartbeat)
	case c.policy != FailClosed && c.policy != KeepLastKnown:
		return fmt.Errorf("redisstore: unknown staleness policy %d", c.policy)
	case c.maxEntries <= 0:
		return fmt.Errorf("redisstore: max entries must be positive, got %d", c.maxEntries)
	case c.now == nil:
		return errors.New("redisstore: clock must not be nil")
	}
	return nil
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
