package revocation_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/caekit/caekit/internal/testclock"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct{ t atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.t.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *clock) Add(d time.Duration) { c.t.Add(int64(d)) }

// t0 is a fixed instant. Every store that sees an event dated around t0 is
// given a clock at t0 (newClock), never the wall clock: a fixed date paired
// with the wall clock passes only until the date falls out of retention.
var t0 = testclock.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// mustPut stores ev and fails the test if the store refuses it.
func mustPut(t testing.TB, s revocation.Store, ev revocation.Event) {
	t.Helper()
	if err := s.Put(context.Background(), ev); err != nil {
		t.Fatalf("Put(%s): %v", ev.ID, err)
	}
}

func TestMemoryLatestEventWinsByEventTime(t *testing.T) {
	clk := newClock(t0)
	m := teststore.Memory(t, revocation.WithClock(clk.Now))
	ctx := context.Background()
	k := revocation.ObjectKey("tenant", "alice")

	newer := revocation.Event{ID: "b", Type: revocation.TypePasswordChanged, Subject: k, Time: t0.Add(-time.Minute)}
	older := revocation.Event{ID: "a", Type: revocation.TypeUserDisabled, Subject: k, Time: t0.Add(-time.Hour)}
	if err := m.Put(ctx, newer); err != nil {
		t.Fatal(err)
	}
	// An old event arriving late must not replace the newer one.
	if err := m.Put(ctx, older); err != nil {
		t.Fatal(err)
	}
	got, ok := m.Lookup(k)
	if !ok || got.ID != "b" {
		t.Fatalf("Lookup = %+v, %v; want event b", got, ok)
	}
	// Token issued after the newest event is not revoked; one issued at or before it is.
	if got.Revokes(t0.Add(-30 * time.Second)) {
		t.Error("event revoked a token issued after it")
	}
	if !got.Revokes(t0.Add(-time.Minute)) || !got.Revokes(t0.Add(-2*time.Minute)) {
		t.Error("event did not revoke a token issued at or before it")
	}
	if _, ok := m.Lookup(revocation.ObjectKey("tenant", "bob")); ok {
		t.Error("unrelated subject found")
	}
	if _, ok := m.Lookup(revocation.ObjectKey("other-tenant", "alice")); ok {
		t.Error("same object id in another tenant found")
	}
}

func TestMemoryExpiry(t *testing.T) {
	clk := newClock(t0)
	m := teststore.Memory(t, revocation.WithClock(clk.Now), revocation.WithRetention(time.Hour))
	k := revocation.SessionKey("https://idp.test", "s1")
	if err := m.Put(context.Background(), revocation.Event{Type: revocation.TypeSessionRevoked, Subject: k, Time: t0}); err != nil {
		t.Fatal(err)
	}
	clk.Add(59 * time.Minute)
	if _, ok := m.Lookup(k); !ok {
		t.Fatal("event expired early")
	}
	clk.Add(2 * time.Minute)
	if n := m.Sweep(); n != 1 || m.Len() != 0 {
		t.Fatalf("Sweep removed %d, Len %d; want 1, 0", n, m.Len())
	}
	if _, ok := m.Lookup(k); ok {
		t.Fatal("event outlived its retention and sweep")
	}
	// An event already past retention is accepted but has no effect.
	if err := m.Put(context.Background(), revocation.Event{Type: revocation.TypeSessionRevoked, Subject: k, Time: t0}); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 {
		t.Fatal("expired event was stored")
	}
}

