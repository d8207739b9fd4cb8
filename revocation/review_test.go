package revocation_test

// Security review tests: each pins down a defect the review found (and that
// is now fixed) or a behaviour the review verified.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
)

// TestReviewObjectKeyGUIDCase (finding REV-1).
//
// Tenant and object ids are GUIDs, which RFC 9562 says are compared
// case-insensitively; Entra tokens carry them in lower case, but a
// transmitter, an admin tool or a custom SubjectMapper may well send
// "72F988BF-86F1-41AF-91AB-2D7CD011DB47". ObjectKey keeps the case, so such
// an event is stored under a key no token produces and is silently not
// enforced. (The token validator already compares tid case-insensitively
// for issuer templates.)
func TestReviewObjectKeyGUIDCase(t *testing.T) {
	const tidUpper, oidUpper = "72F988BF-86F1-41AF-91AB-2D7CD011DB47", "0E6A3F2C-1B3D-4C5E-9F70-81A2B3C4D5E6"
	const tidLower, oidLower = "72f988bf-86f1-41af-91ab-2d7cd011db47", "0e6a3f2c-1b3d-4c5e-9f70-81a2b3c4d5e6"
	if revocation.ObjectKey(tidUpper, oidUpper) != revocation.ObjectKey(tidLower, oidLower) {
		t.Fatal("ObjectKey distinguishes the upper- and lower-case forms of the same GUIDs")
	}
	m := teststore.Memory(t)
	if err := m.Put(context.Background(), revocation.Event{Type: revocation.TypeUserDisabled,
		Subject: revocation.ObjectKey(tidUpper, oidUpper), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Lookup(revocation.ObjectKey(tidLower, oidLower)); !ok {
		t.Fatal("an event for the upper-case GUIDs does not revoke the token's lower-case tid/oid")
	}
}

// TestReviewMemoryFullRaceKeepsNewest (finding REV-2).
//
// Memory.Apply, for a new subject when the store is at its bound, unlocks
// the shard to Sweep and locks it again, then writes without looking again
// at what the map holds. Two Puts for the same new subject racing through
// that window both insert: the count is incremented twice (Len drifts
// above the bound for good) and the later writer wins even if its event is
// the older one, so Lookup returns the older event and tokens issued between
// the two events are not revoked, while both Puts returned nil. (With a
// bound of one the loser gets a spurious ErrFull instead, which the Redis
// store turns into a Health failure for every call.)
func TestReviewMemoryFullRaceKeepsNewest(t *testing.T) {
	base := time.Now()
	var clock atomic.Int64
	clock.Store(base.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	k := revocation.SessionKey("https://idp.test", "s")
	older, newer := time.Duration(0), 30*time.Second
	var drift, regress int
	const rounds = 3000
	for i := 0; i < rounds; i++ {
		clock.Store(base.UnixNano())
		m := teststore.Memory(t, revocation.WithMaxEntries(2), revocation.WithRetention(time.Minute), revocation.WithClock(now))
		// Fill the store with entries that then expire (swept on demand).
		for _, f := range []string{"filler-1", "filler-2"} {
			if err := m.Put(context.Background(), revocation.Event{Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey("https://idp.test", f), Time: base}); err != nil {
				t.Fatal(err)
			}
		}
		clock.Store(base.Add(2 * time.Minute).UnixNano())
		t0 := base.Add(2 * time.Minute)
		var start, done sync.WaitGroup
		var errs [2]error
		start.Add(1)
		for j, d := range []time.Duration{newer, older} {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				errs[j] = m.Put(context.Background(), revocation.Event{Type: revocation.TypeSessionRevoked, Subject: k, Time: t0.Add(d)})
			}()
		}
		start.Done()
		done.Wait()
		if errs[0] != nil || errs[1] != nil {
			continue // refused loudly (spurious ErrFull): not the silent case counted here
		}
		if m.Len() > 1 { // one subject is held
			drift++
		}
		if ev, ok := m.Lookup(k); !ok || !ev.Time.Equal(t0.Add(newer)) {
			regress++
		}
	}
	if drift > 0 || regress > 0 {
		t.Fatalf("in %d racing rounds at the bound: Len above the bound %d times, Lookup returned the older event %d times", rounds, drift, regress)
	}
}

// TestReviewOlderEventNeverReplacesNewer: whatever the order of arrival
// (RFC 8417 SETs are unordered), the store keeps the newest event per
// subject, and an equal time keeps the first.
func TestReviewOlderEventNeverReplacesNewer(t *testing.T) {
	m := teststore.Memory(t)
	ctx := context.Background()
	k := revocation.IssuerSubjectKey("https://idp", "alice")
	t1 := time.Now().Add(-time.Minute)
	put := func(id string, at time.Time) {
		if err := m.Put(ctx, revocation.Event{ID: id, Type: revocation.TypeUserDisabled, Subject: k, Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	put("new", t1)
	put("old", t1.Add(-time.Hour))
	put("same", t1)
	ev, _ := m.Lookup(k)
	if ev.ID != "new" {
		t.Fatalf("held %q, want the newest, first-arrived event", ev.ID)
	}
	// Keys are structs: separators inside scope or id cannot make two
	// subjects collide.
	if _, ok := m.Lookup(revocation.IssuerSubjectKey("https://idp:alice", "")); ok {
		t.Fatal("collision")
	}
	if _, ok := m.Lookup(revocation.IssuerSubjectKey("https:", "//idp:alice")); ok {
		t.Fatal("collision")
	}
}
