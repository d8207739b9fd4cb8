package receiver_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
	"github.com/caekit/caekit/revocation/ssf/stream"
)

// hitServer is a loopback HTTP server that counts requests and those that
// carried an Authorization header.
type hitServer struct {
	*httptest.Server
	hits, authHits atomic.Int64
}

func newHitServer(t *testing.T, h http.HandlerFunc) *hitServer {
	s := &hitServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.Header.Get("Authorization") != "" {
			s.authHits.Add(1)
		}
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// dialingClient returns an HTTP client that connects requests for host
// (a name such as keys.example.test) to the loopback address addr, and
// every other request to its own address: so a URL such as
// http://keys.example.test:1234/ reaches a test server while looking like
// a non-loopback host to the URL rule.
func dialingClient(t *testing.T, host, addr string) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		var d net.Dialer
		if strings.HasPrefix(a, host+":") {
			a = addr
		}
		return d.DialContext(ctx, network, a)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func port(s *httptest.Server) string { return s.URL[strings.LastIndexByte(s.URL, ':')+1:] }

// TestPlainHTTPFetchesRefused (issue 13 item 3): the receiver fetches the
// transmitter's configuration and keys over https only; plain http only on
// loopback or with WithInsecureHTTP. Before the fix, a configuration (or a
// WithJWKSURL) naming a plain-http jwks_uri on any host was fetched, so a
// network attacker could substitute the keys and forge lock-outs. The keys
// server is reached through a dialer that maps keys.example.test to
// loopback, so the refusal is the URL rule's, not a failed DNS look-up: with
// WithInsecureHTTP the same set-up works end to end.
func TestPlainHTTPFetchesRefused(t *testing.T) {
	tr := ssftest.New()
	defer tr.Close()
	keys := newHitServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(tr.JWKS()) })
	jwksURI := "http://keys.example.test:" + port(keys.Server) + "/jwks"
	var cfgSrv *hitServer
	cfgSrv = newHitServer(t, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": cfgSrv.URL, "jwks_uri": jwksURI})
	})
	hc := dialingClient(t, "keys.example.test", keys.Listener.Addr().String())
	base := []receiver.Option{receiver.WithIssuer(cfgSrv.URL), receiver.WithAudience(ssftest.Audience), receiver.WithStore(teststore.Memory(t)),
		receiver.WithHTTPClient(hc), receiver.WithSubjectIssuers("https://idp.example.test")}
	ctx := context.Background()

	_, err := receiver.New(ctx, base...)
	if err == nil || !strings.Contains(err.Error(), "jwks_uri") || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("plain-http jwks_uri on a non-loopback host: %v, want a refusal naming jwks_uri", err)
	}
	if n := keys.hits.Load(); n != 0 {
		t.Fatalf("the plain-http JWKS was fetched %d times", n)
	}
	if _, err := receiver.New(ctx, append(base[1:], receiver.WithIssuer("https://tr.example.test"), receiver.WithJWKSURL(jwksURI))...); err == nil || !strings.Contains(err.Error(), "WithJWKSURL") {
		t.Fatalf("plain-http WithJWKSURL: %v, want a refusal", err)
	}
	if _, err := receiver.New(ctx, append(base[1:], receiver.WithIssuer("http://tr.example.test"))...); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("plain-http issuer: %v, want a refusal", err)
	}
	if keys.hits.Load() != 0 {
		t.Fatal("a refused URL was fetched")
	}

	// Opted in: the same set-up works, through the dialer.
	r, err := receiver.New(ctx, append(base, receiver.WithInsecureHTTP())...)
	if err != nil {
		t.Fatalf("WithInsecureHTTP: %v", err)
	}
	defer r.Close()
	c := tr.Claims(ssf.RISCAccountDisabled, nil, userSub)
	c["iss"] = cfgSrv.URL
	if _, err := r.Receive(ctx, []byte(tr.Sign(c))); err != nil {
		t.Fatalf("WithInsecureHTTP, SET: %v", err)
	}
	if keys.hits.Load() == 0 {
		t.Fatal("test setup: the keys were not fetched through the dialer")
	}
	// The poll endpoint follows the same rule.
	if _, err := receiver.NewPoller(r, "http://poll.example.test/poll"); err != nil {
		t.Fatalf("poll endpoint with WithInsecureHTTP: %v", err)
	}
	strict, err := receiver.New(ctx, receiver.WithIssuer(tr.Issuer), receiver.WithAudience(ssftest.Audience), receiver.WithStore(teststore.Memory(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	if _, err := receiver.NewPoller(strict, "http://poll.example.test/poll"); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("plain-http poll endpoint: %v, want a refusal", err)
	}
}

// TestRedirectToPlainHTTPRefused (issue 13 item 3): a redirect is held to
// the same rule as the URL it leaves: the transmitter's loopback
// configuration endpoint redirecting to plain http on another host is not
// followed.
func TestRedirectToPlainHTTPRefused(t *testing.T) {
	evil := newHitServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) })
	from := newHitServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://evil.example.test:"+port(evil.Server)+r.URL.Path, http.StatusFound)
	})
	hc := dialingClient(t, "evil.example.test", evil.Listener.Addr().String())
	_, err := receiver.New(context.Background(), receiver.WithIssuer(from.URL), receiver.WithAudience("a"), receiver.WithStore(teststore.Memory(t)),
		receiver.WithHTTPClient(hc))
	if err == nil || !strings.Contains(err.Error(), "redirect refused") {
		t.Fatalf("redirect to plain http: %v, want a refusal", err)
	}
	if evil.hits.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
}

// TestClientBearerStaysOnOrigin (issue 13 item 3): the stream-management
// client's bearer token goes only to endpoints on the transmitter's own
// origin: not to an endpoint that a (tampered) configuration places
// elsewhere, and not through a redirect to another origin. Before the fix
// it was sent to both.
func TestClientBearerStaysOnOrigin(t *testing.T) {
	other := newHitServer(t, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"stream_id": "s1", "status": "enabled"})
	})
	var tr *hitServer
	tr = newHitServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/ssf-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": tr.URL, "jwks_uri": tr.URL + "/jwks",
				"configuration_endpoint": other.URL + "/streams", "status_endpoint": tr.URL + "/status"})
		case "/status":
			http.Redirect(w, r, other.URL+"/status", http.StatusTemporaryRedirect)
		}
	})
	ctx := context.Background()
	c := newClient(t, tr.URL, stream.WithBearerToken("secret"))
	if _, err := c.CreateStream(ctx, &stream.Config{}); err == nil || !strings.Contains(err.Error(), "not on the origin") {
		t.Fatalf("configuration_endpoint on another origin: %v, want a refusal", err)
	}
	if _, err := c.Status(ctx, "s1"); err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("redirect to another origin: %v, want a refusal", err)
	}
	if n := other.hits.Load(); n != 0 {
		t.Fatalf("the other origin got %d requests", n)
	}
	// A configuration the caller supplied is trusted as written.
	tc, err := c.Configuration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sup := newClient(t, tr.URL, stream.WithBearerToken("secret"), stream.WithConfiguration(tc))
	if _, err := sup.CreateStream(ctx, &stream.Config{}); err != nil {
		t.Fatalf("supplied configuration: %v", err)
	}
	if other.authHits.Load() != 1 {
		t.Fatalf("supplied configuration: the bearer token reached its endpoint %d times, want 1", other.authHits.Load())
	}
	// Plain http on a non-loopback host is refused before any request.
	if _, err := stream.New("http://tr.example.test"); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("plain-http issuer: %v, want a refusal", err)
	}
}
