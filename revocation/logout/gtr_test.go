package logout_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/logout"
)

// gtrClaims are the claims of an Okta Universal Logout bearer JWT at t0:
// iss (the org), aud (the endpoint), iat, exp five minutes later, jti, and
// header typ global-token-revocation+jwt
// (https://developer.okta.com/docs/guides/oin-universal-logout-overview/).
func (e *env) gtrClaims() map[string]any {
	return map[string]any{"iss": e.idp.iss(), "aud": e.srv.URL + "/global-token-revocation", "iat": t0.Unix(),
		"exp": t0.Add(5 * time.Minute).Unix(), "jti": "gtr-1"}
}

func (e *env) gtrJWT(t testing.TB, c map[string]any) string {
	return e.idp.sign(t, c, map[string]any{"typ": logout.TypeGTRJWT})
}

func (e *env) postGTR(t testing.TB, bearer, body string) (*http.Response, logout.ErrorResponse) {
	return e.post(t, "/global-token-revocation", "application/json", body, bearer)
}

// TestGTRStatusCodes guards the draft's answers
// (draft-parecki-oauth-global-token-revocation, "Revocation Response"):
// 204 done, 400 bad request, 401 authentication (the bearer JWT: typ,
// aud = endpoint, short exp, iat, jti, the issuer's keys), 403 not allowed
// for that subject, 422 a subject that cannot be revoked.
func TestGTRStatusCodes(t *testing.T) {
	e := newEnv(t, logout.WithEmailDomains("example.com"))
	g := e.gtrClaims()
	alice := `{"sub_id":{"format":"iss_sub","iss":"` + e.idp.iss() + `","sub":"alice"}}`
	other := newIDP(t)
	cases := []struct {
		name, bearer, body string
		status             int
		code, want         string
	}{
		{"no bearer", "", alice, 401, logout.CodeInvalidToken, "Bearer"},
		{"typ JWT", e.idp.sign(t, g, map[string]any{"typ": "JWT"}), alice, 401, logout.CodeInvalidToken, "typ"},
		{"typ logout+jwt", e.idp.sign(t, g, map[string]any{"typ": "logout+jwt"}), alice, 401, logout.CodeInvalidToken, "typ"},
		{"aud another URL", e.gtrJWT(t, with(g, "aud", "https://other.example/gtr")), alice, 401, logout.CodeInvalidToken, "aud"},
		{"no exp", e.gtrJWT(t, with(g, "exp", nil)), alice, 401, logout.CodeInvalidToken, "exp is missing"},
		{"exp past", e.gtrJWT(t, with(g, "exp", t0.Add(-2*time.Minute).Unix())), alice, 401, logout.CodeInvalidToken, "past"},
		{"exp far ahead", e.gtrJWT(t, with(g, "exp", t0.Add(time.Hour).Unix())), alice, 401, logout.CodeInvalidToken, "short-lived"},
		{"long lifetime", e.gtrJWT(t, with(g, "iat", t0.Add(-30*time.Minute).Unix())), alice, 401, logout.CodeInvalidToken, "exp - iat"},
		{"no iat", e.gtrJWT(t, with(g, "iat", nil)), alice, 401, logout.CodeInvalidToken, "iat is missing"},
		{"no jti", e.gtrJWT(t, with(g, "jti", nil)), alice, 401, logout.CodeInvalidToken, "jti"},
		{"another issuer's key", other.sign(t, g, map[string]any{"typ": logout.TypeGTRJWT}), alice, 401, logout.CodeInvalidToken, "signature"},
		{"untrusted iss", e.gtrJWT(t, with(g, "iss", "https://evil.example")), alice, 401, logout.CodeInvalidToken, "not accepted"},
		{"not JSON", e.gtrJWT(t, g), "sub_id=alice", 400, logout.CodeInvalidRequest, "JSON"},
		{"no sub_id", e.gtrJWT(t, g), `{"sub":"alice"}`, 400, logout.CodeInvalidRequest, "no sub_id"},
		{"bad sub_id", e.gtrJWT(t, g), `{"sub_id":{"format":"iss_sub","iss":"x"}}`, 400, logout.CodeInvalidRequest, "sub_id"},
		{"duplicate member", e.gtrJWT(t, g), `{"sub_id":{"format":"opaque","id":"a"},"sub_id":{"format":"opaque","id":"b"}}`, 400, logout.CodeInvalidRequest, "duplicate"},
		{"another issuer's subject", e.gtrJWT(t, g), `{"sub_id":{"format":"iss_sub","iss":"https://other.example","sub":"alice"}}`, 403, logout.CodeAccessDenied, "may not revoke"},
		{"an e-mail domain not trusted", e.gtrJWT(t, g), `{"sub_id":{"format":"email","email":"a@evil.example"}}`, 403, logout.CodeAccessDenied, "domain"},
		{"phone number", e.gtrJWT(t, g), `{"sub_id":{"format":"phone_number","phone_number":"+12065550100"}}`, 422, logout.CodeUnsupportedSubject, "phone_number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, er := e.postGTR(t, c.bearer, c.body)
			if resp.StatusCode != c.status || er.Error != c.code || !strings.Contains(er.Description, c.want) {
				t.Fatalf("got %d %+v, want %d %s mentioning %q", resp.StatusCode, er, c.status, c.code, c.want)
			}
			if c.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without WWW-Authenticate: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if e.revoked(t, e.idp.accessToken(t, "alice", "s1", t0.Add(-time.Minute))) {
		t.Fatal("a refused request revoked something")
	}
}

// TestGTREffect guards the effect: every token of the subject issued at or
// before the request's second is revoked (not others, not later ones); the
// request is answered 204; its jti cannot be replayed; an email subject
// (what Okta sends) of a trusted domain is honoured.
func TestGTREffect(t *testing.T) {
	e := newEnv(t, logout.WithEmailDomains("example.com"))
	p := e.idp
	s1 := p.accessToken(t, "alice", "s1", t0.Add(-time.Minute))
	s2 := p.accessToken(t, "alice", "", t0.Add(-time.Minute))
	bob := p.accessToken(t, "bob", "s3", t0.Add(-time.Minute))
	later := p.accessToken(t, "alice", "s1", t0.Add(time.Second))
	bearer := e.gtrJWT(t, e.gtrClaims())
	body := `{"sub_id":{"format":"iss_sub","iss":"` + p.iss() + `","sub":"alice"}}`
	resp, er := e.postGTR(t, bearer, body)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("GTR: %d %+v", resp.StatusCode, er)
	}
	if o := <-e.obs; o.Outcome != logout.OutcomeStored || !o.Event.Time.Equal(t0) {
		t.Fatalf("observation %+v", o)
	}
	if !e.revoked(t, s1) || !e.revoked(t, s2) || e.revoked(t, bob) || e.revoked(t, later) {
		t.Fatal("GTR must revoke all of alice's tokens issued by then, and nothing else")
	}
	resp, er = e.postGTR(t, bearer, body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(er.Description, "used before") {
		t.Fatalf("replay: %d %+v", resp.StatusCode, er)
	}
	<-e.obs
	resp, er = e.postGTR(t, e.gtrJWT(t, with(e.gtrClaims(), "jti", "gtr-2")), `{"sub_id":{"format":"email","email":"Bob@Example.com"}}`)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("email GTR: %d %+v", resp.StatusCode, er)
	}
}

// TestGTRStoreFailure guards "acknowledge only once stored" for GTR: 503,
// and the same request succeeds once the store is back (its jti was not
// remembered).
func TestGTRStoreFailure(t *testing.T) {
	e := newEnv(t)
	bearer := e.gtrJWT(t, e.gtrClaims())
	body := `{"sub_id":{"format":"opaque","id":"alice"}}`
	e.store.setFail(true)
	if resp, er := e.postGTR(t, bearer, body); resp.StatusCode != http.StatusServiceUnavailable || er.Error != logout.CodeTemporarilyUnavailable {
		t.Fatalf("store failure: %d %+v", resp.StatusCode, er)
	}
	e.store.setFail(false)
	if resp, er := e.postGTR(t, bearer, body); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("retry: %d %+v", resp.StatusCode, er)
	}
}