func TestMemoryBoundAndValidation(t *testing.T) {
	m := teststore.Memory(t, revocation.WithMaxEntries(2))
	ctx := context.Background()
	for i := range 2 {
		if err := m.Put(ctx, revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.ClientKey("https://idp.test", strconv.Itoa(i)), Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	err := m.Put(ctx, revocation.Event{ID: "x", Type: revocation.TypeUserDisabled, Subject: revocation.ClientKey("https://idp.test", "3"), Time: time.Now()})
	if !errors.Is(err, revocation.ErrFull) {
		t.Fatalf("Put beyond bound = %v; want ErrFull", err)
	}
	// An update to a held subject is still accepted when full.
	if err := m.Put(ctx, revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.ClientKey("https://idp.test", "1"), Time: time.Now().Add(time.Second)}); err != nil {
		t.Fatalf("update when full: %v", err)
	}

	bad := []struct {
		ev   revocation.Event
		want error
	}{
		{revocation.Event{Type: revocation.TypeUserDisabled, Time: time.Now()}, revocation.ErrNoSubject},
		{revocation.Event{Subject: revocation.SessionKey("https://idp.test", "s"), Time: time.Now()}, revocation.ErrNoType},
		{revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.SessionKey("https://idp.test", "s")}, revocation.ErrNoTime},
	}
	for _, b := range bad {
		if err := m.Put(ctx, b.ev); !errors.Is(err, b.want) {
			t.Errorf("Put(%+v) = %v; want %v", b.ev, err, b.want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Put(cctx, revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.SessionKey("https://idp.test", "s"), Time: time.Now()}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with cancelled context = %v", err)
	}
}

// TestNewMemoryReportsAllBadOptions guards issue 17 step 5's rule for
// constructors: every bad option is reported, in one error, rather than the
// first only (the old NewMemoryE) or a panic (the old NewMemory). A nil
// option is reported with its position instead of panicking.
func TestNewMemoryReportsAllBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opts []revocation.MemoryOption
		want []string
	}{
		{"zero retention", []revocation.MemoryOption{revocation.WithRetention(0)}, []string{"retention must be positive"}},
		{"negative bound", []revocation.MemoryOption{revocation.WithMaxEntries(-1)}, []string{"max entries must be positive, got -1"}},
		{"nil clock", []revocation.MemoryOption{revocation.WithClock(nil)}, []string{"clock must not be nil"}},
		{"nil option", []revocation.MemoryOption{revocation.WithRetention(time.Hour), nil}, []string{"option 1 is nil"}},
		{"two bad options", []revocation.MemoryOption{revocation.WithRetention(-time.Second), revocation.WithMaxEntries(0)},
			[]string{"retention must be positive, got -1s", "max entries must be positive, got 0"}},
		{"all of them", []revocation.MemoryOption{nil, revocation.WithRetention(0), revocation.WithMaxEntries(0), revocation.WithClock(nil)},
			[]string{"option 0 is nil", "retention must be positive", "max entries must be positive", "clock must not be nil"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := revocation.NewMemory(c.opts...)
			if err == nil || m != nil {
				t.Fatalf("NewMemory = %v, %v; want nil and an error", m, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if u, ok := err.(interface{ Unwrap() []error }); !ok || len(u.Unwrap()) != len(c.want) {
				t.Errorf("error %q is not one errors.Join of %d errors", err, len(c.want))
			}
		})
	}
	if _, err := revocation.NewMemory(revocation.WithRetention(time.Hour), revocation.WithMaxEntries(1), revocation.WithClock(time.Now)); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

func TestMemorySubscribe(t *testing.T) {
	m := teststore.Memory(t, revocation.WithClock(newClock(t0).Now))
	var mu sync.Mutex
	var got []string
	unsub := m.Subscribe(func(ev revocation.Event) { mu.Lock(); got = append(got, ev.ID); mu.Unlock() })
	k := revocation.SessionKey("https://idp.test", "s")
	mustPut(t, m, revocation.Event{ID: "1", Type: revocation.TypeSessionRevoked, Subject: k, Time: t0})
	mustPut(t, m, revocation.Event{ID: "0", Type: revocation.TypeSessionRevoked, Subject: k, Time: t0.Add(-time.Second)}) // older: no change, no notify
	mustPut(t, m, revocation.Event{ID: "2", Type: revocation.TypeSessionRevoked, Subject: k, Time: t0.Add(time.Second)})
	unsub()
	unsub()
	mustPut(t, m, revocation.Event{ID: "3", Type: revocation.TypeSessionRevoked, Subject: k, Time: t0.Add(2 * time.Second)})
	if fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("notified %v; want [1 2]", got)
	}
}

func TestMemoryConcurrentWriters(t *testing.T) {
	// The events span 4,000 s after t0; the clock stands at their end.
	m := teststore.Memory(t, revocation.WithClock(newClock(t0.Add(4000*time.Second)).Now))
	k := revocation.ObjectKey("t", "u")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				sec := i*8 + w
				if err := m.Put(context.Background(), revocation.Event{ID: strconv.Itoa(sec), Type: revocation.TypeUserDisabled, Subject: k, Time: t0.Add(time.Duration(sec) * time.Second)}); err != nil {
					t.Error(err)
					return
				}
				m.Lookup(k)
			}
		}()
	}
	wg.Wait()
	if ev, _ := m.Lookup(k); ev.ID != strconv.Itoa(499*8+7) {
		t.Fatalf("latest = %s; want %d", ev.ID, 499*8+7)
	}
}

