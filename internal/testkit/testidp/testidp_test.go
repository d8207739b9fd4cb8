package testidp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/caekit/caekit/internal/testkit/testidp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// post sends a token request and decodes the JSON answer.
func post(t *testing.T, idp *testidp.IdP, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(idp.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return resp.StatusCode, body
}

// parse verifies an issued access token with the IdP's public key, as of
// the instant at.
func parse(t *testing.T, idp *testidp.IdP, raw any, at time.Time) (*jwt.Token, jwt.MapClaims) {
	t.Helper()
	s, _ := raw.(string)
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(s, claims, func(*jwt.Token) (any, error) { return idp.PublicKey(), nil },
		jwt.WithTimeFunc(func() time.Time { return at }), jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(testidp.Issuer), jwt.WithAudience(testidp.Audience))
	if err != nil {
		t.Fatalf("issued token does not verify: %v", err)
	}
	return tok, claims
}

// The password grant issues an at+jwt for the user's session and honours
// the CAE parts of a claims request: xms_cc capabilities, nbf (issued no
// earlier) and acrs. The request shape is Entra's claims challenge
// (https://learn.microsoft.com/en-us/entra/identity-platform/claims-challenge).
func TestPasswordGrantHonoursTheClaimsRequest(t *testing.T) {
	idp := testidp.New()
	defer idp.Close()
	// Half an hour after now (within the 1 h lifetime): the token must be
	// issued at it, not now.
	nbf := time.Now().Add(30 * time.Minute).Unix()
	code, body := post(t, idp, url.Values{
		"grant_type": {"password"}, "client_id": {testidp.ClientID}, "client_secret": {testidp.ClientSecret},
		"username": {testidp.Username}, "password": {testidp.Password}, "scope": {testidp.Scope},
		"claims": {`{"access_token":{"xms_cc":{"values":["cp1"]},"nbf":{"essential":true,"value":"` + strconv.FormatInt(nbf, 10) + `"},"acrs":{"essential":true,"value":"c1"}}}`},
	})
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, body)
	}
	tok, c := parse(t, idp, body["access_token"], time.Unix(nbf, 0))
	if tok.Header["kid"] != testidp.KID || tok.Header["typ"] != "at+jwt" {
		t.Fatalf("header = %v", tok.Header)
	}
	if c["sub"] != testidp.Username || c["sid"] != testidp.SessionID {
		t.Fatalf("claims = %v", c)
	}
	if got, _ := json.Marshal(c["xms_cc"]); string(got) != `["cp1"]` {
		t.Fatalf("xms_cc = %s", got)
	}
	if got, _ := json.Marshal(c["acrs"]); string(got) != `["c1"]` {
		t.Fatalf("acrs = %s", got)
	}
	if iat, _ := c["iat"].(float64); int64(iat) != nbf {
		t.Fatalf("iat = %v, want the requested nbf", c["iat"])
	}
	if got := idp.Requests(); len(got) != 1 || got[0].GrantType != "password" || !strings.Contains(got[0].Claims, "xms_cc") {
		t.Fatalf("requests = %+v", got)
	}
}

// Client credentials (in Basic auth) issue an app token and refresh_in
// when set; a wrong secret, a bad claims request and an unknown grant are
// refused with the OAuth error codes of RFC 6749 §5.2.
func TestClientCredentialsAndRefusals(t *testing.T) {
	idp := testidp.New()
	defer idp.Close()
	idp.RefreshIn = 90 * time.Second
	req, err := http.NewRequest(http.MethodPost, idp.TokenURL(), strings.NewReader("grant_type=client_credentials&scope=x"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testidp.ClientID, testidp.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || body["refresh_in"] != "90" {
		t.Fatalf("client_credentials: %d %v %v", resp.StatusCode, body, err)
	}
	if _, c := parse(t, idp, body["access_token"], time.Now()); c["idtyp"] != "app" || c["sub"] != "app-sp" {
		t.Fatalf("app claims = %v", c)
	}

	base := url.Values{"client_id": {testidp.ClientID}, "client_secret": {testidp.ClientSecret}}
	for name, tc := range map[string]struct {
		form url.Values
		code int
		err  string
	}{
		"wrong secret":     {url.Values{"grant_type": {"client_credentials"}, "client_id": {testidp.ClientID}, "client_secret": {"no"}}, 401, "invalid_client"},
		"wrong password":   {with(base, "grant_type", "password", "username", testidp.Username, "password", "no"), 400, "invalid_grant"},
		"unknown grant":    {with(base, "grant_type", "implicit"), 400, "unsupported_grant_type"},
		"claims not JSON":  {with(base, "grant_type", "client_credentials", "claims", "{"), 400, "invalid_request"},
		"nbf not a number": {with(base, "grant_type", "client_credentials", "claims", `{"access_token":{"nbf":{"value":"soon"}}}`), 400, "invalid_request"},
	} {
		code, body := post(t, idp, tc.form)
		if code != tc.code || body["error"] != tc.err {
			t.Errorf("%s: %d %v, want %d %s", name, code, body, tc.code, tc.err)
		}
	}

	idp.SetDown(true)
	if code, body := post(t, idp, with(base, "grant_type", "client_credentials")); code != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		t.Fatalf("down: %d %v", code, body)
	}
	idp.SetDown(false)
	if code, _ := post(t, idp, with(base, "grant_type", "client_credentials")); code != http.StatusOK {
		t.Fatalf("up again: %d", code)
	}
	if idp.Count() != len(idp.Requests()) || idp.Count() != 8 {
		t.Fatalf("Count = %d, Requests = %d, want 8 (refused ones too)", idp.Count(), len(idp.Requests()))
	}
}

// with returns a copy of v with the key/value pairs kv set.
func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// SetClaim adds, overrides and removes claims of the tokens issued after
// it; SetIgnoreACRS drops the acrs a claims request asks for.
func TestSetClaimAndIgnoreACRS(t *testing.T) {
	idp := testidp.New()
	defer idp.Close()
	idp.SetClaim("ipaddr", "192.0.2.7")
	idp.SetClaim("sub", "alice")
	idp.SetClaim("idtyp", nil)
	idp.SetIgnoreACRS(true)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {testidp.ClientID}, "client_secret": {testidp.ClientSecret},
		"claims": {`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`}}
	code, body := post(t, idp, form)
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, body)
	}
	_, c := parse(t, idp, body["access_token"], time.Now())
	if c["ipaddr"] != "192.0.2.7" || c["sub"] != "alice" {
		t.Fatalf("set claims missing: %v", c)
	}
	if _, has := c["idtyp"]; has {
		t.Fatalf("idtyp was removed but is there: %v", c)
	}
	if _, has := c["acrs"]; has {
		t.Fatalf("acrs granted while ignored: %v", c)
	}
	idp.SetIgnoreACRS(false)
	_, body = post(t, idp, form)
	if _, c := parse(t, idp, body["access_token"], time.Now()); c["acrs"] == nil {
		t.Fatalf("acrs not granted once honoured again: %v", c)
	}
}
