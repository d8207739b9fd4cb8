package token

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/keyset"
	"github.com/caekit/caekit/internal/testclock"
)

func claimsExp(exp time.Time) *Claims { return &Claims{ExpiresAt: exp} }

func TestCacheSizeIsExact(t *testing.T) {
	for _, size := range []int{1, 2, 31, 63, 64, 100, 1000, 10_000, 12_345} {
		c := newCache(size)
		total := 0
		for i := range c.shards {
			total += len(c.shards[i].slots)
			if len(c.shards[i].slots) == 0 {
				t.Errorf("size %d: empty shard", size)
			}
		}
		if total != size || len(c.shards) > maxShards || len(c.shards)&(len(c.shards)-1) != 0 {
			t.Errorf("size %d: %d slots in %d shards", size, total, len(c.shards))
		}
	}
	if newCache(0) != nil {
		t.Error("size 0 must disable the cache")
	}
}

func TestCacheBoundedAndCorrect(t *testing.T) {
	now := testclock.Unix(1_900_000_000, 0)
	c := newCache(100)
	cls := map[string]*Claims{}
	for i := range 1000 {
		raw := fmt.Sprintf("token-%d", i)
		cl := claimsExp(now.Add(time.Hour))
		cls[raw] = cl
		c.put(raw, cl, staticRec, now.UnixNano())
	}
	if n := c.len(); n != 100 {
		t.Fatalf("cache holds %d entries, want 100", n)
	}
	hits := 0
	for raw, cl := range cls {
		got, ok := c.get(raw, now.UnixNano(), 0)
		if ok {
			hits++
			if got != cl {
				t.Fatalf("%s: wrong claims", raw)
			}
		}
	}
	if hits != 100 {
		t.Fatalf("%d hits, want 100", hits)
	}
}

func TestCacheTimeBounds(t *testing.T) {
	now := testclock.Unix(1_900_000_000, 0)
	c := newCache(10)
	cl := &Claims{ExpiresAt: now.Add(time.Minute), NotBefore: now.Add(-time.Second)}
	c.put("t", cl, staticRec, now.UnixNano())
	if _, ok := c.get("t", now.Add(59*time.Second).UnixNano(), 0); !ok {
		t.Fatal("miss before exp")
	}
	if _, ok := c.get("t", now.Add(time.Minute).UnixNano(), int64(time.Hour)); ok {
		t.Fatal("hit at exp: leeway must not extend a cache entry")
	}
	if _, ok := c.get("t", now.Add(-2*time.Second).UnixNano(), 0); ok {
		t.Fatal("hit before nbf")
	}
	if _, ok := c.get("t", now.Add(-2*time.Second).UnixNano(), int64(time.Minute)); !ok {
		t.Fatal("miss before nbf but within leeway")
	}
	c.put("old", claimsExp(now), staticRec, now.UnixNano())
	if _, ok := c.get("old", now.Add(-time.Hour).UnixNano(), 0); ok {
		t.Fatal("an already expired token was cached")
	}
}

func TestCacheComparesRawOnHit(t *testing.T) {
	now := testclock.Unix(1_900_000_000, 0)
	c := newCache(1)
	c.put("a", claimsExp(now.Add(time.Hour)), staticRec, now.UnixNano())
	// Simulate a hash collision: make "b" hash to the slot of "a".
	s := &c.shards[0]
	s.index[c.hash("b")] = s.index[c.hash("a")]
	if _, ok := c.get("b", now.UnixNano(), 0); ok {
		t.Fatal("a colliding token was answered from another token's entry")
	}
}

// TestCacheSameTail: tokens that end alike share a hash (hashTail); one is
// never answered from the other's entry.
func TestCacheSameTail(t *testing.T) {
	now := testclock.Unix(1_900_000_000, 0)
	c := newCache(1)
	tail := strings.Repeat("s", hashTail)
	c.put("a."+tail, claimsExp(now.Add(time.Hour)), staticRec, now.UnixNano())
	if c.hash("a."+tail) != c.hash("b."+tail) {
		t.Fatal("tokens with the same tail hash differently")
	}
	if _, ok := c.get("b."+tail, now.UnixNano(), 0); ok {
		t.Fatal("a token was answered from the entry of another with the same tail")
	}
	if _, ok := c.get("a."+tail, now.UnixNano(), 0); !ok {
		t.Fatal("miss")
	}
}

