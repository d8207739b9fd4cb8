package interceptor_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit/teststore"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// retentionClock is a clock tests move by hand; the validator, the store and the
// interceptor share it.
type retentionClock struct{ ns atomic.Int64 }

func newRetentionClock(t time.Time) *retentionClock {
	c := &retentionClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *retentionClock) Now() time.Time        { return time.Unix(0, c.ns.Load()) }
func (c *retentionClock) Add(d time.Duration)   { c.ns.Add(int64(d)) }
func (c *retentionClock) Set(t time.Time)       { c.ns.Store(t.UnixNano()) }
func (c *retentionClock) since(t time.Time) int { return int(c.Now().Sub(t) / time.Hour) }

// retentionEnv runs the inbox service with one clock for validator, store and
// interceptor, and returns the store too.
func retentionEnv(t *testing.T, clk *retentionClock, vopts []token.Option, mopts ...revocation.MemoryOption) (*env, *revocation.Memory) {
	t.Helper()
	store := teststore.Memory(t, append([]revocation.MemoryOption{revocation.WithClock(clk.Now)}, mopts...)...)
	v := newValidator(t, append([]token.Option{token.WithClock(clk.Now), token.WithCacheSize(0)}, vopts...)...)
	e := newEnv(t, envOpt{validator: v, store: store, opts: []interceptor.Option{interceptor.WithClock(clk.Now)}})
	return e, store
}

// TestLongLivedTokenStaysRevoked guards issue 12 item 6: a 48 h token
// revoked at t=0 was accepted again at t=+29 h, once the store (retention
// 28 h 5 min) had forgotten the event. Now the default validator refuses a
// token living longer than the retention, and a validator configured for
// 48 h tokens needs a store that remembers for 48 h.
func TestLongLivedTokenStaysRevoked(t *testing.T) {
	t0 := time.Now().Truncate(time.Second)
	long := func() string { return mint(t, tok{sub: "long", iat: t0, exp: t0.Add(48 * time.Hour)}) }
	revoke := func(t *testing.T, store revocation.Store) {
		t.Helper()
		if err := store.Put(context.Background(), revocation.Event{ID: "pw", Type: revocation.TypePasswordChanged,
			Subject: revocation.IssuerSubjectKey(testIssuer, "long"), Time: t0}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("default lifetime refuses the token", func(t *testing.T) {
		clk := newRetentionClock(t0)
		e, store := retentionEnv(t, clk, nil)
		raw := long()
		for _, at := range []time.Duration{0, 29 * time.Hour} {
			clk.Set(t0.Add(at))
			if at == 0 {
				revoke(t, store)
			}
			_, err, _, _ := e.callUnary(withToken(testCtx(t), raw))
			if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "lifetime") {
				t.Fatalf("48 h token at t+%dh: %v, want Unauthenticated for its lifetime", clk.since(t0), err)
			}
		}
	})

	t.Run("a store that forgets sooner is refused", func(t *testing.T) {
		v := newValidator(t, token.WithMaxTokenLifetime(48*time.Hour))
		for _, store := range []revocation.Store{teststore.Memory(t), teststore.Memory(t, revocation.WithRetention(48*time.Hour))} {
			s, err := interceptor.New(v, interceptor.WithStore(store))
			if err == nil {
				s.Close()
				t.Fatalf("a store with retention %v accepted for 48 h tokens", store.(revocation.Retainer).Retention())
			}
			if !strings.Contains(err.Error(), "retention") {
				t.Fatalf("error does not say what is wrong: %v", err)
			}
		}
		// Without WithStore, the Server's own store is made to fit.
		s, err := interceptor.New(v)
		if err != nil {
			t.Fatalf("default store: %v", err)
		}
		defer s.Close()
		if got := s.Store().(revocation.Retainer).Retention(); got < v.RetentionNeeded() {
			t.Fatalf("default store retention %v < needed %v", got, v.RetentionNeeded())
		}
	})

	t.Run("48 h tokens with a 48 h store stay revoked", func(t *testing.T) {
		clk := newRetentionClock(t0)
		lifetime := []token.Option{token.WithMaxTokenLifetime(48 * time.Hour)}
		need := newValidator(t, lifetime...).RetentionNeeded()
		e, store := retentionEnv(t, clk, lifetime, revocation.WithRetention(need))
		raw := long()
		if _, err, _, _ := e.callUnary(withToken(testCtx(t), raw)); err != nil {
			t.Fatalf("before the event: %v", err)
		}
		revoke(t, store)
		for _, at := range []time.Duration{time.Second, 29 * time.Hour, 47 * time.Hour} {
			clk.Set(t0.Add(at))
			store.Sweep() // as the store would have by then
			_, err, h, tr := e.callUnary(withToken(testCtx(t), raw))
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("revoked 48 h token at t+%dh: %v, want Unauthenticated", clk.since(t0), err)
			}
			assertChallenge(t, readDenial(t, err, h, tr), challenge.ErrorInsufficientClaims, caev1.Reason_REASON_PASSWORD_CHANGED)
		}
	})

	t.Run("an event 29 h late is acknowledged and revokes nothing live", func(t *testing.T) {
		clk := newRetentionClock(t0)
		e, store := retentionEnv(t, clk, nil)
		// The longest token the default validator accepts, issued at the
		// event's time: anything the event could revoke lives at most this long.
		raw := mint(t, tok{sub: "long", iat: t0, exp: t0.Add(token.DefaultMaxTokenLifetime)})
		if _, err, _, _ := e.callUnary(withToken(testCtx(t), raw)); err != nil {
			t.Fatalf("at t0: %v", err)
		}
		clk.Set(t0.Add(29 * time.Hour))
		revoke(t, store) // Put returns nil: acknowledged
		if n := store.ExpiredOnArrival(); n != 1 {
			t.Fatalf("ExpiredOnArrival = %d, want 1", n)
		}
		_, err, _, _ := e.callUnary(withToken(testCtx(t), raw))
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "exp") {
			t.Fatalf("at t+29h: %v, want the token refused as expired", err)
		}
	})
}

