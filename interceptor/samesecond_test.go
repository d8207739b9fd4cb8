package interceptor_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit/teststore"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	"github.com/caekit/caekit/revocation"
)

// TestSameSecondChallengeIsSatisfiable guards issue 12 item 2 over real gRPC
// (bufconn) with every clock injected: the revocation challenge asks for
// nbf = S+1 (S the event's second), and each token shape that the three IdP
// behaviours produce for that request is judged by the same-second rule.
// Before the fix the challenge asked for nbf = S, which an IdP honouring it
// (mode a) satisfied with nbf = S, and that token was refused again.
func TestSameSecondChallengeIsSatisfiable(t *testing.T) {
	const s = 1_800_000_000 // the event's second; never compared with the wall clock
	w := int64(revocation.NotBeforeTrust / time.Second)
	at := func(d int64) time.Time { return time.Unix(s+d, 0) }
	clock := at(0).Add(400 * time.Millisecond)
	now := func() time.Time { return clock }
	store := teststore.Memory(t, revocation.WithClock(now))
	e := newEnv(t, envOpt{
		validator: newValidator(t, token.WithClock(now)),
		store:     store,
		opts:      []interceptor.Option{interceptor.WithClock(now)},
	})
	if err := store.Put(context.Background(), revocation.Event{
		ID: "evt-same-second", Type: revocation.TypeSessionRevoked,
		Subject: revocation.SessionKey(testIssuer, "s-same"), Time: at(0).Add(300 * time.Millisecond),
	}); err != nil {
		t.Fatal(err)
	}

	// The token in use, issued before the event: challenged for nbf = S+1.
	_, err, h, tr := e.callUnary(withToken(testCtx(t), mint(t, tok{sid: "s-same", iat: at(-60)})))
	d := readDenial(t, err, h, tr)
	assertChallenge(t, d, challenge.ErrorInsufficientClaims, caev1.Reason_REASON_SESSION_REVOKED)
	want := challenge.NotBeforeClaims(at(1))
	if d.cc.GetClaims() != want {
		t.Fatalf("challenge claims %s, want %s (nbf = the second after the event)", d.cc.GetClaims(), want)
	}
	requested, err := challenge.RequestedNotBefore(d.cc.GetClaims())
	if err != nil || requested.Unix() != s+1 {
		t.Fatalf("RequestedNotBefore = %v, %v; want %d", requested.Unix(), err, s+1)
	}
	if got := d.info.GetMetadata()[challenge.ErrorInfoKeyEventTime]; got != strconv.Itoa(s) {
		t.Fatalf("ErrorInfo event_time %s, want the event's own second %d", got, s)
	}

	for _, tc := range []struct {
		name     string
		iat, nbf time.Time
		clock    time.Time
		ok       bool
	}{
		// (a) the IdP puts the requested nbf in the token and issues at once:
		// usable at once because the validator's leeway (60 s) >= W.
		{"mode a: iat S, nbf S+1", at(0), at(1), at(0).Add(600 * time.Millisecond), true},
		// (b) the IdP ignores claims and issues at once: in the event's second
		// that token is refused (caekit's client waits for S+1 before asking).
		{"mode b, same second: iat S", at(0), time.Time{}, at(0).Add(800 * time.Millisecond), false},
		{"mode b after the client waited: iat S+1", at(1), time.Time{}, at(1), true},
		// (c) the IdP waits until the requested nbf.
		{"mode c: iat = nbf = S+1", at(1), at(1), at(1).Add(10 * time.Millisecond), true},
		// Safety: a token issued before the event is refused, except within
		// the documented window for an IdP-set future nbf.
		{"issued before, nbf S (the old challenge, satisfied literally)", at(-1), at(0), at(1), false},
		{"issued W before, nbf S+1", at(-w), at(1), at(1), false},
		{"issued W-1 before, nbf S+1: the bounded window", at(1 - w), at(1), at(1), true},
		{"pre-minted a minute before with nbf S+30", at(-60), at(30), at(1), false},
	} {
		clock = tc.clock
		raw := mint(t, tok{sid: "s-same", iat: tc.iat, nbf: tc.nbf, exp: at(3600)})
		_, err, h, tr := e.callUnary(withToken(testCtx(t), raw))
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case !tc.ok && err == nil:
			t.Errorf("%s: accepted, want the same challenge again", tc.name)
		case !tc.ok:
			d := readDenial(t, err, h, tr)
			assertChallenge(t, d, challenge.ErrorInsufficientClaims, caev1.Reason_REASON_SESSION_REVOKED)
			if d.cc.GetClaims() != want {
				t.Errorf("%s: claims %s, want %s", tc.name, d.cc.GetClaims(), want)
			}
		}
	}
}
