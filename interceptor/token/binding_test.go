package token_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/MicahParks/jwkset"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
)

// docIDP is a real OpenID Provider on loopback whose discovery document
// lives under path and names docIssuer (computed from the server's base
// URL), as multi-tenant providers do.
type docIDP struct {
	srv  *httptest.Server
	path string
}

func newDocIDP(t *testing.T, path string, docIssuer func(base string) string, signers ...signer) *docIDP {
	t.Helper()
	var keys []jwkset.JWKMarshal
	for _, s := range signers {
		jwk, err := jwkset.NewJWKFromKey(s.key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: s.kid, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, jwk.Marshal())
	}
	p := &docIDP{path: path}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case path + "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": docIssuer(p.srv.URL), "jwks_uri": p.srv.URL + "/keys"})
		case "/keys":
			_ = json.NewEncoder(w).Encode(jwkset.JWKSMarshal{Keys: keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *docIDP) discoveryURL() string { return p.srv.URL + p.path }

// wantKeyIssuer fails unless err is a key-binding refusal (ErrKeyIssuer and
// ErrIssuer) whose message names the token's iss and the key's source.
func wantKeyIssuer(t *testing.T, err error, raw, iss, source string) {
	t.Helper()
	if !errors.Is(err, token.ErrKeyIssuer) || !errors.Is(err, token.ErrIssuer) {
		t.Fatalf("error = %v, want ErrKeyIssuer and ErrIssuer", err)
	}
	if msg := err.Error(); !strings.Contains(msg, iss) || !strings.Contains(msg, source) {
		t.Fatalf("error %q does not name iss %q and source %q", msg, iss, source)
	}
	noToken(t, err.Error(), raw)
}

// TestCrossIssuerForgeryIsRefused: with two providers, each found by
// discovery, a token signed with B's key but carrying A's iss is refused
// (finding TOK-2), on every attempt, while each provider's own tokens
// validate.
func TestCrossIssuerForgeryIsRefused(t *testing.T) {
	a := rsaSigner("RS256", "a1")
	b := signer{alg: "RS256", kid: "b1", key: rsaKey2()}
	idpA, idpB := newIDP(t, a), newIDP(t, b)
	v := newValidator(t,
		token.WithIssuer(idpA.issuer(), idpB.issuer()),
		token.WithDiscovery(idpA.issuer()), token.WithDiscovery(idpB.issuer()))
	ctx := context.Background()
	for name, raw := range map[string]string{
		"A's own token": a.sign(t, claimsFor(idpA.issuer()), nil),
		"B's own token": b.sign(t, claimsFor(idpB.issuer()), nil),
	} {
		for range 2 { // verified, then from the cache
			if _, err := v.Validate(ctx, raw); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	forged := b.sign(t, with(claimsFor(idpA.issuer()), "sub", "admin-of-A"), nil)
	for range 2 { // a refused token is never cached
		cl, err := v.Validate(ctx, forged)
		if cl != nil {
			t.Fatalf("forged token accepted: %+v", cl)
		}
		wantKeyIssuer(t, err, forged, idpA.issuer(), idpB.issuer())
	}
	reverse := a.sign(t, claimsFor(idpB.issuer()), nil)
	_, err := v.Validate(ctx, reverse)
	wantKeyIssuer(t, err, reverse, idpB.issuer(), idpA.issuer())
}

// TestDiscoveryDocumentCannotClaimAnotherIssuer: a provider whose
// discovery document names another provider's issuer (or a tenant template
// covering it) does not get its keys bound to that issuer.
func TestDiscoveryDocumentCannotClaimAnotherIssuer(t *testing.T) {
	a := rsaSigner("RS256", "a1")
	evilKey := signer{alg: "RS256", kid: "e1", key: rsaKey2()}
	idpA := newIDP(t, a)
	for name, docIssuer := range map[string]func(string) string{
		"exact issuer of A":     func(string) string { return idpA.issuer() },
		"template on A's host":  func(string) string { return idpA.issuer() + "/{tenantid}" },
		"template of A's value": func(string) string { return strings.Replace(idpA.issuer(), "127.0.0.1", "{tenantid}", 1) },
	} {
		t.Run(name, func(t *testing.T) {
			evil := newDocIDP(t, "", docIssuer, evilKey)
			v := newValidator(t, token.WithIssuer(idpA.issuer(), evil.discoveryURL()),
				token.WithDiscovery(idpA.issuer()), token.WithDiscovery(evil.discoveryURL()))
			forged := evilKey.sign(t, with(claimsFor(idpA.issuer()), "tid", "127.0.0.1"), nil)
			_, err := v.Validate(context.Background(), forged)
			wantKeyIssuer(t, err, forged, idpA.issuer(), evil.discoveryURL())
			// The evil provider's keys still verify tokens of its own URL.
			if _, err := v.Validate(context.Background(), evilKey.sign(t, claimsFor(evil.discoveryURL()), nil)); err != nil {
				t.Fatalf("own token of the second provider: %v", err)
			}
		})
	}
}

// TestDiscoveryTenantTemplate: a multi-tenant discovery document (Entra's
// organizations endpoint) publishes an issuer template; its keys verify the
// tokens of every listed tenant, with the tid substituted, and no others.
func TestDiscoveryTenantTemplate(t *testing.T) {
	ms := signer{alg: "RS256", kid: "ms1", key: rsaKey()}
	other := signer{alg: "ES256", kid: "o1", key: ecKey()}
	entra := newDocIDP(t, "/organizations/v2.0", func(base string) string { return base + "/{tenantid}/v2.0" }, ms)
	idpB := newIDP(t, other)
	tmpl := entra.srv.URL + "/{tid}/v2.0"
	tenantIss := func(tid string) string { return strings.Replace(tmpl, "{tid}", tid, 1) }
	v := newValidator(t, token.WithTenantIssuer(tmpl, "t1", "t2"), token.WithIssuer(idpB.issuer()),
		token.WithDiscovery(entra.discoveryURL()), token.WithDiscovery(idpB.issuer()))
	ctx := context.Background()

	for _, tid := range []string{"t1", "t2"} {
		if _, err := v.Validate(ctx, ms.sign(t, with(claimsFor(tenantIss(tid)), "tid", tid), nil)); err != nil {
			t.Fatalf("tenant %s: %v", tid, err)
		}
	}
	if _, err := v.Validate(ctx, other.sign(t, claimsFor(idpB.issuer()), nil)); err != nil {
		t.Fatalf("second provider: %v", err)
	}
	// The other provider's key cannot sign for a tenant.
	forged := other.sign(t, with(claimsFor(tenantIss("t1")), "tid", "t1"), nil)
	_, err := v.Validate(ctx, forged)
	wantKeyIssuer(t, err, forged, tenantIss("t1"), idpB.issuer())
	// The multi-tenant key cannot sign for the other provider.
	forged = ms.sign(t, with(claimsFor(idpB.issuer()), "tid", "t1"), nil)
	_, err = v.Validate(ctx, forged)
	wantKeyIssuer(t, err, forged, idpB.issuer(), entra.discoveryURL())
	// Tenant checks still apply.
	_, err = v.Validate(ctx, ms.sign(t, with(claimsFor(tenantIss("t1")), "tid", "t2"), nil))
	wantErr(t, err, token.ErrIssuer)
	_, err = v.Validate(ctx, ms.sign(t, with(claimsFor(tenantIss("t3")), "tid", "t3"), nil))
	wantErr(t, err, token.ErrIssuer)
}

// TestExplicitBindings: WithJWKSURLFor, WithStaticKeyFor, WithHMACKeyFor and
// WithDiscoveryFor bind their keys to the named issuers.
func TestExplicitBindings(t *testing.T) {
	const issB, issC = "https://b.example", "https://c.example"
	a := rsaSigner("RS256", "a1")
	b := ecSigner("b1")
	secret := []byte(strings.Repeat("k", 32))
	idpA := newIDP(t, a)
	v := newValidator(t, token.WithIssuer(idpA.issuer(), issB, issC),
		token.WithJWKSURL(idpA.issuer()+"/keys", token.ForIssuers(idpA.issuer())),
		token.WithStaticKey("b1", b.key.Public(), token.ForIssuers(issB)),
		token.WithHMACKey("h1", secret, token.ForIssuers(issC)),
		token.WithAlgorithms("RS256", "ES256", "HS256"))
	ctx := context.Background()
	hs := func(claims map[string]any) string {
		return testkit.Minter{Alg: "HS256", KID: "h1", Key: secret}.Mint(t, claims)
	}

	for name, raw := range map[string]string{
		"A via WithJWKSURLFor":   a.sign(t, claimsFor(idpA.issuer()), nil),
		"B via WithStaticKeyFor": b.sign(t, claimsFor(issB), nil),
		"C via WithHMACKeyFor":   hs(claimsFor(issC)),
	} {
		if _, err := v.Validate(ctx, raw); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, tc := range []struct{ name, raw, iss, source string }{
		{"JWKS key for B", a.sign(t, claimsFor(issB), nil), issB, idpA.issuer() + "/keys"},
		{"static key for A", b.sign(t, claimsFor(idpA.issuer()), nil), idpA.issuer(), `WithStaticKey("b1")`},
		{"HMAC key for B", hs(claimsFor(issB)), issB, `WithHMACKey("h1")`},
	} {
		_, err := v.Validate(ctx, tc.raw)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		wantKeyIssuer(t, err, tc.raw, tc.iss, tc.source)
	}

	// WithDiscoveryFor: one provider signing for two issuers.
	v2 := newValidator(t, token.WithIssuer(idpA.issuer(), issB), token.WithDiscovery(idpA.issuer(), token.ForIssuers(idpA.issuer(), issB)))
	for _, iss := range []string{idpA.issuer(), issB} {
		if _, err := v2.Validate(ctx, a.sign(t, claimsFor(iss), nil)); err != nil {
			t.Errorf("WithDiscoveryFor, iss %s: %v", iss, err)
		}
	}
}

// TestSingleIssuerBindsImplicitly: with one accepted issuer (or one tenant
// template) unbound key sources need no binding.
func TestSingleIssuerBindsImplicitly(t *testing.T) {
	s := edSigner("ed")
	const tmpl = "https://login.example/{tid}/v2.0"
	v := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithTenantIssuer(tmpl, "t1"))
	if _, err := v.Validate(context.Background(), s.sign(t, with(claimsFor("https://login.example/t1/v2.0"), "tid", "t1"), nil)); err != nil {
		t.Fatal(err)
	}
	// The same issuer given twice is still one issuer.
	v = newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer("iss"), token.WithIssuer("iss"))
	if _, err := v.Validate(context.Background(), s.sign(t, claimsFor("iss"), nil)); err != nil {
		t.Fatal(err)
	}
}

// TestMultiIssuerConfigNeedsBindings: NewValidator refuses unbound key
// sources when several issuers are accepted, and bindings to issuers that
// are not accepted.
func TestMultiIssuerConfigNeedsBindings(t *testing.T) {
	rs := rsaSigner("RS256", "rs")
	p := newIDP(t, rs)
	two := token.WithIssuer("https://a.example", "https://b.example")
	aud := token.WithAudience(testAudience)
	tmpl := token.WithTenantIssuer("https://login.example/{tid}/v2.0", "t1")
	secret := make([]byte, 32)
	cases := []struct {
		name string
		opts []token.Option
		want []string
	}{
		{"unbound JWKS URL", []token.Option{two, token.WithJWKSURL(p.issuer() + "/keys")},
			[]string{"2 issuers are accepted", `not bound: WithJWKSURL("` + p.issuer() + `/keys")`, "ForIssuers"}},
		{"unbound static key", []token.Option{two, token.WithStaticKey("rs", rs.key.Public())},
			[]string{`not bound: WithStaticKey("rs")`, "ForIssuers"}},
		{"unbound HMAC key", []token.Option{two, token.WithHMACKey("h", secret), token.WithAlgorithms("HS256")},
			[]string{`not bound: WithHMACKey("h")`, "ForIssuers"}},
		{"issuer and tenant template", []token.Option{token.WithIssuer("https://a.example"), tmpl, token.WithStaticKey("rs", rs.key.Public())},
			[]string{"2 issuers are accepted", `WithStaticKey("rs")`}},
		{"one bound, one not", []token.Option{two, token.WithStaticKey("rs", rs.key.Public(), token.ForIssuers("https://a.example")),
			token.WithJWKSURL(p.issuer() + "/keys")}, []string{`not bound: WithJWKSURL(`}},
		{"bound to an issuer not accepted", []token.Option{two, token.WithStaticKey("rs", rs.key.Public(), token.ForIssuers("https://c.example"))},
			[]string{`WithStaticKey("rs"): issuer "https://c.example" is not accepted`}},
		{"bound to a template not configured", []token.Option{tmpl, token.WithJWKSURL(p.issuer()+"/keys", token.ForIssuers("https://other/{tid}/"))},
			[]string{`issuer template "https://other/{tid}/" is not given to WithTenantIssuer`}},
		{"bound to an unlisted tenant", []token.Option{tmpl, token.WithStaticKey("rs", rs.key.Public(), token.ForIssuers("https://login.example/t2/v2.0"))},
			[]string{"is not accepted"}},
		{"discovery bound to nothing", []token.Option{two, token.WithDiscovery(p.issuer(), token.ForIssuers())}, []string{"no issuer given"}},
		{"JWKS URL bound to nothing", []token.Option{two, token.WithJWKSURL(p.issuer()+"/keys", token.ForIssuers())}, []string{"no issuer given"}},
		{"static key bound to nothing", []token.Option{two, token.WithStaticKey("rs", rs.key.Public(), token.ForIssuers())}, []string{"no issuer given"}},
		{"HMAC key bound to nothing", []token.Option{two, token.WithHMACKey("h", secret, token.ForIssuers()), token.WithAlgorithms("HS256")}, []string{"no issuer given"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := token.NewValidator(context.Background(), append([]token.Option{aud, token.WithLogger(discard)}, tc.opts...)...)
			if err == nil {
				_ = v.Close()
				t.Fatal("NewValidator succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %v, want it to contain %q", err, w)
				}
			}
		})
	}
	// Controls: the same sources bound explicitly are fine, as is discovery
	// with several issuers and a binding to a listed tenant's issuer.
	for name, opts := range map[string][]token.Option{
		"bound":             {two, token.WithStaticKey("rs", rs.key.Public(), token.ForIssuers("https://a.example")), token.WithJWKSURL(p.issuer()+"/keys", token.ForIssuers("https://b.example"))},
		"discovery":         {two, token.WithDiscovery(p.issuer())},
		"tenant's issuer":   {tmpl, token.WithIssuer("https://a.example"), token.WithStaticKey("rs", rs.key.Public(), token.ForIssuers("https://login.example/T1/v2.0"))},
		"template and more": {tmpl, two, token.WithStaticKey("rs", rs.key.Public(), token.ForIssuers("https://login.example/{tid}/v2.0", "https://b.example"))},
	} {
		v, err := token.NewValidator(context.Background(), append([]token.Option{aud, token.WithLogger(discard)}, opts...)...)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		_ = v.Close()
	}
}
