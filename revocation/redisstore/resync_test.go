package redisstore_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

// TestShortDisconnectKeepsServing guards the promise of issue 16 item 3: a
// replica whose connection to Redis drops for less than the staleness
// threshold keeps answering while it reconnects and resynchronises (SCAN
// and reload of every event), neither blocking nor failing closed. A reader
// looks up every mirrored subject and checks Health without pause from
// before the cut until after the resynchronisation has brought in an event
// written during the cut (which only the resync can deliver: the message was
// published while the replica's connections were reset). It fails if a
// look-up misses a mirrored event or Health reports an error at any point.
func TestShortDisconnectKeepsServing(t *testing.T) {
	const n = 5000
	// A threshold far above the cut and the resync of n events, so that an
	// error from Health can only mean the resync itself fails closed.
	const staleAfter = 20 * time.Second
	srv := redistest.Start(t)
	proxy := redistest.NewProxy(t, srv.Addr())
	writer := open(t, srv.URL())
	replica := open(t, proxy.URL(), redisstore.WithStaleAfter(staleAfter), redisstore.WithStalenessPolicy(redisstore.FailClosed))

	evs := make([]revocation.Event, n)
	for i := range evs {
		evs[i] = event(revocation.ObjectKey("72f988bf-86f1-41af-91ab-2d7cd011db47", fmt.Sprintf("obj-%d", i)), time.Now())
		put(t, writer, evs[i])
	}
	testkit.EventuallyWithin(t, waitFor, "the replica to mirror every event", func() bool { return replica.Len() == n })

	var (
		stop     atomic.Bool
		rounds   atomic.Int64
		wg       sync.WaitGroup
		failMu   sync.Mutex
		failures []string
	)
	fail := func(s string) {
		failMu.Lock()
		defer failMu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, s)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			for _, ev := range evs {
				if err := replica.Health(); err != nil {
					fail(fmt.Sprintf("Health = %v", err))
				}
				if _, ok := replica.Lookup(ev.Subject); !ok {
					fail(fmt.Sprintf("Lookup(%v) missed a mirrored event", ev.Subject))
				}
			}
			rounds.Add(1)
		}
	}()
	testkit.EventuallyWithin(t, waitFor, "the reader to start", func() bool { return rounds.Load() > 0 })

	proxy.Cut()
	missed := event(revocation.ObjectKey("72f988bf-86f1-41af-91ab-2d7cd011db47", "written-during-the-cut"), time.Now())
	put(t, writer, missed)
	proxy.Restore()
	testkit.EventuallyWithin(t, waitFor, "the replica to resynchronise and see the event written during the cut", sees(replica, missed))
	before := rounds.Load()
	testkit.EventuallyWithin(t, waitFor, "the reader to finish a round after the resync", func() bool { return rounds.Load() > before })
	stop.Store(true)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if err := replica.Health(); err != nil {
		t.Fatalf("Health after the resync = %v", err)
	}
}
