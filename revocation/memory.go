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
// ErrFull after sweeping expired entries, and the store fails closed (Health
// returns an error) until the refused events are stored or expire; see
// Memory.Health. Default DefaultMaxEntries.
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
	// nextSweep is the value of puts at which Apply sweeps the next shard
	// (sweeps counts those sweeps); see maybeSweep.
	nextSweep atomic.Uint64
	sweeps    atomic.Uint64
	// kinds counts the entries held per subject kind, so that look-ups of a
	// kind the store holds nothing of (often most of a token's subjects)
	// return without hashing or locking.
	kinds [kindCount]atomic.Int64

	subMu  sync.Mutex
	subs   atomic.Pointer[[]*subscriber]
	nextID uint64

	// expiredOnArrival counts events that were already past the retention
	// when they arrived (see Put).
	expiredOnArrival atomic.Uint64

	// Events refused for lack of room (ErrFull). While any is pending, or
	// lostUntil is ahead, the store is unhealthy: look-ups would miss them.
	unhealthy atomic.Bool
	refMu     sync.Mutex
	refused   map[Key]Event // at most maxRefused, the latest per subject
	lostUntil time.Time     // refused events beyond maxRefused expire by then
	lastRetry time.Time     // of the last retry from Health
}

// maxRefused bounds the events a full Memory keeps aside, to store them once
// room returns. Beyond it only the time by which every refused event has
// expired is kept, and the store stays unhealthy until then.
const maxRefused = 1024

// healthRetryEvery is the least time, by the store's clock, between two
// attempts of Health to sweep and store the refused events.
const healthRetryEvery = time.Second

// errRefused is what Health returns while refused events are missing.
var errRefused = fmt.Errorf("%w: %w: events were refused for lack of room (WithMaxEntries) and are missing from look-ups; "+
	"failing closed until they are stored or expire", ErrStale, ErrFull)

// shard holds the entries of the keys that hash to it. The entries live in
// one dense slice, and a map from each key's 64-bit hash to its position
// finds them: an 88-byte map slot (the 40-byte Key and its entry) became a
// 16-byte one (hash and position) plus a 72-byte element of the slice, which
// unlike a map's slots is never left half empty by the map's growth steps
// (BenchmarkMirrorBytes in package redisstore: 265 → under 200 bytes per
// entry at a million). Two keys with the same hash are correct, only
// slower: the second one's position is in clash.
type shard struct {
	mu    sync.RWMutex
	index map[uint64]uint32 // hash of a key → its position in slots
	clash map[Key]uint32    // keys whose hash another held key had when stored → position; almost always nil
	slots []entry           // a free position has kind KindUnknown and is on free
	free  []uint32
	_     [40]byte // pad to two cache lines so shards do not share one
}

// entry is what a shard holds for a subject: its key and its latest event,
// the time as seconds and nanoseconds plus the location, so that the Event
// rebuilt by Lookup compares equal (==) to the one stored, less any
// monotonic clock reading.
type entry struct {
	scope, id string // the Key's Scope and ID
	eid       string // the Event's ID
	loc       *time.Location
	sec       int64
	nsec      int32
	kind      Kind
	typ       Type
}

func entryOf(ev Event) entry {
	return entry{
		scope: ev.Subject.Scope, id: ev.Subject.ID, eid: ev.ID,
		loc: ev.Time.Location(), sec: ev.Time.Unix(), nsec: int32(ev.Time.Nanosecond()),
		kind: ev.Subject.Kind, typ: ev.Type,
	}
}

func (e *entry) is(k Key) bool { return e.kind == k.Kind && e.id == k.ID && e.scope == k.Scope }

func (e *entry) key() Key { return Key{Kind: e.kind, Scope: e.scope, ID: e.id} }

func (e *entry) time() time.Time { return time.Unix(e.sec, int64(e.nsec)).In(e.loc) }

// event rebuilds the Event held in e.
func (e *entry) event() Event { return Event{ID: e.eid, Type: e.typ, Subject: e.key(), Time: e.time()} }

