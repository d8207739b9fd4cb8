package client_test

// Security review tests (issue 13): each pins down a defect the review found
// in the client and that is now fixed.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/testidp"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// uploadCutAfterApplied sends n messages on one Upload stream, waits until
// the server's handler applied all n, revokes the session (which cuts the
// stream mid-flight) and returns the stream's result.
func uploadCutAfterApplied(t *testing.T, e *env, n int) (*inboxv1.UploadResponse, error) {
	t.Helper()
	if err := e.get(); err != nil { // a token, cached before the revocation
		t.Fatal(err)
	}
	st, err := e.api.Upload(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := st.Send(&inboxv1.UploadRequest{Data: []byte{byte('a' + i)}}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	testkit.Eventually(t, "the handler to apply the messages", func() bool { return e.applied.Load() == int64(n) })
	e.revoke()
	return st.CloseAndRecv()
}

// TestReviewStreamCutMidStreamNotReplayed guards issue 13 item 1: a
// client-streaming call whose handler applied 3 messages is cut by a
// revocation. The client used to take the cut for "never reached the server"
// and replay its buffer on a new stream: the handler applied the 3 messages
// again (6 applications). Now the server says PHASE_MID_STREAM, the
// application gets the challenge, nothing is applied twice, and the new
// token fetched in the background serves the next call.
func TestReviewStreamCutMidStreamNotReplayed(t *testing.T) {
	e := newEnv(t, envConfig{})
	_, err := uploadCutAfterApplied(t, e, 3)
	if got := e.applied.Load(); got != 3 {
		t.Fatalf("handler applied %d messages, want 3 (each message once)", got)
	}
	ch, xerr := challenge.Extract(err)
	ok := xerr == nil
	if !ok || !ch.InsufficientClaims() {
		t.Fatalf("err = %v, want the claims challenge", err)
	}
	if got := client.ChallengePhase(err); got != caev1.Phase_PHASE_MID_STREAM {
		t.Fatalf("ChallengePhase = %v, want PHASE_MID_STREAM (the application must not assume nothing was applied)", got)
	}
	if e.obs.count(client.EventRetry) != 0 || e.obs.count(client.EventNotRetried) != 1 {
		t.Fatalf("retries %d, not retried %d", e.obs.count(client.EventRetry), e.obs.count(client.EventNotRetried))
	}
	// The token was refreshed in the background: the next stream succeeds
	// without another challenge and with no further token request.
	resp, err := upload(t, e, 2)
	if err != nil || resp.GetCount() != 2 {
		t.Fatalf("next upload: %v %v", resp, err)
	}
	if e.idp.Count() != 2 || e.obs.count(client.EventChallenge) != 1 {
		t.Fatalf("token requests %d, challenges %d; want 2 and 1", e.idp.Count(), e.obs.count(client.EventChallenge))
	}
}

// TestReviewIdempotentStreamReplayedMidStream: a method declared idempotent
// with WithIdempotentStreams is replayed even after a mid-stream cut; the
// application sees success (its handler saw the messages twice, by choice).
func TestReviewIdempotentStreamReplayedMidStream(t *testing.T) {
	e := newEnv(t, envConfig{clientOpts: []client.Option{client.WithIdempotentStreams(inboxv1.InboxService_Upload_FullMethodName)}})
	resp, err := uploadCutAfterApplied(t, e, 3)
	if err != nil || resp.GetCount() != 3 {
		t.Fatalf("upload: %v %v, want the replayed stream's answer", resp, err)
	}
	if got := e.applied.Load(); got != 6 {
		t.Fatalf("handler applied %d messages, want 6 (3, then the replay of 3)", got)
	}
	if e.obs.count(client.EventRetry) != 1 || e.idp.Count() != 2 {
		t.Fatalf("retries %d, token requests %d", e.obs.count(client.EventRetry), e.idp.Count())
	}
}

// stripPhase plays a server that predates cae.v1.ClaimsChallenge.phase: it
// sends the same challenge with the phase unspecified.
func stripPhase(err error) error {
	st := status.Convert(err)
	var details []protoadapt.MessageV1
	for _, d := range st.Details() {
		if cc, ok := d.(*caev1.ClaimsChallenge); ok {
			cc.Phase = caev1.Phase_PHASE_UNSPECIFIED
		}
		if m, ok := d.(protoadapt.MessageV1); ok {
			details = append(details, m)
		}
	}
	out, derr := status.New(st.Code(), st.Message()).WithDetails(details...)
	if derr != nil {
		panic(derr) // the details came from a valid status
	}
	return out.Err()
}

// TestReviewStreamPhaseUnspecifiedNotReplayed guards issue 13 item 1 for old
// servers: a challenge without a phase does not prove that the handler never
// ran, so even a stream refused at open is not replayed (unless declared
// idempotent); with the phase (TestClientStreamReplayWithinBuffer) it is.
func TestReviewStreamPhaseUnspecifiedNotReplayed(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "idempotent"}[idempotent], func(t *testing.T) {
			cfg := envConfig{streamErr: stripPhase}
			if idempotent {
				cfg.clientOpts = append(cfg.clientOpts, client.WithIdempotentStreams(inboxv1.InboxService_Upload_FullMethodName))
			}
			e := newEnv(t, cfg)
			if err := e.get(); err != nil {
				t.Fatal(err)
			}
			e.revoke()
			resp, err := upload(t, e, 3)
			if idempotent {
				if err != nil || resp.GetCount() != 3 {
					t.Fatalf("idempotent upload: %v %v, want the replay", resp, err)
				}
				return
			}
			if ch, xerr := challenge.Extract(err); xerr != nil || !ch.InsufficientClaims() {
				t.Fatalf("err = %v, want the challenge", err)
			}
			if got := client.ChallengePhase(err); got != caev1.Phase_PHASE_UNSPECIFIED {
				t.Fatalf("ChallengePhase = %v, want PHASE_UNSPECIFIED", got)
			}
			if e.obs.count(client.EventRetry) != 0 || e.sends.Load() != 2 {
				t.Fatalf("retries %d, server calls %d: replayed without a phase", e.obs.count(client.EventRetry), e.sends.Load())
			}
		})
	}
}

