package revocation

import (
	"context"
	"errors"
	"time"
)

// ErrStale is returned by Store.Health when the store has been out of touch
// with its source of truth for longer than its configured threshold and is set
// to fail closed. Interceptors answer codes.Unavailable while it persists.
var ErrStale = errors.New("revocation: state is stale")

// ErrFull is returned by Put when a store is at its entry bound. The event is
// not stored; callers (the SSF receiver) must not acknowledge it.
var ErrFull = errors.New("revocation: store is full")

// Store holds critical events and answers, per subject, the latest one.
//
// Implementations are safe for concurrent use. Lookup and Health are on the
// call path of every RPC: they must not touch the network, must not allocate
// and must not block on writers for long.
type Store interface {
	// Put records ev. It returns only once the event is durably stored as far
	// as the store goes (in memory for Memory, in Redis for the Redis store),
	// so a caller may acknowledge the event when Put returns nil. An event
	// older than the one already held for its subject is accepted and has no
	// effect on look-ups. Put validates ev and returns an error naming what is
	// wrong.
	Put(ctx context.Context, ev Event) error

	// Lookup returns the latest event recorded for k. Events past the store's
	// retention may linger until swept; they can only revoke tokens that
	// outlive the retention.
	Lookup(k Key) (Event, bool)

	// Subscribe calls fn for every event stored from now on, including events
	// that reach this store from other replicas, after they become visible to
	// Lookup. fn must not block; it runs on the writer's goroutine. The
	// returned function unsubscribes and is safe to call more than once.
	Subscribe(fn func(Event)) (unsubscribe func())

	// Health returns nil when look-ups can be trusted, or an error (wrapping
	// ErrStale) when the store fails closed. It is cheap enough to call per RPC.
	Health() error
}

// Retainer is implemented by stores that forget an event a fixed time after
// the event's own time (Memory, and the Redis store). interceptor.New
// compares Retention with the validator's RetentionNeeded and refuses a
// store that would forget an event while a token it revokes is still
// accepted.
type Retainer interface {
	// Retention returns how long after its time an event is remembered.
	Retention() time.Duration
}

var _ Retainer = (*Memory)(nil)
