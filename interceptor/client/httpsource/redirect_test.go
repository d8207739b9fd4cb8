package httpsource_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/internal/testkit/testidp"
)

// sink is a loopback HTTP server on its own port (another origin) that
// records every request it gets, as an attacker's redirect target would.
type sink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string // "METHOD body authorization"
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, r.Method+" "+string(b)+" "+r.Header.Get("Authorization"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"stolen","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// redirector is a token endpoint on loopback that answers every request
// with a redirect to target.
func redirector(t *testing.T, code int, target string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, target, code)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRedirectsNotFollowed guards issue 13 item 4: the token endpoint
// redirecting (here to another port on loopback, another origin) used to make
// the Source follow, and for 307/308 re-send the form with client_secret and
// password to the target, which answered with a token the Source accepted.
// Now no redirect is followed, for any status, grant or client
// authentication method, and the error says why. Go's http.Client re-sends
// the body on 307/308 (net/http client.go, redirectBehavior); RFC 9700 §4.12
// describes the credential leak.
func TestRedirectsNotFollowed(t *testing.T) {
	target := newSink(t)
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for _, basic := range []bool{false, true} {
			name := http.StatusText(code)
			if basic {
				name += "/basic"
			}
			t.Run(name, func(t *testing.T) {
				from := redirector(t, code, target.srv.URL+"/token")
				opts := []httpsource.Option{httpsource.WithPassword(testidp.ClientID, testidp.ClientSecret, testidp.Username, testidp.Password)}
				if basic {
					opts = append(opts, httpsource.WithBasicAuth())
				}
				s, err := httpsource.New(from.URL+"/token", opts...)
				if err != nil {
					t.Fatal(err)
				}
				tok, err := s.Token(context.Background(), client.TokenRequest{Scopes: []string{testidp.Scope}})
				if !errors.Is(err, httpsource.ErrRedirect) || tok != nil {
					t.Fatalf("token %v, err = %v; want a refusal wrapping ErrRedirect", tok, err)
				}
				if !strings.Contains(err.Error(), target.srv.URL+"/token") {
					t.Fatalf("error %q does not name the redirect target", err)
				}
				if strings.Contains(err.Error(), testidp.ClientSecret) || strings.Contains(err.Error(), testidp.Password) {
					t.Fatalf("error %q contains a secret", err)
				}
			})
		}
	}
	if got := target.requests(); len(got) != 0 {
		t.Fatalf("the redirect target received %d requests, first %q", len(got), got[0])
	}
}

// TestSameOriginRedirectNotFollowed: the rule is "no redirects", not "no
// cross-origin redirects" (documented in the package doc): a redirect to
// another path of the same endpoint is refused as well.
func TestSameOriginRedirectNotFollowed(t *testing.T) {
	idp := newIdP(t)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, idp.TokenURL(), http.StatusPermanentRedirect)
	})
	s, err := httpsource.New(srv.URL+"/old", httpsource.WithClientCredentials(testidp.ClientID, testidp.ClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(context.Background(), client.TokenRequest{}); !errors.Is(err, httpsource.ErrRedirect) {
		t.Fatalf("err = %v, want ErrRedirect", err)
	}
	if idp.Count() != 0 {
		t.Fatalf("the IdP got %d requests through the redirect", idp.Count())
	}
}

// TestWithHTTPClientRedirectPolicyOverridden: a caller's client that would
// follow redirects is not followed either, and the caller's client itself
// is left as it was.
func TestWithHTTPClientRedirectPolicyOverridden(t *testing.T) {
	target := newSink(t)
	from := redirector(t, http.StatusTemporaryRedirect, target.srv.URL+"/token")
	follow := func(*http.Request, []*http.Request) error { return nil }
	h := &http.Client{CheckRedirect: follow}
	s, err := httpsource.New(from.URL+"/token", httpsource.WithClientCredentials(testidp.ClientID, testidp.ClientSecret), httpsource.WithHTTPClient(h))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(context.Background(), client.TokenRequest{}); !errors.Is(err, httpsource.ErrRedirect) {
		t.Fatalf("err = %v, want ErrRedirect", err)
	}
	if h.CheckRedirect == nil {
		t.Fatal("the caller's http.Client was modified")
	}
	if got := target.requests(); len(got) != 0 {
		t.Fatalf("the redirect target received %q", got)
	}
}
