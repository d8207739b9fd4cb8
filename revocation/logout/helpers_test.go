package logout_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testclock"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/logout"
)

const clientID = "caekit-example-api"

// t0 is the test's clock: data, not the wall clock (every time in these
// tests derives from it through the injected clock).
var t0 = testclock.Unix(1_900_000_000, 0).UTC()

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// idp is a real OpenID Provider on loopback: discovery and JWKS, one ES256 key.
type idp struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
	kid string
}

func newIDP(t testing.TB) *idp {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{key: k, kid: "k1"}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks"})
		case "/jwks":
			b := func(x []byte) string { return jwtB64(x) }
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
				"kty": "EC", "crv": "P-256", "kid": p.kid, "use": "sig", "alg": "ES256",
				"x": b(p.key.X.FillBytes(make([]byte, 32))), "y": b(p.key.Y.FillBytes(make([]byte, 32))),
			}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func jwtB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (p *idp) iss() string { return p.srv.URL }

// sign signs claims with the IdP's key and extra header members (a nil value deletes one).
func (p *idp) sign(t testing.TB, claims map[string]any, hdr map[string]any) string {
	t.Helper()
	return testkit.Minter{Alg: "ES256", KID: p.kid, Key: p.key}.MintHeader(t, claims, hdr)
}

// logoutClaims is a logout token at t0 with both sid and sub (Auth0's carry
// both: https://auth0.com/docs/authenticate/login/logout/back-channel-logout)
// and no exp, as Keycloak 23.0.3 sent them (keycloak/keycloak#25753; exp was
// added by PR #25769, backported to 22.0 and 23.0). authentik before
// 2025.8.2 and Ory Hydra omit exp too (goauthentik/authentik#16490,
// ory/hydra#4035).
func (p *idp) logoutClaims() map[string]any {
	return map[string]any{
		"iss": p.iss(), "aud": clientID, "iat": t0.Unix(), "jti": "lt-1",
		"sub": "alice", "sid": "s1",
		"events": map[string]any{logout.EventBackChannelLogout: map[string]any{}},
	}
}

// accessToken is an access token of the IdP for sub/sid issued at iat.
func (p *idp) accessToken(t testing.TB, sub, sid string, iat time.Time) string {
	c := map[string]any{"iss": p.iss(), "aud": clientID, "sub": sub, "iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix()}
	if sid != "" {
		c["sid"] = sid
	}
	return p.sign(t, c, map[string]any{"typ": "at+jwt"})
}

func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// clock is an injected, settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// failingStore wraps a store and fails Put while fail is set.
type failingStore struct {
	revocation.Store
	mu   sync.Mutex
	fail bool
}

func (f *failingStore) Put(ctx context.Context, ev revocation.Event) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("injected store failure")
	}
	return f.Store.Put(ctx, ev)
}

func (f *failingStore) setFail(b bool) { f.mu.Lock(); f.fail = b; f.mu.Unlock() }

// env is an IdP, a validator over its discovery, a store and a receiver
// served on loopback HTTP.
type env struct {
	idp   *idp
	clock *clock
	v     *token.Validator
	store *failingStore
	mem   *revocation.Memory
	rcv   *logout.Receiver
	srv   *httptest.Server
	obs   chan logout.Observation
}

func newEnv(t testing.TB, opts ...logout.Option) *env {
	t.Helper()
	e := &env{idp: newIDP(t), clock: &clock{now: t0}, obs: make(chan logout.Observation, 100)}
	var err error
	e.v, err = token.NewValidator(context.Background(), token.WithIssuer(e.idp.iss()), token.WithDiscovery(e.idp.iss()),
		token.WithAudience(clientID), token.WithClock(e.clock.Now), token.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.v.Close() })
	e.mem = teststore.Memory(t, revocation.WithClock(e.clock.Now))
	e.store = &failingStore{Store: e.mem}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	base := []logout.Option{
		logout.WithStore(e.store), logout.WithKeys(e.v), logout.WithAudience(clientID),
		logout.WithGTREndpoint(e.srv.URL + "/global-token-revocation"), logout.WithClock(e.clock.Now), logout.WithLogger(discard),
		logout.WithObserver(logout.ObserverFunc(func(o logout.Observation) { e.obs <- o })),
	}
	e.rcv, err = logout.New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.rcv.Close() })
	mux.Handle("/backchannel-logout", e.rcv.BackChannelHandler())
	mux.Handle("/global-token-revocation", e.rcv.GTRHandler())
	return e
}

// postLogout posts a logout token and returns the response and its decoded error.
func (e *env) postLogout(t testing.TB, raw string) (*http.Response, logout.ErrorResponse) {
	t.Helper()
	return e.post(t, "/backchannel-logout", "application/x-www-form-urlencoded", url.Values{"logout_token": {raw}}.Encode(), "")
}

func (e *env) post(t testing.TB, path, ct, body, bearer string) (*http.Response, logout.ErrorResponse) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er logout.ErrorResponse
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &er); err != nil {
			t.Fatalf("body %q is not a JSON error: %v", b, err)
		}
	}
	return resp, er
}

// revoked reports whether the store revokes the access token raw.
func (e *env) revoked(t testing.TB, raw string) bool {
	t.Helper()
	cl, err := e.v.Validate(context.Background(), raw)
	if err != nil {
		t.Fatalf("access token invalid: %v", err)
	}
	for _, k := range cl.Keys() {
		if ev, ok := e.mem.Lookup(k); ok && ev.RevokesToken(cl.IssuedAt, cl.NotBefore) {
			return true
		}
	}
	return false
}

// hs256 signs claims with HS256, which no validator key serves.
func hs256(t testing.TB, claims map[string]any) string {
	t.Helper()
	return testkit.Minter{Alg: "HS256", Key: []byte(strings.Repeat("k", 32))}.Mint(t, claims)
}

// noneToken is an unsigned token with alg none.
func noneToken(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none"})
	b, _ := json.Marshal(claims)
	return jwtB64(h) + "." + jwtB64(b) + "."
}

// dupClaim is a validly signed logout token whose payload names sid twice.
func dupClaim(t testing.TB, p *idp) string {
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": p.kid})
	payload := `{"iss":"` + p.iss() + `","aud":"` + clientID + `","iat":` + itoa(t0.Unix()) + `,"jti":"d","sid":"s1","sid":"s2","events":{"` + logout.EventBackChannelLogout + `":{}}}`
	signing := jwtB64(h) + "." + jwtB64([]byte(payload))
	sig, err := jwt.SigningMethodES256.Sign(signing, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + jwtB64(sig)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func tokenHash(raw string) string { return token.Hash(raw) }
