package receiver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// TestTransmitterCannotRevokeOtherIssuer (issue 12 item 7, receiver side):
// in a deployment with two IdPs, the transmitter of issuer A (or a leak of
// its signing key) cannot revoke issuer B's users: not through an iss_sub
// or jwt_id subject naming B, not through an opaque session id that B's
// tokens also carry, and not through an e-mail address of a domain A is not
// allowed. Before the fix the first and the last were stored and revoked
// B's token. Each refusal is an RFC 8935 400 invalid_request naming the
// offending value, counted, and nothing of it is stored.
func TestTransmitterCannotRevokeOtherIssuer(t *testing.T) {
	trA := ssftest.New()
	defer trA.Close()
	const issB = "https://idp-b.example.test"
	store := teststore.Memory(t)
	obs := &recorder{}
	r, err := receiver.New(context.Background(), receiver.WithIssuer(trA.Issuer), receiver.WithAudience(ssftest.Audience),
		receiver.WithStore(store), receiver.WithPushAuthorization(pushAuth), receiver.WithObserver(obs),
		receiver.WithEmailDomains("a.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srv := httptest.NewServer(r)
	defer srv.Close()

	// Issuer B's token, and issuer A's token for a user with the same sub
	// and session id: B's must stay valid, A's is revocable.
	tokB := (&token.Claims{Issuer: issB, Subject: "alice", SessionID: "sid-1", TokenID: "jti-1", Email: "alice@b.example"}).Seal()
	tokA := (&token.Claims{Issuer: trA.Issuer, Subject: "alice", SessionID: "sid-1", Email: "alice@a.example"}).Seal()
	revoked := func(c *token.Claims) []revocation.Key {
		var hit []revocation.Key
		for _, k := range c.Keys() {
			if _, ok := store.Lookup(k); ok {
				hit = append(hit, k)
			}
		}
		return hit
	}

	for _, c := range []struct {
		name, event string
		sub         map[string]any
		want        string // in the description
	}{
		{"iss_sub naming B", ssf.RISCAccountDisabled, map[string]any{"format": "iss_sub", "iss": issB, "sub": "alice"}, `token issuer "` + issB + `"`},
		{"jwt_id naming B", ssf.CAEPTokenClaimsChange, map[string]any{"format": "jwt_id", "iss": issB, "jti": "jti-1"}, `token issuer "` + issB + `"`},
		{"e-mail of B's domain", ssf.RISCAccountDisabled, map[string]any{"format": "email", "email": "alice@b.example"}, `e-mail domain "b.example"`},
		{"account of B's domain", ssf.RISCAccountDisabled, map[string]any{"format": "account", "uri": "acct:alice@b.example"}, `e-mail domain "b.example"`},
		{"aliases hiding B", ssf.RISCAccountDisabled, map[string]any{"format": "aliases", "identifiers": []any{
			map[string]any{"format": "email", "email": "alice@a.example"},
			map[string]any{"format": "iss_sub", "iss": issB, "sub": "alice"}}}, `token issuer "` + issB + `"`},
		{"complex tenant not allowed", ssf.RISCAccountDisabled, map[string]any{"format": "complex",
			"tenant": map[string]any{"format": "opaque", "id": "tid-b"}, "user": map[string]any{"format": "opaque", "id": "oid-1"}}, `tenant "tid-b"`},
	} {
		set, _ := trA.Event(c.event, nil, c.sub)
		st, er := pushTo(t, srv.URL, pushAuth, set)
		if st != http.StatusBadRequest || er.Err != receiver.CodeInvalidRequest || !strings.Contains(er.Description, c.want) {
			t.Errorf("%s: %d %+v, want 400 invalid_request naming %s", c.name, st, er, c.want)
		}
	}
	if n := obs.count(receiver.OutcomeRejected); n != 6 {
		t.Errorf("%d rejections observed (counted in metrics), want 6", n)
	}

	// An opaque session id names a session of A's tokens, never B's.
	set, _ := trA.Event(ssf.CAEPSessionRevoked, nil, map[string]any{"format": "opaque", "id": "sid-1"})
	if st, er := pushTo(t, srv.URL, pushAuth, set); st != http.StatusAccepted {
		t.Fatalf("session-revoked for A's sid-1: %d %+v", st, er)
	}
	if hit := revoked(tokB); len(hit) != 0 {
		t.Fatalf("issuer B's token is revoked by transmitter A through %v", hit)
	}
	if hit := revoked(tokA); len(hit) != 1 || hit[0] != revocation.SessionKey(trA.Issuer, "sid-1") {
		t.Fatalf("A's own session: revoked through %v, want its session key", hit)
	}
	// A's own users and domain are still A's to revoke.
	for _, sub := range []map[string]any{
		{"format": "iss_sub", "iss": trA.Issuer, "sub": "alice"},
		{"format": "email", "email": "Alice@A.example"},
	} {
		set, _ := trA.Event(ssf.RISCAccountDisabled, nil, sub)
		if st, er := pushTo(t, srv.URL, pushAuth, set); st != http.StatusAccepted {
			t.Fatalf("A's own subject %v: %d %+v", sub, st, er)
		}
	}
	if hit := revoked(tokA); len(hit) != 3 {
		t.Fatalf("A's token revoked through %v, want session, iss+sub and e-mail", hit)
	}
	if hit := revoked(tokB); len(hit) != 0 {
		t.Fatalf("issuer B's token is revoked through %v", hit)
	}
}

// TestScopeOptions: WithSubjectIssuers, WithSubjectTenants and the
// DefaultMapper's TokenIssuer and OpaqueTenant widen what a transmitter may
// name; bad values are refused by New.
func TestScopeOptions(t *testing.T) {
	e := newEnv(t, receiver.WithSubjectIssuers("https://idp-b.example.test"), receiver.WithSubjectTenants("72F988BF-86F1-41AF-91AB-2D7CD011DB47"))
	for _, sub := range []map[string]any{
		{"format": "iss_sub", "iss": "https://idp-b.example.test", "sub": "alice"},
		{"format": "complex", "tenant": map[string]any{"format": "opaque", "id": "72f988bf-86f1-41af-91ab-2d7cd011db47"}, "user": map[string]any{"format": "opaque", "id": "oid-1"}},
	} {
		set, _ := e.tr.Event(ssf.RISCAccountDisabled, nil, sub)
		if st, er := e.push(t, set); st != http.StatusAccepted {
			t.Errorf("%v allowed by option: %d %+v", sub, st, er)
		}
	}
	tm := newEnv(t, receiver.WithSubjectMapper(ssf.DefaultMapper{TokenIssuer: "https://tokens.example.test"}))
	set, _ := tm.tr.Event(ssf.RISCAccountDisabled, nil, map[string]any{"format": "iss_sub", "iss": "https://tokens.example.test", "sub": "bob"})
	if st, er := tm.push(t, set); st != http.StatusAccepted {
		t.Errorf("the mapper's TokenIssuer is allowed: %d %+v", st, er)
	}
	for _, o := range []receiver.Option{receiver.WithSubjectIssuers(""), receiver.WithSubjectTenants(" "), receiver.WithEmailDomains("@example.com"), receiver.WithEmailDomains("")} {
		if _, err := receiver.New(context.Background(), receiver.WithIssuer("https://tr.example"), receiver.WithAudience("a"),
			receiver.WithStore(teststore.Memory(t)), receiver.WithPublicKey("k", nil), o); err == nil {
			t.Error("a bad scope value was accepted")
		}
	}
}
