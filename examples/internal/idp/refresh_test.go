package idp_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/internal/testclock"
)

// parseAt is parse with the token's time claims checked at at (zero: now).
func parseAt(t *testing.T, p *idp.IdP, raw string, at time.Time) map[string]any {
	t.Helper()
	if at.IsZero() {
		at = time.Now()
	}
	tok, err := jwt.Parse(raw, keyfunc(t, p), jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(p.Issuer()),
		jwt.WithAudience(p.Audience()), jwt.WithTimeFunc(func() time.Time { return at }))
	if err != nil {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	return tok.Claims.(jwt.MapClaims)
}

func refreshForm(rt, claims string) url.Values {
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if claims != "" {
		v.Set("claims", claims)
	}
	return v
}

// signIn is a password sign-in; it returns the refresh token and the sid.
func signIn(t *testing.T, p *idp.IdP, user string) (string, string) {
	t.Helper()
	return signInAt(t, p, user, time.Time{})
}

func signInAt(t *testing.T, p *idp.IdP, user string, at time.Time) (string, string) {
	t.Helper()
	code, m := tokenReq(t, p, password(user, cp1))
	if code != 200 {
		t.Fatalf("sign-in: %d %v", code, m)
	}
	rt, _ := m["refresh_token"].(string)
	if rt == "" {
		t.Fatalf("password grant without refresh_token: %v", m)
	}
	c := parseAt(t, p, m["access_token"].(string), at)
	return rt, c["sid"].(string)
}

// refreshOK runs the refresh grant, expects success, and returns the
// token's claims and the rotated refresh token.
func refreshOK(t *testing.T, p *idp.IdP, rt, claims string) (map[string]any, string) {
	t.Helper()
	return refreshOKAt(t, p, rt, claims, time.Time{})
}

func refreshOKAt(t *testing.T, p *idp.IdP, rt, claims string, at time.Time) (map[string]any, string) {
	t.Helper()
	code, m := tokenReq(t, p, refreshForm(rt, claims))
	if code != 200 {
		t.Fatalf("refresh grant: %d %v", code, m)
	}
	next, _ := m["refresh_token"].(string)
	if next == "" || next == rt {
		t.Fatalf("refresh grant did not rotate the refresh token: %v", m)
	}
	return parseAt(t, p, m["access_token"].(string), at), next
}

// refreshRefused runs the refresh grant and expects invalid_grant with
// want in the description.
func refreshRefused(t *testing.T, p *idp.IdP, rt, want string) {
	t.Helper()
	code, m := tokenReq(t, p, refreshForm(rt, ""))
	if code != 400 || m["error"] != "invalid_grant" || !strings.Contains(m["error_description"].(string), want) {
		t.Fatalf("refresh grant: %d %v, want 400 invalid_grant %q", code, m, want)
	}
}

// TestRefreshKeepsSession guards the refresh grant (RFC 6749 §6): the token
// keeps the session's sid (as Entra's refreshed tokens do: only a new
// sign-in starts a session), honours the claims request like the password
// grant (xms_cc, acrs, nbf in mode honor, ipaddr), and rotates the refresh
// token: the used one is refused afterwards. The refresh token is never
// logged.
func TestRefreshKeepsSession(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	p := start(t, idp.WithNotBeforeMode(idp.NotBeforeHonor),
		idp.WithLogger(slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))))
	rt, sid := signIn(t, p, "alice")
	nbf := time.Now().Add(30 * time.Second).Unix()
	claims := `{"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c1"},"nbf":{"essential":true,"value":"` + jsonInt(nbf) + `"}}}`
	c, rt2 := refreshOKAt(t, p, rt, claims, time.Unix(nbf+1, 0))
	if c["sid"] != sid {
		t.Fatalf("refreshed token sid %v, want the session's %s", c["sid"], sid)
	}
	if xc, _ := c["xms_cc"].([]any); len(xc) != 1 || xc[0] != "cp1" {
		t.Errorf("xms_cc = %v", c["xms_cc"])
	}
	if a, _ := c["acrs"].([]any); len(a) != 1 || a[0] != "c1" {
		t.Errorf("acrs = %v", c["acrs"])
	}
	if int64(c["nbf"].(float64)) != nbf {
		t.Errorf("nbf = %v, want the requested %d (mode honor)", c["nbf"], nbf)
	}
	if c["ipaddr"] != "127.0.0.1" || c["azp"] != idp.DefaultPublicClientID || c["idtyp"] != "user" {
		t.Errorf("claims %v", c)
	}
	refreshRefused(t, p, rt, "AADSTS70000") // rotated: used once
	c, _ = refreshOK(t, p, rt2, "")
	if c["sid"] != sid {
		t.Fatalf("second refresh sid %v, want %s", c["sid"], sid)
	}
	if _, ok := c["acrs"]; ok {
		t.Errorf("acrs %v without an acrs claims request", c["acrs"])
	}
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), rt) || strings.Contains(logs.String(), rt2) || !strings.Contains(logs.String(), "refresh_token") {
		t.Fatalf("the log shows a refresh token, or no refresh grant: %s", logs.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestRefreshGrantErrors guards the refresh grant's refusals: missing,
// unknown, oversized, another client's.
func TestRefreshGrantErrors(t *testing.T) {
	p := start(t)
	rt, _ := signIn(t, p, "alice")
	code, m := tokenReq(t, p, url.Values{"grant_type": {"refresh_token"}})
	if code != 400 || m["error"] != "invalid_request" {
		t.Fatalf("no refresh_token: %d %v", code, m)
	}
	refreshRefused(t, p, "no-such-token", "AADSTS70000")
	refreshRefused(t, p, strings.Repeat("x", 4096), "more than")
	other := refreshForm(rt, "")
	other.Set("client_id", "someone-else")
	code, m = tokenReq(t, p, other)
	if code != 400 || m["error"] != "invalid_grant" || !strings.Contains(m["error_description"].(string), "another client") {
		t.Fatalf("another client's refresh: %d %v", code, m)
	}
	refreshOK(t, p, rt, "") // the other client's attempt did not burn it
}

// TestRefreshEndsWithSession guards that the admin actions that end
// sessions end their refresh tokens: logout the latest session only (the
// user's other session keeps refreshing), the others every session.
func TestRefreshEndsWithSession(t *testing.T) {
	ctx := context.Background()
	t.Run("logout", func(t *testing.T) {
		p := start(t)
		older, olderSID := signIn(t, p, "bob")
		latest, _ := signIn(t, p, "bob")
		res, err := p.UserAction(ctx, "bob", idp.ActionLogout)
		if err != nil {
			t.Fatal(err)
		}
		if res.SessionID == olderSID {
			t.Fatalf("logout ended the older session %s", olderSID)
		}
		refreshRefused(t, p, latest, "AADSTS70000")
		if c, _ := refreshOK(t, p, older, ""); c["sid"] != olderSID {
			t.Fatalf("the other session's refresh sid %v, want %s", c["sid"], olderSID)
		}
	})
	for _, action := range []string{idp.ActionUniversalLogout, idp.ActionRevokeSessions, idp.ActionResetPassword, idp.ActionEnableMFA, idp.ActionRiskHigh} {
		t.Run(action, func(t *testing.T) {
			p := start(t)
			a, _ := signIn(t, p, "bob")
			b, _ := signIn(t, p, "bob")
			carol, _ := signIn(t, p, "carol")
			if _, err := p.UserAction(ctx, "bob", action); err != nil {
				t.Fatal(err)
			}
			refreshRefused(t, p, a, "AADSTS70000")
			refreshRefused(t, p, b, "AADSTS70000")
			if p.RefreshTokens("bob") != 0 {
				t.Fatalf("%d refresh tokens left for bob", p.RefreshTokens("bob"))
			}
			refreshOK(t, p, carol, "") // another user's session is untouched
			if _, sid := signIn(t, p, "bob"); sid == "" {
				t.Fatal("no sid after signing in again")
			}
		})
	}
}

// TestRefreshWhileDisabled guards the account re-check: a disabled user's
// refresh token is refused with AADSTS50057, like the password grant, and
// not consumed; enabled again, the session continues (Entra: disabling
// blocks sign-in, it does not revoke refresh tokens; revoke-sessions does).
func TestRefreshWhileDisabled(t *testing.T) {
	ctx := context.Background()
	p := start(t)
	rt, sid := signIn(t, p, "alice")
	if _, err := p.UserAction(ctx, "alice", idp.ActionDisable); err != nil {
		t.Fatal(err)
	}
	refreshRefused(t, p, rt, "AADSTS50057")
	refreshRefused(t, p, rt, "AADSTS50057")
	if _, err := p.UserAction(ctx, "alice", idp.ActionEnable); err != nil {
		t.Fatal(err)
	}
	c, rt := refreshOK(t, p, rt, "")
	if c["sid"] != sid {
		t.Fatalf("sid %v after enable, want %s", c["sid"], sid)
	}
	// The session that continues is still the latest: logout ends it.
	res, err := p.UserAction(ctx, "alice", idp.ActionLogout)
	if err != nil {
		t.Fatal(err)
	}
	if res.SessionID != sid {
		t.Fatalf("logout after disable and enable ended sid %s, want the continuing session %s", res.SessionID, sid)
	}
	refreshRefused(t, p, rt, "AADSTS70000")
}

// TestRefreshExpires guards the refresh token lifetime, with an injected
// clock.
func TestRefreshExpires(t *testing.T) {
	var mu sync.Mutex
	now := testclock.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p := start(t, idp.WithClock(clock), idp.WithRefreshTokenLifetime(time.Hour))
	rt, _ := signInAt(t, p, "alice", clock())
	mu.Lock()
	now = now.Add(59 * time.Minute)
	mu.Unlock()
	_, rt = refreshOKAt(t, p, rt, "", clock()) // rotation starts a new hour
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	refreshRefused(t, p, rt, "AADSTS700082")
	if p.RefreshTokens("alice") != 0 {
		t.Fatal("the expired refresh token is still stored")
	}
}

// TestNoRefreshTokenForClientCredentials guards RFC 6749 §4.4.3: "A
// refresh token SHOULD NOT be included" for client_credentials.
func TestNoRefreshTokenForClientCredentials(t *testing.T) {
	p := start(t)
	code, m := tokenReq(t, p, url.Values{"grant_type": {"client_credentials"}, "client_id": {idp.WorkloadClientID}, "client_secret": {idp.WorkloadClientSecret}})
	if code != 200 || m["access_token"] == nil {
		t.Fatalf("client_credentials: %d %v", code, m)
	}
	if _, ok := m["refresh_token"]; ok {
		t.Fatalf("client_credentials answer has a refresh_token: %v", m)
	}
}
