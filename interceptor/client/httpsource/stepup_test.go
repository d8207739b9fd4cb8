package httpsource_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor/client"
)

// TestStepUpParameters guards the RFC 9470 §4 parameters: acr_values
// (space separated) and max_age (seconds) reach the token endpoint, and a
// request with max_age runs the configured grant (a new sign-in) instead of
// the refresh grant, which cannot prove a fresh authentication, and keeps
// the refresh token that sign-in returns.
func TestStepUpParameters(t *testing.T) {
	s := newRTServer(t)
	src := passwordSource(t, s)
	scopes := []string{"api://x/.default"}
	mustToken(t, src, client.TokenRequest{Scopes: scopes})
	mustToken(t, src, client.TokenRequest{Scopes: scopes, ACRValues: []string{"urn:example:mfa", "phr"}, BypassCache: true})
	mustToken(t, src, client.TokenRequest{Scopes: scopes, ACRValues: []string{"urn:example:mfa"}, MaxAge: 5 * time.Minute, BypassCache: true})
	mustToken(t, src, client.TokenRequest{Scopes: scopes, MaxAge: -1, BypassCache: true})
	mustToken(t, src, client.TokenRequest{Scopes: scopes})
	if got := strings.Join(s.grants(), ","); got != "password,refresh_token,password,password,refresh_token" {
		t.Fatalf("grants %s, want the max_age requests to sign in again", got)
	}
	if f := s.form(1); f.Get("acr_values") != "urn:example:mfa phr" || f.Has("max_age") {
		t.Fatalf("acr_values-only request sent %v", f)
	}
	if f := s.form(2); f.Get("acr_values") != "urn:example:mfa" || f.Get("max_age") != "300" {
		t.Fatalf("step-up request sent acr_values %q max_age %q", f.Get("acr_values"), f.Get("max_age"))
	}
	if f := s.form(3); f.Get("max_age") != "0" {
		t.Fatalf("max_age=0 request sent max_age %q", f.Get("max_age"))
	}
	if f := s.form(4); f.Has("acr_values") || f.Has("max_age") {
		t.Fatalf("plain request sent step-up parameters: %v", f)
	}
}
