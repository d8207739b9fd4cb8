package revocation_test

import (
	"testing"
	"time"

	"github.com/caekit/caekit/revocation"
)

// The same-second rule (issue 12 item 2). These are pure functions of their
// arguments: the fixed instant below is never compared with the wall clock.
var sameSecondEvent = revocation.Event{
	Type:    revocation.TypeSessionRevoked,
	Subject: revocation.SessionKey("https://idp.example", "s1"),
	Time:    time.Unix(1_800_000_000, 700_000_000), // S = 1800000000, late in its second //datelint:ok pure comparison of instants; no clock
}

func sec(d int64) time.Time { return time.Unix(1_800_000_000+d, 0) } //datelint:ok pure comparison of instants; no clock

// TestNotBeforeIsSatisfiable guards the defect of issue 12 item 2: the
// challenge asked for nbf = S while every token with iat <= S was refused,
// so a token that met the challenge literally was refused again. The
// challenge now asks for S+1, and a token issued then is accepted.
func TestNotBeforeIsSatisfiable(t *testing.T) {
	ev := sameSecondEvent
	nb := ev.NotBefore()
	if nb != sec(1) {
		t.Fatalf("NotBefore = %v, want the second after the event %v", nb.Unix(), sec(1).Unix())
	}
	if ev.RevokesToken(nb, time.Time{}) {
		t.Fatal("a token issued at the requested nbf is revoked: the challenge cannot be satisfied")
	}
	if !ev.RevokesToken(nb.Add(-time.Second), time.Time{}) {
		t.Fatal("a token issued in the event's second is accepted")
	}
}

func TestRevokesTokenSameSecondRule(t *testing.T) {
	ev := sameSecondEvent
	w := int64(revocation.NotBeforeTrust / time.Second)
	for _, tc := range []struct {
		name     string
		iat, nbf time.Time
		revoked  bool
	}{
		{"no iat: fail closed", time.Time{}, sec(5), true},
		{"issued long before", sec(-3600), time.Time{}, true},
		{"issued the second before", sec(-1), time.Time{}, true},
		{"issued in the event's second, before it", time.Unix(1_800_000_000, 100_000_000), time.Time{}, true}, //datelint:ok pure comparison of instants; no clock
		{"issued in the event's second, after it", time.Unix(1_800_000_000, 900_000_000), time.Time{}, true},  //datelint:ok pure comparison of instants; no clock
		{"issued the second after (IdP waited, or client waited: modes b, c)", sec(1), time.Time{}, false},
		{"nbf before iat counts as iat", sec(1), sec(-10), false},
		{"nbf equal to iat", sec(0), sec(0), true},
		{"mode a: issued in the event's second with the requested nbf S+1", sec(0), sec(1), false},
		{"mode a: nbf far ahead, iat in the event's second", sec(0), sec(3600), false},
		{"within the window: iat S-W+1, nbf S+1", sec(1 - w), sec(1), false},
		{"beyond the window: iat S-W, nbf S+1", sec(-w), sec(1), true},
		{"pre-minted: iat an hour before, nbf an hour after", sec(-3600), sec(3600), true},
		{"pre-minted: iat W before, nbf far ahead", sec(-w), sec(1 << 20), true},
	} {
		if got := ev.RevokesToken(tc.iat, tc.nbf); got != tc.revoked {
			t.Errorf("%s: RevokesToken(iat %d, nbf %d) = %v, want %v", tc.name, tc.iat.Unix(), tc.nbf.Unix(), got, tc.revoked)
		}
	}
	if !ev.Revokes(sec(0)) || ev.Revokes(sec(1)) {
		t.Error("Revokes(iat) must equal RevokesToken(iat, zero)")
	}
}

// TestPreMintedTokenOutlivesEventsByAtMostW: a client that asks an IdP for a
// token with a far-future nbf (modes a of the dev IdP honour it) does not get
// a token that survives an event dated NotBeforeTrust or more after its iat,
// whatever nbf it asked for.
func TestPreMintedTokenOutlivesEventsByAtMostW(t *testing.T) {
	w := int64(revocation.NotBeforeTrust / time.Second)
	if w < 1 || w > 5 {
		t.Fatalf("NotBeforeTrust = %v: the window must be a few seconds", revocation.NotBeforeTrust)
	}
	iat := sec(0)
	for _, ahead := range []int64{1, 2, w, w + 1, 60, 3600, 1 << 30} {
		nbf := sec(ahead)
		survives := int64(0) // the latest event offset that does not revoke it
		for off := int64(-2); off <= w+5; off++ {
			ev := revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.EmailKey("a@example.com"), Time: sec(off)}
			if !ev.RevokesToken(iat, nbf) {
				survives = off + 1
			}
		}
		if survives > min(ahead, w) {
			t.Errorf("nbf %ds ahead: token survives events up to %ds after its iat, want at most %ds", ahead, survives-1, min(ahead, w)-1)
		}
		if got := revocation.IssuedAt(iat, nbf).Unix() - iat.Unix(); got != min(ahead, w) {
			t.Errorf("nbf %ds ahead: effective issue time iat+%d, want iat+%d", ahead, got, min(ahead, w))
		}
	}
}

// BenchmarkRevokesToken: the same-second rule runs once per stored event
// found for a token's subjects, on every call.
func BenchmarkRevokesToken(b *testing.B) {
	ev := sameSecondEvent
	iat, nbf := sec(0), sec(1)
	b.ReportAllocs()
	for b.Loop() {
		if ev.RevokesToken(iat, nbf) {
			b.Fatal("revoked")
		}
	}
}
