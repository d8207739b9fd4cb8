package redisstore_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

// TestNewReportsAllBadOptions guards issue 17 step 5's rule for
// constructors: New reports every bad argument in one error (errors.Join),
// where it used to stop at the first, and reports a nil option with its
// position instead of panicking on it. No Redis is contacted: the options
// are refused before.
func TestNewReportsAllBadOptions(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	_, err := redisstore.New(context.Background(), ring,
		redisstore.WithPrefix(""),
		nil,
		redisstore.WithRetention(0),
		redisstore.WithHeartbeat(time.Second),
		redisstore.WithStaleAfter(time.Second),
		redisstore.WithMaxEntries(-1),
		redisstore.WithReplicaAcks(redisstore.MaxReplicaAcks+1, 0),
	)
	if err == nil {
		t.Fatal("New accepted a Ring client and six bad options")
	}
	for _, want := range []string{
		"redis.Ring is not supported",
		"option 1 is nil",
		"prefix must not be empty",
		"retention must be positive, got 0s",
		"stale-after (1s) must be at least twice the heartbeat (1s)",
		"max entries must be positive, got -1",
		"replica acknowledgements must be at most 16, got 17",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestCtxBoundsInitialisationOnlyAndCloseWaits guards the other two rules
// of issue 17 step 5 for Store: the ctx given to NewFromURL bounds only the
// initial subscribe and load (cancelling it afterwards leaves the store
// subscribed and receiving), and Close returns only once the store's
// goroutine has ended (its exit hook has run when Close returns) and nothing of the
// store or its own Redis client is left (goleak); no sleep.
func TestCtxBoundsInitialisationOnlyAndCloseWaits(t *testing.T) {
	srv := redistest.Start(t)
	var exited atomic.Int32
	defer redisstore.OnRunExit(func() { exited.Add(1) })()
	other := open(t, srv.URL()) // a second replica, whose goroutines are not s's
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := redisstore.NewFromURL(ctx, srv.URL(), redisstore.WithLogger(quiet),
		redisstore.WithHeartbeat(testHeartbeat), redisstore.WithStaleAfter(testStaleAfter))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	ev := event(revocation.ObjectKey("t", "after-cancel"), time.Now())
	put(t, other, ev)
	testkit.EventuallyWithin(t, waitFor, "the event published after New's ctx ended", sees(s, ev))
	if err := s.Health(); err != nil {
		t.Fatalf("Health after New's ctx ended: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if exited.Load() != 1 {
		t.Fatal("Close returned before the store's goroutine ended")
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := goleak.Find(before); err != nil {
		t.Fatalf("goroutines left after Close: %v", err)
	}
}
