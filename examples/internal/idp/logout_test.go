package idp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/examples/internal/idp"
)

// TestLogoutActions guards the dev IdP's logout channels (issue 14): every
// sign-in is its own session with its own sid in the access token; the
// "logout" action posts a Back-Channel Logout token for the latest session
// (typ logout+jwt, aud the logout audience, sid, sub, iat, jti, events; no
// exp, no nonce: OIDC Back-Channel Logout 1.0 §2.4) as a form (§2.5); the
// "universal-logout" action posts a GTR request: a JSON iss_sub sub_id,
// authenticated by a JWT of typ global-token-revocation+jwt with aud the
// endpoint and a five-minute exp (as Okta Universal Logout sends it).
func TestLogoutActions(t *testing.T) {
	bcl, gtr := newReceiver(t, http.StatusOK), newReceiver(t, http.StatusNoContent)
	p := start(t, idp.WithBackChannelLogoutTarget(bcl.srv.URL+"/bcl"), idp.WithGTRTarget(gtr.srv.URL+"/gtr"))
	sid := func() string {
		_, m := tokenReq(t, p, password("alice", cp1))
		cl, _ := parse(t, p, m["access_token"].(string))
		s, _ := cl["sid"].(string)
		return s
	}
	s1, s2 := sid(), sid()
	if s1 == "" || s1 == s2 {
		t.Fatalf("sids %q, %q: want one per sign-in", s1, s2)
	}
	sub, _ := p.Subject("alice")

	res, err := p.UserAction(context.Background(), "alice", idp.ActionLogout)
	if err != nil || !res.Delivered() || res.SessionID != s2 || res.EventType != idp.EventBackChannelLogout {
		t.Fatalf("logout: %+v %v", res, err)
	}
	got := bcl.all()
	if len(got) != 1 || got[0].header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("logout delivery: %+v", got)
	}
	form, _ := url.ParseQuery(got[0].body)
	tok, err := jwt.Parse(form.Get("logout_token"), keyfunc(t, p), jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(idp.DefaultLogoutAudience))
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	cl := tok.Claims.(jwt.MapClaims)
	ev, _ := cl["events"].(map[string]any)
	if tok.Header["typ"] != "logout+jwt" || cl["sid"] != s2 || cl["sub"] != sub || cl["iss"] != p.Issuer() || cl["jti"] == nil || cl["iat"] == nil || ev == nil {
		t.Fatalf("logout token header %v claims %v", tok.Header, cl)
	}
	if _, ok := ev[idp.EventBackChannelLogout].(map[string]any); !ok {
		t.Fatalf("events %v", ev)
	}
	for _, banned := range []string{"nonce", "exp"} {
		if _, ok := cl[banned]; ok {
			t.Fatalf("logout token has %s", banned)
		}
	}

	res, err = p.UserAction(context.Background(), "alice", idp.ActionUniversalLogout)
	if err != nil || !res.Delivered() || res.EventType != idp.EventGTR {
		t.Fatalf("universal logout: %+v %v", res, err)
	}
	g := gtr.all()
	if len(g) != 1 || g[0].header.Get("Content-Type") != "application/json" || !strings.HasPrefix(g[0].header.Get("Authorization"), "Bearer ") {
		t.Fatalf("GTR delivery: %+v", g)
	}
	bt, err := jwt.Parse(strings.TrimPrefix(g[0].header.Get("Authorization"), "Bearer "), keyfunc(t, p),
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(gtr.srv.URL+"/gtr"), jwt.WithExpirationRequired())
	if err != nil || bt.Header["typ"] != "global-token-revocation+jwt" {
		t.Fatalf("GTR JWT: %v %v", err, bt)
	}
	bc := bt.Claims.(jwt.MapClaims)
	if bc["exp"].(float64)-bc["iat"].(float64) != 300 {
		t.Fatalf("GTR JWT lifetime %v", bc["exp"].(float64)-bc["iat"].(float64))
	}
	var body struct {
		SubID map[string]string `json:"sub_id"`
	}
	if err := json.Unmarshal([]byte(g[0].body), &body); err != nil || body.SubID["format"] != "iss_sub" || body.SubID["sub"] != sub || body.SubID["iss"] != p.Issuer() {
		t.Fatalf("GTR body %q", g[0].body)
	}
}