// TestFullMemoryStoreFailsClosed guards issue 13 item 11 over gRPC: a
// Memory at its bound refused an event, Health stayed nil, and the revoked
// user's calls went on being allowed. Now calls are refused with the
// store-unavailable denial (and an open stream of that user is cut) until
// the refused event is stored, after which it revokes as usual.
func TestFullMemoryStoreFailsClosed(t *testing.T) {
	clk := newRetentionClock(time.Now())
	store := teststore.Memory(t, revocation.WithMaxEntries(1), revocation.WithClock(clk.Now))
	e := newEnv(t, envOpt{store: store})
	ctx := testCtx(t)
	raw := mint(t, tok{sub: "user-1", sid: "s-full"})
	if _, err, _, _ := e.callUnary(withToken(ctx, raw)); err != nil {
		t.Fatalf("before: %v", err)
	}
	w, err := e.client.WatchInbox(withToken(ctx, raw), &inboxv1.WatchInboxRequest{IntervalMs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}

	// Another subject's event, 27 h old, fills the store.
	filler := revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.IssuerSubjectKey(testIssuer, "other"), Time: clk.Now().Add(-27 * time.Hour)}
	if err := store.Put(ctx, filler); err != nil {
		t.Fatal(err)
	}
	ev := revocation.Event{ID: "pw-1", Type: revocation.TypePasswordChanged, Subject: revocation.IssuerSubjectKey(testIssuer, "user-1"), Time: clk.Now()}
	if err := store.Put(ctx, ev); !errors.Is(err, revocation.ErrFull) {
		t.Fatalf("Put at the bound: %v, want ErrFull", err)
	}

	// The open stream is cut, the next call refused: store unavailable.
	for err == nil {
		_, err = w.Recv()
	}
	if d := readDenial(t, err, nil, w.Trailer()); d.code != codes.Unavailable || d.info.GetReason() != "STATE_UNAVAILABLE" {
		t.Fatalf("open stream after the refused event: %v (reason %s), want Unavailable STATE_UNAVAILABLE", err, d.info.GetReason())
	}
	_, err, h, tr := e.callUnary(withToken(ctx, raw))
	if d := readDenial(t, err, h, tr); d.code != codes.Unavailable || d.info.GetReason() != "STATE_UNAVAILABLE" {
		t.Fatalf("call after the refused event: %v (reason %s), want Unavailable STATE_UNAVAILABLE", err, d.info.GetReason())
	}

	// The filler expires: Health stores the refused event, and the call is
	// refused for the revocation itself.
	clk.Add(revocation.DefaultRetention - 27*time.Hour + time.Second)
	_, err, h, tr = e.callUnary(withToken(ctx, raw))
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after room returned: %v, want Unauthenticated (revoked)", err)
	}
	assertChallenge(t, readDenial(t, err, h, tr), challenge.ErrorInsufficientClaims, caev1.Reason_REASON_PASSWORD_CHANGED)
}
