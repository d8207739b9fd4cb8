package revocation

import (
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testclock"
)

// TestShardHashClash guards the shard's index by 64-bit hash (memory.go):
// two different keys with the same hash must both be found, replaced and
// dropped independently. A real clash of maphash values cannot be forced,
// so the shard is driven directly with one hash for both keys; with the
// clash map removed, the second key would overwrite the first's position.
func TestShardHashClash(t *testing.T) {
	t0 := testclock.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := Event{ID: "a", Type: TypeUserDisabled, Subject: ObjectKey("t1", "o1"), Time: t0}
	b := Event{ID: "b", Type: TypeSessionRevoked, Subject: IssuerSubjectKey("https://idp.example", "o1"), Time: t0.Add(time.Second)}
	const h = 42
	s := &shard{index: map[uint64]uint32{}}
	s.add(a.Subject, h, entryOf(a))
	s.add(b.Subject, h, entryOf(b))
	for _, ev := range []Event{a, b} {
		p, ok := s.find(ev.Subject, h)
		if !ok {
			t.Fatalf("%s not found after a hash clash", ev.Subject)
		}
		if got := s.slots[p].event(); got != ev {
			t.Fatalf("found %+v for %s, want %+v", got, ev.Subject, ev)
		}
	}
	// Drop the one in the index: the clashing one stays found.
	pa, _ := s.find(a.Subject, h)
	s.drop(a.Subject, h, pa)
	if _, ok := s.find(a.Subject, h); ok {
		t.Fatal("dropped key still found")
	}
	if p, ok := s.find(b.Subject, h); !ok || s.slots[p].event() != b {
		t.Fatal("clashing key lost when the other was dropped")
	}
	// a comes back into the freed index place and the freed position.
	s.add(a.Subject, h, entryOf(a))
	if len(s.slots) != 2 {
		t.Fatalf("slots grew to %d; a freed position should be reused", len(s.slots))
	}
	pb, _ := s.find(b.Subject, h)
	s.drop(b.Subject, h, pb)
	if p, ok := s.find(a.Subject, h); !ok || s.slots[p].event() != a {
		t.Fatal("key lost when the clashing one was dropped")
	}
	if len(s.clash) != 0 {
		t.Fatalf("clash map keeps %d entries after the drop", len(s.clash))
	}
}

// TestLookupRebuildsTheStoredTime guards the compact time in an entry
// (seconds, nanoseconds and location instead of a time.Time): the Event
// Lookup returns must compare equal (==) to the one stored, for UTC, Local
// and other locations, with sub-second precision and for dates outside the
// int64-nanosecond range (year 2300, with a clock that far ahead).
func TestLookupRebuildsTheStoredTime(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	for _, at := range []time.Time{
		testclock.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		testclock.Date(2026, 3, 1, 12, 0, 0, 1, time.Local),
		testclock.Date(2026, 3, 1, 12, 0, 0, 999999999, berlin),
		testclock.Unix(1_772_366_400, 5),
		testclock.Date(2300, 1, 1, 0, 0, 0, 7, time.UTC),
	} {
		m, err := NewMemory(WithClock(func() time.Time { return at.Add(time.Minute) }))
		if err != nil {
			t.Fatal(err)
		}
		ev := Event{ID: "jti-1", Type: TypeUserDisabled, Subject: ObjectKey("tenant", "object"), Time: at}
		if _, err := m.apply(ev); err != nil {
			t.Fatal(err)
		}
		got, ok := m.Lookup(ev.Subject)
		if !ok || got != ev {
			t.Fatalf("Lookup = %+v, %v; want %+v (==)", got, ok, ev)
		}
		if !m.remove(ev) {
			t.Fatalf("remove of the exact event %v refused", at)
		}
	}
}
