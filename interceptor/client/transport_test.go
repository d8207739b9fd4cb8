package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit/testidp"
)

// entraChallenge is Microsoft's documented CAE challenge, byte for byte
// (https://learn.microsoft.com/entra/identity-platform/claims-challenge;
// the same string as TestHeaderEntraForm and the WWW-Authenticate that
// TestSameSecondAzureSDKRecovers' resource sends): the claims ask for a
// token not before 1604106651.
const entraChallenge = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0="`

// rfc9470Challenge is RFC 9470 §3's first example with a max_age added
// (https://www.rfc-editor.org/rfc/rfc9470#section-3).
const rfc9470Challenge = `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR", max_age="600"`

// api is an HTTP resource on loopback that validates the test IdP's tokens
// and lets the test decide, per validated token, which challenge to send
// ("" to serve the request). It records what it saw.
type api struct {
	srv    *httptest.Server
	decide func(*token.Claims) string

	mu       sync.Mutex
	statuses []int
	bodies   []string
	tokens   []string
}

func newAPI(t *testing.T, idp *testidp.IdP, decide func(*token.Claims) string) *api {
	t.Helper()
	v, err := token.NewValidator(context.Background(), token.WithIssuer(testidp.Issuer), token.WithAudience(testidp.Audience),
		token.WithStaticKey(testidp.KID, idp.PublicKey()), token.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	a := &api{decide: decide}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		raw, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		code := http.StatusOK
		cl, err := v.Validate(r.Context(), raw)
		a.mu.Lock() // decide runs under the lock: it may keep state
		defer a.mu.Unlock()
		switch {
		case err != nil:
			code = http.StatusUnauthorized
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		default:
			if h := a.decide(cl); h != "" {
				code = http.StatusUnauthorized
				w.Header().Set("WWW-Authenticate", h)
			}
		}
		a.statuses = append(a.statuses, code)
		a.bodies = append(a.bodies, string(body))
		a.tokens = append(a.tokens, raw)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "body of "+r.Method)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// newAPIH2 is newAPI served over TLS with HTTP/2.
func newAPIH2(t *testing.T, idp *testidp.IdP, decide func(*token.Claims) string) *api {
	t.Helper()
	a := newAPI(t, idp, decide)
	h := a.srv.Config.Handler
	a.srv.Close()
	a.srv = httptest.NewUnstartedServer(h)
	a.srv.EnableHTTP2 = true
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	return a
}

func (a *api) seen() ([]int, []string, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.statuses), slices.Clone(a.bodies), slices.Clone(a.tokens)
}

