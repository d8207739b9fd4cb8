package interceptor_test

import (
	"testing"

	"github.com/caekit/caekit/interceptor/challenge"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// TestDenialPhase guards issue 13 item 1 (server side): a denial says in
// cae.v1.ClaimsChallenge.phase whether the handler never ran (PHASE_OPEN:
// a refused unary call or stream opening) or an open stream was cut after
// its handler started (PHASE_MID_STREAM). Before the field existed the
// client could not tell the two apart and replayed a cut stream's messages
// into a handler that had already applied them.
func TestDenialPhase(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})

	t.Run("unary refused", func(t *testing.T) {
		putSession(t, e.store, "s-phase-unary", revocation.TypeSessionRevoked)
		_, err, _, tr := e.callUnary(withToken(testCtx(t), mint(t, tok{sid: "s-phase-unary"})))
		d := readDenial(t, err, nil, tr)
		assertChallenge(t, d, challenge.ErrorInsufficientClaims, caev1.Reason_REASON_SESSION_REVOKED)
		if got := d.cc.GetPhase(); got != caev1.Phase_PHASE_OPEN {
			t.Fatalf("phase %v, want PHASE_OPEN", got)
		}
	})

	t.Run("stream refused at open", func(t *testing.T) {
		putSession(t, e.store, "s-phase-open", revocation.TypeSessionRevoked)
		up, err := e.client.Upload(withToken(testCtx(t), mint(t, tok{sid: "s-phase-open"})))
		if err != nil {
			t.Fatal(err)
		}
		_ = up.Send(&inboxv1.UploadRequest{Data: []byte("x")})
		_, err = up.CloseAndRecv()
		d := readDenial(t, err, nil, up.Trailer())
		assertChallenge(t, d, challenge.ErrorInsufficientClaims, caev1.Reason_REASON_SESSION_REVOKED)
		if got := d.cc.GetPhase(); got != caev1.Phase_PHASE_OPEN {
			t.Fatalf("phase %v, want PHASE_OPEN", got)
		}
	})

	t.Run("stream cut mid-stream", func(t *testing.T) {
		chat, err := e.client.Chat(withToken(testCtx(t), mint(t, tok{sid: "s-phase-mid"})))
		if err != nil {
			t.Fatal(err)
		}
		if err := chat.Send(&inboxv1.ChatRequest{Text: "hi"}); err != nil {
			t.Fatal(err)
		}
		if _, err := chat.Recv(); err != nil { // the handler ran: it echoed
			t.Fatal(err)
		}
		putSession(t, e.store, "s-phase-mid", revocation.TypeSessionRevoked)
		_, err = chat.Recv()
		d := readDenial(t, err, nil, chat.Trailer())
		assertChallenge(t, d, challenge.ErrorInsufficientClaims, caev1.Reason_REASON_SESSION_REVOKED)
		if got := d.cc.GetPhase(); got != caev1.Phase_PHASE_MID_STREAM {
			t.Fatalf("phase %v, want PHASE_MID_STREAM", got)
		}
		// The www-authenticate trailer is the same challenge whatever the phase.
		if d.cc.GetWwwAuthenticate() != chat.Trailer().Get(challenge.MetadataKey)[0] {
			t.Fatal("www_authenticate differs from the trailer")
		}
	})
}
