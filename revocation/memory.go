package revocation

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRetention is how long Memory keeps an event: Entra's longest CAE
// token lifetime (28 hours) plus five minutes of leeway. No token issued
// before an event older than this can still be valid.
const DefaultRetention = 28*time.Hour + 5*time.Minute

// DefaultMaxEntries bounds Memory by default.
const DefaultMaxEntries = 4 << 20

const shardCount = 64

// MemoryOption configures a Memory.
type MemoryOption func(*memoryConfig)

type memoryConfig struct {
	retention  time.Duration
	maxEntries int
	now        func() time.Time
}

// WithRetention sets how long an event stays relevant after its own time:
// the maximum token lifetime accepted plus clock leeway. Default DefaultRetention.
func WithRetention(d time.Duration) MemoryOption { return func(c *memoryConfig) { c.retention = d } }

// WithMaxEntries bounds the number of subjects held. Put beyond it fails with
// ErrFull after sweeping expired entries. Default DefaultMaxEntries.
func WithMaxEntries(n int) MemoryOption { return func(c *memoryConfig) { c.maxEntries = n } }

// WithClock sets the clock used for expiry. Default time.Now.
func WithClock(now func() time.Time) MemoryOption { return func(c *memoryConfig) { c.now = now } }

// Memory is the embedded in-memory Store: a sharded map from subject Key to
// the latest Event, with expiry. The zero value is not usable; call NewMemory.
type Memory struct {
	cfg    memoryConfig
	seed   maphash.Seed
	shards [shardCount]shard
	count  atomic.Int64
	puts   atomic.Uint64
	// kinds counts the entries held per subject kind, so that look-ups of a
	// kind the store holds nothing of (often most of a token's subjects)
	// return without hashing or locking.
	kinds [kindCount]atomic.Int64

	subMu  sync.Mutex
	subs   atomic.Pointer[[]*subscriber]
	nextID uint64
}

type shard struct {
	mu sync.RWMutex
	m  map[Key]Event
	_  [32]byte // pad to a cache line so shards do not share one
}

type subscriber struct {
	id uint64
	fn func(Event)
}

// NewMemory returns an empty in-memory store. It panics if an option is
// invalid, which is a programming error; use NewMemoryE when options come from
// configuration.
func NewMemory(opts ...MemoryOption) *Memory {
	m, err := NewMemoryE(opts...)
	if err != nil {
		panic(err)
	}
	return m
}

// NewMemoryE is NewMemory returning an error for invalid options.
func NewMemoryE(opts ...MemoryOption) (*Memory, error) {
	cfg := memoryConfig{retention: DefaultRetention, maxEntries: DefaultMaxEntries, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.retention <= 0 {
		return nil, fmt.Errorf("revocation: retention must be positive, got %v", cfg.retention)
	}
	if cfg.maxEntries <= 0 {
		return nil, fmt.Errorf("revocation: max entries must be positive, got %d", cfg.maxEntries)
	}
	if cfg.now == nil {
		return nil, errors.New("revocation: clock must not be nil")
	}
	m := &Memory{cfg: cfg, seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].m = make(map[Key]Event)
	}
	empty := []*subscriber{}
	m.subs.Store(&empty)
	return m, nil
}

func (m *Memory) shardFor(k Key) *shard {
	h := maphash.String(m.seed, k.ID) ^ uint64(k.Kind)
	return &m.shards[h%shardCount]
}

// Retention returns the configured retention.
func (m *Memory) Retention() time.Duration { return m.cfg.retention }

// Put records ev if it is newer than what is held for its subject. It never
// blocks on the network and returns once the event is visible to Lookup.
// Subscribers are notified only when the event changed what Lookup returns.
func (m *Memory) Put(ctx context.Context, ev Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("revocation: put %s: %w", ev.Subject, err)
	}
	changed, err := m.Apply(ev)
	if err != nil {
		return err
	}
	if changed {
		m.notify(ev)
	}
	return nil
}

