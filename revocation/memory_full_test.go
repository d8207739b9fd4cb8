package revocation_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
)

// TestMemoryFullFailsClosed guards issue 13 item 11: a Memory at its bound
// refused new events but Health stayed nil, so interceptors went on allowing
// calls that a refused event revokes. Now Health reports the store unhealthy
// until the refused event is stored, which it is once a sweep frees room.
func TestMemoryFullFailsClosed(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	m := teststore.Memory(t, revocation.WithMaxEntries(2), revocation.WithClock(clk.Now))
	var told atomic.Int32
	defer m.Subscribe(func(ev revocation.Event) {
		if ev.Subject.ID == "late" {
			told.Add(1)
		}
	})()
	old := func(id string) revocation.Event {
		return revocation.Event{ID: id, Type: revocation.TypeUserDisabled, Subject: revocation.IssuerSubjectKey("iss", id), Time: t0.Add(-27 * time.Hour)}
	}
	for _, id := range []string{"a", "b"} {
		if err := m.Put(ctx, old(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Health(); err != nil {
		t.Fatalf("Health before the bound is hit: %v", err)
	}
	late := revocation.Event{ID: "late", Type: revocation.TypePasswordChanged, Subject: revocation.IssuerSubjectKey("iss", "late"), Time: t0}
	if err := m.Put(ctx, late); !errors.Is(err, revocation.ErrFull) {
		t.Fatalf("Put at the bound: %v, want ErrFull", err)
	}
	if _, ok := m.Lookup(late.Subject); ok {
		t.Fatal("the refused event is visible")
	}
	err := m.Health()
	if !errors.Is(err, revocation.ErrFull) || !errors.Is(err, revocation.ErrStale) {
		t.Fatalf("Health with a refused event: %v, want ErrFull and ErrStale", err)
	}
	if told.Load() != 1 {
		t.Fatalf("subscribers told of the refused event %d times, want 1 (so that its streams re-check)", told.Load())
	}
	// Still full a minute later: still unhealthy.
	clk.Add(time.Minute)
	if m.Health() == nil {
		t.Fatal("healthy while the refused event is still missing")
	}
	// a and b expire (27 h + retention); Health sweeps, stores the refused
	// event and recovers. Subscribers hear of it again, now stored.
	clk.Add(revocation.DefaultRetention - 27*time.Hour)
	if err := m.Health(); err != nil {
		t.Fatalf("Health once room returned: %v", err)
	}
	if got, ok := m.Lookup(late.Subject); !ok || got.ID != "late" {
		t.Fatalf("Lookup after recovery = %v, %v; want the refused event", got, ok)
	}
	if told.Load() != 2 {
		t.Fatalf("subscribers told %d times, want 2", told.Load())
	}
}

// TestMemoryFullRecoversBySweep: Sweep, too, stores the refused events.
func TestMemoryFullRecoversBySweep(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	m := teststore.Memory(t, revocation.WithMaxEntries(1), revocation.WithClock(clk.Now))
	first := revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.IssuerSubjectKey("iss", "first"), Time: t0.Add(-time.Hour)}
	second := revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.IssuerSubjectKey("iss", "second"), Time: t0}
	if err := m.Put(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx, second); !errors.Is(err, revocation.ErrFull) {
		t.Fatalf("Put: %v, want ErrFull", err)
	}
	clk.Add(revocation.DefaultRetention) // first expires, second does not
	if n := m.Sweep(); n != 1 {
		t.Fatalf("Sweep removed %d, want 1", n)
	}
	if _, ok := m.Lookup(second.Subject); !ok {
		t.Fatal("Sweep did not store the refused event")
	}
	if err := m.Health(); err != nil {
		t.Fatalf("Health: %v", err)
	}
}

// TestMemoryFullBeyondRefusedBound: more refused events than the store sets
// aside keep it unhealthy until the last of them has expired, even when
// room returns for some.
func TestMemoryFullBeyondRefusedBound(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	m := teststore.Memory(t, revocation.WithMaxEntries(1), revocation.WithClock(clk.Now))
	if err := m.Put(ctx, revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.IssuerSubjectKey("iss", "holder"), Time: t0}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	const refused = 1100 // more than the 1024 set aside
	for i := range refused {
		err := m.Put(ctx, revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.IssuerSubjectKey("iss", fmt.Sprint("u", i)), Time: t0.Add(time.Hour)})
		if !errors.Is(err, revocation.ErrFull) {
			t.Fatalf("Put %d: %v, want ErrFull", i, err)
		}
	}
	// The holder expires: one refused event fits, the rest do not.
	clk.Add(revocation.DefaultRetention - 30*time.Minute)
	if m.Health() == nil {
		t.Fatal("healthy with refused events missing")
	}
	if m.Len() != 1 {
		t.Fatalf("Len = %d, want 1", m.Len())
	}
	// Every refused event has expired: healthy again.
	clk.Add(31 * time.Minute)
	if err := m.Health(); err != nil {
		t.Fatalf("Health after every refused event expired: %v", err)
	}
}

// TestMemoryExpiredOnArrival (issue 12 item 6): an event already older than
// the retention is acknowledged without being stored, and counted.
func TestMemoryExpiredOnArrival(t *testing.T) {
	clk := newClock(t0)
	m := teststore.Memory(t, revocation.WithClock(clk.Now))
	ev := revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.IssuerSubjectKey("iss", "u"), Time: t0.Add(-29 * time.Hour)}
	if err := m.Put(context.Background(), ev); err != nil {
		t.Fatalf("Put of an expired event: %v", err)
	}
	if _, ok := m.Lookup(ev.Subject); ok {
		t.Fatal("an expired event was stored")
	}
	if n := m.ExpiredOnArrival(); n != 1 {
		t.Fatalf("ExpiredOnArrival = %d, want 1", n)
	}
	if m.Health() != nil {
		t.Fatal("an expired event made the store unhealthy")
	}
	var _ revocation.Retainer = m
}

// TestMemoryHealthDoesNotAllocate: Health is on every call's path; healthy,
// and unhealthy between two retries, it must not allocate.
func TestMemoryHealthDoesNotAllocate(t *testing.T) {
	clk := newClock(t0)
	m := teststore.Memory(t, revocation.WithMaxEntries(1), revocation.WithClock(clk.Now))
	if n := testing.AllocsPerRun(100, func() { _ = m.Health() }); n != 0 {
		t.Fatalf("healthy Health allocates %v times", n)
	}
	ctx := context.Background()
	_ = m.Put(ctx, revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.IssuerSubjectKey("iss", "a"), Time: t0})
	_ = m.Put(ctx, revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.IssuerSubjectKey("iss", "b"), Time: t0})
	_ = m.Health() // the first retry
	if n := testing.AllocsPerRun(100, func() { _ = m.Health() }); n != 0 {
		t.Fatalf("unhealthy Health allocates %v times", n)
	}
	if m.Health() == nil {
		t.Fatal("healthy with a refused event")
	}
}