func TestParseNames(t *testing.T) {
	for _, ty := range revocation.Types() {
		got, err := revocation.ParseType(ty.String())
		if err != nil || got != ty {
			t.Errorf("ParseType(%q) = %v, %v", ty, got, err)
		}
	}
	if _, err := revocation.ParseType("nope"); err == nil {
		t.Error("ParseType accepted an unknown name")
	}
	for k := revocation.KindObject; k <= revocation.KindDevice; k++ {
		if got, err := revocation.ParseKind(k.String()); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k, got, err)
		}
	}
}

func BenchmarkMemoryLookup(b *testing.B) {
	for _, n := range []int{0, 10_000, 1_000_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			m := teststore.Memory(b)
			now := time.Now()
			for i := range n {
				if err := m.Put(context.Background(), revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.ObjectKey("tenant", "user-"+strconv.Itoa(i)), Time: now}); err != nil {
					b.Fatal(err)
				}
			}
			// A miss and a hit alternate, as on a real call path.
			keys := []revocation.Key{
				revocation.ObjectKey("tenant", "someone-else"),
				revocation.ObjectKey("tenant", "user-"+strconv.Itoa(n/2)),
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				m.Lookup(keys[i&1])
			}
		})
	}
}

func TestMemoryLookupAcrossKinds(t *testing.T) {
	clk := newClock(t0)
	m := teststore.Memory(t, revocation.WithClock(clk.Now), revocation.WithRetention(time.Hour))
	keys := []revocation.Key{
		revocation.ObjectKey("t", "id"), revocation.IssuerSubjectKey("t", "id"), revocation.SessionKey("https://idp.test", "id"),
		revocation.ClientKey("https://idp.test", "id"), revocation.EmailKey("ID"), revocation.TokenKey("t", "id"), revocation.DeviceKey("https://idp.test", "id"),
	}
	for i, k := range keys {
		if err := m.Put(context.Background(), revocation.Event{Type: revocation.TypeUserDisabled, Subject: k, Time: t0}); err != nil {
			t.Fatal(err)
		}
		// Every kind stored so far is found, and the others are not.
		for j, k2 := range keys {
			if _, ok := m.Lookup(k2); ok != (j <= i) {
				t.Fatalf("after storing %d kinds, Lookup(%s) = %v", i+1, k2, ok)
			}
		}
	}
	if _, ok := m.Lookup(revocation.Key{Kind: 200, ID: "x"}); ok {
		t.Fatal("out-of-range kind found")
	}
	clk.Add(2 * time.Hour)
	m.Sweep()
	for _, k := range keys {
		if _, ok := m.Lookup(k); ok {
			t.Fatalf("%s found after sweep", k)
		}
	}
	// Kind counts went back to zero and come back up.
	if err := m.Put(context.Background(), revocation.Event{Type: revocation.TypeSessionRevoked, Subject: keys[2], Time: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Lookup(keys[2]); !ok {
		t.Fatal("session not found after re-adding its kind")
	}
}

// TestMemoryRefusesFutureEvents guards issue 13 item 5: an event dated far
// ahead (2200, say) would otherwise be kept for its retention after that
// date, locking its subject out for centuries.
func TestMemoryRefusesFutureEvents(t *testing.T) {
	clk := newClock(t0)
	m := teststore.Memory(t, revocation.WithClock(clk.Now))
	k := revocation.ObjectKey("t", "u")
	far := revocation.Event{ID: "far", Type: revocation.TypeUserDisabled, Subject: k, Time: t0.AddDate(174, 0, 0)}
	if err := m.Put(context.Background(), far); !errors.Is(err, revocation.ErrFutureEvent) {
		t.Fatalf("Put(event in 2200) = %v; want ErrFutureEvent", err)
	}
	if _, ok := m.Lookup(k); ok {
		t.Fatal("a refused future event is visible to Lookup")
	}
	// Within the skew allowance an event is taken.
	mustPut(t, m, revocation.Event{ID: "skew", Type: revocation.TypeUserDisabled, Subject: k, Time: t0.Add(revocation.MaxFutureSkew)})
}
