//go:build soak

package soak_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

var (
	flagDuration = flag.Duration("soak.duration", 0, "how long the soak runs (default 10m, or CAEKIT_SOAK_DURATION)")
	flagSubjects = flag.Int("soak.subjects", 2000, "number of distinct subjects calling")
	flagEvents   = flag.Int("soak.events", 4000, "revocation events written per second")
	flagWorkers  = flag.Int("soak.workers", 24, "concurrent callers (a third of them open streams)")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	issuer   = "https://login.soak.test/tenant/v2.0"
	audience = "api://soak"
	tenant   = "tenant"
	kid      = "soak-key"
)

func soakDuration(t *testing.T) time.Duration {
	d := 10 * time.Minute
	if s := os.Getenv("CAEKIT_SOAK_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CAEKIT_SOAK_DURATION: %v", err)
		}
		d = v
	}
	if *flagDuration > 0 {
		d = *flagDuration
	}
	if dl, ok := t.Deadline(); ok && time.Until(dl) < d+time.Minute {
		t.Fatalf("the soak runs %v but the test deadline is in %v: pass -timeout %v", d, time.Until(dl).Round(time.Second), (d + 5*time.Minute).Round(time.Minute))
	}
	return d
}

// subject is one caller identity and what the storm did to it.
type subject struct {
	name string
	keys [2]revocation.Key // iss_sub and object keys: events name either

	mu  sync.Mutex
	cur *tokenInfo // the token its callers use now

	// Revoking-relevant event times (unix seconds): the max event time of
	// Puts that have started, and of Puts that have returned.
	started atomic.Int64
	done    atomic.Int64
}

type tokenInfo struct {
	raw string
	iat int64 // unix seconds
}

func raiseTo(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

type counters struct {
	unaryAllowed, unaryDenied, unaryExcused         atomic.Int64
	streamsOpened, streamsDenied, streamsCut        atomic.Int64
	streamsExcused, streamMessages                  atomic.Int64
	wrongAllows, wrongDenials, lateStreams, errored atomic.Int64
	reminted, eventsPut, eventsRevoking             atomic.Int64
	maxCutLatency                                   atomic.Int64 // nanoseconds
}

type soak struct {
	t      *testing.T
	key    *ecdsa.PrivateKey
	subs   []*subject
	store  *revocation.Memory
	client inboxv1.InboxServiceClient
	c      counters
	start  time.Time
}

func (s *soak) mint(sub *subject, iat int64) *tokenInfo {
	j := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": issuer, "aud": audience, "sub": sub.name, "oid": "oid-" + sub.name, "tid": tenant,
		"xms_cc": []string{"cp1"}, "iat": iat, "exp": iat + int64(3*time.Hour/time.Second),
	})
	j.Header["kid"] = kid
	raw, err := j.SignedString(s.key)
	if err != nil {
		panic(err)
	}
	return &tokenInfo{raw: raw, iat: iat}
}

// token returns sub's current token.
func (s *soak) token(sub *subject) *tokenInfo {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.cur
}

// remint gives sub a token issued after every event started so far, unless
// another caller did already.
func (s *soak) remint(sub *subject, old *tokenInfo) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.cur != old {
		return
	}
	iat := max(time.Now().Unix(), sub.started.Load()) + 1
	sub.cur = s.mint(sub, iat)
	s.c.reminted.Add(1)
}

// judge classifies a call that used tk: done was read before the call
// started, started after it ended.
type verdict int

const (
	mustAllow verdict = iota
	mustDeny
	excused
)

func judge(tk *tokenInfo, doneBefore, startedAfter int64) verdict {
	switch {
	case doneBefore >= tk.iat:
		return mustDeny
	case startedAfter < tk.iat:
		return mustAllow
	default:
		return excused
	}
}

func isRevocationDenial(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unauthenticated
}

