package httpsource_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/internal/testkit/testidp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newIdP(t *testing.T) *testidp.IdP {
	idp := testidp.New()
	t.Cleanup(idp.Close)
	return idp
}

func TestGrantsAndClaims(t *testing.T) {
	idp := newIdP(t)
	idp.RefreshIn = 30 * time.Minute
	for name, opt := range map[string]httpsource.Option{
		"client_credentials": httpsource.WithClientCredentials(testidp.ClientID, testidp.ClientSecret),
		"password":           httpsource.WithPassword(testidp.ClientID, testidp.ClientSecret, testidp.Username, testidp.Password),
	} {
		t.Run(name, func(t *testing.T) {
			for _, basic := range []bool{false, true} {
				opts := []httpsource.Option{opt}
				if basic {
					opts = append(opts, httpsource.WithBasicAuth())
				}
				s, err := httpsource.New(idp.TokenURL(), opts...)
				if err != nil {
					t.Fatal(err)
				}
				claims := `{"access_token":{"xms_cc":{"values":["cp1"]}}}`
				start := time.Now()
				tok, err := s.Token(context.Background(), client.TokenRequest{Scopes: []string{"a", "b"}, Claims: claims})
				if err != nil {
					t.Fatal(err)
				}
				if tok.AccessToken == "" || tok.ExpiresAt.Sub(start) < 59*time.Minute || tok.RefreshAt.Sub(start) < 29*time.Minute || tok.RefreshAt.Sub(start) > 31*time.Minute {
					t.Fatalf("token %+v", tok)
				}
				last := idp.Requests()[len(idp.Requests())-1]
				if last.GrantType != name || last.Scope != "a b" || last.Claims != claims {
					t.Fatalf("request %+v", last)
				}
			}
		})
	}
}

func TestOAuthErrors(t *testing.T) {
	idp := newIdP(t)
	tests := []struct {
		name string
		opt  httpsource.Option
		code string
	}{
		{"bad password", httpsource.WithPassword(testidp.ClientID, testidp.ClientSecret, testidp.Username, "nope"), "invalid_grant"},
		{"bad client", httpsource.WithClientCredentials(testidp.ClientID, "nope"), "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := httpsource.New(idp.TokenURL(), tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Token(context.Background(), client.TokenRequest{})
			var oe *httpsource.Error
			if !errors.As(err, &oe) || oe.Code != tt.code || !strings.Contains(err.Error(), tt.code) {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			if strings.Contains(err.Error(), "nope") {
				t.Fatalf("secret in error: %v", err)
			}
		})
	}
	idp.SetDown(true)
	s, _ := httpsource.New(idp.TokenURL(), httpsource.WithClientCredentials(testidp.ClientID, testidp.ClientSecret))
	_, err := s.Token(context.Background(), client.TokenRequest{})
	var oe *httpsource.Error
	if !errors.As(err, &oe) || oe.StatusCode != 503 || oe.Code != "temporarily_unavailable" {
		t.Fatalf("err = %v", err)
	}
}

func TestBadResponses(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"huge", `{"access_token":"` + strings.Repeat("a", 2<<10) + `"}`, 200, "exceeds"},
		{"not json", `<html>`, 200, "not JSON"},
		{"no token", `{"expires_in":3600}`, 200, "no access_token"},
		{"no expiry", `{"access_token":"x"}`, 200, "expires_in"},
		{"bad expiry", `{"access_token":"x","expires_in":"soon"}`, 200, "not a whole number"},
		{"wrong type", `{"access_token":"x","expires_in":3600,"token_type":"mac"}`, 200, "not Bearer"},
		{"error in 200", `{"error":"invalid_scope","error_description":"AADSTS70011"}`, 200, "invalid_scope: AADSTS70011"},
		{"html 500", "<h1>oops</h1>", 500, "HTTP 500 without an OAuth error: <h1>oops</h1>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			s, err := httpsource.New(srv.URL, httpsource.WithClientCredentials("c", "s"), httpsource.WithMaxResponseSize(1<<10))
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Token(context.Background(), client.TokenRequest{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("string seconds", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"access_token":"x","token_type":"bearer","expires_in":"3600","refresh_in":"1800"}`))
		}))
		defer srv.Close()
		s, _ := httpsource.New(srv.URL, httpsource.WithClientCredentials("c", "s"))
		tok, err := s.Token(context.Background(), client.TokenRequest{})
		if err != nil || time.Until(tok.RefreshAt) < 29*time.Minute {
			t.Fatalf("%+v %v", tok, err)
		}
	})
}

func TestNewValidation(t *testing.T) {
	cc := httpsource.WithClientCredentials("c", "s")
	for _, tt := range []struct {
		url  string
		opts []httpsource.Option
		want string
	}{
		{"http://idp.example/token", []httpsource.Option{cc}, "must be https"},
		{"ftp://x/token", []httpsource.Option{cc}, "must be https"},
		{"https://idp.example/token", nil, "no grant"},
		{"https:///token", []httpsource.Option{cc}, "no host"},
	} {
		if _, err := httpsource.New(tt.url, tt.opts...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q) = %v, want %q", tt.url, err, tt.want)
		}
	}
	if _, err := httpsource.New("http://idp.example/token", cc, httpsource.WithInsecureHTTP()); err != nil {
		t.Error(err)
	}
}

func TestContextCancelled(t *testing.T) {
	idp := newIdP(t)
	idp.SetDelay(time.Second)
	s, _ := httpsource.New(idp.TokenURL(), httpsource.WithClientCredentials(testidp.ClientID, testidp.ClientSecret))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Token(ctx, client.TokenRequest{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}
