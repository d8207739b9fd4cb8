package httpsource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
)

// rtServer is a token endpoint on loopback that issues a refresh token on
// the password grant and rotates it on every refresh grant (RFC 6749 §6,
// RFC 9700 §4.14.2). Like an IdP with reuse detection it refuses, and
// reports as a test failure, a refresh token presented twice.
type rtServer struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	n        int
	live     map[string]bool // refresh tokens not yet used
	used     map[string]bool
	forms    []url.Values
	refuseRT bool   // answer every refresh grant invalid_grant
	failRT   int    // answer the refresh grant with this HTTP status (503...)
	refusePW string // answer the password grant invalid_grant with this description
	issue    func(n int) (string, bool)
	block    chan struct{} // if set, requests wait for it to close
	entered  chan struct{} // if set, signalled when a request arrives
}

func newRTServer(t *testing.T) *rtServer {
	s := &rtServer{t: t, live: map[string]bool{}, used: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *rtServer) url() string { return s.srv.URL + "/token" }

func (s *rtServer) handle(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forms = append(s.forms, r.PostForm)
	oauthErr := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	switch r.PostForm.Get("grant_type") {
	case "password":
		if s.refusePW != "" {
			oauthErr(http.StatusBadRequest, "invalid_grant", s.refusePW)
			return
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if s.used[rt] {
			s.t.Errorf("refresh token %s presented twice", rt)
		}
		if !s.live[rt] {
			oauthErr(http.StatusBadRequest, "invalid_grant", "AADSTS70000: unknown refresh token")
			return
		}
		if s.failRT != 0 {
			oauthErr(s.failRT, "temporarily_unavailable", "try later")
			return
		}
		if s.refuseRT {
			oauthErr(http.StatusBadRequest, "invalid_grant", "AADSTS50173: the grant was revoked")
			return
		}
		delete(s.live, rt)
		s.used[rt] = true
	default:
		oauthErr(http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	s.n++
	resp := map[string]any{"access_token": fmt.Sprintf("at-%d", s.n), "token_type": "Bearer", "expires_in": 3600}
	rt, ok := fmt.Sprintf("rt-%d-secret", s.n), true
	if s.issue != nil {
		rt, ok = s.issue(s.n)
	}
	if ok {
		resp["refresh_token"] = rt
		s.live[rt] = true
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *rtServer) grants() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, f := range s.forms {
		out = append(out, f.Get("grant_type"))
	}
	return out
}

func (s *rtServer) form(i int) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forms[i]
}

func passwordSource(t *testing.T, s *rtServer, opts ...httpsource.Option) *httpsource.Source {
	t.Helper()
	src, err := httpsource.New(s.url(), append([]httpsource.Option{httpsource.WithPassword("cli", "", "alice", "pw")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func mustToken(t *testing.T, src *httpsource.Source, req client.TokenRequest) *client.Token {
	t.Helper()
	tok, err := src.Token(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRefreshTokenUsedAndRotated guards that the refresh token of a password
// sign-in is used for the next fetches (RFC 6749 §6), with the request's
// scopes and claims (a challenge re-acquisition sends claims with the
// refresh grant, as MSAL's AcquireTokenSilent with claims does), without
// the password, and that a rotated refresh token replaces the old one (the
// server fails the test if a refresh token is presented twice).
func TestRefreshTokenUsedAndRotated(t *testing.T) {
	s := newRTServer(t)
	src := passwordSource(t, s)
	req := client.TokenRequest{Scopes: []string{"api://x/.default", "offline_access"}}
	mustToken(t, src, req)
	if !src.HasRefreshToken() {
		t.Fatal("no refresh token kept after the password grant")
	}
	claims := `{"access_token":{"nbf":{"essential":true,"value":"1700000000"},"xms_cc":{"values":["cp1"]}}}`
	tok := mustToken(t, src, client.TokenRequest{Scopes: req.Scopes, Claims: claims})
	if tok.AccessToken != "at-2" {
		t.Fatalf("second token %q, want at-2", tok.AccessToken)
	}
	mustToken(t, src, req)
	if got := strings.Join(s.grants(), ","); got != "password,refresh_token,refresh_token" {
		t.Fatalf("grants %s, want password,refresh_token,refresh_token", got)
	}
	f := s.form(1)
	switch {
	case f.Get("refresh_token") != "rt-1-secret":
		t.Fatalf("first refresh sent %q, want rt-1-secret", f.Get("refresh_token"))
	case f.Get("claims") != claims:
		t.Fatalf("refresh grant claims %q, want %q", f.Get("claims"), claims)
	case f.Get("scope") != "api://x/.default offline_access":
		t.Fatalf("refresh grant scope %q", f.Get("scope"))
	case f.Has("password") || f.Has("username"):
		t.Fatalf("refresh grant sent the password: %v", f)
	case f.Get("client_id") != "cli":
		t.Fatalf("refresh grant client_id %q", f.Get("client_id"))
	}
	if got := s.form(2).Get("refresh_token"); got != "rt-2-secret" {
		t.Fatalf("second refresh sent %q, want the rotated rt-2-secret", got)
	}
}

// TestRefreshTokenKeptWithoutRotation guards RFC 6749 §6: an answer to the
// refresh grant without a refresh_token leaves the old one valid and kept.
func TestRefreshTokenKeptWithoutRotation(t *testing.T) {
	s := newRTServer(t)
	s.issue = func(n int) (string, bool) { return "rt-fixed", n == 1 }
	src := passwordSource(t, s)
	mustToken(t, src, client.TokenRequest{})
	s.mu.Lock()
	s.used = map[string]bool{} // this server does not rotate: reuse is fine
	s.mu.Unlock()
	for range 2 {
		mustToken(t, src, client.TokenRequest{})
		s.mu.Lock()
		s.live["rt-fixed"], s.used = true, map[string]bool{}
		s.mu.Unlock()
	}
	if got := strings.Join(s.grants(), ","); got != "password,refresh_token,refresh_token" {
		t.Fatalf("grants %s", got)
	}
}

// TestRefreshInvalidGrantFallsBack guards the fallback: a refresh grant
// refused with invalid_grant drops the refresh token and signs in with the
// configured grant once; that sign-in's refresh token is kept.
func TestRefreshInvalidGrantFallsBack(t *testing.T) {
	s := newRTServer(t)
	src := passwordSource(t, s)
	mustToken(t, src, client.TokenRequest{})
	s.refuseRT = true
	tok := mustToken(t, src, client.TokenRequest{Claims: `{"access_token":{"xms_cc":{"values":["cp1"]}}}`})
	if tok.AccessToken != "at-2" {
		t.Fatalf("token %q after fallback, want at-2", tok.AccessToken)
	}
	if got := strings.Join(s.grants(), ","); got != "password,refresh_token,password" {
		t.Fatalf("grants %s, want password,refresh_token,password", got)
	}
	if c := s.form(2).Get("claims"); !strings.Contains(c, "cp1") {
		t.Fatalf("the fallback password grant lost the claims: %q", c)
	}
	if !src.HasRefreshToken() {
		t.Fatal("the fallback's refresh token was not kept")
	}
}

// TestRefreshInvalidGrantFallbackError guards that the app sees the
// fallback's own error: a disabled user's refresh token is refused, then
// the password grant answers AADSTS50057 invalid_grant (what the demo's
// step 7 shows). The refresh token is dropped, and the next call tries the
// password grant only.
func TestRefreshInvalidGrantFallbackError(t *testing.T) {
	s := newRTServer(t)
	src := passwordSource(t, s)
	mustToken(t, src, client.TokenRequest{})
	s.refuseRT = true
	s.refusePW = "AADSTS50057: the user account alice is disabled"
	_, err := src.Token(context.Background(), client.TokenRequest{})
	var oe *httpsource.Error
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" || !strings.Contains(oe.Description, "AADSTS50057") {
		t.Fatalf("error %v, want the password grant's AADSTS50057 invalid_grant", err)
	}
	if src.HasRefreshToken() {
		t.Fatal("the refused refresh token is still kept")
	}
	_, _ = src.Token(context.Background(), client.TokenRequest{})
	if got := strings.Join(s.grants(), ","); got != "password,refresh_token,password,password" {
		t.Fatalf("grants %s, want password,refresh_token,password,password", got)
	}
}

// TestRefreshTransientErrorKeepsToken guards that only invalid_grant kills
// the refresh token: a 503 is returned as is, with no new sign-in (which
// would start a new session), and the next call refreshes again.
func TestRefreshTransientErrorKeepsToken(t *testing.T) {
	s := newRTServer(t)
	src := passwordSource(t, s)
	mustToken(t, src, client.TokenRequest{})
	s.failRT = http.StatusServiceUnavailable
	_, err := src.Token(context.Background(), client.TokenRequest{})
	var oe *httpsource.Error
	if !errors.As(err, &oe) || oe.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("error %v, want the 503", err)
	}
	if !src.HasRefreshToken() {
		t.Fatal("refresh token dropped on a 503")
	}
	s.failRT = 0
	mustToken(t, src, client.TokenRequest{})
	if got := strings.Join(s.grants(), ","); got != "password,refresh_token,refresh_token" {
		t.Fatalf("grants %s, want password,refresh_token,refresh_token", got)
	}
}

// TestRefreshConcurrent guards httpsource's concurrency contract with
// refresh tokens (run it with -race): concurrent Token calls never present
// one rotated refresh token twice (the server fails the test if they do),
// and only the first call signs in with the password.
func TestRefreshConcurrent(t *testing.T) {
	s := newRTServer(t)
	src := passwordSource(t, s)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := src.Token(context.Background(), client.TokenRequest{Scopes: []string{fmt.Sprint("s", i)}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	g := s.grants()
	pw := strings.Count(strings.Join(g, ","), "password")
	if len(g) != n || pw != 1 || g[0] != "password" {
		t.Fatalf("grants %v: want %d requests, the first and only one password", g, n)
	}
}

// TestRefreshWaitRespectsContext guards that a Token call waiting for
// another one gives up with its context.
func TestRefreshWaitRespectsContext(t *testing.T) {
	s := newRTServer(t)
	s.block, s.entered = make(chan struct{}), make(chan struct{}, 1)
	src := passwordSource(t, s)
	done := make(chan error, 1)
	go func() {
		_, err := src.Token(context.Background(), client.TokenRequest{})
		done <- err
	}()
	<-s.entered // the first call is in the server, holding the Source
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := src.Token(ctx, client.TokenRequest{})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for another token request") {
		t.Fatalf("error %v, want context.Canceled while waiting", err)
	}
	close(s.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRefreshTokenNeverPrinted guards that the refresh token (and the
// password and client secret) never appear when a Source is printed with
// fmt or logged with slog, nor in errors about a refused refresh_token.
func TestRefreshTokenNeverPrinted(t *testing.T) {
	s := newRTServer(t)
	src, err := httpsource.New(s.url(), httpsource.WithPassword("cli", "client-secret-x", "alice", "password-x"))
	if err != nil {
		t.Fatal(err)
	}
	mustToken(t, src, client.TokenRequest{})
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("source", "src", src)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("source", "src", src)
	out := fmt.Sprintf("%v %+v %#v %s", src, src, src, src) + buf.String()
	for _, secret := range []string{"rt-1-secret", "client-secret-x", "password-x"} {
		if strings.Contains(out, secret) {
			t.Fatalf("printed Source shows %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, s.url()) {
		t.Fatalf("printed Source does not name its endpoint: %s", out)
	}

	for name, rt := range map[string]string{
		"too long":     "secret-" + strings.Repeat("x", httpsource.MaxRefreshTokenSize),
		"control char": "secret-\x01-rt",
		"non-ASCII":    "secret-é-rt",
		"empty":        "",
	} {
		t.Run(name, func(t *testing.T) {
			s := newRTServer(t)
			s.issue = func(int) (string, bool) { return rt, true }
			src := passwordSource(t, s)
			_, err := src.Token(context.Background(), client.TokenRequest{})
			if err == nil || !strings.Contains(err.Error(), "refresh_token") {
				t.Fatalf("error %v, want one about the refresh_token", err)
			}
			if rt != "" && strings.Contains(err.Error(), "secret-") {
				t.Fatalf("error quotes the refresh token: %v", err)
			}
			if src.HasRefreshToken() {
				t.Fatal("a refused refresh token was kept")
			}
			// WithoutRefreshTokens ignores it: no error, no refresh grant.
			off := passwordSource(t, s, httpsource.WithoutRefreshTokens())
			mustToken(t, off, client.TokenRequest{})
		})
	}
}

// TestWithoutRefreshTokens guards the opt-out: refresh tokens in answers
// are ignored and every fetch runs the configured grant.
func TestWithoutRefreshTokens(t *testing.T) {
	s := newRTServer(t)
	src := passwordSource(t, s, httpsource.WithoutRefreshTokens())
	for range 3 {
		mustToken(t, src, client.TokenRequest{})
	}
	if src.HasRefreshToken() {
		t.Fatal("refresh token kept with WithoutRefreshTokens")
	}
	if got := strings.Join(s.grants(), ","); got != "password,password,password" {
		t.Fatalf("grants %s, want password only", got)
	}
}

// TestErrorNeverQuotesSecrets guards that an endpoint echoing the refresh
// token, the password or the client secret in error_description (as some
// proxies and misconfigured IdPs echo the request) cannot put them in the
// error the app logs.
func TestErrorNeverQuotesSecrets(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusOK} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			n := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				w.Header().Set("Content-Type", "application/json")
				if n++; n == 1 {
					_, _ = fmt.Fprint(w, `{"access_token":"at","token_type":"Bearer","expires_in":60,"refresh_token":"rt-echo-secret"}`)
					return
				}
				w.WriteHeader(status)
				desc := "you sent " + r.PostForm.Encode() + " and " + r.PostForm.Get("refresh_token")
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": desc})
			}))
			defer srv.Close()
			src, err := httpsource.New(srv.URL, httpsource.WithPassword("cli", "client-secret-x", "alice", "password-x"))
			if err != nil {
				t.Fatal(err)
			}
			mustToken(t, src, client.TokenRequest{})
			_, err = src.Token(context.Background(), client.TokenRequest{})
			var oe *httpsource.Error
			if !errors.As(err, &oe) || oe.Code != "invalid_request" || !strings.Contains(err.Error(), "[redacted]") {
				t.Fatalf("error %v, want the echoed invalid_request, redacted", err)
			}
			for _, secret := range []string{"rt-echo-secret", "client-secret-x", "password-x"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error quotes %q: %v", secret, err)
				}
			}
		})
	}
}