func (s *soak) unaryWorker(ctx context.Context, rng *mrand.Rand) {
	for ctx.Err() == nil {
		sub := s.subs[rng.IntN(len(s.subs))]
		tk := s.token(sub)
		doneBefore := sub.done.Load()
		callCtx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tk.raw)
		resp, err := s.client.GetMessage(callCtx, &inboxv1.GetMessageRequest{Id: "1"})
		startedAfter := sub.started.Load()
		// At the end of the run the server may see the propagated deadline
		// expire a moment before the client's context does.
		if ctx.Err() != nil || (status.Code(err) == codes.DeadlineExceeded && endsWithin(ctx, time.Second)) {
			return
		}
		v := judge(tk, doneBefore, startedAfter)
		switch {
		case err == nil:
			if resp.GetSubject() != sub.name {
				s.fail("handler saw subject %q, want %q", resp.GetSubject(), sub.name)
			}
			s.c.unaryAllowed.Add(1)
			if v == mustDeny {
				s.c.wrongAllows.Add(1)
				s.fail("unary call allowed for %s (iat %d) although an event at %d had been ingested before it started", sub.name, tk.iat, doneBefore)
			}
		case isRevocationDenial(err):
			s.c.unaryDenied.Add(1)
			if v == mustAllow {
				s.c.wrongDenials.Add(1)
				s.fail("unary call denied for %s (iat %d, no event at or after it): %v", sub.name, tk.iat, err)
			}
			s.remint(sub, tk)
		default:
			s.c.errored.Add(1)
			s.fail("unary call for %s: unexpected error %v", sub.name, err)
		}
		if v == excused {
			s.c.unaryExcused.Add(1)
		}
	}
}

func (s *soak) streamWorker(ctx context.Context, rng *mrand.Rand) {
	for ctx.Err() == nil {
		sub := s.subs[rng.IntN(len(s.subs))]
		tk := s.token(sub)
		doneBefore := sub.done.Load()
		sctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tk.raw),
			time.Duration(500+rng.IntN(2000))*time.Millisecond)
		s.runStream(sctx, ctx, sub, tk, doneBefore)
		cancel()
	}
}

func (s *soak) runStream(sctx, ctx context.Context, sub *subject, tk *tokenInfo, doneBefore int64) {
	w, err := s.client.WatchInbox(sctx, &inboxv1.WatchInboxRequest{IntervalMs: 20})
	var first *inboxv1.WatchInboxResponse
	if err == nil {
		first, err = w.Recv()
	}
	startedAfter := sub.started.Load()
	if ctx.Err() != nil {
		return
	}
	v := judge(tk, doneBefore, startedAfter)
	if err != nil {
		if status.Code(err) == codes.DeadlineExceeded {
			return
		}
		if !isRevocationDenial(err) {
			s.c.errored.Add(1)
			s.fail("stream open for %s: unexpected error %v", sub.name, err)
			return
		}
		s.c.streamsDenied.Add(1)
		if v == mustAllow {
			s.c.wrongDenials.Add(1)
			s.fail("stream denied for %s (iat %d, no event at or after it): %v", sub.name, tk.iat, err)
		} else if v == excused {
			s.c.streamsExcused.Add(1)
		}
		s.remint(sub, tk)
		return
	}
	_ = first
	s.c.streamsOpened.Add(1)
	if v == mustDeny {
		s.c.wrongAllows.Add(1)
		s.fail("stream opened for %s (iat %d) although an event at %d had been ingested before", sub.name, tk.iat, doneBefore)
	}
	// Watch it: once a revoking Put has returned (seen at revokedSeen), a
	// message more than a second later means the stream was not cut.
	var revokedSeen time.Time
	for {
		if revokedSeen.IsZero() && sub.done.Load() >= tk.iat {
			revokedSeen = time.Now()
		}
		_, err := w.Recv()
		now := time.Now()
		if err == nil {
			s.c.streamMessages.Add(1)
			if !revokedSeen.IsZero() && now.Sub(revokedSeen) > time.Second {
				s.c.lateStreams.Add(1)
				s.fail("stream of %s (iat %d) still delivered %v after its revocation was ingested", sub.name, tk.iat, now.Sub(revokedSeen))
				return
			}
			continue
		}
		if ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded || errors.Is(err, io.EOF) {
			return
		}
		if !isRevocationDenial(err) {
			s.c.errored.Add(1)
			s.fail("stream of %s: unexpected error %v", sub.name, err)
			return
		}
		// Cut by the interceptor: only legitimate if an event at or after
		// the iat had at least started.
		s.c.streamsCut.Add(1)
		if sub.started.Load() < tk.iat {
			s.c.wrongDenials.Add(1)
			s.fail("stream of %s (iat %d) cut with no event at or after its iat: %v", sub.name, tk.iat, err)
		}
		if !revokedSeen.IsZero() {
			raiseTo(&s.c.maxCutLatency, int64(now.Sub(revokedSeen)))
		}
		s.remint(sub, tk)
		return
	}
}

