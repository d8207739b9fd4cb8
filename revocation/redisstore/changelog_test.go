package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

// TestReconnectCatchesUpFromChangeLog: after a dropped connection, a
// replica reads only the changes since its position in the change log, not
// every event (issue 16 item 3: a reconnect must not cost a full reload of a
// million keys). Events written during the cut, which the replica could not
// receive by Pub/Sub, are enforced; no full reload runs; and a reader checking
// Health without pause never sees the replica fail closed.
func TestReconnectCatchesUpFromChangeLog(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewProxy(t, srv.Addr())
	writer := open(t, srv.URL())
	replica := open(t, proxy.URL(), redisstore.WithStaleAfter(20*time.Second))
	for i := range 1000 {
		put(t, writer, event(revocation.ObjectKey("t", fmt.Sprint("before-", i)), time.Now()))
	}
	testkit.EventuallyWithin(t, waitFor, "the replica to mirror every event", func() bool { return replica.Len() == 1000 })
	fulls := replica.FullSyncs()

	var stop atomic.Bool
	var healthErr atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if err := replica.Health(); err != nil {
				healthErr.CompareAndSwap(nil, err.Error())
			}
			time.Sleep(time.Millisecond)
		}
	}()

	catchUps := replica.CatchUps()
	proxy.Cut()
	missed := make([]revocation.Event, 50)
	for i := range missed {
		missed[i] = event(revocation.ObjectKey("t", fmt.Sprint("during-", i)), time.Now())
		put(t, writer, missed[i])
	}
	proxy.Restore()
	for _, ev := range missed {
		testkit.EventuallyWithin(t, waitFor, "the replica to enforce an event written during the cut", sees(replica, ev))
	}
	stop.Store(true)
	wg.Wait()
	if e := healthErr.Load(); e != nil {
		t.Errorf("Health failed during a disconnect shorter than StaleAfter: %v", e)
	}
	if got := replica.FullSyncs(); got != fulls {
		t.Errorf("the reconnect ran %d full reloads, want 0 (the change log holds every change)", got-fulls)
	}
	if replica.CatchUps() == catchUps {
		t.Error("no catch-up from the change log ran after the reconnect")
	}
}

// TestChangeLogGapFallsBackToFullReload: when the replica's position is no
// longer in the change log (here the log is deleted during the cut, as a
// Redis restarted without persistence or a failover to a replica that never
// got the entry would leave it), the replica reloads every event instead of
// trusting a log that misses changes.
func TestChangeLogGapFallsBackToFullReload(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewProxy(t, srv.Addr())
	writer := open(t, srv.URL(), redisstore.WithChangeLog(0)) // writes no log entry at all
	replica := open(t, proxy.URL())
	missed := event(revocation.ObjectKey("t", "written-without-a-log-entry"), time.Now())
	full := missWhileCut(t, proxy, replica, missed, func() {
		if n, err := redistest.Command(srv.Addr(), "DEL caekit:changes"); err != nil || n != "1" {
			t.Fatalf("DEL caekit:changes = %s, %v; want 1", n, err)
		}
		put(t, writer, missed)
	})
	if !full {
		t.Error("the replica found the event without a full reload, yet the log could not have named it")
	}
}

// missWhileCut cuts replica off Redis through proxy, runs during (which
// stores ev behind the replica's back), lets it reconnect and waits until it
// enforces ev. It reports whether that took a full reload.
func missWhileCut(t *testing.T, proxy *redistest.Proxy, replica *redisstore.Store, ev revocation.Event, during func()) (fullReload bool) {
	t.Helper()
	fulls := replica.FullSyncs()
	proxy.Cut()
	during()
	proxy.Restore()
	testkit.EventuallyWithin(t, waitFor, "the replica to enforce the event stored while it was cut off", sees(replica, ev))
	return replica.FullSyncs() != fulls
}

// TestLostMessageCaughtUpAtHeartbeat: an event whose Pub/Sub message never
// arrives (written here behind the store's back, with a log entry but no
// PUBLISH, as when a message is lost on a live connection) is enforced
// within a few heartbeats through the change log, long before the periodic
// full reload. Without the log the same event stays unseen.
func TestLostMessageCaughtUpAtHeartbeat(t *testing.T) {
	for _, withLog := range []bool{true, false} {
		t.Run(fmt.Sprintf("log=%v", withLog), func(t *testing.T) {
			srv := redistest.Start(t)
			opts := []redisstore.Option{redisstore.WithResyncInterval(time.Hour)}
			if !withLog {
				opts = append(opts, redisstore.WithChangeLog(0))
			}
			s := open(t, srv.URL(), opts...)
			ev := event(revocation.ObjectKey("t", "silent"), time.Now())
			v := redisstore.Encode(ev)
			cmds := []string{"SET " + redisstore.SubjectKey(redisstore.DefaultPrefix, ev.Subject) + " " + v + " PX 600000"}
			if withLog {
				cmds = append(cmds, "XADD caekit:changes * e "+v)
			}
			if strings.ContainsAny(v, " \"'") {
				t.Fatalf("encoded event %q cannot be sent as a plain command", v)
			}
			if _, err := redistest.Commands(srv.Addr(), cmds...); err != nil {
				t.Fatal(err)
			}
			if withLog {
				testkit.EventuallyWithin(t, waitFor, "the store to catch up from the change log", sees(s, ev))
				return
			}
			time.Sleep(20 * testHeartbeat)
			if sees(s, ev)() {
				t.Fatal("without a change log the store saw an event no message announced: the test cannot tell the log's effect")
			}
		})
	}
}

