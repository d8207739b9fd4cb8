package mirror_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testclock"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/internal/mirror"
)

// TestMemoryExportsNoMirrorHooks guards issue 17 step 3: the hooks only the
// Redis store needs are not part of revocation's API (Memory exported
// Apply, Notify and Remove before).
func TestMemoryExportsNoMirrorHooks(t *testing.T) {
	typ := reflect.TypeOf(&revocation.Memory{})
	for _, name := range []string{"Apply", "Notify", "Remove"} {
		if _, ok := typ.MethodByName(name); ok {
			t.Errorf("*revocation.Memory exports %s; it belongs to revocation/internal/mirror", name)
		}
	}
}

// TestWriter checks the registered hooks act on the Memory they were taken
// from: Apply stores without notifying, Notify notifies, Remove removes.
func TestWriter(t *testing.T) {
	now := testclock.Unix(1_800_000_000, 0)
	m := teststore.Memory(t, revocation.WithClock(func() time.Time { return now }))
	var got []string
	stop := m.Subscribe(func(ev revocation.Event) { got = append(got, ev.ID) })
	defer stop()
	w := mirror.Of[*revocation.Memory, revocation.Event](m)

	k := revocation.SessionKey("https://idp.test", "sid-1")
	ev := revocation.Event{ID: "a", Type: revocation.TypeSessionRevoked, Subject: k, Time: now.Add(-time.Minute)}
	changed, err := w.Apply(ev)
	if err != nil || !changed {
		t.Fatalf("Apply = %v, %v; want true, nil", changed, err)
	}
	if held, ok := m.Lookup(k); !ok || held.ID != "a" {
		t.Fatalf("Lookup after Apply = %+v, %v", held, ok)
	}
	if len(got) != 0 {
		t.Fatalf("Apply notified %v; it must not", got)
	}
	if changed, err := w.Apply(ev); err != nil || changed {
		t.Fatalf("second Apply = %v, %v; want false, nil", changed, err)
	}
	if _, err := w.Apply(revocation.Event{ID: "bad", Subject: k, Time: now}); err == nil {
		t.Fatal("Apply accepted an event without a type")
	}
	w.Notify(ev)
	if len(got) != 1 || got[0] != "a" {
		t.Fatalf("Notify delivered %v; want [a]", got)
	}
	if !w.Remove(ev) {
		t.Fatal("Remove did not delete the entry it was given")
	}
	if _, ok := m.Lookup(k); ok || m.Len() != 0 {
		t.Fatalf("after Remove: found=%v Len=%d", ok, m.Len())
	}
	if len(got) != 1 {
		t.Fatalf("Remove notified: %v", got)
	}
}

// TestOfWrongTypesPanics: asking for a writer of types revocation did not
// register is a programming error and says so.
func TestOfWrongTypesPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Of with unregistered types did not panic")
		}
	}()
	mirror.Of[string, int]("x")
}