func newTransport(t *testing.T, idp *testidp.IdP, opts ...client.Option) (*http.Client, *recorder) {
	t.Helper()
	src, err := httpsource.New(idp.TokenURL(), httpsource.WithClientCredentials(testidp.ClientID, testidp.ClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	obs := &recorder{}
	c, err := client.New(src, append([]client.Option{client.WithScopes(testidp.Scope), client.WithLogger(discard()), client.WithObserver(obs)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	hc := &http.Client{Transport: c.Transport(nil)}
	t.Cleanup(hc.CloseIdleConnections)
	return hc, obs
}

func do(t *testing.T, hc *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func newReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestTransportEntraChallenge: the exact Entra WWW-Authenticate on a 401
// makes the Transport fetch a token with the challenge's claims merged with
// cp1 and replay the request, body included (GetBody), once.
func TestTransportEntraChallenge(t *testing.T) {
	idp := testidp.New()
	t.Cleanup(idp.Close)
	a := newAPI(t, idp, challengeFirstToken())
	hc, obs := newTransport(t, idp)
	code, body := do(t, hc, newReq(t, http.MethodPost, a.srv.URL+"/v1/messages", strings.NewReader(`{"to":"bob"}`)))
	if code != http.StatusOK || body != "body of POST" {
		t.Fatalf("HTTP %d %q, want 200 after one retry", code, body)
	}
	statuses, bodies, tokens := a.seen()
	if !slices.Equal(statuses, []int{401, 200}) || bodies[1] != `{"to":"bob"}` || tokens[0] == tokens[1] {
		t.Fatalf("server saw %v bodies %q (tokens differ: %v), want 401 then 200 with the body replayed", statuses, bodies, tokens[0] != tokens[1])
	}
	reqs := idp.Requests()
	want := `{"access_token":{"xms_cc":{"values":["cp1"]},"nbf":{"essential":true,"value":"1604106651"}}}`
	if len(reqs) != 2 || reqs[0].Claims != `{"access_token":{"xms_cc":{"values":["cp1"]}}}` || reqs[1].Claims != want {
		t.Fatalf("IdP requests %+v, want cp1, then cp1 merged with the challenge's claims %s", reqs, want)
	}
	if obs.count(client.EventRetry) != 1 {
		t.Fatalf("retries observed: %d", obs.count(client.EventRetry))
	}
}

// TestTransportRFC9470: an RFC 9470 challenge makes the Transport ask the
// IdP with acr_values and max_age (RFC 9470 §4) and retry; the token the
// IdP issues has the requested acr and passes.
func TestTransportRFC9470(t *testing.T) {
	idp := testidp.New()
	t.Cleanup(idp.Close)
	idp.SetClaim("auth_time", time.Now().Add(-time.Hour).Unix())
	a := newAPI(t, idp, func(cl *token.Claims) string {
		if cl.ACR != "myACR" || time.Since(cl.AuthTime) > 10*time.Minute {
			return rfc9470Challenge
		}
		return ""
	})
	hc, _ := newTransport(t, idp)
	if code, _ := do(t, hc, newReq(t, http.MethodGet, a.srv.URL+"/v1/messages/1", nil)); code != http.StatusOK {
		t.Fatalf("HTTP %d, want 200 after the step-up", code)
	}
	reqs := idp.Requests()
	if len(reqs) != 2 || reqs[1].ACRValues != "myACR" || reqs[1].MaxAge != "600" {
		t.Fatalf("IdP requests %+v, want a step-up with acr_values=myACR max_age=600", reqs)
	}
	// The stepped-up token is cached: the next request costs no IdP trip.
	if code, _ := do(t, hc, newReq(t, http.MethodGet, a.srv.URL+"/v1/messages/2", nil)); code != http.StatusOK || idp.Count() != 2 {
		t.Fatalf("second request: HTTP %d, IdP requests %d", code, idp.Count())
	}
}

// TestTransportRetriesOnce: a server that challenges every token gets the
// request twice, and the caller the second 401.
func TestTransportRetriesOnce(t *testing.T) {
	idp := testidp.New()
	t.Cleanup(idp.Close)
	a := newAPI(t, idp, func(*token.Claims) string { return entraChallenge })
	hc, obs := newTransport(t, idp)
	if code, _ := do(t, hc, newReq(t, http.MethodGet, a.srv.URL+"/x", nil)); code != http.StatusUnauthorized {
		t.Fatalf("HTTP %d, want the second 401", code)
	}
	if statuses, _, _ := a.seen(); len(statuses) != 2 {
		t.Fatalf("server saw %d requests, want 2 (one retry)", len(statuses))
	}
	if obs.count(client.EventNotRetried) != 1 {
		t.Fatalf("not-retried events %d, want 1 (challenged again on the retry)", obs.count(client.EventNotRetried))
	}
}

// TestTransportUnreplayableBody: a body without GetBody cannot be sent
// again: the 401 goes to the caller (not a silent empty-body retry), and the
// new token is ready for the next request.
func TestTransportUnreplayableBody(t *testing.T) {
	idp := testidp.New()
	t.Cleanup(idp.Close)
	a := newAPI(t, idp, challengeFirstToken())
	hc, _ := newTransport(t, idp)
	req := newReq(t, http.MethodPost, a.srv.URL+"/x", io.NopCloser(strings.NewReader("payload")))
	if req.GetBody != nil {
		t.Fatal("test setup: the body must not be replayable")
	}
	if code, _ := do(t, hc, req); code != http.StatusUnauthorized {
		t.Fatalf("HTTP %d, want the 401 returned", code)
	}
	code, _ := do(t, hc, newReq(t, http.MethodPost, a.srv.URL+"/x", strings.NewReader("again")))
	statuses, bodies, _ := a.seen()
	if code != http.StatusOK || !slices.Equal(statuses, []int{401, 200}) || bodies[1] != "again" {
		t.Fatalf("next request: HTTP %d, server saw %v %q", code, statuses, bodies)
	}
	if idp.Count() != 2 {
		t.Fatalf("IdP requests %d, want 2", idp.Count())
	}
}

// TestTransportRefusesCleartext: a token is never sent over plain http to
// a non-loopback host unless WithInsecure; nothing reaches the IdP either.
func TestTransportRefusesCleartext(t *testing.T) {
	idp := testidp.New()
	t.Cleanup(idp.Close)
	hc, _ := newTransport(t, idp)
	_, err := hc.Do(newReq(t, http.MethodGet, "http://api.example.invalid/x", nil))
	if err == nil || !strings.Contains(err.Error(), "refusing to send an access token over http") {
		t.Fatalf("err = %v", err)
	}
	if idp.Count() != 0 {
		t.Fatal("a token was fetched for a request that is refused")
	}
}

// An invalid_token rejection has no claims: returned as is, no retry.
func TestTransportInvalidTokenNotRetried(t *testing.T) {
	idp := testidp.New()
	t.Cleanup(idp.Close)
	a := newAPI(t, idp, func(*token.Claims) string { return `Bearer error="invalid_token"` })
	hc, _ := newTransport(t, idp)
	if code, _ := do(t, hc, newReq(t, http.MethodGet, a.srv.URL+"/x", nil)); code != http.StatusUnauthorized {
		t.Fatalf("HTTP %d", code)
	}
	if statuses, _, _ := a.seen(); len(statuses) != 1 || idp.Count() != 1 {
		t.Fatalf("server saw %d requests, IdP %d; want 1 and 1", len(statuses), idp.Count())
	}
}

// challengeFirstToken challenges the first token the API sees, with the
// Entra challenge, and serves every other token.
func challengeFirstToken() func(*token.Claims) string {
	first := ""
	return func(cl *token.Claims) string {
		if first == "" || first == cl.TokenID {
			first = cl.TokenID
			return entraChallenge
		}
		return ""
	}
}

// TestTransportHTTP2: the same recovery over TLS and HTTP/2, with the
// server's own transport as the base; the retry replays the body.
func TestTransportHTTP2(t *testing.T) {
	idp := testidp.New()
	t.Cleanup(idp.Close)
	a := newAPIH2(t, idp, challengeFirstToken())
	src, err := httpsource.New(idp.TokenURL(), httpsource.WithClientCredentials(testidp.ClientID, testidp.ClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(src, client.WithScopes(testidp.Scope), client.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	base := a.srv.Client().Transport
	hc := &http.Client{Transport: c.Transport(base)}
	t.Cleanup(hc.CloseIdleConnections)
	resp, err := hc.Do(newReq(t, http.MethodPut, a.srv.URL+"/v1/messages/1", strings.NewReader("v2")))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	statuses, bodies, _ := a.seen()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || !slices.Equal(statuses, []int{401, 200}) || bodies[1] != "v2" {
		t.Fatalf("HTTP/%d %d, server saw %v %q", resp.ProtoMajor, resp.StatusCode, statuses, bodies)
	}
}
