package interceptor

import (
	"testing"

	"github.com/caekit/caekit/revocation"
)

// TestStreamIndexSharedKeys: watches sharing a key are all indexed, the
// first one inline; removing it promotes another, and the key leaves the
// index with its last watch.
func TestStreamIndexSharedKeys(t *testing.T) {
	var ix streamIndex
	ix.init()
	k := revocation.SessionKey("https://idp.example", "sid-1")
	w1, w2, w3 := &watch{}, &watch{}, &watch{}
	for _, w := range []*watch{w1, w2, w3, w2} { // w2 twice: a set
		ix.add(w, []revocation.Key{k})
	}
	if n := ix.watching(); n != 3 {
		t.Fatalf("watching %d, want 3", n)
	}
	ix.remove(w1, []revocation.Key{k})
	if n := ix.watching(); n != 2 {
		t.Fatalf("after removing the inline watch: watching %d, want 2", n)
	}
	ix.remove(w3, []revocation.Key{k})
	ix.remove(w2, []revocation.Key{k})
	ix.remove(w2, []revocation.Key{k}) // removing twice is harmless
	if n := ix.watching(); n != 0 {
		t.Fatalf("watching %d, want 0", n)
	}
	if _, ok := ix.shard(k).m[k]; ok {
		t.Fatal("an empty key stays in the index")
	}
}

// TestStreamIndexNoAllocs guards the HTTP middleware's per-request cost:
// every request is watched, so indexing one watch under a token's keys and
// removing it must not allocate (a map per key used to cost 12 of the 29
// allocations of a request through caehttp, examples/bench micro).
func TestStreamIndexNoAllocs(t *testing.T) {
	var ix streamIndex
	ix.init()
	keys := []revocation.Key{
		revocation.SessionKey("https://idp.example", "sid-1"),
		revocation.SessionKey("https://idp.example", "sid-2"),
		revocation.SessionKey("https://idp.example", "sid-3"),
	}
	w := &watch{}
	ix.add(w, keys) // the shards' maps grow once
	ix.remove(w, keys)
	if a := testing.AllocsPerRun(100, func() {
		ix.add(w, keys)
		ix.remove(w, keys)
	}); a != 0 {
		t.Fatalf("%v allocations per add+remove, want 0", a)
	}
}
