package receiver_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

func newPoller(t *testing.T, e *env, opts ...receiver.Option) *receiver.Poller {
	t.Helper()
	base := []receiver.Option{receiver.WithPollAuthorization("Bearer " + ssftest.ManagementToken), receiver.WithLimits(receiver.Limits{PollMinBackoff: time.Millisecond, PollMaxBackoff: 10 * time.Millisecond})}
	p, err := receiver.NewPoller(e.r, e.tr.PollURL(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPollPagingAndAcks(t *testing.T) {
	e := newEnv(t)
	var jtis []string
	for i := range 5 {
		set, jti := e.tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{"format": "opaque", "id": fmt.Sprintf("sid-p%d", i)})
		e.tr.Enqueue(jti, set)
		jtis = append(jtis, jti)
	}
	badClaims := e.tr.Claims(ssf.RISCAccountDisabled, nil, userSub)
	badClaims["aud"] = "https://someone-else"
	e.tr.Enqueue(badClaims["jti"].(string), e.tr.Sign(badClaims))

	p := newPoller(t, e, receiver.WithLimits(receiver.Limits{PollMaxEvents: 2}), receiver.WithReturnImmediately(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for e.tr.Queued() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.tr.Queued() != 0 {
		t.Fatalf("%d SETs left at the transmitter", e.tr.Queued())
	}
	for i, jti := range jtis {
		if !e.tr.Acked(jti) {
			t.Fatalf("%s not acknowledged", jti)
		}
		if _, ok := e.store.Lookup(revocation.SessionKey(e.tr.Issuer, fmt.Sprintf("sid-p%d", i))); !ok {
			t.Fatalf("sid-p%d not stored", i)
		}
	}
	if se, ok := e.tr.SetErr(badClaims["jti"].(string)); !ok || se["err"] != receiver.CodeInvalidAudience {
		t.Fatalf("setErrs for the bad SET: %v %v", se, ok)
	}
	if e.tr.Acked(badClaims["jti"].(string)) {
		t.Fatal("bad SET acknowledged")
	}
	reqs := e.tr.PollRequests()
	if len(reqs) < 4 {
		t.Fatalf("%d poll requests; moreAvailable paging needs at least 4 for 6 SETs at 2 per poll", len(reqs))
	}
	if reqs[0]["maxEvents"] != float64(2) || reqs[0]["returnImmediately"] != true {
		t.Fatalf("first request %v", reqs[0])
	}
}

func TestPollStoreOutageThenRecovery(t *testing.T) {
	e := newEnv(t)
	set, jti := e.tr.Event(ssf.RISCAccountDisabled, nil, userSub)
	e.tr.Enqueue(jti, set)
	e.store.fail.Store(true)
	p := newPoller(t, e, receiver.WithReturnImmediately(time.Millisecond))
	res, err := p.Poll(context.Background())
	if !errors.Is(err, receiver.ErrStore) || res.Unstored != 1 || res.Acknowledged != 0 || p.Pending() != 0 {
		t.Fatalf("outage poll: %+v %v pending %d", res, err, p.Pending())
	}
	// Next poll: nothing acknowledged, the transmitter offers it again.
	e.store.fail.Store(false)
	res, err = p.Poll(context.Background())
	if err != nil || res.Received != 1 || res.Acknowledged != 1 {
		t.Fatalf("recovery poll: %+v %v", res, err)
	}
	if e.tr.Acked(jti) {
		t.Fatal("acknowledged before the ack was sent")
	}
	if _, err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !e.tr.Acked(jti) || e.tr.Queued() != 0 {
		t.Fatal("not acknowledged after recovery")
	}
	if _, ok := e.store.Lookup(userKey); !ok {
		t.Fatal("not stored")
	}
}

func TestPollBadTransmitter(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	calls := 0
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		switch n % 4 {
		case 0:
			http.Error(w, "boom", 500)
		case 1:
			_, _ = w.Write([]byte(`{"sets": 5}`))
		case 2:
			_, _ = w.Write([]byte(`{"sets": {"j1": 7, "j2": "not.a.set"}, "moreAvailable": false}`))
		default:
			_, _ = w.Write(make([]byte, 4096))
		}
	}))
	defer bad.Close()
	p, err := receiver.NewPoller(e.r, bad.URL, receiver.WithLimits(receiver.Limits{PollMinBackoff: time.Millisecond, PollMaxBackoff: 2 * time.Millisecond}),
		receiver.WithReturnImmediately(time.Millisecond), receiver.WithLimits(receiver.Limits{PollMaxResponseSize: 1024}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls < 4 {
		t.Fatalf("only %d polls", calls)
	}
}