// find returns the position of k's entry; s.mu must be held.
func (s *shard) find(k Key, h uint64) (uint32, bool) {
	if p, ok := s.index[h]; ok && s.slots[p].is(k) {
		return p, true
	}
	if len(s.clash) > 0 {
		p, ok := s.clash[k]
		return p, ok
	}
	return 0, false
}

// add stores a new entry for k; s.mu must be held and k not held.
func (s *shard) add(k Key, h uint64, e entry) {
	var p uint32
	if n := len(s.free); n > 0 {
		p = s.free[n-1]
		s.free = s.free[:n-1]
		s.slots[p] = e
	} else {
		p = uint32(len(s.slots))
		s.slots = append(s.slots, e)
	}
	if _, taken := s.index[h]; !taken {
		s.index[h] = p
		return
	}
	if s.clash == nil {
		s.clash = make(map[Key]uint32)
	}
	s.clash[k] = p
}

// drop deletes the entry at position p, held for k with hash h; s.mu must
// be held.
func (s *shard) drop(k Key, h uint64, p uint32) {
	if q, ok := s.index[h]; ok && q == p {
		delete(s.index, h)
	} else {
		delete(s.clash, k)
	}
	s.slots[p] = entry{} // release the strings
	s.free = append(s.free, p)
}

type subscriber struct {
	id uint64
	fn func(Event)
}

