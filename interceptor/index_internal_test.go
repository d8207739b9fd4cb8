package interceptor

import (
	"testing"

	"github.com/caekit/caekit/revocation"
)

// TestStreamIndexSeveralWatchesPerKey guards the stream index's watchSet
// (one watch in place, more in a map only for a second one; issue 16 item
// 1, the HTTP middleware's allocations): with three watches under one key,
// an event wakes all three; after the first one (the one held in place) is
// removed, the other two are still woken; once all are removed the key is
// gone from the index.
func TestStreamIndexSeveralWatchesPerKey(t *testing.T) {
	var ix streamIndex
	ix.init()
	k := revocation.SessionKey("https://idp.example", "sid-1")
	other := revocation.SessionKey("https://idp.example", "sid-2")
	ws := make([]*watch, 3)
	for i := range ws {
		ws[i] = &watch{wake: make(chan struct{}, 1)}
		ix.add(ws[i], []revocation.Key{k})
	}
	ix.add(ws[2], []revocation.Key{other})
	woken := func() (n int) {
		for _, w := range ws {
			select {
			case <-w.wake:
				n++
			default:
			}
		}
		return n
	}
	ix.notify(revocation.Event{Subject: k})
	if n := woken(); n != 3 {
		t.Fatalf("event woke %d of 3 watches", n)
	}
	ix.remove(ws[0], []revocation.Key{k})
	ix.notify(revocation.Event{Subject: k})
	if n := woken(); n != 2 {
		t.Fatalf("after removing the first watch, the event woke %d of the other 2", n)
	}
	if got := ix.watching(); got != 2 {
		t.Fatalf("watching() = %d, want 2", got)
	}
	ix.remove(ws[1], []revocation.Key{k})
	ix.remove(ws[2], []revocation.Key{k, other})
	for i := range ix.shards {
		if n := len(ix.shards[i].m); n != 0 {
			t.Fatalf("shard %d keeps %d keys after every watch was removed", i, n)
		}
	}
	ix.notify(revocation.Event{Subject: k})
	if n := woken(); n != 0 {
		t.Fatalf("removed watches woken: %d", n)
	}
}