// storm writes about rate events per second until ctx ends: 70% about
// unrelated sessions, 25% old events (times before the subjects' current
// tokens, mostly harmless), 5% new events that revoke.
func (s *soak) storm(ctx context.Context, rate int) {
	rng := mrand.New(mrand.NewPCG(7, 7))
	const tick = 5 * time.Millisecond
	perTick := max(1, rate*int(tick)/int(time.Second))
	tk := time.NewTicker(tick)
	defer tk.Stop()
	seq := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		now := time.Now()
		for range perTick {
			seq++
			ev := revocation.Event{ID: fmt.Sprint("ev-", seq), Type: revocation.TypeRefreshTokensRevoked}
			var sub *subject
			switch p := rng.IntN(100); {
			case p < 70:
				ev.Subject = revocation.SessionKey(issuer, fmt.Sprint("unrelated-", rng.IntN(20_000)))
				ev.Time = now.Add(-time.Duration(rng.IntN(3600)) * time.Second)
			case p < 95:
				sub = s.subs[rng.IntN(len(s.subs))]
				ev.Subject = sub.keys[rng.IntN(2)]
				ev.Time = now.Add(-time.Duration(60+rng.IntN(7200)) * time.Second)
			default:
				sub = s.subs[rng.IntN(len(s.subs))]
				ev.Subject = sub.keys[rng.IntN(2)]
				ev.Time = now
			}
			if sub != nil {
				raiseTo(&sub.started, ev.Time.Unix())
			}
			if err := s.store.Put(ctx, ev); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.fail("Put: %v", err)
				continue
			}
			if sub != nil {
				raiseTo(&sub.done, ev.Time.Unix())
				if ev.Time.Unix() >= s.token(sub).iat {
					s.c.eventsRevoking.Add(1)
				}
			}
			s.c.eventsPut.Add(1)
		}
	}
}

var failures atomic.Int64

// fail records a violation; the first few are printed in full.
func (s *soak) fail(format string, args ...any) {
	if failures.Add(1) <= 20 {
		s.t.Errorf(format, args...)
	}
}

type sample struct {
	at         time.Duration
	heap       uint64
	goroutines int
	storeLen   int
}

func takeSample(start time.Time, store *revocation.Memory) sample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{at: time.Since(start).Round(time.Second), heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine(), storeLen: store.Len()}
}