func TestCacheClockEviction(t *testing.T) {
	now := testclock.Unix(1_900_000_000, 0)
	c := newCache(10) // one shard of 10
	if len(c.shards) != 1 {
		t.Fatalf("%d shards", len(c.shards))
	}
	for i := range 10 {
		exp := now.Add(time.Hour)
		if i == 5 {
			exp = now.Add(time.Second)
		}
		c.put(fmt.Sprint(i), claimsExp(exp), staticRec, now.UnixNano())
	}
	later := now.Add(2 * time.Second).UnixNano()
	for i := range 10 {
		c.get(fmt.Sprint(i), now.UnixNano(), 0) // reference every entry
	}
	c.put("new1", claimsExp(now.Add(time.Hour)), staticRec, later) // evicts the expired entry 5
	if _, ok := c.get("5", now.UnixNano(), 0); ok {
		t.Fatal("the expired entry survived")
	}
	for _, k := range []string{"0", "9", "new1"} {
		if _, ok := c.get(k, now.UnixNano(), 0); !ok {
			t.Fatalf("entry %s was evicted", k)
		}
	}
	if c.len() != 10 {
		t.Fatalf("len %d", c.len())
	}
	c.put("new2", claimsExp(now.Add(time.Hour)), staticRec, later) // all referenced: CLOCK still finds a victim
	if c.len() != 10 {
		t.Fatalf("len %d after eviction", c.len())
	}
	if _, ok := c.get("new2", now.UnixNano(), 0); !ok {
		t.Fatal("new entry missing")
	}
}

func TestCacheNoNBF(t *testing.T) {
	c := newCache(4)
	now := testclock.Unix(1_900_000_000, 0)
	c.put("t", claimsExp(now.Add(time.Hour)), staticRec, now.UnixNano())
	if _, ok := c.get("t", math.MinInt64+1, 0); !ok {
		t.Fatal("a token without nbf must be valid from any time")
	}
}

// staticRec is a key that never leaves.
var staticRec = keyset.NewKey("static", "", nil)

func TestCacheRefusesWithdrawnKey(t *testing.T) {
	now := testclock.Unix(1_900_000_000, 0)
	c := newCache(64)
	k := keyset.NewKey("k", "", nil)
	cl := claimsExp(now.Add(time.Hour))
	c.put("t", cl, k, now.UnixNano())
	if got, ok := c.get("t", now.UnixNano(), 0); !ok || got != cl {
		t.Fatal("miss while the key is published")
	}
	k.Withdraw(now.Add(time.Minute).UnixNano()) // withdrawn, one minute of grace
	if _, ok := c.get("t", now.Add(59*time.Second).UnixNano(), 0); !ok {
		t.Fatal("miss within the grace period")
	}
	if _, ok := c.get("t", now.Add(time.Minute).UnixNano(), 0); ok {
		t.Fatal("hit once the grace period ended")
	}
	k.Withdraw(math.MaxInt64) // published again
	if _, ok := c.get("t", now.Add(2*time.Minute).UnixNano(), 0); !ok {
		t.Fatal("miss after the key came back")
	}
}

func TestCacheEvictsWithdrawnKeyFirst(t *testing.T) {
	now := testclock.Unix(1_900_000_000, 0).UnixNano()
	c := newCache(2)
	live, dead := keyset.NewKey("live", "", nil), keyset.NewKey("dead", "", nil)
	exp := claimsExp(time.Unix(0, now).Add(time.Hour))
	c.put("a", exp, live, now)
	c.put("b", exp, dead, now)
	c.get("a", now, 0) // referenced
	c.get("b", now, 0) // referenced too, but its key is then withdrawn
	dead.Withdraw(now - 1)
	c.put("c", exp, live, now)
	if _, ok := c.get("a", now, 0); !ok {
		t.Fatal("the live entry was evicted instead of the one whose key is withdrawn")
	}
	if _, ok := c.get("c", now, 0); !ok {
		t.Fatal("new entry missing")
	}
}
