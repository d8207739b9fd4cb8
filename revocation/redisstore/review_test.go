package redisstore_test

// Security review tests (behaviour verified correct today).

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

// TestReviewKeysWithSeparatorsStayDistinct: scope and id may hold the ':'
// the Redis key uses as a separator; a replica loading from Redis must still
// tell ObjectKey("t:1", "o") from ObjectKey("t", "1:o").
func TestReviewKeysWithSeparatorsStayDistinct(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv.URL())
	k := revocation.ObjectKey("t:1", "o")
	near := []revocation.Key{
		revocation.ObjectKey("t", "1:o"),
		revocation.ObjectKey("t:1:o", ""),
		revocation.ObjectKey("t:1", "o:"),
		revocation.IssuerSubjectKey("t:1", "o"),
		{Kind: revocation.KindObject, Scope: "3:t:1", ID: "o"},
	}
	put(t, a, event(k, time.Now()))
	b := open(t, srv.URL()) // loads from Redis
	if _, ok := b.Lookup(k); !ok {
		t.Fatal("the stored subject was not loaded")
	}
	for _, n := range near {
		if _, ok := b.Lookup(n); ok {
			t.Errorf("%v matched an event stored for %v", n, k)
		}
	}
}

// TestReviewNestedPrefixIsolation: a store whose prefix begins with another
// store's key space ("app:" and "app:rev:object:") shares the SCAN pattern
// "app:rev:*"; its keys must still not load into the other store.
func TestReviewNestedPrefixIsolation(t *testing.T) {
	srv := redistest.Start(t)
	inner := open(t, srv.URL(), redisstore.WithPrefix("app:rev:object:"))
	ev := event(revocation.ObjectKey("t", "o"), time.Now())
	put(t, inner, ev)
	outer := open(t, srv.URL(), redisstore.WithPrefix("app:"))
	if _, ok := outer.Lookup(ev.Subject); ok || outer.Len() != 0 {
		t.Fatalf("store with prefix app: loaded %d entries written under app:rev:object:", outer.Len())
	}
	glob := open(t, srv.URL(), redisstore.WithPrefix("a*"))
	if glob.Len() != 0 {
		t.Fatalf("a prefix with a glob character loaded %d foreign entries", glob.Len())
	}
}

// TestReviewPublishedOlderEventCannotUnrevoke: anyone who can PUBLISH on the
// channel can add events to every mirror (residual risk: protect Redis with
// ACLs), but an older event can never replace a newer one, so a forged
// message cannot lift a revocation.
func TestReviewPublishedOlderEventCannotUnrevoke(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv.URL())
	now := time.Now()
	ev := event(revocation.SessionKey("", "sid-1"), now)
	put(t, a, ev)
	enc := func(sid string, at time.Time, id string) string {
		return fmt.Sprintf("1,%020d,%s,%s,%d,%d,%d,%s%s", at.UnixNano(), revocation.TypeUserDisabled, revocation.KindSession,
			0, len(sid), len(id), sid, id)
	}
	rc := rawClient(t, srv.Addr())
	ctx := context.Background()
	// Sanity check of the hand-made encoding (and the residual risk): a
	// forged event for a new subject reaches the mirror.
	rc.Publish(ctx, "caekit:events", enc("sid-forged", now, "forged-new"))
	eventually(t, "the forged event to reach the mirror", func() bool {
		got, ok := a.Lookup(revocation.SessionKey("", "sid-forged"))
		return ok && got.ID == "forged-new"
	})
	rc.Publish(ctx, "caekit:events", enc("sid-1", now.Add(-time.Hour), "forged-old"))
	// A marker published after the forgery proves it has been processed.
	marker := event(revocation.DeviceKey("", "marker"), now)
	put(t, open(t, srv.URL()), marker)
	eventually(t, "the marker to arrive", sees(a, marker))
	got, ok := a.Lookup(ev.Subject)
	if !ok || got.ID != ev.ID {
		t.Fatalf("after a forged older message the mirror holds %+v, want %s", got, ev.ID)
	}
}
