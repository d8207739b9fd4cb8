package revocation_test

import (
	"context"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testclock"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/internal/mirror"
)

// TestMemoryRemove guards the mirror API the Redis store's resync uses to
// drop entries Redis no longer holds: Remove deletes only the exact event it
// is given, never one applied since, and keeps Len and Lookup consistent.
func TestMemoryRemove(t *testing.T) {
	now := testclock.Unix(1_800_000_000, 0)
	m := teststore.Memory(t, revocation.WithClock(func() time.Time { return now }))
	w := mirror.Of[*revocation.Memory, revocation.Event](m)
	k := revocation.SessionKey("https://idp.test", "sid-1")
	old := revocation.Event{ID: "a", Type: revocation.TypeSessionRevoked, Subject: k, Time: now.Add(-time.Minute)}
	if err := m.Put(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	newer := old
	newer.ID, newer.Time = "b", now
	if err := m.Put(context.Background(), newer); err != nil {
		t.Fatal(err)
	}
	if w.Remove(old) {
		t.Fatal("Remove deleted an entry replaced by a newer event")
	}
	if got, ok := m.Lookup(k); !ok || got.ID != "b" {
		t.Fatalf("Lookup = %+v, %v; want the newer event", got, ok)
	}
	if !w.Remove(newer) {
		t.Fatal("Remove did not delete the entry it was given")
	}
	if _, ok := m.Lookup(k); ok || m.Len() != 0 {
		t.Fatalf("after Remove: found=%v Len=%d; want nothing held", ok, m.Len())
	}
	if w.Remove(newer) {
		t.Fatal("Remove of an absent entry reported a deletion")
	}
	// The kind counter went back to zero: a new event of the kind is found.
	if err := m.Put(context.Background(), newer); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Lookup(k); !ok {
		t.Fatal("an event put after Remove is not found")
	}
}
