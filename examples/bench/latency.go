package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// latencyResult summarises n latency samples.
type latencyResult struct {
	N     int     `json:"n"`
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
	MaxUs float64 `json:"max_us"`
}

func summarise(lat []time.Duration) latencyResult {
	slices.Sort(lat)
	return latencyResult{
		N: len(lat), P50us: micros(percentile(lat, 0.50)), P99us: micros(percentile(lat, 0.99)),
		MaxUs: micros(lat[len(lat)-1]),
	}
}

// measureStreamCut opens a WatchInbox stream (the handler then idles
// between messages), puts a session-revoked event for the stream's token
// into e.stores[0], and times how long the client waits for the stream to
// end with codes.Unauthenticated. The stream runs on connection conn (in the
// Redis case connection 2 reaches the third replica, so the event crosses
// Redis). Each iteration uses a fresh session and token.
func measureStreamCut(e *env, conn, n int) (latencyResult, error) {
	if len(e.stores) == 0 {
		return latencyResult{}, errors.New("stream cut needs a caekit case")
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		d, err := streamCutOnce(e, conn, "sid-cut-"+strconv.Itoa(i))
		if err != nil {
			return latencyResult{}, fmt.Errorf("%s: stream cut %d: %w", e.spec.Name, i, err)
		}
		lat = append(lat, d)
	}
	return summarise(lat), nil
}

func streamCutOnce(e *env, conn int, sid string) (time.Duration, error) {
	raw, err := e.mintToken(2, sid)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(bearerContext(context.Background(), raw), 10*time.Second)
	defer cancel()
	st, err := e.clients[conn%len(e.clients)].WatchInbox(ctx, &inboxv1.WatchInboxRequest{IntervalMs: 60_000})
	if err != nil {
		return 0, err
	}
	if _, err := st.Recv(); err != nil {
		return 0, fmt.Errorf("first message: %w", err)
	}
	ev := revocation.Event{ID: "cut-" + sid, Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey(issuer, sid), Time: time.Now()}
	start := time.Now()
	if err := e.stores[0].Put(ctx, ev); err != nil {
		return 0, fmt.Errorf("put: %w", err)
	}
	_, err = st.Recv()
	d := time.Since(start)
	if err == nil {
		return 0, errors.New("stream still delivers messages after the revocation")
	}
	if status.Code(err) != codes.Unauthenticated {
		return 0, fmt.Errorf("stream ended with %v, want Unauthenticated", err)
	}
	return d, nil
}

// measurePropagation puts n events, one at a time, into stores[0] and times
// each from the start of Put until stores[1] and stores[2] have both
// notified their subscribers (which they do once Lookup returns it).
func measurePropagation(stores []revocation.Store, n int) (latencyResult, error) {
	if len(stores) < 3 {
		return latencyResult{}, errors.New("propagation needs three replicas")
	}
	var (
		mu      sync.Mutex
		pending = map[string]chan struct{}{}
		seen    = map[string]int{}
	)
	for _, s := range stores[1:3] {
		unsub := s.Subscribe(func(ev revocation.Event) {
			mu.Lock()
			defer mu.Unlock()
			if seen[ev.ID]++; seen[ev.ID] == 2 {
				if ch := pending[ev.ID]; ch != nil {
					close(ch)
				}
			}
		})
		defer unsub()
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, n)
	for i := range n {
		id := "prop-" + strconv.Itoa(i) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		done := make(chan struct{})
		mu.Lock()
		pending[id] = done
		mu.Unlock()
		ev := revocation.Event{ID: id, Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey(issuer, id), Time: time.Now()}
		start := time.Now()
		if err := stores[0].Put(ctx, ev); err != nil {
			return latencyResult{}, fmt.Errorf("propagation: put: %w", err)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			return latencyResult{}, fmt.Errorf("propagation: event %d did not reach both replicas within 5s", i)
		}
		lat = append(lat, time.Since(start))
		mu.Lock()
		delete(pending, id)
		delete(seen, id)
		mu.Unlock()
	}
	return summarise(lat), nil
}
