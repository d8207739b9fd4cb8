package receiver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// Test vectors of deployed transmitters (issue 12 item 5). Each cites where
// its shape comes from; values are made up.

const (
	googleIssuer = "https://accounts.google.com/"                  // the iss of Google's RISC SETs
	googleTokens = "https://accounts.google.com"                   // the iss of Google's ID tokens
	googleAud    = "123456789-abcedfgh.apps.googleusercontent.com" // an OAuth client id
)

// TestGoogleRISCPush: Google's Cross-Account Protection pushes SETs with no
// Authorization header, no top-level sub_id, and the subject inside the
// event with subject_type "iss-sub" (or "id_token_claims"); the aud is the
// app's OAuth client id. Source: https://developers.google.com/identity/protocols/risc
// ("Validate and decode the token" shows the decoded account-disabled SET).
// login.gov also switched its RISC events to "iss-sub"; "iss_sub" is the
// RFC 9493 spelling. The id_token_claims vector with only an email is not
// from a published sample: it pins that such a subject is read as an
// e-mail subject (and scope-checked as one) rather than lost. With
// WithInsecurePushWithoutAuthorization (the Google mode) these are
// accepted, while signature and aud still apply.
func TestGoogleRISCPush(t *testing.T) {
	tr := ssftest.New()
	defer tr.Close()
	kid, priv := tr.PrivateKey()
	store := teststore.Memory(t)
	r, err := receiver.New(context.Background(), receiver.WithIssuer(googleIssuer), receiver.WithAudience(googleAud), receiver.WithStore(store),
		receiver.WithPublicKey(kid, &priv.PublicKey), receiver.WithInsecurePushWithoutAuthorization(),
		// Google's users are those of its ID tokens' issuer.
		receiver.WithSubjectMapper(ssf.DefaultMapper{TokenIssuer: googleTokens}), receiver.WithEmailDomains("gmail.com"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srv := httptest.NewServer(r)
	defer srv.Close()

	googleSET := func(subject map[string]any) map[string]any {
		c := tr.Claims(ssf.RISCAccountDisabled, map[string]any{"subject": subject, "reason": "hijacking"}, nil)
		c["iss"], c["aud"] = googleIssuer, googleAud
		return c
	}
	for _, c := range []struct {
		name    string
		subject map[string]any
		want    revocation.Key
	}{
		{"iss-sub", map[string]any{"subject_type": "iss-sub", "iss": googleIssuer, "sub": "7375626A656374"}, revocation.IssuerSubjectKey(googleTokens, "7375626A656374")},
		{"iss_sub", map[string]any{"subject_type": "iss_sub", "iss": googleIssuer, "sub": "1111"}, revocation.IssuerSubjectKey(googleTokens, "1111")},
		{"id_token_claims", map[string]any{"subject_type": "id_token_claims", "iss": googleIssuer, "sub": "2222"}, revocation.IssuerSubjectKey(googleTokens, "2222")},
		{"id_token_claims email", map[string]any{"subject_type": "id_token_claims", "email": "Someone@gmail.com"}, revocation.EmailKey("someone@gmail.com")},
	} {
		st, er := pushTo(t, srv.URL, "", tr.Sign(googleSET(c.subject)))
		if st != http.StatusAccepted {
			t.Errorf("%s, no Authorization header: %d %+v", c.name, st, er)
			continue
		}
		if _, ok := store.Lookup(c.want); !ok {
			t.Errorf("%s: %v not revoked", c.name, c.want)
		}
	}

	// Signature and aud still apply.
	wrongAud := googleSET(map[string]any{"subject_type": "iss-sub", "iss": googleIssuer, "sub": "3333"})
	wrongAud["aud"] = "someone-else.apps.googleusercontent.com"
	if st, er := pushTo(t, srv.URL, "", tr.Sign(wrongAud)); st != http.StatusBadRequest || er.Err != receiver.CodeInvalidAudience {
		t.Errorf("wrong aud without Authorization: %d %+v, want 400 invalid_audience", st, er)
	}
	other := ssftest.New() // another key under the same kid
	defer other.Close()
	other.RotateKey(kid, true)
	if st, er := pushTo(t, srv.URL, "", other.Sign(googleSET(map[string]any{"subject_type": "iss-sub", "iss": googleIssuer, "sub": "4444"}))); st != http.StatusBadRequest || er.Err != receiver.CodeInvalidKey {
		t.Errorf("forged signature without Authorization: %d %+v, want 400 invalid_key", st, er)
	}
	if _, ok := store.Lookup(revocation.IssuerSubjectKey(googleTokens, "4444")); ok {
		t.Error("a forged SET was stored")
	}

	// Off by default: the same SET without a header is 401.
	strict, err := receiver.New(context.Background(), receiver.WithIssuer(googleIssuer), receiver.WithAudience(googleAud), receiver.WithStore(store),
		receiver.WithPublicKey(kid, &priv.PublicKey), receiver.WithPushAuthorization("Bearer x"))
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	ssrv := httptest.NewServer(strict)
	defer ssrv.Close()
	if st, _ := pushTo(t, ssrv.URL, "", tr.Sign(googleSET(map[string]any{"subject_type": "iss-sub", "iss": googleIssuer, "sub": "5555"}))); st != http.StatusUnauthorized {
		t.Errorf("no Authorization header by default: %d, want 401", st)
	}
}

// TestOktaSETBody: Okta's documented SETs have only aud, events, iat, iss
// and jti at the top level, with the subject inside the event as a complex
// subject without "format":"complex" ({"user": {...}}). Source:
// https://developer.okta.com/docs/reference/ssf-transmitter-sets ("SET JWT
// payload examples", session-revoked and credential-change); complex
// subjects without "format" are openid/sharedsignals#53. Before the fix the
// subject was refused ("subject identifier has no format").
func TestOktaSETBody(t *testing.T) {
	e := newEnv(t)
	now := time.Now().Unix()
	okta := func(eventType string, event map[string]any) map[string]any {
		return map[string]any{
			"aud": ssftest.Audience, "iat": now, "iss": e.tr.Issuer, "jti": "okta-" + eventType[len(eventType)-8:] + "-" + time.Now().Format("150405.000000000"),
			"events": map[string]any{eventType: event},
		}
	}
	set := e.tr.Sign(okta(ssf.CAEPSessionRevoked, map[string]any{
		"event_timestamp": now, "initiating_entity": "admin", "reason_admin": map[string]any{"en": "Session ended by admin"},
		"subject": map[string]any{"user": map[string]any{"format": "email", "email": "John.Doe@example.com"}},
	}))
	if st, er := e.push(t, set); st != http.StatusAccepted {
		t.Fatalf("Okta session-revoked: %d %+v", st, er)
	}
	if ev, ok := e.store.Lookup(revocation.EmailKey("john.doe@example.com")); !ok || ev.Type != revocation.TypeSessionRevoked {
		t.Fatalf("Okta session-revoked not stored for the user: %+v %v", ev, ok)
	}
	set = e.tr.Sign(okta(ssf.CAEPCredentialChange, map[string]any{
		"event_timestamp": now, "credential_type": "password", "change_type": "update",
		"subject": map[string]any{"user": map[string]any{"format": "iss_sub", "iss": e.tr.Issuer, "sub": "00u1abcd"}},
	}))
	if st, er := e.push(t, set); st != http.StatusAccepted {
		t.Fatalf("Okta credential-change: %d %+v", st, er)
	}
	if ev, ok := e.store.Lookup(revocation.IssuerSubjectKey(e.tr.Issuer, "00u1abcd")); !ok || ev.Type != revocation.TypePasswordChanged {
		t.Fatalf("Okta credential-change not stored: %+v %v", ev, ok)
	}
}

// TestComplexSubjectWithoutFormat: a complex subject without
// "format":"complex" (openid/sharedsignals#53) is read as complex. An absent
// member is unconstrained (SSF §3.3.1), but never "every user": a subject
// naming only a tenant is acknowledged and not enforced (unmapped). Keycloak
// keeps the legacy in-event "subject" (keycloak#50793), read as before.
func TestComplexSubjectWithoutFormat(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	set, _ := e.tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{
		"user":    map[string]any{"format": "iss_sub", "iss": "https://idp.example.test", "sub": "alice"},
		"session": map[string]any{"format": "opaque", "id": "sid-77"},
	})
	res, err := e.r.Receive(ctx, []byte(set))
	if err != nil || res.Outcome != receiver.OutcomeStored || len(res.Keys) != 1 || res.Keys[0] != revocation.SessionKey(e.tr.Issuer, "sid-77") {
		t.Fatalf("{user, session} without format: %+v %v, want the session only", res, err)
	}
	set, _ = e.tr.Event(ssf.RISCAccountDisabled, nil, map[string]any{"tenant": map[string]any{"format": "opaque", "id": "t1"}})
	res, err = e.r.Receive(ctx, []byte(set))
	if err != nil || res.Outcome != receiver.OutcomeUnmapped || len(res.Keys) != 0 {
		t.Fatalf("{tenant} alone: %+v %v, want acknowledged and unmapped (never every user)", res, err)
	}
	set, _ = e.tr.Event(ssf.RISCAccountDisabled, nil, map[string]any{"nickname": "alice"})
	if _, err := e.r.Receive(ctx, []byte(set)); codeOf(err) != receiver.CodeInvalidRequest || !strings.Contains(err.Error(), "no format") {
		t.Fatalf("an object with no format and no complex member: %v, want invalid_request", err)
	}
	// Keycloak / Apple Business style: subject_type inside the event.
	set, _ = e.tr.Event(ssf.RISCAccountPurged, map[string]any{
		"subject": map[string]any{"subject_type": "iss-sub", "iss": "https://idp.example.test", "sub": "bob"}}, nil)
	if res, err := e.r.Receive(ctx, []byte(set)); err != nil || res.Outcome != receiver.OutcomeStored {
		t.Fatalf("legacy in-event subject: %+v %v", res, err)
	}
}

// TestSETTypHeader: typ "secevent+jwt" (RFC 8417 §2.3) and its full media
// type "application/secevent+jwt", compared case-insensitively (RFC 7515
// §4.1.9); anything else, or none, is refused.
func TestSETTypHeader(t *testing.T) {
	e := newEnv(t)
	for typ, ok := range map[string]bool{
		"secevent+jwt": true, "SECEVENT+JWT": true, "application/secevent+jwt": true, "Application/SecEvent+JWT": true,
		"jwt": false, "at+jwt": false, "application/jwt": false,
	} {
		set := e.tr.SignWith(e.tr.Claims(ssf.RISCAccountDisabled, nil, userSub), map[string]any{"typ": typ})
		st, er := e.push(t, set)
		if ok && st != http.StatusAccepted || !ok && (st != http.StatusBadRequest || !strings.Contains(er.Description, "typ")) {
			t.Errorf("typ %q: %d %+v (accept %t)", typ, st, er, ok)
		}
	}
	set := e.tr.SignWith(e.tr.Claims(ssf.RISCAccountDisabled, nil, userSub), map[string]any{"typ": nil})
	if st, _ := e.push(t, set); st != http.StatusBadRequest {
		t.Errorf("no typ: %d, want 400", st)
	}
}

// TestFutureEventTimeIsRefused: a SET whose event_timestamp lies in the
// future is refused with 400 invalid_request, never 503 (delivering it again
// cannot help; a 503 would have the transmitter retry it forever). The SET
// parser refuses what is ahead of the receiver's clock; a store whose clock
// is behind the receiver's refuses it with revocation.ErrFutureEvent, which
// must map to the same answer.
func TestFutureEventTimeIsRefused(t *testing.T) {
	for _, c := range []struct {
		name  string
		ahead time.Duration // receiver clock minus store clock
		event time.Duration // event time minus store clock
		want  string
	}{
		{"ahead of the receiver", 0, 174 * 365 * 24 * time.Hour, "in the future"},
		{"ahead of the store only", 10 * time.Minute, 10 * time.Minute, "ahead of this receiver's clock"},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := time.Now()
			e := newEnv(t, receiver.WithClock(func() time.Time { return time.Now().Add(c.ahead) }))
			set := e.tr.Sign(map[string]any{
				"aud": ssftest.Audience, "iat": now.Add(c.ahead).Unix(), "iss": e.tr.Issuer, "jti": "future-" + now.Format("150405.000000000"),
				"sub_id": map[string]any{"format": "iss_sub", "iss": e.tr.Issuer, "sub": "u-future"},
				"events": map[string]any{ssf.CAEPSessionRevoked: map[string]any{"event_timestamp": now.Add(c.event).Unix()}},
			})
			st, er := e.push(t, set)
			if st != http.StatusBadRequest || er.Err != receiver.CodeInvalidRequest || !strings.Contains(er.Description, c.want) {
				t.Fatalf("push: %d %+v; want 400 invalid_request mentioning %q", st, er, c.want)
			}
			if _, ok := e.store.Lookup(revocation.IssuerSubjectKey(e.tr.Issuer, "u-future")); ok {
				t.Fatal("a future-dated event was stored")
			}
		})
	}
}
