package client_test

// Security review tests (issue 13): each pins down a defect the review found
// in the client and that is now fixed.

import (
	"strings"
	"testing"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/caekit/caekit/interceptor/client"
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
	eventually(t, "the handler to apply the messages", func() bool { return e.applied.Load() == int64(n) })
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
	ch, ok := client.IsChallenge(err)
	if !ok || !ch.InsufficientClaims() {
		t.Fatalf("err = %v, want the claims challenge", err)
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
			if ch, ok := client.IsChallenge(err); !ok || !ch.InsufficientClaims() {
				t.Fatalf("err = %v, want the challenge", err)
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
