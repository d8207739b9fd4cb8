package idp_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/caekit/caekit/examples/internal/idp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type received struct {
	header http.Header
	body   string
}

// receiver is a real HTTP push receiver recording what arrives.
type receiver struct {
	mu   sync.Mutex
	got  []received
	srv  *httptest.Server
	code int
}

func newReceiver(t *testing.T, code int) *receiver {
	r := &receiver{code: code}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), string(b)})
		r.mu.Unlock()
		if r.code != http.StatusAccepted {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(r.code)
			_, _ = io.WriteString(w, `{"err":"invalid_key","description":"nope"}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func start(t *testing.T, opts ...idp.Option) *idp.IdP {
	t.Helper()
	p, err := idp.Listen("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func getJSON(t *testing.T, u string) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func tokenReq(t *testing.T, p *idp.IdP, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(p.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

// keyfunc verifies with the keys the IdP publishes in its JWKS.
func keyfunc(t *testing.T, p *idp.IdP) jwt.Keyfunc {
	t.Helper()
	return func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		var set struct {
			Keys []struct{ Kid, N, E, Alg string }
		}
		resp, err := http.Get(p.JWKSURL())
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			return nil, err
		}
		for _, k := range set.Keys {
			if k.Kid == kid {
				n, _ := base64.RawURLEncoding.DecodeString(k.N)
				e, _ := base64.RawURLEncoding.DecodeString(k.E)
				return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}
}

func parse(t *testing.T, p *idp.IdP, raw string) (jwt.MapClaims, map[string]any) {
	t.Helper()
	tok, err := jwt.Parse(raw, keyfunc(t, p), jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(p.Issuer()), jwt.WithAudience(p.Audience()))
	if err != nil {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	return tok.Claims.(jwt.MapClaims), tok.Header
}

func password(user string, claims string) url.Values {
	v := url.Values{"grant_type": {"password"}, "username": {user}, "password": {idp.Password}}
	if claims != "" {
		v.Set("claims", claims)
	}
	return v
}

const cp1 = `{"access_token":{"xms_cc":{"values":["cp1"]}}}`

func TestDiscovery(t *testing.T) {
	p := start(t)
	oidc := getJSON(t, p.Issuer()+"/.well-known/openid-configuration")
	if oidc["issuer"] != p.Issuer() || oidc["jwks_uri"] != p.JWKSURL() || oidc["token_endpoint"] != p.TokenURL() {
		t.Fatalf("openid-configuration = %v", oidc)
	}
	ssf := getJSON(t, p.Issuer()+"/.well-known/ssf-configuration")
	if ssf["issuer"] != p.Issuer() || ssf["jwks_uri"] != p.JWKSURL() {
		t.Fatalf("ssf-configuration = %v", ssf)
	}
	dm, _ := ssf["delivery_methods_supported"].([]any)
	if len(dm) != 1 || dm[0] != "urn:ietf:rfc:8935" {
		t.Fatalf("delivery_methods_supported = %v", ssf["delivery_methods_supported"])
	}
}

func TestTokenCAEAndPlain(t *testing.T) {
	p := start(t, idp.WithCAELifetime(24*time.Hour), idp.WithLifetime(time.Hour))
	code, m := tokenReq(t, p, password("alice", cp1))
	if code != 200 {
		t.Fatalf("status %d: %v", code, m)
	}
	if m["expires_in"].(float64) != 86400 || m["refresh_in"].(float64) != 43200 {
		t.Fatalf("CAE token response = %v", m)
	}
	c, h := parse(t, p, m["access_token"].(string))
	if h["kid"] == "" || h["alg"] != "RS256" {
		t.Fatalf("header = %v", h)
	}
	for _, k := range []string{"iss", "aud", "sub", "oid", "tid", "sid", "iat", "nbf", "exp", "jti", "uti", "ipaddr"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claim %s missing: %v", k, c)
		}
	}
	if c["ipaddr"] != "127.0.0.1" {
		t.Errorf("ipaddr = %v", c["ipaddr"])
	}
	if xc, _ := c["xms_cc"].([]any); len(xc) != 1 || xc[0] != "cp1" {
		t.Errorf("xms_cc = %v", c["xms_cc"])
	}
	if c["exp"].(float64)-c["iat"].(float64) != 86400 {
		t.Errorf("CAE lifetime = %v", c["exp"].(float64)-c["iat"].(float64))
	}

	code, m = tokenReq(t, p, password("bob", ""))
	if code != 200 || m["expires_in"].(float64) != 3600 || m["refresh_in"] != nil {
		t.Fatalf("plain token response %d %v", code, m)
	}
	c, _ = parse(t, p, m["access_token"].(string))
	if _, ok := c["xms_cc"]; ok {
		t.Errorf("plain token has xms_cc")
	}
	if c["exp"].(float64)-c["iat"].(float64) != 3600 {
		t.Errorf("plain lifetime wrong")
	}
}

func TestTokenClaimsRequests(t *testing.T) {
	p := start(t)
	// acrs step-up, merged with cp1, as a client merges a challenge.
	code, m := tokenReq(t, p, password("carol", `{"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c1"}}}`))
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	c, _ := parse(t, p, m["access_token"].(string))
	if a, _ := c["acrs"].([]any); len(a) != 1 || a[0] != "c1" {
		t.Fatalf("acrs = %v", c["acrs"])
	}
	// A syntactically valid nbf request: the default mode (ignore, b)
	// issues at once, whatever nbf was asked for; see TestNotBeforeModes.
	code, m = tokenReq(t, p, password("carol", `{"access_token":{"nbf":{"essential":true,"value":"`+jsonInt(time.Now().Unix()+3600)+`"}}}`))
	if code != 200 {
		t.Fatalf("default mode refused an nbf request: %d %v", code, m)
	}
	for _, bad := range []string{`{`, `{"access_token":{"acrs":{"value":"c99"}}}`, `{"access_token":{"nbf":{"value":"soon"}}}`,
		`{"access_token":{"xms_cc":{"values":[1]}}}`} {
		code, m = tokenReq(t, p, password("carol", bad))
		if code != 400 || m["error"] != "invalid_request" || m["error_description"] == "" {
			t.Errorf("claims %s: %d %v", bad, code, m)
		}
	}
}

// TestNotBeforeModes: the three IdP behaviours of issue 12 item 2, with the
// IdP's clock injected (the JWTs are checked at that clock too): (b) ignore
// issues at once with iat = nbf = now; (a) honor issues at once with the
// requested nbf; (c) wait issues at the requested nbf. Each mode refuses
// only what it cannot do.
func TestNotBeforeModes(t *testing.T) {
	const s = 1_800_000_000
	clock := time.Unix(s, 400_000_000) // fixed; the IdP reads no other clock
	now := func() time.Time { return clock }
	asked := `{"access_token":{"xms_cc":{"values":["cp1"]},"nbf":{"essential":true,"value":"` + jsonInt(s+1) + `"}}}`
	for _, tc := range []struct {
		mode          idp.NotBeforeMode
		iat, nbf      int64
		farOK, hourOK bool // accepts nbf +30 s, +2 h
	}{
		{idp.NotBeforeIgnore, s, s, true, true},
		{idp.NotBeforeHonor, s, s + 1, true, false},
		{idp.NotBeforeWait, s + 1, s + 1, false, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			p := start(t, idp.WithClock(now), idp.WithNotBeforeMode(tc.mode))
			code, m := tokenReq(t, p, password("carol", asked))
			if code != 200 {
				t.Fatalf("%d %v", code, m)
			}
			tok, err := jwt.Parse(m["access_token"].(string), keyfunc(t, p), jwt.WithValidMethods([]string{"RS256"}),
				jwt.WithTimeFunc(now), jwt.WithLeeway(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			c := tok.Claims.(jwt.MapClaims)
			if iat, nbf := int64(c["iat"].(float64)), int64(c["nbf"].(float64)); iat != tc.iat || nbf != tc.nbf {
				t.Fatalf("iat %d nbf %d, want iat %d nbf %d", iat, nbf, tc.iat, tc.nbf)
			}
			for _, far := range []struct {
				ahead int64
				ok    bool
			}{{30, tc.farOK}, {7200, tc.hourOK}} {
				code, m := tokenReq(t, p, password("carol", `{"access_token":{"nbf":{"essential":true,"value":"`+jsonInt(s+far.ahead)+`"}}}`))
				if (code == 200) != far.ok || (code != 200 && (m["error"] != "invalid_request" || m["error_description"] == "")) {
					t.Errorf("nbf +%ds: %d %v, want accepted=%v", far.ahead, code, m, far.ok)
				}
			}
		})
	}
	for in, want := range map[string]idp.NotBeforeMode{"b": idp.NotBeforeIgnore, "honour": idp.NotBeforeHonor, "WAIT": idp.NotBeforeWait, "a": idp.NotBeforeHonor} {
		if got, err := idp.ParseNotBeforeMode(in); err != nil || got != want {
			t.Errorf("ParseNotBeforeMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := idp.ParseNotBeforeMode("sometimes"); err == nil || !strings.Contains(err.Error(), "ignore (b), honor (a), wait (c)") {
		t.Errorf("bad mode: %v", err)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestTokenErrors(t *testing.T) {
	p := start(t)
	cases := []struct {
		form url.Values
		code int
		err  string
	}{
		{url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}}, 400, "invalid_grant"},
		{url.Values{"grant_type": {"password"}, "username": {"mallory"}, "password": {"password"}}, 400, "invalid_grant"},
		{url.Values{"grant_type": {"client_credentials"}, "client_id": {"reporting"}, "client_secret": {"nope"}}, 401, "invalid_client"},
		{url.Values{"grant_type": {"implicit"}}, 400, "unsupported_grant_type"},
		{url.Values{}, 400, "invalid_request"},
	}
	for _, c := range cases {
		code, m := tokenReq(t, p, c.form)
		if code != c.code || m["error"] != c.err {
			t.Errorf("%v: %d %v, want %d %s", c.form, code, m, c.code, c.err)
		}
	}
	// An oversized body is refused, not read whole.
	resp, err := http.Post(p.TokenURL(), "application/x-www-form-urlencoded", strings.NewReader("claims="+strings.Repeat("a", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("oversized body: status %d", resp.StatusCode)
	}
}

func TestClientCredentials(t *testing.T) {
	recv := newReceiver(t, http.StatusAccepted)
	p := start(t, idp.WithPushTarget(recv.srv.URL))
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {idp.WorkloadClientID}, "client_secret": {idp.WorkloadClientSecret}}
	code, m := tokenReq(t, p, form)
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	c, _ := parse(t, p, m["access_token"].(string))
	if c["idtyp"] != "app" || c["azp"] != idp.WorkloadClientID {
		t.Fatalf("claims = %v", c)
	}
	res, err := p.ClientAction(context.Background(), idp.WorkloadClientID, idp.ActionDisable)
	if err != nil || !res.Delivered() || res.EventType != idp.EventAccountDisabled {
		t.Fatalf("disable: %v %+v", err, res)
	}
	code, m = tokenReq(t, p, form)
	if code != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("disabled client: %d %v", code, m)
	}
}

func TestAdminActionsPushSETs(t *testing.T) {
	recv := newReceiver(t, http.StatusAccepted)
	p := start(t, idp.WithPushTarget(recv.srv.URL), idp.WithPushAuth("Bearer push-secret"))
	aliceSub, _ := p.Subject("alice")

	_, m := tokenReq(t, p, password("alice", cp1))
	before, _ := parse(t, p, m["access_token"].(string))

	want := map[string]struct {
		uri    string
		fields map[string]any
	}{
		idp.ActionRevokeSessions: {idp.EventSessionRevoked, nil},
		idp.ActionResetPassword:  {idp.EventCredentialChange, map[string]any{"credential_type": "password", "change_type": "update"}},
		idp.ActionEnableMFA:      {idp.EventCredentialChange, map[string]any{"change_type": "create"}},
		idp.ActionRiskHigh:       {idp.EventRiskLevelChange, map[string]any{"current_level": "HIGH"}},
		idp.ActionDisable:        {idp.EventAccountDisabled, nil},
		idp.ActionEnable:         {idp.EventAccountEnabled, nil},
	}
	order := []string{idp.ActionRevokeSessions, idp.ActionResetPassword, idp.ActionEnableMFA, idp.ActionRiskHigh, idp.ActionDisable, idp.ActionEnable}
	for i, action := range order {
		resp, err := http.Post(p.Issuer()+"/admin/users/alice/"+action, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var res idp.AdminResult
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", action, resp.StatusCode, err)
		}
		if res.EventType != want[action].uri || res.JTI == "" || res.EventTime == 0 || len(res.Pushes) != 1 || !res.Pushes[0].OK() {
			t.Fatalf("%s: result %+v", action, res)
		}
		got := recv.all()
		if len(got) != i+1 {
			t.Fatalf("%s: %d pushes arrived", action, len(got))
		}
		r := got[i]
		if r.header.Get("Content-Type") != "application/secevent+jwt" || r.header.Get("Authorization") != "Bearer push-secret" {
			t.Fatalf("%s: push headers %v", action, r.header)
		}
		c, h := parse(t, p, r.body)
		if h["typ"] != "secevent+jwt" {
			t.Errorf("%s: typ %v", action, h["typ"])
		}
		if c["jti"] != res.JTI {
			t.Errorf("%s: jti %v != %v", action, c["jti"], res.JTI)
		}
		if _, ok := c["sub"]; ok {
			t.Errorf("%s: SET has sub", action)
		}
		sid := c["sub_id"].(map[string]any)
		if sid["format"] != "iss_sub" || sid["iss"] != p.Issuer() || sid["sub"] != aliceSub {
			t.Errorf("%s: sub_id %v", action, sid)
		}
		ev := c["events"].(map[string]any)
		body, ok := ev[want[action].uri].(map[string]any)
		if len(ev) != 1 || !ok {
			t.Fatalf("%s: events %v", action, ev)
		}
		if body["event_timestamp"].(float64) != float64(res.EventTime) {
			t.Errorf("%s: event_timestamp %v", action, body["event_timestamp"])
		}
		for k, v := range want[action].fields {
			if body[k] != v {
				t.Errorf("%s: %s = %v, want %v", action, k, body[k], v)
			}
		}
		switch action {
		case idp.ActionDisable:
			code, m := tokenReq(t, p, password("alice", cp1))
			if code != 400 || m["error"] != "invalid_grant" || !strings.Contains(m["error_description"].(string), "disabled") {
				t.Fatalf("disabled user got %d %v", code, m)
			}
		case idp.ActionRevokeSessions:
			// A token issued now carries a new sid and is issued at once:
			// the IdP no longer waits for the second after the event (that
			// hid the same-second problem, issue 12 item 2), so its iat may
			// be the event's own second, which resource servers refuse.
			_, m := tokenReq(t, p, password("alice", cp1))
			after, _ := parse(t, p, m["access_token"].(string))
			if after["sid"] == before["sid"] || int64(after["iat"].(float64)) < res.EventTime {
				t.Fatalf("after revoke: sid %v (was %v), iat %v, event %d", after["sid"], before["sid"], after["iat"], res.EventTime)
			}
		}
	}
	// enabled again
	if code, m := tokenReq(t, p, password("alice", "")); code != 200 {
		t.Fatalf("re-enabled user: %d %v", code, m)
	}
}

func TestAdminErrorsAndFailedPush(t *testing.T) {
	recv := newReceiver(t, http.StatusBadRequest)
	p := start(t, idp.WithPushTarget(recv.srv.URL))
	for path, code := range map[string]int{
		"/admin/users/mallory/disable":  404,
		"/admin/users/alice/explode":    400,
		"/admin/clients/nobody/disable": 404,
	} {
		resp, err := http.Post(p.Issuer()+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, code)
		}
	}
	res, err := p.UserAction(context.Background(), "bob", idp.ActionRevokeSessions)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered() || res.Pushes[0].Status != 400 || !strings.Contains(res.Pushes[0].Error, "invalid_key") {
		t.Fatalf("failed push reported as %+v", res.Pushes)
	}
}

func TestRotateKeys(t *testing.T) {
	p := start(t)
	_, m := tokenReq(t, p, password("alice", ""))
	old := m["access_token"].(string)
	resp, err := http.Post(p.Issuer()+"/admin/rotate-keys", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	_, m = tokenReq(t, p, password("alice", ""))
	_, h := parse(t, p, m["access_token"].(string))
	if h["kid"] != r["kid"] {
		t.Fatalf("new token kid %v, rotated to %v", h["kid"], r["kid"])
	}
	parse(t, p, old) // still verifies: the old key stays published
	keys := getJSON(t, p.JWKSURL())["keys"].([]any)
	if len(keys) != 2 {
		t.Fatalf("JWKS has %d keys", len(keys))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, opts := range [][]idp.Option{
		{},
		{idp.WithIssuer("not a url")},
		{idp.WithIssuer("http://x"), idp.WithLifetime(0)},
		{idp.WithIssuer("http://x"), idp.WithPushTarget("ftp://x")},
		{idp.WithIssuer("http://x"), idp.WithAudience("")},
		{idp.WithIssuer("http://x"), idp.WithNotBeforeMode(idp.NotBeforeMode(7))},
	} {
		if _, err := idp.New(opts...); err == nil {
			t.Errorf("New accepted a bad configuration")
		}
	}
}