// TestForgedChangeLogEntryChangesNothing: a log entry is a hint, like a
// Pub/Sub message: one that names a subject Redis holds no event for
// revokes nothing, and does not stop the store from following the log.
func TestForgedChangeLogEntryChangesNothing(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	forged := event(revocation.ObjectKey("t", "forged"), time.Now())
	if _, err := redistest.Commands(srv.Addr(), "XADD caekit:changes * e "+redisstore.Encode(forged), "XADD caekit:changes * e garbage"); err != nil {
		t.Fatal(err)
	}
	writer := open(t, srv.URL())
	real := event(revocation.ObjectKey("t", "real"), time.Now())
	put(t, writer, real)
	testkit.EventuallyWithin(t, waitFor, "the store to enforce the real event", sees(s, real))
	time.Sleep(4 * testHeartbeat) // several catch-ups past both entries
	if _, ok := s.Lookup(forged.Subject); ok {
		t.Fatal("a forged change-log entry revoked a subject Redis holds no event for")
	}
}

// TestChangeLogIsBounded: Put trims the log to about WithChangeLog entries.
func TestChangeLogIsBounded(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redisstore.WithChangeLog(redisstore.MinChangeLogLen))
	for i := range 3 * redisstore.MinChangeLogLen {
		put(t, s, event(revocation.ObjectKey("t", fmt.Sprint("u-", i)), time.Now()))
	}
	n, err := redistest.Command(srv.Addr(), "XLEN caekit:changes")
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole stream nodes (100 entries by default), so the
	// log may exceed the bound by up to a node.
	var got int
	fmt.Sscan(n, &got)
	if got > redisstore.MinChangeLogLen+100 {
		t.Fatalf("change log holds %d entries after %d Puts, want about %d", got, 3*redisstore.MinChangeLogLen, redisstore.MinChangeLogLen)
	}
}

func TestChangeLogOption(t *testing.T) {
	srv := redistest.Start(t)
	for _, n := range []int{-1, 1, redisstore.MinChangeLogLen - 1, redisstore.MaxChangeLogLen + 1} {
		_, err := redisstore.NewFromURL(context.Background(), srv.URL(), redisstore.WithChangeLog(n))
		if err == nil || !strings.Contains(err.Error(), "change log length") {
			t.Errorf("WithChangeLog(%d): err = %v, want a change log length error", n, err)
		}
	}
}

// TestChangeLogPositionMustBeTheSameEntry: a position is an entry, not only
// an ID. After a failover to a primary that never got the replica's last
// entry, and whose clock is behind, a new entry can take that very ID; the
// replica must then reload, not skip everything the new primary wrote
// before. Here the log is replaced by one whose first entry has the
// replica's ID but another value, and an event is stored with no entry.
func TestChangeLogPositionMustBeTheSameEntry(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewProxy(t, srv.Addr())
	replica := open(t, proxy.URL())
	last, err := rawClient(t, srv.Addr()).XRevRangeN(context.Background(), "caekit:changes", "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("XREVRANGE caekit:changes = %v, %v; want the replica's position mark", last, err)
	}
	id := last[0].ID
	missed := event(revocation.ObjectKey("t", "stored-after-a-failover"), time.Now())
	full := missWhileCut(t, proxy, replica, missed, func() {
		if _, err := redistest.Commands(srv.Addr(),
			"DEL caekit:changes",
			"XADD caekit:changes "+id+" m another-store-1",
			"SET "+redisstore.SubjectKey(redisstore.DefaultPrefix, missed.Subject)+" "+redisstore.Encode(missed)+" PX 600000",
		); err != nil {
			t.Fatal(err)
		}
	})
	if !full {
		t.Error("no full reload after the position's entry changed")
	}
}

// TestReadOnlyUserFollowsWithoutChangeLog: a store whose Redis user may not
// write (a replica that only enforces, never ingests) cannot mark its
// position in the change log. It still starts, and falls back to full
// reloads: an event stored while it was disconnected is found.
func TestReadOnlyUserFollowsWithoutChangeLog(t *testing.T) {
	srv := redistest.Start(t)
	if _, err := redistest.Command(srv.Addr(), "ACL SETUSER reader on >secret ~* &* +@all -@write"); err != nil {
		t.Fatal(err)
	}
	proxy := redistest.NewProxy(t, srv.Addr())
	writer := open(t, srv.URL())
	reader := open(t, "redis://reader:secret@"+proxy.Addr()+"/0")
	live := event(revocation.ObjectKey("t", "published"), time.Now())
	put(t, writer, live)
	testkit.EventuallyWithin(t, waitFor, "the read-only store to enforce a published event", sees(reader, live))
	missed := event(revocation.ObjectKey("t", "during-the-cut"), time.Now())
	if !missWhileCut(t, proxy, reader, missed, func() { put(t, writer, missed) }) {
		t.Error("the read-only store found the event without a full reload")
	}
	if err := reader.Health(); err != nil {
		t.Errorf("Health = %v", err)
	}
}
