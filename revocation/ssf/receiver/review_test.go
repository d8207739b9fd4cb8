package receiver_test

// Security review tests: each pins down a defect the review found (and that
// is now fixed) or a behaviour the review verified.

import (
	"context"
	"testing"
	"time"

	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
)

// TestReviewKeyLookupFailureIsNotPermanent (finding SSF-1).
//
// When the signing key of a SET cannot be looked up because the JWKS
// endpoint is down, or because the unknown-kid refresh is rate-limited
// (one per WithJWKSRefresh's second argument, default 30 s), the receiver
// answers invalid_key: HTTP 400 for push, a setErrs entry for poll. Both tell
// the transmitter the SET was refused for good, so it is not delivered again
// and the revocation it carries is lost, although nothing was wrong with it.
// That happens on every key rotation whose new kid reaches the receiver
// before the new JWKS does. A failure to obtain keys is transient: it must
// be answered like a store failure (503 + Retry-After, not acknowledged in
// poll), and a SET signed with a key published after that must be accepted.
func TestReviewKeyLookupFailureIsNotPermanent(t *testing.T) {
	e := newEnv(t)
	set, _ := e.tr.Event(ssf.RISCAccountDisabled, nil, userSub)
	if status, er := e.push(t, set); status != 202 {
		t.Fatalf("first SET: %d %+v", status, er)
	}

	// The transmitter rotates to k2; its JWKS endpoint is briefly down.
	e.tr.SetJWKSDown(true)
	e.tr.RotateKey("k2", false)
	set, _ = e.tr.Event(ssf.RISCAccountDisabled, nil, userSub)
	status, er := e.push(t, set)
	if status == 400 {
		t.Errorf("SET signed with a key that could not be fetched: 400 %+v (permanent refusal: the transmitter drops it); want 503", er)
	}
	if _, err := e.r.Receive(context.Background(), []byte(set)); codeOf(err) != "" {
		t.Errorf("Receive: %v is a rejection (%s); want a transient error that is not acknowledged", err, codeOf(err))
	}

	// The JWKS is back and publishes k2: the next SET must be accepted,
	// whatever the unknown-kid rate limit.
	e.tr.SetJWKSDown(false)
	set, _ = e.tr.Event(ssf.RISCAccountDisabled, nil, userSub)
	if status, er := e.push(t, set); status != 202 {
		t.Errorf("SET signed with k2 once the JWKS publishes it: %d %+v, want 202", status, er)
	}
}

// TestReviewReplayAfterDedupEvictionIsHarmless: a SET delivered again after
// its jti left the bounded de-duplication memory is processed again, but it
// carries its own event time, so it neither moves the revocation forward
// (which would lock out tokens issued since) nor backward.
func TestReviewReplayAfterDedupEvictionIsHarmless(t *testing.T) {
	e := newEnv(t, receiver.WithLimits(receiver.Limits{DedupEntries: 1, DedupTTL: time.Hour}))
	ctx := context.Background()
	evTime := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	c := e.tr.Claims(ssf.RISCAccountDisabled, map[string]any{"event_timestamp": evTime.Unix()}, userSub)
	setA := e.tr.Sign(c)
	if res, err := e.r.Receive(ctx, []byte(setA)); err != nil || res.Outcome != receiver.OutcomeStored {
		t.Fatalf("SET A: %+v %v", res, err)
	}
	// A SET for someone else evicts A's jti.
	other, _ := e.tr.Event(ssf.RISCAccountDisabled, nil, map[string]any{"format": "iss_sub", "iss": "https://idp.example.test", "sub": "bob"})
	if _, err := e.r.Receive(ctx, []byte(other)); err != nil {
		t.Fatal(err)
	}
	res, err := e.r.Receive(ctx, []byte(setA))
	if err != nil {
		t.Fatalf("replayed SET A: %v", err)
	}
	if res.Duplicate {
		t.Fatal("test setup: A is still remembered; the eviction did not happen")
	}
	ev, ok := e.store.Lookup(userKey)
	if !ok || !ev.Time.Equal(evTime) {
		t.Fatalf("after the replay the store holds %+v (%v); want the original event time %s", ev, ok, evTime)
	}
	if ev.Revokes(evTime.Add(time.Second)) {
		t.Fatal("a token issued after the original event is revoked by the replay")
	}
}