func TestSoak(t *testing.T) {
	duration := soakDuration(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewValidator(context.Background(), token.WithIssuer(issuer), token.WithAudience(audience),
		token.WithStaticKey(kid, &key.PublicKey), token.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	store := teststore.Memory(t)
	srv, err := interceptor.New(v, interceptor.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(srv.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(gs, &testkit.Inbox{RequireSubject: true, Subject: testkit.ClaimsSubject(interceptor.ClaimsFromContext, func(c *interceptor.Claims) string { return c.Subject })})
	served := make(chan struct{})
	go func() { defer close(served); _ = gs.Serve(lis) }()
	defer func() { gs.Stop(); <-served }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	s := &soak{t: t, key: key, store: store, client: inboxv1.NewInboxServiceClient(conn), start: time.Now()}
	initialIAT := s.start.Add(-30 * time.Minute).Unix() // old enough for some "old" events to revoke
	for i := range *flagSubjects {
		name := fmt.Sprintf("user-%05d", i)
		sub := &subject{name: name, keys: [2]revocation.Key{revocation.IssuerSubjectKey(issuer, name), revocation.ObjectKey(tenant, "oid-"+name)}}
		sub.cur = s.mint(sub, initialIAT)
		s.subs = append(s.subs, sub)
	}

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.storm(ctx, *flagEvents) })
	streams := max(1, *flagWorkers/3)
	for i := range *flagWorkers {
		rng := mrand.New(mrand.NewPCG(uint64(i), 99))
		if i < streams {
			wg.Go(func() { s.streamWorker(ctx, rng) })
		} else {
			wg.Go(func() { s.unaryWorker(ctx, rng) })
		}
	}

	// Sample memory and goroutines; the first sample after a warm-up is the
	// baseline.
	every := min(30*time.Second, max(2*time.Second, duration/20))
	var samples []sample
	tick := time.NewTicker(every)
	lastPut, lastCalls := int64(0), int64(0)
sampling:
	for {
		select {
		case <-ctx.Done():
			break sampling
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		sm := takeSample(s.start, store)
		samples = append(samples, sm)
		put, calls := s.c.eventsPut.Load(), s.c.unaryAllowed.Load()+s.c.unaryDenied.Load()
		t.Logf("t=%v heap=%d KiB goroutines=%d store=%d events/s=%.0f unary/s=%.0f streams=%d cut=%d violations=%d",
			sm.at, sm.heap>>10, sm.goroutines, sm.storeLen, float64(put-lastPut)/every.Seconds(), float64(calls-lastCalls)/every.Seconds(),
			s.c.streamsOpened.Load(), s.c.streamsCut.Load(), failures.Load())
		lastPut, lastCalls = put, calls
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(s.start)

	c := &s.c
	t.Logf("soak of %v: %d subjects, %d workers (%d streaming)", elapsed.Round(time.Second), len(s.subs), *flagWorkers, streams)
	t.Logf("events: %d put (%.0f/s), %d of them revoking a current token", c.eventsPut.Load(), float64(c.eventsPut.Load())/elapsed.Seconds(), c.eventsRevoking.Load())
	t.Logf("unary: %d allowed, %d denied (%d racing with a Put, excused) — %.0f calls/s",
		c.unaryAllowed.Load(), c.unaryDenied.Load(), c.unaryExcused.Load(), float64(c.unaryAllowed.Load()+c.unaryDenied.Load())/elapsed.Seconds())
	t.Logf("streams: %d opened, %d denied at open (%d excused), %d cut mid-stream (worst %v after the caller saw the Put done), %d messages",
		c.streamsOpened.Load(), c.streamsDenied.Load(), c.streamsExcused.Load(), c.streamsCut.Load(),
		time.Duration(c.maxCutLatency.Load()).Round(time.Microsecond), c.streamMessages.Load())
	t.Logf("tokens re-minted after a denial: %d", c.reminted.Load())
	t.Logf("violations: %d wrongful allows, %d wrongful denials, %d streams not cut in time, %d unexpected errors",
		c.wrongAllows.Load(), c.wrongDenials.Load(), c.lateStreams.Load(), c.errored.Load())

	if c.unaryAllowed.Load() == 0 || c.unaryDenied.Load() == 0 || c.streamsOpened.Load() == 0 || c.streamsCut.Load()+c.streamsDenied.Load() == 0 {
		t.Errorf("the soak did not exercise both outcomes on both call kinds")
	}
	if n := failures.Load(); n > 0 {
		t.Errorf("%d violations", n)
	}

	// Memory and goroutines: compare the last third of the run with the
	// baseline (the first sample, taken after a warm-up period).
	if len(samples) >= 3 {
		base := samples[0]
		var peakHeap uint64
		peakG := 0
		for _, sm := range samples[len(samples)*2/3:] {
			peakHeap = max(peakHeap, sm.heap)
			peakG = max(peakG, sm.goroutines)
		}
		heapLimit := max(3*base.heap, base.heap+64<<20)
		t.Logf("heap baseline %d KiB, late peak %d KiB (limit %d KiB); goroutines baseline %d, late peak %d",
			base.heap>>10, peakHeap>>10, heapLimit>>10, base.goroutines, peakG)
		if peakHeap > heapLimit {
			t.Errorf("heap grew from %d KiB to %d KiB", base.heap>>10, peakHeap>>10)
		}
		if peakG > base.goroutines+2*(*flagWorkers)+50 {
			t.Errorf("goroutines grew from %d to %d", base.goroutines, peakG)
		}
	}
}

// endsWithin reports whether ctx's deadline is less than d away.
func endsWithin(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < d
}
