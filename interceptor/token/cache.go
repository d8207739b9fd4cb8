package token

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"

	"github.com/caekit/caekit/internal/keyset"
)

// cache remembers verified tokens. It is a fixed number of shards, each a
// map from a seeded 64-bit hash of the raw token's end (hash) to a slot in a fixed array
// evicted with the CLOCK algorithm (expired entries first, then entries not
// hit since the hand last passed). Lookups take a shard read lock and do not
// allocate; the full raw token is compared on every hit, so hash collisions
// can only cause a miss, never a wrong answer.
type cache struct {
	seed   maphash.Seed
	mask   uint64
	shards []cacheShard
}

type cacheShard struct {
	mu    sync.RWMutex
	index map[uint64]int32
	slots []cacheSlot
	used  int
	hand  int
	_     [56]byte // pad to 128 bytes: keep shards on separate cache lines
}

type cacheSlot struct {
	hash   uint64
	raw    string
	claims *Claims
	key    *keyset.Key // the key that verified raw; never nil
	exp    int64       // unix nanos; the entry is served only strictly before it
	nbf    int64       // unix nanos, math.MinInt64 when absent
	ref    atomic.Bool
}

// hashTail is how many bytes at the end of a raw token the cache hashes. A
// cached token is a verified compact JWS, which ends in its signature in
// canonical base64url, 43 characters or more for every supported alg: its
// last hashTail bytes are signature bytes that only the signing key
// produces, so distinct cached tokens collide by chance only, and a
// collision costs a miss (the raw token is compared in full), never a wrong
// answer. Hashing whole tokens (hundreds of bytes) was ~8 % of a cache-hit
// call (BenchmarkUnaryInterceptorCacheHitSDKJSONLog profile).
const hashTail = 32

// hash is the seeded hash of raw's last hashTail bytes.
func (c *cache) hash(raw string) uint64 {
	if len(raw) > hashTail {
		raw = raw[len(raw)-hashTail:]
	}
	return maphash.String(c.seed, raw)
}

// maxShards bounds the shard count; minPerShard keeps shards from being tiny.
const (
	maxShards   = 64
	minPerShard = 32
)

// newCache returns a cache of exactly size entries, or nil for size 0.
func newCache(size int) *cache {
	if size <= 0 {
		return nil
	}
	n := 1
	for n < maxShards && n*2*minPerShard <= size {
		n *= 2
	}
	c := &cache{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]cacheShard, n)}
	for i := range c.shards {
		capacity := size / n
		if i < size%n {
			capacity++
		}
		c.shards[i].index = make(map[uint64]int32, capacity)
		c.shards[i].slots = make([]cacheSlot, capacity)
	}
	return c
}

// get returns the claims of raw if it is cached and, at now (unix nanos),
// before its exp, not before its nbf minus leeway, and the key that verified
// it is still accepted.
func (c *cache) get(raw string, now, leeway int64) (*Claims, bool) {
	h := c.hash(raw)
	s := &c.shards[h&c.mask]
	s.mu.RLock()
	i, ok := s.index[h]
	if !ok {
		s.mu.RUnlock()
		return nil, false
	}
	e := &s.slots[i]
	if e.raw != raw || now >= e.exp || now+leeway < e.nbf || !e.key.Live(now) {
		s.mu.RUnlock()
		return nil, false
	}
	if !e.ref.Load() {
		e.ref.Store(true)
	}
	cl := e.claims
	s.mu.RUnlock()
	return cl, true
}

// put caches claims for raw, verified by key; now is unix nanos.
func (c *cache) put(raw string, cl *Claims, key *keyset.Key, now int64) {
	exp := cl.ExpiresAt.UnixNano()
	if now >= exp {
		return
	}
	nbf := int64(math.MinInt64)
	if !cl.NotBefore.IsZero() {
		nbf = cl.NotBefore.UnixNano()
	}
	h := c.hash(raw)
	s := &c.shards[h&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[h]
	if !ok {
		if s.used < len(s.slots) {
			i = int32(s.used)
			s.used++
		} else {
			i = s.victim(now)
			delete(s.index, s.slots[i].hash)
		}
		s.index[h] = i
	}
	e := &s.slots[i]
	e.hash, e.raw, e.claims, e.key, e.exp, e.nbf = h, raw, cl, key, exp, nbf
	e.ref.Store(false)
}

// victim picks the slot to reuse in a full shard: the first expired or
// unreferenced slot from the hand, clearing reference bits on the way. It
// looks at no more than two rounds of slots and at one slot in the common case.
func (s *cacheShard) victim(now int64) int32 {
	n := len(s.slots)
	for range 2 * n {
		i := s.hand
		s.hand++
		if s.hand == n {
			s.hand = 0
		}
		e := &s.slots[i]
		if now >= e.exp || !e.ref.Load() || !e.key.Live(now) {
			return int32(i)
		}
		e.ref.Store(false)
	}
	return int32(s.hand)
}

// len returns the number of entries, for tests.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.index)
		s.mu.RUnlock()
	}
	return n
}