// TestReviewSubjectsThatMustNotRevokeBroadly: subjects naming only a tenant,
// group or org unit map onto no key (a whole tenant is never revoked by
// inference), and such events are acknowledged without being stored.
func TestReviewSubjectsThatMustNotRevokeBroadly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for name, sub := range map[string]map[string]any{
		"tenant only":       {"format": "complex", "tenant": map[string]any{"format": "opaque", "id": "t1"}},
		"tenant and group":  {"format": "complex", "tenant": map[string]any{"format": "opaque", "id": "t1"}, "group": map[string]any{"format": "opaque", "id": "g1"}},
		"org unit only":     {"format": "complex", "org_unit": map[string]any{"format": "opaque", "id": "ou"}},
		"ip addresses":      {"format": "ip-addresses", "ip-addresses": []string{"10.0.0.1"}},
		"phone number":      {"format": "phone_number", "phone_number": "+12065550100"},
		"tenant and device": {"format": "complex", "tenant": map[string]any{"format": "opaque", "id": "t1"}, "device": map[string]any{"format": "email", "email": "x@y"}},
	} {
		before := e.store.Len()
		set, _ := e.tr.Event(ssf.RISCAccountDisabled, nil, sub)
		res, err := e.r.Receive(ctx, []byte(set))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if res.Outcome != receiver.OutcomeUnmapped || len(res.Keys) != 0 || e.store.Len() != before {
			t.Errorf("%s: outcome %v keys %v (store %d -> %d), want unmapped and nothing stored", name, res.Outcome, res.Keys, before, e.store.Len())
		}
	}
}

// TestReviewEmailSubjectCanonicalisation: e-mail and acct: subjects are
// matched case-insensitively and without surrounding space, exactly like the
// token side (revocation.EmailKey), and nothing else.
func TestReviewEmailSubjectCanonicalisation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, sub := range []map[string]any{
		{"format": "email", "email": " Alice@Example.COM "},
		{"format": "account", "uri": "acct:ALICE@example.com"},
	} {
		set, _ := e.tr.Event(ssf.RISCAccountDisabled, nil, sub)
		res, err := e.r.Receive(ctx, []byte(set))
		if err != nil {
			t.Fatal(err)
		}
		want := revocation.EmailKey("alice@example.com")
		if len(res.Keys) != 1 || res.Keys[0] != want {
			t.Fatalf("%v: keys %v, want [%v]", sub, res.Keys, want)
		}
	}
	if _, ok := e.store.Lookup(revocation.EmailKey("alice@example.co")); ok {
		t.Fatal("a different address matched")
	}
}

// TestReviewTokenTypedSETRefused: an access token (typ JWT or at+jwt) signed
// by the transmitter's key is never accepted as a SET, and a SET whose event
// time lies beyond the future window is refused rather than locking the
// subject out until then.
func TestReviewTokenTypedSETRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, typ := range []string{"JWT", "at+jwt", "application/at+jwt", ""} {
		set := e.tr.SignWith(e.tr.Claims(ssf.RISCAccountDisabled, nil, userSub), map[string]any{"typ": typ})
		if _, err := e.r.Receive(ctx, []byte(set)); codeOf(err) != receiver.CodeInvalidRequest {
			t.Errorf("typ %q: %v, want invalid_request", typ, err)
		}
	}
	c := e.tr.Claims(ssf.RISCAccountDisabled, nil, userSub)
	c["toe"] = time.Now().Add(24 * time.Hour).Unix()
	if _, err := e.r.Receive(ctx, []byte(e.tr.Sign(c))); codeOf(err) != receiver.CodeInvalidRequest {
		t.Errorf("toe a day ahead: %v, want invalid_request", err)
	}
	if _, ok := e.store.Lookup(userKey); ok {
		t.Fatal("a refused SET reached the store")
	}
}