// Apply records ev like Put but without notifying subscribers. It reports
// whether the event changed what Lookup returns. Stores that keep a Memory as
// a mirror use it together with Notify.
func (m *Memory) Apply(ev Event) (changed bool, err error) {
	now := m.cfg.now()
	if err := ev.ValidateAt(now); err != nil {
		return false, err
	}
	if m.expired(ev, now) {
		return false, nil // nothing it could revoke is still valid
	}
	if n := m.puts.Add(1); n%1024 == 0 {
		m.sweepShard(int(n/1024)%shardCount, now)
	}
	s := m.shardFor(ev.Subject)
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		old, ok := s.m[ev.Subject]
		switch {
		case ok && !m.expired(old, now) && !ev.Time.After(old.Time):
			s.mu.Unlock()
			return false, nil
		case ok || m.reserve():
			if !ok {
				m.kinds[ev.Subject.Kind].Add(1)
			}
			s.m[ev.Subject] = ev
			s.mu.Unlock()
			return true, nil
		}
		// A new subject and no room: sweep once (without holding the shard)
		// and decide again from scratch, since another writer may have
		// stored this subject meanwhile.
		s.mu.Unlock()
		if attempt > 0 {
			return false, fmt.Errorf("%w: %d entries; event %s for %s not stored", ErrFull, m.cfg.maxEntries, ev.ID, ev.Subject)
		}
		m.Sweep()
	}
}

// reserve takes one entry slot if the bound allows it.
func (m *Memory) reserve() bool {
	for {
		c := m.count.Load()
		if c >= int64(m.cfg.maxEntries) {
			return false
		}
		if m.count.CompareAndSwap(c, c+1) {
			return true
		}
	}
}

// Notify calls the subscribers with ev.
func (m *Memory) Notify(ev Event) { m.notify(ev) }

func (m *Memory) notify(ev Event) {
	for _, s := range *m.subs.Load() {
		s.fn(ev)
	}
}

func (m *Memory) expired(ev Event, now time.Time) bool {
	return now.Sub(ev.Time) > m.cfg.retention
}

// Lookup returns the latest event recorded for k. It does not allocate and
// does not read the clock: an event past its retention may still be returned
// until it is swept, which can only revoke a token that lives longer than the
// retention, never allow one that should be refused.
func (m *Memory) Lookup(k Key) (Event, bool) {
	if k.Kind >= kindCount || m.kinds[k.Kind].Load() == 0 {
		return Event{}, false
	}
	s := m.shardFor(k)
	s.mu.RLock()
	ev, ok := s.m[k]
	s.mu.RUnlock()
	return ev, ok
}

// Subscribe registers fn for every event that changes the store's state.
func (m *Memory) Subscribe(fn func(Event)) (unsubscribe func()) {
	m.subMu.Lock()
	m.nextID++
	sub := &subscriber{id: m.nextID, fn: fn}
	old := *m.subs.Load()
	next := make([]*subscriber, 0, len(old)+1)
	next = append(append(next, old...), sub)
	m.subs.Store(&next)
	m.subMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.subMu.Lock()
			defer m.subMu.Unlock()
			cur := *m.subs.Load()
			next := make([]*subscriber, 0, len(cur))
			for _, s := range cur {
				if s != sub {
					next = append(next, s)
				}
			}
			m.subs.Store(&next)
		})
	}
}

// Health always returns nil: an in-memory store is its own source of truth.
func (m *Memory) Health() error { return nil }

// Len returns the number of subjects held, expired ones included until swept.
func (m *Memory) Len() int { return int(m.count.Load()) }

// Sweep removes expired entries and returns how many it removed. Put sweeps
// incrementally on its own; call Sweep to reclaim memory eagerly.
func (m *Memory) Sweep() int {
	now := m.cfg.now()
	n := 0
	for i := range m.shards {
		n += m.sweepShard(i, now)
	}
	return n
}

func (m *Memory) sweepShard(i int, now time.Time) int {
	s := &m.shards[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, ev := range s.m {
		if m.expired(ev, now) {
			delete(s.m, k)
			m.kinds[k.Kind].Add(-1)
			n++
		}
	}
	m.count.Add(int64(-n))
	return n
}

// Range calls fn for every unexpired event until fn returns false. It holds
// one shard's read lock at a time; fn must not call back into m.
func (m *Memory) Range(fn func(Event) bool) {
	now := m.cfg.now()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		for _, ev := range s.m {
			if !m.expired(ev, now) && !fn(ev) {
				s.mu.RUnlock()
				return
			}
		}
		s.mu.RUnlock()
	}
}

var _ Store = (*Memory)(nil)
