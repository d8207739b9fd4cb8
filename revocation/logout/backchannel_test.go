package logout_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/revocation/logout"
)

// TestBackChannelRefusals drives every OpenID Connect Back-Channel Logout
// 1.0 §2.6 validation rule (and §2.4's typ, §2.5's form) over real HTTP:
// each is answered 400 with a JSON error naming what was wrong, with
// Cache-Control: no-store, and stores nothing.
func TestBackChannelRefusals(t *testing.T) {
	e := newEnv(t)
	p := e.idp
	good := p.logoutClaims()
	other := newIDP(t)
	set := map[string]any{"iss": p.iss(), "aud": clientID, "iat": t0.Unix(), "jti": "set-1",
		"events": map[string]any{"https://schemas.openid.net/secevent/caep/event-type/session-revoked": map[string]any{}},
		"sub_id": map[string]any{"format": "opaque", "id": "s1"}}
	cases := []struct {
		name, raw, want string
	}{
		{"§2.6.1 signature by another key", other.sign(t, with(good, "iss", p.iss()), nil), "signature"},
		{"§2.6.1 alg not allowed (HS256)", hs256(t, good), "alg"},
		{"§2.6.1 alg none", noneToken(good), "never accepted"},
		{"§2.6.3 iss not trusted", p.sign(t, with(good, "iss", "https://evil.example"), nil), "not accepted"},
		{"§2.6.3 no iss", p.sign(t, with(good, "iss", nil), nil), "no iss"},
		{"§2.6.3 aud names another client", p.sign(t, with(good, "aud", "other-rp"), nil), "aud"},
		{"§2.6.3 no aud", p.sign(t, with(good, "aud", nil), nil), "aud is missing"},
		{"§2.6.3 no iat", p.sign(t, with(good, "iat", nil), nil), "iat is missing"},
		{"§2.6.3 iat too old", p.sign(t, with(good, "iat", t0.Add(-time.Hour).Unix()), nil), "WithIATWindow"},
		{"§2.6.3 iat in the future", p.sign(t, with(good, "iat", t0.Add(time.Hour).Unix()), nil), "after now"},
		{"§2.6.3 iat not a number", p.sign(t, with(good, "iat", "yesterday"), nil), "must be a number"},
		{"exp present and past", p.sign(t, with(good, "exp", t0.Add(-2*time.Minute).Unix()), nil), "exp"},
		{"§2.6.4 no events", p.sign(t, with(good, "events", nil), nil), "events is missing"},
		{"§2.6.4 events not an object", p.sign(t, with(good, "events", []any{logout.EventBackChannelLogout}), nil), "not a JSON object"},
		{"§2.6.4 events without the logout member", p.sign(t, with(good, "events", map[string]any{"x": map[string]any{}}), nil), "no member"},
		{"§2.6.4 logout member not an object", p.sign(t, with(good, "events", map[string]any{logout.EventBackChannelLogout: "yes"}), nil), "not a JSON object"},
		{"§2.6.5 neither sid nor sub", p.sign(t, with(good, "sid", nil, "sub", nil), nil), "neither sid nor sub"},
		{"sid not a string", p.sign(t, with(good, "sid", 7), nil), "sid must be a string"},
		{"sid empty", p.sign(t, with(good, "sid", ""), nil), "sid is empty"},
		{"§2.6.6 nonce present", p.sign(t, with(good, "nonce", "n"), nil), "nonce"},
		{"§2.6.7 no jti", p.sign(t, with(good, "jti", nil), nil), "jti is missing"},
		{"§2.4 typ at+jwt: an access token", p.sign(t, good, map[string]any{"typ": "at+jwt"}), "typ"},
		{"§2.4 typ secevent+jwt: a SET", p.sign(t, set, map[string]any{"typ": "secevent+jwt"}), "typ"},
		{"a SET without typ", p.sign(t, set, map[string]any{"typ": nil}), "no member"},
		{"an access token as logout token", p.accessToken(t, "alice", "s1", t0), "typ"},
		{"an access token typ JWT", p.sign(t, map[string]any{"iss": p.iss(), "aud": clientID, "sub": "alice", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "a"}, nil), "events is missing"},
		{"duplicate claim", dupClaim(t, p), "duplicate"},
		{"JWE", "a.b.c.d.e", "JWE"},
		{"garbage", "not-a-jwt", "parts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, er := e.postLogout(t, c.raw)
			if resp.StatusCode != http.StatusBadRequest || er.Error != logout.CodeInvalidRequest || !strings.Contains(er.Description, c.want) {
				t.Fatalf("got %d %+v, want 400 invalid_request mentioning %q", resp.StatusCode, er, c.want)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control = %q", resp.Header.Get("Cache-Control"))
			}
			if strings.Contains(er.Description, c.raw) && len(c.raw) > 20 {
				t.Fatal("the error repeats the token")
			}
		})
	}
	if e.revoked(t, p.accessToken(t, "alice", "s1", t0.Add(-time.Minute))) {
		t.Fatal("a refused logout token revoked something")
	}
}