func TestWithIdempotentStreamsRefusesBadNames(t *testing.T) {
	for _, m := range []string{"", "Upload", "example.inbox.v1.InboxService/Upload", "/example.inbox.v1.InboxService/", "//Upload", "/a/b/c"} {
		c, err := client.New(client.TokenSourceFunc(nil), client.WithIdempotentStreams(m))
		if err == nil {
			_ = c.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "full gRPC method name") {
			t.Errorf("WithIdempotentStreams(%q): err = %v, want a clear refusal", m, err)
		}
	}
	c, err := client.New(client.TokenSourceFunc(nil), client.WithIdempotentStreams(inboxv1.InboxService_Upload_FullMethodName))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestReviewChallengeAmplificationBounded guards issue 13 item 6: a server
// that challenges every call (here for an auth context the IdP never adds)
// used to drive one cache-bypassing token request per call: 50 calls made 51
// token requests. Challenge-driven fetches are now a token bucket per scope
// set: 1 plain fetch + DefaultChallengeFetchBurst, then one per
// DefaultChallengeFetchEvery; past the limit each call fails at once with the
// server's challenge, wrapped with ErrChallengeFetchLimited, and is not
// retried. The clock is injected and frozen, so the bound is exact.
func TestReviewChallengeAmplificationBounded(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	e := newEnv(t, envConfig{
		serverOpts: []interceptor.Option{alwaysStepUp()},
		clientOpts: []client.Option{client.WithClock(clk.Now)},
	})
	const calls = 50
	limited := 0
	for i := range calls {
		err := e.get()
		ch, xerr := challenge.Extract(err)
		ok := xerr == nil
		if !ok || !ch.InsufficientClaims() || ch.Reason != caev1.Reason_REASON_AUTH_CONTEXT {
			t.Fatalf("call %d: err = %v, want the server's challenge", i, err)
		}
		if errors.Is(err, client.ErrChallengeFetchLimited) {
			limited++
			var re *client.ReacquireError
			if !errors.As(err, &re) || status.Code(err) != codes.Unauthenticated {
				t.Fatalf("call %d: limited error %T %v is not a ReacquireError with the server's status", i, err, err)
			}
		}
	}
	want := 1 + client.DefaultChallengeFetchBurst
	if got := e.idp.Count(); got != want {
		t.Fatalf("%d calls made %d token requests, want %d (1 + the burst)", calls, got, want)
	}
	if limited != calls-client.DefaultChallengeFetchBurst {
		t.Fatalf("%d calls limited, want %d", limited, calls-client.DefaultChallengeFetchBurst)
	}
	// Past the limit a call is not retried: one send each.
	if got, wantSends := e.sends.Load(), int64(2*client.DefaultChallengeFetchBurst+limited); got != wantSends {
		t.Fatalf("sends = %d, want %d", got, wantSends)
	}
	// One interval later, one more challenge fetch is allowed, and only one.
	clk.Advance(client.DefaultChallengeFetchEvery)
	for range 5 {
		_ = e.get()
	}
	if got := e.idp.Count(); got != want+1 {
		t.Fatalf("after one interval: %d token requests, want %d", got, want+1)
	}
}

// TestChallengeFetchLimitIsPerScopeSet: one scope set at its limit does not
// hold back challenge fetches for another.
func TestChallengeFetchLimitIsPerScopeSet(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	e := newEnv(t, envConfig{
		serverOpts: []interceptor.Option{alwaysStepUp()},
		clientOpts: []client.Option{client.WithClock(clk.Now), client.WithChallengeFetchLimit(1, time.Hour)},
	})
	for range 3 {
		_ = e.get()
	}
	if got := e.idp.Count(); got != 2 {
		t.Fatalf("token requests %d, want 2 (1 plain + a burst of 1)", got)
	}
	_, err := e.api.GetMessage(e.ctx(), &inboxv1.GetMessageRequest{Id: "1"}, client.CallScopes(testidp.Scope, "other"))
	if errors.Is(err, client.ErrChallengeFetchLimited) {
		t.Fatalf("another scope set was limited: %v", err)
	}
	if got := e.idp.Count(); got != 4 {
		t.Fatalf("token requests %d, want 4 (the other scope set's plain and challenge fetch)", got)
	}
}

func TestWithChallengeFetchLimitValidated(t *testing.T) {
	for _, c := range []struct {
		burst int
		every time.Duration
	}{{0, time.Second}, {1, 0}, {-1, time.Second}, {1, -time.Second}} {
		if _, err := client.New(client.TokenSourceFunc(nil), client.WithChallengeFetchLimit(c.burst, c.every)); err == nil || !strings.Contains(err.Error(), "challenge fetch limit") {
			t.Errorf("WithChallengeFetchLimit(%d, %v): err = %v", c.burst, c.every, err)
		}
	}
}

// TestReviewStreamChallengeAmplificationBounded: the same bound holds for
// streams, which answer a challenge at open by a fetch and a re-open.
func TestReviewStreamChallengeAmplificationBounded(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	e := newEnv(t, envConfig{
		serverOpts: []interceptor.Option{alwaysStepUp()},
		clientOpts: []client.Option{client.WithClock(clk.Now)},
	})
	const streams = client.DefaultChallengeFetchBurst + 5
	for i := range streams {
		_, err := upload(t, e, 1)
		if ch, xerr := challenge.Extract(err); xerr != nil || !ch.InsufficientClaims() {
			t.Fatalf("stream %d: err = %v, want the server's challenge", i, err)
		}
		if i >= client.DefaultChallengeFetchBurst && !errors.Is(err, client.ErrChallengeFetchLimited) {
			t.Fatalf("stream %d: err = %v, want it limited", i, err)
		}
	}
	if got, want := e.idp.Count(), 1+client.DefaultChallengeFetchBurst; got != want {
		t.Fatalf("%d streams made %d token requests, want %d", streams, got, want)
	}
}

// TestReviewBackgroundFetchEndsWithClose: when a cut stream is not replayed,
// the challenge reaches the application at once while the new token is
// fetched in the background; that fetch belongs to the Client and ends with
// Close (it does not outlive its owner). The IdP here answers only after an
// hour: had the stream waited for it, the call would have failed with its
// 10 s deadline instead of the challenge.
func TestReviewBackgroundFetchEndsWithClose(t *testing.T) {
	e := newEnv(t, envConfig{})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.idp.SetDelay(time.Hour)
	st, err := e.api.Upload(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&inboxv1.UploadRequest{Data: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the handler to apply the message", func() bool { return e.applied.Load() == 1 })
	e.revoke()
	_, err = st.CloseAndRecv()
	if ch, xerr := challenge.Extract(err); xerr != nil || !ch.InsufficientClaims() {
		t.Fatalf("err = %v, want the challenge at once", err)
	}
	testkit.Eventually(t, "the background fetch to reach the IdP", func() bool { return e.idp.Count() == 2 })
	if err := e.cli.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waited for the fetch, which ended cancelled.
	e.obs.mu.Lock()
	defer e.obs.mu.Unlock()
	for _, ev := range e.obs.events {
		if ev.Kind == client.EventTokenFetchFailed && errors.Is(ev.Err, context.Canceled) {
			return
		}
	}
	t.Fatalf("no cancelled fetch observed after Close: %+v", e.obs.events)
}

func TestChallengePhaseOfOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("plain"), status.Error(codes.Unauthenticated, "no details")} {
		if got := client.ChallengePhase(err); got != caev1.Phase_PHASE_UNSPECIFIED {
			t.Errorf("ChallengePhase(%v) = %v, want PHASE_UNSPECIFIED", err, got)
		}
	}
}