// TestNewReportsAllBadOptions guards New: every bad option is named at once.
func TestNewReportsAllBadOptions(t *testing.T) {
	_, err := logout.New(t.Context(), logout.WithMaxBodySize(0), logout.WithReplayMemory(-1), logout.WithEmailDomains("@x"))
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{"WithStore", "WithKeys or WithIssuer", "WithAudience", "WithMaxBodySize", "WithReplayMemory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// TestOwnKeys guards New without WithKeys: it builds its own validator over
// the issuer's discovery (keys bound to that issuer), serves with it, and
// Close stops its refreshes (goleak checks that nothing outlives it).
func TestOwnKeys(t *testing.T) {
	p := newIDP(t)
	clk := &clock{now: t0}
	mem := teststore.Memory(t, revocation.WithClock(clk.Now))
	r, err := logout.New(t.Context(), logout.WithStore(mem), logout.WithIssuer(p.iss()), logout.WithAudience(clientID),
		logout.WithClock(clk.Now), logout.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lt, err := r.ParseLogoutToken(p.sign(t, p.logoutClaims(), nil))
	if err != nil || lt.SessionID != "s1" {
		t.Fatalf("ParseLogoutToken: %+v %v", lt, err)
	}
	if _, err := r.ParseLogoutToken(newIDP(t).sign(t, p.logoutClaims(), nil)); err == nil {
		t.Fatal("a token signed by another IdP's key was accepted")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// Plain http discovery on a non-loopback host is refused at New.
	_, err = logout.New(t.Context(), logout.WithStore(mem), logout.WithIssuer("http://idp.example"), logout.WithAudience(clientID))
	if err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("New with a plain-http issuer: %v", err)
	}
}

// TestGTRJWTIsNotAnAccessToken guards cross-JWT confusion: the bearer JWT
// of a GTR request is never accepted by the access-token validator, even
// with the API's audience and an exp (typ global-token-revocation+jwt is
// not an access-token type).
func TestGTRJWTIsNotAnAccessToken(t *testing.T) {
	e := newEnv(t)
	raw := e.gtrJWT(t, with(e.gtrClaims(), "aud", clientID, "sub", "alice"))
	if _, err := e.v.Validate(t.Context(), raw); err == nil {
		t.Fatal("a GTR JWT was accepted as an access token")
	}
}