// TestBackChannelForm guards the request shape (§2.5): POST, a form, one
// logout_token, a bounded body.
func TestBackChannelForm(t *testing.T) {
	e := newEnv(t, logout.WithMaxBodySize(4096))
	raw := e.idp.sign(t, e.idp.logoutClaims(), map[string]any{"typ": "logout+jwt"})
	for _, c := range []struct{ name, ct, body string }{
		{"json body", "application/json", `{"logout_token":"` + raw + `"}`},
		{"no logout_token", "application/x-www-form-urlencoded", "token=" + raw},
		{"two logout_tokens", "application/x-www-form-urlencoded", "logout_token=" + raw + "&logout_token=" + raw},
		{"too large", "application/x-www-form-urlencoded", "logout_token=" + strings.Repeat("a", 5000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, er := e.post(t, "/backchannel-logout", c.ct, c.body, "")
			if resp.StatusCode != http.StatusBadRequest || er.Error != logout.CodeInvalidRequest {
				t.Fatalf("got %d %+v, want 400", resp.StatusCode, er)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/backchannel-logout", nil)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestBackChannelEffects guards both effects: a logout token with sid
// revokes only that session's tokens (issued at or before its iat), one
// with sub alone revokes every token of that user at that issuer; and the
// three typ values a logout token may carry are accepted: logout+jwt
// (§2.4 recommends explicit typing), "JWT" (what Keycloak sends,
// github.com/keycloak/keycloak/issues/28939) and none (explicit typing is
// only RECOMMENDED).
func TestBackChannelEffects(t *testing.T) {
	e := newEnv(t)
	p := e.idp
	s1 := p.accessToken(t, "alice", "s1", t0.Add(-time.Minute))
	s2 := p.accessToken(t, "alice", "s2", t0.Add(-time.Minute))
	bob := p.accessToken(t, "bob", "s3", t0.Add(-time.Minute))
	later := p.accessToken(t, "alice", "s1", t0.Add(time.Second))

	resp, er := e.postLogout(t, p.sign(t, p.logoutClaims(), map[string]any{"typ": "logout+jwt"}))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("sid logout: %d %+v", resp.StatusCode, er)
	}
	if o := <-e.obs; o.Outcome != logout.OutcomeStored || o.Event.Subject.Kind.String() != "session" || !o.Event.Time.Equal(t0) {
		t.Fatalf("observation %+v", o)
	}
	if !e.revoked(t, s1) || e.revoked(t, s2) || e.revoked(t, bob) || e.revoked(t, later) {
		t.Fatalf("after sid logout: s1 %t s2 %t bob %t later %t; want only s1", e.revoked(t, s1), e.revoked(t, s2), e.revoked(t, bob), e.revoked(t, later))
	}

	for i, typ := range []any{nil, "JWT"} {
		c := with(p.logoutClaims(), "sid", nil, "jti", "lt-sub-"+string(rune('a'+i)))
		resp, er = e.postLogout(t, p.sign(t, c, map[string]any{"typ": typ}))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sub logout typ %v: %d %+v", typ, resp.StatusCode, er)
		}
	}
	if !e.revoked(t, s2) || e.revoked(t, bob) || e.revoked(t, later) {
		t.Fatal("a sub-only logout must revoke all of alice's earlier tokens and nothing else")
	}
}

// TestBackChannelReplay guards the jti replay memory: a logout token
// accepted once is refused the second time, with the same answer shape.
func TestBackChannelReplay(t *testing.T) {
	e := newEnv(t)
	raw := e.idp.sign(t, e.idp.logoutClaims(), nil)
	if resp, er := e.postLogout(t, raw); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: %d %+v", resp.StatusCode, er)
	}
	<-e.obs
	resp, er := e.postLogout(t, raw)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(er.Description, "received before") {
		t.Fatalf("replay: %d %+v", resp.StatusCode, er)
	}
	if o := <-e.obs; o.Outcome != logout.OutcomeReplayed {
		t.Fatalf("replay observed as %v", o.Outcome)
	}
}

// TestBackChannelStoreFailure guards "acknowledge only once stored": a
// store failure is answered 503 with Retry-After, the jti is not
// remembered, and the IdP's retry is then accepted.
func TestBackChannelStoreFailure(t *testing.T) {
	e := newEnv(t)
	raw := e.idp.sign(t, e.idp.logoutClaims(), nil)
	e.store.setFail(true)
	resp, er := e.postLogout(t, raw)
	if resp.StatusCode != http.StatusServiceUnavailable || er.Error != logout.CodeTemporarilyUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("store failure: %d %+v", resp.StatusCode, er)
	}
	if o := <-e.obs; o.Outcome != logout.OutcomeStoreFailed {
		t.Fatalf("observed %v", o.Outcome)
	}
	e.store.setFail(false)
	if resp, er := e.postLogout(t, raw); resp.StatusCode != http.StatusOK {
		t.Fatalf("retry after the store recovered: %d %+v", resp.StatusCode, er)
	}
}

// TestBackChannelCharsetAndBoundedReplay guards two details: the form
// Content-Type with a charset parameter, as Keycloak sent it
// ("application/x-www-form-urlencoded; charset=UTF-8",
// github.com/keycloak/keycloak/pull/7357), is accepted; and the replay
// memory is bounded (WithReplayMemory): once full, the oldest jti is
// forgotten, and its replay only re-stores the same event.
func TestBackChannelCharsetAndBoundedReplay(t *testing.T) {
	e := newEnv(t, logout.WithReplayMemory(1))
	a := e.idp.sign(t, e.idp.logoutClaims(), nil)
	b := e.idp.sign(t, with(e.idp.logoutClaims(), "jti", "lt-2"), nil)
	post := func(raw string) int {
		resp, _ := e.post(t, "/backchannel-logout", "application/x-www-form-urlencoded; charset=UTF-8", "logout_token="+raw, "")
		return resp.StatusCode
	}
	if got := post(a); got != http.StatusOK {
		t.Fatalf("a: %d", got)
	}
	if got := post(a); got != http.StatusBadRequest {
		t.Fatalf("a replayed while remembered: %d", got)
	}
	if got := post(b); got != http.StatusOK {
		t.Fatalf("b: %d", got)
	}
	if got := post(a); got != http.StatusOK {
		t.Fatalf("a after it was evicted by b: %d, want 200 (memory of 1)", got)
	}
}