// NewMemory returns an empty in-memory store. It reports every invalid
// option at once, joined with errors.Join: a nil option, a retention or
// bound that is not positive, a nil clock.
func NewMemory(opts ...MemoryOption) (*Memory, error) {
	cfg := memoryConfig{retention: DefaultRetention, maxEntries: DefaultMaxEntries, now: time.Now}
	var errs []error
	for i, o := range opts {
		if o == nil {
			errs = append(errs, fmt.Errorf("revocation: option %d is nil", i))
			continue
		}
		o(&cfg)
	}
	if cfg.retention <= 0 {
		errs = append(errs, fmt.Errorf("revocation: retention must be positive, got %v", cfg.retention))
	}
	if cfg.maxEntries <= 0 {
		errs = append(errs, fmt.Errorf("revocation: max entries must be positive, got %d", cfg.maxEntries))
	}
	if cfg.now == nil {
		errs = append(errs, errors.New("revocation: clock must not be nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m := &Memory{cfg: cfg, seed: maphash.MakeSeed(), refused: map[Key]Event{}}
	for i := range m.shards {
		m.shards[i].index = make(map[uint64]uint32)
	}
	empty := []*subscriber{}
	m.subs.Store(&empty)
	return m, nil
}

// hash is k's 64-bit hash: its shard, and its key in the shard's index.
func (m *Memory) hash(k Key) uint64 {
	h := maphash.String(m.seed, k.ID)
	if k.Scope != "" {
		h ^= maphash.String(m.seed, k.Scope) * 0x9e3779b97f4a7c15
	}
	return h ^ uint64(k.Kind)<<56
}

func (m *Memory) shardFor(h uint64) *shard { return &m.shards[h%shardCount] }

// Retention returns the configured retention.
func (m *Memory) Retention() time.Duration { return m.cfg.retention }

// Put records ev if it is newer than what is held for its subject. It never
// blocks on the network and returns once the event is visible to Lookup.
// Subscribers are notified only when the event changed what Lookup returns.
//
// An event already older than the retention when it arrives is not stored
// and Put returns nil: it is acknowledged, and counted (ExpiredOnArrival).
// It cannot revoke a token that is still accepted as long as the
// validator's lifetime bound fits the retention (token.Validator's
// RetentionNeeded, which interceptor.New enforces): such a token was issued
// at or before the event and so has expired by the time the event is
// older than the retention.
//
// When the store is at its bound (WithMaxEntries) and a sweep frees no room,
// Put returns an error wrapping ErrFull, so the event must not be
// acknowledged, and the store fails closed: Health returns an error until
// the event is stored (Sweep, or Health itself, retries once room returns)
// or has expired. Subscribers are told of the refused event too, so that
// streams of its subject re-check at once and find the store unhealthy.
func (m *Memory) Put(ctx context.Context, ev Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("revocation: put %s: %w", ev.Subject, err)
	}
	changed, err := m.apply(ev)
	if errors.Is(err, ErrFull) {
		m.notify(ev)
	}
	if err != nil {
		return err
	}
	if changed {
		m.notify(ev)
	}
	return nil
}

// apply records ev like Put but without notifying subscribers. It reports
// whether the event changed what Lookup returns. Stores that keep a Memory as
// a mirror use it together with notify (see mirror.go).
func (m *Memory) apply(ev Event) (changed bool, err error) {
	now := m.cfg.now()
	if err := ev.ValidateAt(now); err != nil {
		return false, err
	}
	if m.expired(ev, now) {
		m.expiredOnArrival.Add(1)
		return false, nil // nothing it could revoke is still valid
	}
	m.maybeSweep(now)
	changed, ok := m.insert(ev, now, true)
	if !ok {
		m.refuse(ev)
		return false, fmt.Errorf("%w: %d entries; event %s for %s not stored; the store fails closed until it is", ErrFull, m.cfg.maxEntries, ev.ID, ev.Subject)
	}
	return changed, nil
}

// sweepEvery is the least number of Apply calls between two incremental
// shard sweeps.
const sweepEvery = 1024

// maybeSweep sweeps one shard every sweepEvery Apply calls, or every
// Len()/shardCount calls when that is more: a sweep reads a whole shard, so
// its cost per Apply stays constant at any size. (Every 1024 calls whatever
// the size, mirroring a million entries read each shard's 15,600 entries
// every 1024 events: 15 entry visits per event, a tenth of a resync's time;
// BenchmarkResync in package redisstore.)
func (m *Memory) maybeSweep(now time.Time) {
	n := m.puts.Add(1)
	next := m.nextSweep.Load()
	if next == 0 {
		m.nextSweep.CompareAndSwap(0, sweepEvery)
		return
	}
	if n < next {
		return
	}
	every := max(uint64(sweepEvery), uint64(m.count.Load())/shardCount)
	if m.nextSweep.CompareAndSwap(next, n+every) {
		m.sweepShard(int(m.sweeps.Add(1)%shardCount), now)
	}
}

// insert stores ev unless an unexpired event at least as new is held. It
// reports whether what Lookup returns changed, and ok false when ev is a new
// subject and there is no room, even after one full sweep when sweep is set.
func (m *Memory) insert(ev Event, now time.Time, sweep bool) (changed, ok bool) {
	k := ev.Subject
	h := m.hash(k)
	s := m.shardFor(h)
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		p, held := s.find(k, h)
		switch {
		case held:
			if old := &s.slots[p]; !m.expiredAt(old.time(), now) && !ev.Time.After(old.time()) {
				s.mu.Unlock()
				return false, true
			}
			s.slots[p] = entryOf(ev)
			s.mu.Unlock()
			return true, true
		case m.reserve():
			m.kinds[k.Kind].Add(1)
			s.add(k, h, entryOf(ev))
			s.mu.Unlock()
			return true, true
		}
		// A new subject and no room: sweep once (without holding the shard)
		// and decide again from scratch, since another writer may have
		// stored this subject meanwhile.
		s.mu.Unlock()
		if attempt > 0 || !sweep {
			return false, false
		}
		m.sweepAll(now)
	}
}

// refuse sets ev aside after it was refused for lack of room, and marks the
// store unhealthy.
func (m *Memory) refuse(ev Event) {
	m.refMu.Lock()
	defer m.refMu.Unlock()
	switch old, ok := m.refused[ev.Subject]; {
	case ok:
		if ev.Time.After(old.Time) {
			m.refused[ev.Subject] = ev
		}
	case len(m.refused) < maxRefused:
		m.refused[ev.Subject] = ev
	default:
		if until := ev.Time.Add(m.cfg.retention); until.After(m.lostUntil) {
			m.lostUntil = until
		}
	}
	m.unhealthy.Store(true)
}

// retryRefused stores the refused events that fit now and drops those that
// expired, then recomputes health; m.refMu must be held. It returns the
// events that changed what Lookup returns, for the caller to notify once
// the lock is released.
func (m *Memory) retryRefused(now time.Time) []Event {
	var stored []Event
	for k, ev := range m.refused {
		if m.expired(ev, now) {
			delete(m.refused, k)
			continue
		}
		changed, ok := m.insert(ev, now, false)
		if !ok {
			continue
		}
		delete(m.refused, k)
		if changed {
			stored = append(stored, ev)
		}
	}
	if !m.lostUntil.IsZero() && now.After(m.lostUntil) {
		m.lostUntil = time.Time{}
	}
	m.unhealthy.Store(len(m.refused) > 0 || !m.lostUntil.IsZero())
	return stored
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

func (m *Memory) notify(ev Event) {
	for _, s := range *m.subs.Load() {
		s.fn(ev)
	}
}

func (m *Memory) expired(ev Event, now time.Time) bool { return m.expiredAt(ev.Time, now) }

func (m *Memory) expiredAt(t, now time.Time) bool { return now.Sub(t) > m.cfg.retention }

// Lookup returns the latest event recorded for k. It does not allocate and
// does not read the clock: an event past its retention may still be returned
// until it is swept, which can only revoke a token that lives longer than the
// retention, never allow one that should be refused.
func (m *Memory) Lookup(k Key) (Event, bool) {
	if k.Kind >= kindCount || m.kinds[k.Kind].Load() == 0 {
		return Event{}, false
	}
	h := m.hash(k)
	s := m.shardFor(h)
	s.mu.RLock()
	p, ok := s.find(k, h)
	var ev Event
	if ok {
		ev = s.slots[p].event()
	}
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

// Health returns nil unless the store refused events for lack of room
// (ErrFull from Put): then look-ups miss those events, and Health returns an
// error wrapping ErrStale and ErrFull, so that interceptors fail closed,
// until every refused event is stored or has expired. While unhealthy,
// Health itself sweeps expired entries and retries the refused events, at
// most once a second by the store's clock (it does not wait if another
// caller is already retrying); Sweep retries too. The healthy path is one
// atomic load.
func (m *Memory) Health() error {
	if !m.unhealthy.Load() {
		return nil
	}
	if m.refMu.TryLock() {
		var stored []Event
		now := m.cfg.now()
		if now.Sub(m.lastRetry) >= healthRetryEvery {
			m.lastRetry = now
			m.sweepAll(now)
			stored = m.retryRefused(now)
		}
		m.refMu.Unlock()
		for _, ev := range stored {
			m.notify(ev)
		}
	}
	if m.unhealthy.Load() {
		return errRefused
	}
	return nil
}

// ExpiredOnArrival returns how many events arrived already older than the
// retention and were acknowledged without being stored (see Put). A rising
// count means events reach the store later than the retention allows for:
// check the transmitter's delivery delay and the clocks.
func (m *Memory) ExpiredOnArrival() uint64 { return m.expiredOnArrival.Load() }

// Len returns the number of subjects held, expired ones included until swept.
func (m *Memory) Len() int { return int(m.count.Load()) }

// Sweep removes expired entries and returns how many it removed, then
// stores the events refused for lack of room that now fit (see Health). Put
// sweeps incrementally on its own; call Sweep to reclaim memory eagerly.
func (m *Memory) Sweep() int {
	now := m.cfg.now()
	n := m.sweepAll(now)
	if m.unhealthy.Load() {
		m.refMu.Lock()
		stored := m.retryRefused(now)
		m.refMu.Unlock()
		for _, ev := range stored {
			m.notify(ev)
		}
	}
	return n
}

func (m *Memory) sweepAll(now time.Time) int {
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
	for p := range s.slots {
		e := &s.slots[p]
		if e.kind == KindUnknown || !m.expiredAt(e.time(), now) {
			continue
		}
		k := e.key()
		m.kinds[k.Kind].Add(-1)
		s.drop(k, m.hash(k), uint32(p))
		n++
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
		for p := range s.slots {
			e := &s.slots[p]
			if e.kind != KindUnknown && !m.expiredAt(e.time(), now) && !fn(e.event()) {
				s.mu.RUnlock()
				return
			}
		}
		s.mu.RUnlock()
	}
}

var _ Store = (*Memory)(nil)
