package redisstore_test

// Security review tests (behaviour verified correct today).

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit"
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

// forge renders an event in the store's version 1 encoding by hand, as an
// attacker allowed to PUBLISH on the channel would.
func forge(sid string, at time.Time, id string) string {
	const iss = "https://idp.test"
	return fmt.Sprintf("1,%020d,%s,%s,%d,%d,%d,%s%s%s", at.UnixNano(), revocation.TypeUserDisabled, revocation.KindSession,
		len(iss), len(sid), len(id), iss, sid, id)
}

// TestReviewPublishedMessagesAreHints (issue 13 item 5, "forged Redis
// messages"): one PUBLISH on the channel, with no key written, used to lock
// a session out on every replica until restart. Messages are now only hints:
// a replica reads the subject's key and applies what Redis holds, so a
// forged message for a subject with no key changes nothing, and a forged
// message for a revoked subject cannot replace the stored event by a later
// one of the forger's choosing, nor by an older one.
func TestReviewPublishedMessagesAreHints(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv.URL())
	now := time.Now()
	ev := event(revocation.SessionKey("https://idp.test", "sid-1"), now)
	put(t, a, ev)
	rc := rawClient(t, srv.Addr())
	ctx := context.Background()
	// The hand-made encoding is the store's: written as a key, it loads.
	if err := rc.Set(ctx, "caekit:rev:session:16:https://idp.test:sid-real", forge("sid-real", now, "real"), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Publish(ctx, "caekit:events", forge("sid-real", now, "real")).Err(); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyWithin(t, waitFor, "a message backed by a key to reach the mirror", func() bool {
		got, ok := a.Lookup(revocation.SessionKey("https://idp.test", "sid-real"))
		return ok && got.ID == "real"
	})

	rc.Publish(ctx, "caekit:events", forge("sid-forged", now, "forged-new"))
	rc.Publish(ctx, "caekit:events", forge("sid-1", now.Add(-time.Hour), "forged-old"))
	rc.Publish(ctx, "caekit:events", forge("sid-1", now.Add(time.Minute), "forged-later"))
	// A marker published after the forgeries proves they have been processed.
	marker := event(revocation.DeviceKey("https://idp.test", "marker"), now)
	put(t, open(t, srv.URL()), marker)
	testkit.EventuallyWithin(t, waitFor, "the marker to arrive", sees(a, marker))
	if got, ok := a.Lookup(revocation.SessionKey("https://idp.test", "sid-forged")); ok {
		t.Fatalf("a PUBLISH with no key behind it reached the mirror: %+v", got)
	}
	if got, ok := a.Lookup(ev.Subject); !ok || got.ID != ev.ID {
		t.Fatalf("after forged messages the mirror holds %+v, want the stored %s", got, ev.ID)
	}
}

// TestReviewFutureEventRefused (issue 13 item 5): an event dated 170 years
// ahead was stored in Redis with a TTL of 170 years (and then refused by the
// mirror, after Redis had it). Put now refuses an event more than
// revocation.MaxFutureSkew ahead of the store's clock before it writes
// anything, and accepts one within the skew.
func TestReviewFutureEventRefused(t *testing.T) {
	srv := redistest.Start(t)
	base := time.Now()
	clock := func() time.Time { return base }
	s := open(t, srv.URL(), redisstore.WithClock(clock))
	far := event(revocation.SessionKey("https://idp.test", "sid-far"), base.AddDate(170, 0, 0))
	err := s.Put(context.Background(), far)
	if !errors.Is(err, revocation.ErrFutureEvent) {
		t.Fatalf("Put(event 170 years ahead) = %v, want ErrFutureEvent", err)
	}
	rc := rawClient(t, srv.Addr())
	if keys := rc.Keys(context.Background(), "caekit:rev:*").Val(); len(keys) != 0 {
		t.Fatalf("a refused event was written to Redis: %v", keys)
	}
	near := event(revocation.SessionKey("https://idp.test", "sid-near"), base.Add(revocation.MaxFutureSkew-time.Second))
	put(t, s, near)
	if !sees(s, near)() {
		t.Fatal("an event within MaxFutureSkew is not enforced")
	}
}

// TestReviewResyncReplacesMirror (issue 13 item 5, "resync only ever
// adds"): a key deleted from Redis (by an operator lifting a revocation, or
// an entry that reached a mirror without a key) stayed in every mirror until
// restart. A resynchronisation now makes the mirror a copy of Redis.
func TestReviewResyncReplacesMirror(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []redisstore.Option
	}{
		// Without a change log, the resynchronisation after a reconnect
		// is a full reload.
		{"no change log", []redisstore.Option{redisstore.WithChangeLog(0)}},
		// With one, a reconnect only catches up from the log, which says
		// nothing of deleted keys: the periodic full reload finds them.
		{"change log", []redisstore.Option{redisstore.WithResyncInterval(4 * testHeartbeat)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			a, b := open(t, srv.URL(), tc.opts...), open(t, srv.URL(), tc.opts...)
			keep := event(revocation.SessionKey("https://idp.test", "sid-keep"), time.Now())
			drop := event(revocation.SessionKey("https://idp.test", "sid-drop"), time.Now())
			put(t, a, keep)
			put(t, a, drop)
			testkit.EventuallyWithin(t, waitFor, "B to see both events", func() bool { return sees(b, keep)() && sees(b, drop)() })
			rc := rawClient(t, srv.Addr())
			ctx := context.Background()
			if n := rc.Del(ctx, "caekit:rev:session:16:https://idp.test:sid-drop").Val(); n != 1 {
				t.Fatalf("DEL removed %d keys, want 1", n)
			}
			// Drop every subscription: each store resubscribes and resynchronises.
			if err := rc.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
				t.Fatal(err)
			}
			for name, s := range map[string]*redisstore.Store{"A": a, "B": b} {
				testkit.EventuallyWithin(t, waitFor, name+" to drop the deleted event", func() bool {
					_, ok := s.Lookup(drop.Subject)
					return !ok
				})
				if !sees(s, keep)() {
					t.Fatalf("%s lost an event Redis still holds", name)
				}
				if s.Len() != 1 {
					t.Fatalf("%s mirrors %d subjects, want 1", name, s.Len())
				}
			}
		})
	}
}
