package receiver_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caekit/caekit/revocation/ssf/receiver"
)

// floodN is the number of pushes of each kind in TestPushFloodMemoryBounded:
// 2,000 by default (the package must stay fast under -race, where a push
// takes ~2 ms), 500 with -short; CAEKIT_SSF_FLOOD=50000 runs the full-size
// flood (about 20 s without -race).
func floodN() int {
	if s := os.Getenv("CAEKIT_SSF_FLOOD"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	if testing.Short() {
		return 500
	}
	return 2_000
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestPushFloodMemoryBounded floods the push endpoint of a real receiver on
// loopback with invalid SETs, redeliveries and a stream of distinct
// non-revoking SETs well beyond the dedup bound, and checks that the heap
// stays bounded and that nothing invalid reached the store.
func TestPushFloodMemoryBounded(t *testing.T) {
	n := floodN()
	const dedupMax = 200
	var outcomes sync.Map // receiver.Outcome -> *atomic.Int64
	count := func(o receiver.Outcome) int64 {
		v, _ := outcomes.LoadOrStore(o, new(atomic.Int64))
		return v.(*atomic.Int64).Load()
	}
	obs := receiver.ObserverFunc(func(o receiver.Observation) {
		v, _ := outcomes.LoadOrStore(o.Outcome, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	})
	r, store := fuzzReceiver(t, receiver.WithLimits(receiver.Limits{DedupEntries: dedupMax, DedupTTL: time.Hour}), receiver.WithObserver(obs), receiver.WithPushAuthorization(pushAuth))
	defer r.Close()
	srv := httptest.NewServer(r)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()

	set := func(jti, eventType, sub string) []byte {
		return signSET(t, fmt.Appendf(nil, `{"iss":%q,"aud":"aud","iat":%d,"jti":%q,"sub_id":{"format":"opaque","id":%q},"events":{%q:{}}}`,
			fuzzIssuer, fuzzNow.Unix(), jti, sub, eventType))
	}
	const revoke = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	// 100 genuine revoking SETs, to be redelivered.
	originals := make([][]byte, 100)
	for i := range originals {
		originals[i] = set(fmt.Sprint("orig-", i), revoke, fmt.Sprint("sid-", i))
	}
	good := originals[0]
	invalid := [][]byte{
		[]byte("garbage"),
		[]byte("a.b.c"),
		bytes.Repeat([]byte("x"), 60<<10),
		append(append([]byte(nil), good[:len(good)-8]...), "AAAAAAAA"...),                                    // bad signature
		set("wrong-aud", revoke, "s")[:0],                                                                    // empty body
		signSET(t, []byte(`{"iss":"https://evil.test","aud":"aud","iat":1700000000,"jti":"x","events":{}}`)), // wrong iss
		signSET(t, []byte(`{"iss":"https://tr.test","aud":"other","iat":1700000000,"jti":"y","events":{}}`)), // wrong aud
		signSET(t, []byte(`{"iss":"https://tr.test","aud":"aud","iat":1,"jti":"z","events":{}}`)),            // iat too old
	}

	push := func(body []byte) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0
		}
		req.Header.Set("Content-Type", contentTypeSET)
		req.Header.Set("Authorization", pushAuth)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	// flood pushes n bodies from gen with 8 concurrent senders and counts statuses.
	flood := func(n int, gen func(i int) []byte, wantStatus int) {
		t.Helper()
		var next, wrong atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					if st := push(gen(i)); st != wantStatus {
						wrong.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if w := wrong.Load(); w != 0 {
			t.Fatalf("%d of %d pushes did not get status %d", w, n, wantStatus)
		}
	}

	for _, o := range originals {
		if st := push(o); st != http.StatusAccepted {
			t.Fatalf("original: status %d", st)
		}
	}
	storedBefore := store.Len()
	before := heapInUse()
	start := time.Now()

	flood(n, func(i int) []byte { return invalid[i%len(invalid)] }, http.StatusBadRequest)
	flood(n, func(i int) []byte { return originals[i%len(originals)] }, http.StatusAccepted)
	// Distinct acknowledged SETs (unknown event type: remembered for dedup,
	// not stored), many times the dedup bound.
	distinct := max(n/5, 5*dedupMax)
	pre := make([][]byte, distinct)
	for i := range pre {
		pre[i] = set(fmt.Sprint("distinct-", i), "https://example.test/unknown-event", "x")
	}
	flood(distinct, func(i int) []byte { return pre[i] }, http.StatusAccepted)
	pre = nil
	elapsed := time.Since(start)

	after := heapInUse()
	growth := int64(after) - int64(before)
	t.Logf("%d invalid + %d duplicate + %d distinct pushes in %v (%.0f/s); heap %d KiB -> %d KiB (%+d KiB); outcomes: rejected %d, duplicate %d, unknown type %d",
		n, n, distinct, elapsed.Round(time.Millisecond), float64(2*n+distinct)/elapsed.Seconds(),
		before>>10, after>>10, growth>>10, count(receiver.OutcomeRejected), count(receiver.OutcomeDuplicate), count(receiver.OutcomeUnknownType))

	// The dedup cache holds at most dedupMax results (~1 KiB each at most):
	// a generous bound for it plus noise is 16 MiB, far below what the
	// flood would take if pushes were remembered.
	if growth > 16<<20 {
		t.Fatalf("heap grew by %d KiB over the flood", growth>>10)
	}
	if got := store.Len(); got != storedBefore {
		t.Fatalf("store went from %d to %d entries: invalid or duplicate SETs were stored", storedBefore, got)
	}
	if got := count(receiver.OutcomeDuplicate); got < int64(n) {
		t.Fatalf("%d duplicates observed, want %d", got, n)
	}
	// The dedup bound evicted the oldest: the first originals, redelivered
	// now, are processed again (and stored again, idempotently), not crashing.
	if st := push(originals[0]); st != http.StatusAccepted {
		t.Fatalf("redelivery after eviction: status %d", st)
	}
}
