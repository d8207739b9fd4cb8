package token_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testclock"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation"
)

func TestValidTokensPerAlgorithm(t *testing.T) {
	signers := []signer{rsaSigner("RS256", "rs"), rsaSigner("PS256", "ps"), ecSigner("ec"), edSigner("ed")}
	p := newIDP(t, signers...)
	v := newValidator(t, token.WithDiscovery(p.issuer()), token.WithIssuer(p.issuer()))
	for _, s := range signers {
		t.Run(s.alg, func(t *testing.T) {
			raw := s.sign(t, claimsFor(p.issuer()), nil)
			cl, err := v.Validate(context.Background(), raw)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			checkClaims(t, cl, p.issuer(), raw)
		})
	}
	if p.discoveryHits.Load() != 1 || p.jwksHits.Load() != 1 {
		t.Errorf("discovery hits %d, jwks hits %d; want 1 and 1", p.discoveryHits.Load(), p.jwksHits.Load())
	}
}

func checkClaims(t *testing.T, cl *token.Claims, issuer, raw string) {
	t.Helper()
	want := map[string][2]string{
		"iss":    {cl.Issuer, issuer},
		"sub":    {cl.Subject, "sub-1"},
		"oid":    {cl.ObjectID, "oid-1"},
		"tid":    {cl.TenantID, "tid-1"},
		"sid":    {cl.SessionID, "sid-1"},
		"azp":    {cl.ClientID, "client-1"},
		"jti":    {cl.TokenID, "jti-1"},
		"upn":    {cl.Email, "alice@example.com"},
		"device": {cl.DeviceID, "dev-1"},
		"idtyp":  {cl.IDType, "user"},
		"ipaddr": {cl.IPAddr, "192.0.2.7"},
		"hash":   {cl.Hash, token.Hash(raw)},
	}
	for name, got := range want {
		if got[0] != got[1] {
			t.Errorf("%s = %q, want %q", name, got[0], got[1])
		}
	}
	if len(cl.Hash) != 12 {
		t.Errorf("Hash %q is not 12 hex digits", cl.Hash)
	}
	if !cl.HasCapability("CP1") || len(cl.Capabilities) != 1 {
		t.Errorf("Capabilities = %v, want [cp1]", cl.Capabilities)
	}
	if !cl.HasACR("c2") || len(cl.ACRS) != 2 {
		t.Errorf("ACRS = %v, want [c1 c2]", cl.ACRS)
	}
	if len(cl.Audience) != 1 || cl.Audience[0] != testAudience {
		t.Errorf("Audience = %v", cl.Audience)
	}
	if cl.ExpiresAt.Before(time.Now()) || cl.IssuedAt.After(time.Now()) || cl.NotBefore.IsZero() {
		t.Errorf("times: iat %v nbf %v exp %v", cl.IssuedAt, cl.NotBefore, cl.ExpiresAt)
	}
	if cl.Raw["deviceid"] != "dev-1" {
		t.Errorf("Raw = %v", cl.Raw)
	}
	if n := len(cl.Keys()); n != 7 {
		t.Errorf("Keys() has %d keys, want 7: %v", n, cl.Keys())
	}
}

func TestClaimFallbacksAndShapes(t *testing.T) {
	// A fractional exp relative to now (it was the fixed 2e9, which would
	// fail from 2033 on, and exceeds the maximum lifetime).
	fracExp := time.Now().Add(time.Hour).Unix()
	s := edSigner("ed")
	v := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer("https://issuer.example"))
	c := with(claimsFor("https://issuer.example"),
		"azp", nil, "appid", "app-2", "jti", nil, "uti", "uti-2", "upn", nil, "preferred_username", "bob@example.com",
		"xms_cc", []string{"cp1", "cp2"}, "acrs", "c3", "aud", []string{"other", testAudience}, "exp", float64(fracExp)+0.5)
	cl, err := v.Validate(context.Background(), s.sign(t, c, nil))
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if cl.ClientID != "app-2" || cl.TokenID != "uti-2" || cl.Email != "bob@example.com" {
		t.Errorf("fallbacks: client %q token %q email %q", cl.ClientID, cl.TokenID, cl.Email)
	}
	if len(cl.Capabilities) != 2 || !cl.HasCapability("cp2") || len(cl.ACRS) != 1 || cl.ACRS[0] != "c3" {
		t.Errorf("xms_cc %v acrs %v", cl.Capabilities, cl.ACRS)
	}
	if !cl.ExpiresAt.Equal(time.Unix(fracExp, 5e8)) {
		t.Errorf("fractional exp = %v", cl.ExpiresAt)
	}

	// email wins over upn for Email; Emails keeps every address.
	cl, err = v.Validate(context.Background(), s.sign(t, with(c, "email", "e@example.com", "upn", "u@example.com"), nil))
	if err != nil || cl.Email != "e@example.com" {
		t.Fatalf("email: %v %v", cl, err)
	}
}

// TestEveryEmailClaimIsARevocationSubject: email, upn and
// preferred_username each yield a KindEmail revocation key, canonicalised
// and without repeats, so that an event naming the user by any of them
// matches (finding TOK-1).
func TestEveryEmailClaimIsARevocationSubject(t *testing.T) {
	s := edSigner("ed")
	v := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer("iss"))
	cases := []struct {
		name      string
		claims    []any
		wantEmail string
		want      []string
	}{
		{"three distinct", []any{"email", "Alias@Mail.example", "upn", "alice@corp.example", "preferred_username", "al@other.example"},
			"Alias@Mail.example", []string{"alias@mail.example", "alice@corp.example", "al@other.example"}},
		{"repeats differing in case and space", []any{"email", "Alice@Corp.example", "upn", " alice@corp.EXAMPLE ", "preferred_username", "alice@corp.example"},
			"Alice@Corp.example", []string{"alice@corp.example"}},
		{"upn only", []any{"upn", "Bob@Corp.example"}, "Bob@Corp.example", []string{"bob@corp.example"}},
		{"preferred_username behind upn", []any{"upn", "bob@corp.example", "preferred_username", "b@other.example"},
			"bob@corp.example", []string{"bob@corp.example", "b@other.example"}},
		{"empty and blank values", []any{"upn", nil, "email", "", "preferred_username", "  "}, "  ", nil},
		{"none", []any{"upn", nil}, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := v.Validate(context.Background(), s.sign(t, with(claimsFor("iss"), tc.claims...), nil))
			if err != nil {
				t.Fatal(err)
			}
			if cl.Email != tc.wantEmail || !slices.Equal(cl.Emails, tc.want) {
				t.Fatalf("Email %q Emails %q, want %q %q", cl.Email, cl.Emails, tc.wantEmail, tc.want)
			}
			var got []string
			for _, k := range cl.Keys() {
				if k.Kind == revocation.KindEmail {
					got = append(got, k.ID)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("email revocation keys %q, want %q", got, tc.want)
			}
		})
	}
	// The shape of each claim is still checked.
	_, err := v.Validate(context.Background(), s.sign(t, with(claimsFor("iss"), "preferred_username", 7), nil))
	wantErr(t, err, token.ErrMalformed)
}

// TestKeysOfHandMadeClaims: Claims built without Emails still yield the
// email key of Email, once.
func TestKeysOfHandMadeClaims(t *testing.T) {
	cl := (&token.Claims{Email: "A@x.example", Emails: []string{"a@x.example", "b@x.example"}}).Seal()
	var got []string
	for _, k := range cl.Keys() {
		got = append(got, k.String())
	}
	if want := []string{"email::a@x.example", "email::b@x.example"}; !slices.Equal(got, want) {
		t.Fatalf("Keys() = %q, want %q", got, want)
	}
	if n := len((&token.Claims{Email: "c@x.example"}).Keys()); n != 1 {
		t.Fatalf("Email only: %d keys, want 1", n)
	}
}

func TestAlgNoneIsRefused(t *testing.T) {
	s := rsaSigner("RS256", "rs")
	v := newValidator(t, token.WithStaticKey("rs", s.key.Public()), token.WithIssuer("iss"))
	payload := fmt.Sprintf(`{"iss":"iss","sub":"s","aud":%q,"iat":%d,"exp":%d}`, testAudience, time.Now().Unix(), time.Now().Add(time.Hour).Unix())
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		for _, sig := range [][]byte{nil, []byte("x")} {
			raw := rawToken(fmt.Sprintf(`{"alg":%q,"kid":"rs"}`, alg), payload, sig)
			_, err := v.Validate(context.Background(), raw)
			wantErr(t, err, token.ErrAlgorithm)
		}
	}
	for _, algs := range [][]string{{"none"}, {"RS256", "none"}, {"RS256", "None"}} {
		_, err := token.NewValidator(context.Background(), token.WithAudience("a"), token.WithIssuer("i"),
			token.WithStaticKey("rs", s.key.Public()), token.WithAlgorithms(algs...))
		if err == nil || !strings.Contains(err.Error(), "never accepted") {
			t.Errorf("WithAlgorithms(%v): err = %v, want 'never accepted'", algs, err)
		}
	}
}

func TestHMACAlgorithmConfusion(t *testing.T) {
	s := rsaSigner("RS256", "rs")
	der, err := x509.MarshalPKIXPublicKey(s.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pkcs1 := x509.MarshalPKCS1PublicKey(&rsaKey().PublicKey)
	p := newIDP(t, s)
	claims := claimsFor(p.issuer())
	secrets := map[string][]byte{"pem": pemBytes, "der": der, "pkcs1": pkcs1}

	sign := func(kid string, secret []byte) string {
		return testkit.Minter{Alg: "HS256", KID: kid, Key: secret}.Mint(t, claims)
	}

	t.Run("default algorithms", func(t *testing.T) {
		v := newValidator(t, token.WithJWKSURL(p.issuer()+"/keys"), token.WithIssuer(p.issuer()))
		for name, secret := range secrets {
			_, err := v.Validate(context.Background(), sign("rs", secret))
			if !errors.Is(err, token.ErrAlgorithm) {
				t.Errorf("%s: err = %v, want ErrAlgorithm", name, err)
			}
		}
	})
	t.Run("HMAC allowed with its own key", func(t *testing.T) {
		hmacSecret := []byte(strings.Repeat("k", 32))
		v := newValidator(t, token.WithJWKSURL(p.issuer()+"/keys"), token.WithIssuer(p.issuer()),
			token.WithHMACKey("hk", hmacSecret), token.WithAlgorithms("RS256", "HS256"))
		for name, secret := range secrets {
			// The kid of the RSA key: HMAC never looks at asymmetric keys.
			_, err := v.Validate(context.Background(), sign("rs", secret))
			if !errors.Is(err, token.ErrUnknownKey) {
				t.Errorf("%s under kid rs: err = %v, want ErrUnknownKey", name, err)
			}
			// The HMAC kid with the public key bytes as secret: bad signature.
			_, err = v.Validate(context.Background(), sign("hk", secret))
			if !errors.Is(err, token.ErrSignature) {
				t.Errorf("%s under kid hk: err = %v, want ErrSignature", name, err)
			}
		}
		if _, err := v.Validate(context.Background(), sign("hk", hmacSecret)); err != nil {
			t.Errorf("genuine HS256 token: %v", err)
		}
		// And an RS256 token still works.
		if _, err := v.Validate(context.Background(), s.sign(t, claims, nil)); err != nil {
			t.Errorf("RS256 token: %v", err)
		}
	})
}

func TestUnknownKIDFailsFastThenRefreshes(t *testing.T) {
	a, b := rsaSigner("RS256", "a"), ecSigner("b")
	p := newIDP(t, a)
	v := newValidator(t, token.WithDiscovery(p.issuer()), token.WithIssuer(p.issuer()),
		token.WithUnknownKIDRefreshLimit(time.Millisecond))
	raw := b.sign(t, claimsFor(p.issuer()), nil)

	// Rotate b in, but make the JWKS endpoint hang: Validate must not wait for it.
	p.setKeys(t, a, b)
	release := p.blockJWKS()
	defer release()
	hits := p.jwksHits.Load()
	_, err := v.Validate(context.Background(), raw)
	wantErr(t, err, token.ErrUnknownKey)
	if !strings.Contains(err.Error(), "refresh") {
		t.Errorf("error should say a refresh was requested: %v", err)
	}
	// The background refresh is under way (and blocked); Validate still answers.
	testkit.Eventually(t, "the async refresh to reach the server", func() bool { return p.jwksHits.Load() > hits })
	_, err = v.Validate(context.Background(), raw)
	wantErr(t, err, token.ErrUnknownKey)

	release()
	testkit.Eventually(t, "the rotated key to be accepted", func() bool {
		_, err := v.Validate(context.Background(), raw)
		return err == nil
	})
}

func TestUnknownKIDRefreshIsRateLimited(t *testing.T) {
	a := rsaSigner("RS256", "a")
	p := newIDP(t, a)
	v := newValidator(t, token.WithJWKSURL(p.issuer()+"/keys"), token.WithIssuer(p.issuer()),
		token.WithUnknownKIDRefreshLimit(time.Hour))
	before := p.jwksHits.Load()
	for i := range 50 {
		s := signer{alg: "RS256", kid: fmt.Sprintf("unknown-%d", i), key: a.key}
		_, err := v.Validate(context.Background(), s.sign(t, claimsFor(p.issuer()), nil))
		wantErr(t, err, token.ErrUnknownKey)
	}
	testkit.Eventually(t, "one refresh", func() bool { return p.jwksHits.Load() == before+1 })
	time.Sleep(100 * time.Millisecond) // give any (wrong) further refresh a chance to show
	if got := p.jwksHits.Load() - before; got != 1 {
		t.Fatalf("50 unknown kids caused %d JWKS fetches, want 1", got)
	}
}

func TestKeyTypeMustMatchAlg(t *testing.T) {
	rs, ec, ed := rsaSigner("RS256", "rs"), ecSigner("ec"), edSigner("ed")
	p := newIDP(t, rs, ec, ed)
	v := newValidator(t, token.WithJWKSURL(p.issuer()+"/keys"), token.WithIssuer(p.issuer()),
		token.WithStaticKey("static-ec", ec.key.Public()), token.WithAlgorithms("RS256", "PS256", "ES256", "ES384", "EdDSA"))
	c := claimsFor(p.issuer())
	cases := []struct {
		name string
		s    signer
	}{
		{"RS256 with kid of an EC key", signer{alg: "RS256", kid: "ec", key: rs.key}},
		{"RS256 with kid of a static EC key", signer{alg: "RS256", kid: "static-ec", key: rs.key}},
		{"ES256 with kid of an RSA key", signer{alg: "ES256", kid: "rs", key: ec.key}},
		{"EdDSA with kid of an EC key", signer{alg: "EdDSA", kid: "ec", key: ed.key}},
		{"PS256 with kid of an Ed25519 key", signer{alg: "PS256", kid: "ed", key: rs.key}},
		{"ES384 with kid of a P-256 key", signer{alg: "ES384", kid: "ec", key: mustP384()}},
	}
	for _, tc := range cases {
		_, err := v.Validate(context.Background(), tc.s.sign(t, c, nil))
		if !errors.Is(err, token.ErrAlgorithm) {
			t.Errorf("%s: err = %v, want ErrAlgorithm", tc.name, err)
		}
	}
}

func TestJWKAlgMustMatchTokenAlg(t *testing.T) {
	pinned := signer{alg: "RS256", kid: "pinned", key: rsaKey(), pinAlg: true}
	p := newIDP(t, pinned)
	v := newValidator(t, token.WithJWKSURL(p.issuer()+"/keys"), token.WithIssuer(p.issuer()))
	c := claimsFor(p.issuer())
	if _, err := v.Validate(context.Background(), pinned.sign(t, c, nil)); err != nil {
		t.Fatalf("RS256 with its pinned key: %v", err)
	}
	_, err := v.Validate(context.Background(), signer{alg: "PS256", kid: "pinned", key: rsaKey()}.sign(t, c, nil))
	wantErr(t, err, token.ErrAlgorithm)
}

func TestCacheServesTokensWithoutNBF(t *testing.T) {
	s := edSigner("ed")
	v := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer("iss"))
	raw := s.sign(t, with(claimsFor("iss"), "nbf", nil), nil)
	first, err := v.Validate(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := v.Validate(context.Background(), raw); err != nil || again != first {
		t.Fatalf("second Validate: %v (same claims: %t)", err, again == first)
	}
}

func TestIssuerAudienceAndTimes(t *testing.T) {
	s := ecSigner("ec")
	now := time.Now()
	v := newValidator(t, token.WithStaticKey("ec", s.key.Public(), token.ForIssuers("https://a.example", "https://b.example")),
		token.WithIssuer("https://a.example", "https://b.example"),
		token.WithAudience("second-aud"), token.WithClock(func() time.Time { return now }), token.WithLeeway(30*time.Second))
	base := claimsFor("https://b.example")
	cases := []struct {
		name   string
		claims map[string]any
		want   error
	}{
		{"ok second issuer", base, nil},
		{"ok second audience", with(base, "aud", []string{"x", "second-aud"}), nil},
		{"wrong issuer", with(base, "iss", "https://evil.example"), token.ErrIssuer},
		{"issuer prefix", with(base, "iss", "https://a.example/"), token.ErrIssuer},
		{"no issuer", with(base, "iss", nil), token.ErrIssuer},
		{"wrong audience", with(base, "aud", "api://other"), token.ErrAudience},
		{"no audience", with(base, "aud", nil), token.ErrAudience},
		{"empty audience list", with(base, "aud", []string{}), token.ErrAudience},
		{"expired", with(base, "exp", now.Add(-31*time.Second).Unix()), token.ErrExpired},
		{"expired within leeway", with(base, "exp", now.Add(-29*time.Second).Unix()), nil},
		{"no exp", with(base, "exp", nil), token.ErrMalformed},
		{"nbf in future", with(base, "nbf", now.Add(31*time.Second).Unix()), token.ErrNotYetValid},
		{"nbf within leeway", with(base, "nbf", now.Add(29*time.Second).Unix()), nil},
		{"iat in future", with(base, "iat", now.Add(31*time.Second).Unix()), token.ErrIssuedInFuture},
		{"iat within leeway", with(base, "iat", now.Add(29*time.Second).Unix()), nil},
		{"exp not a number", with(base, "exp", "tomorrow"), token.ErrMalformed},
		{"exp out of range", with(base, "exp", 1e300), token.ErrMalformed},
		{"negative nbf", with(base, "nbf", -5), token.ErrMalformed},
		{"oid not a string", with(base, "oid", 42), token.ErrMalformed},
		{"xms_cc with a number", with(base, "xms_cc", []any{"cp1", 1}), token.ErrMalformed},
		{"aud an object", with(base, "aud", map[string]any{"a": 1}), token.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := s.sign(t, tc.claims, nil)
			cl, err := v.Validate(context.Background(), raw)
			if tc.want == nil {
				if err != nil || cl == nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantErr(t, err, tc.want)
			noToken(t, err.Error(), raw)
		})
	}
}

func TestTenantIssuerTemplate(t *testing.T) {
	s := rsaSigner("RS256", "rs")
	const tmpl = "https://login.microsoftonline.com/{tid}/v2.0"
	v := newValidator(t, token.WithStaticKey("rs", s.key.Public(), token.ForIssuers(tmpl, "https://sts.windows.net/{tid}/")),
		token.WithTenantIssuer(tmpl, "72F988BF-0000-0000-0000-000000000001", "t2"),
		token.WithTenantIssuer("https://sts.windows.net/{tid}/", "t2"))
	iss := func(tid string) string { return strings.Replace(tmpl, "{tid}", tid, 1) }
	base := claimsFor("")
	cases := []struct {
		name     string
		iss, tid any
		ok       bool
	}{
		{"listed tenant", iss("t2"), "t2", true},
		{"listed tenant, case-insensitive list", iss("72f988bf-0000-0000-0000-000000000001"), "72f988bf-0000-0000-0000-000000000001", true},
		{"second template", "https://sts.windows.net/t2/", "t2", true},
		{"unlisted tenant", iss("t3"), "t3", false},
		{"iss of another tenant", iss("t3"), "t2", false},
		{"no tid", iss("t2"), nil, false},
		{"tid injected with a path", iss("t2/x"), "t2/x", false},
		{"literal template", tmpl, "{tid}", false},
		{"listed tenant on the wrong template", "https://sts.windows.net/72f988bf-0000-0000-0000-000000000001/", "72f988bf-0000-0000-0000-000000000001", false},
	}
	for _, tc := range cases {
		_, err := v.Validate(context.Background(), s.sign(t, with(base, "iss", tc.iss, "tid", tc.tid), nil))
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, token.ErrIssuer) {
			t.Errorf("%s: err = %v, want ErrIssuer", tc.name, err)
		}
	}
}

func TestMalformedTokens(t *testing.T) {
	s := ecSigner("ec")
	v := newValidator(t, token.WithStaticKey("ec", s.key.Public()), token.WithIssuer("iss"))
	good := s.sign(t, claimsFor("iss"), nil)
	parts := strings.Split(good, ".")
	payload := fmt.Sprintf(`{"iss":"iss","sub":"s","aud":%q,"iat":%d,"exp":%d}`, testAudience, time.Now().Unix(), time.Now().Add(time.Hour).Unix())
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	cases := map[string]string{
		"one part":             "abc",
		"two parts":            "abc.def",
		"four parts":           "a.b.c.d",
		"JWE":                  "a.b.c.d.e",
		"header not base64":    "!!!." + parts[1] + "." + parts[2],
		"header padded base64": parts[0] + "=." + parts[1] + "." + parts[2],
		"header not JSON":      rawToken(`nope`, payload, []byte("s")),
		"header array":         rawToken(`["alg"]`, payload, []byte("s")),
		"alg not a string":     rawToken(`{"alg":256,"kid":"ec"}`, payload, []byte("s")),
		"no alg":               rawToken(`{"kid":"ec"}`, payload, []byte("s")),
		"deep header":          rawToken(`{"alg":"ES256","x":`+deep+`}`, payload, []byte("s")),
		"signature not base64": parts[0] + "." + parts[1] + ".***",
		"bearer prefix":        "Bearer " + good,
		"whitespace":           " " + good,
		"SET typ":              s.sign(t, claimsFor("iss"), map[string]any{"typ": "secevent+jwt"}),
		"crit header":          s.sign(t, claimsFor("iss"), map[string]any{"crit": []string{"exp"}, "exp": 1}),
		"crit null":            rawToken(`{"alg":"ES256","kid":"ec","crit":null}`, payload, []byte("s")),
		"b64 false (RFC 7797)": s.sign(t, claimsFor("iss"), map[string]any{"b64": false, "crit": []string{"b64"}}),
		"empty parts":          "..",
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := v.Validate(context.Background(), raw)
			wantErr(t, err, token.ErrMalformed)
			noToken(t, err.Error(), raw)
		})
	}

	// Payload problems are found after the signature verifies.
	signedRaw := func(encodedPayload string) string {
		signingString := parts[0] + "." + encodedPayload
		sig, err := jwt.SigningMethodES256.Sign(signingString, s.key)
		if err != nil {
			t.Fatal(err)
		}
		return signingString + "." + b64s(sig)
	}
	signed := func(payload string) string { return signedRaw(b64(payload)) }
	_, err := v.Validate(context.Background(), signedRaw("***"))
	wantErr(t, err, token.ErrMalformed)
	for name, p := range map[string]string{
		"payload not JSON":      "nope",
		"payload array":         `[1,2]`,
		"payload null":          `null`,
		"payload string":        `"x"`,
		"payload too deep":      `{"iss":"iss","x":` + deep + `}`,
		"payload trailing junk": payload + `}`,
	} {
		_, err := v.Validate(context.Background(), signed(p))
		if !errors.Is(err, token.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := v.Validate(context.Background(), signed(payload)); err != nil {
		t.Errorf("control: %v", err)
	}

	_, err = v.Validate(context.Background(), "")
	wantErr(t, err, token.ErrMissing)
	_, err = v.Validate(context.Background(), parts[0]+"."+parts[1]+"."+b64("garbage signature bytes"))
	wantErr(t, err, token.ErrSignature)
	tampered := parts[0] + "." + b64(strings.Replace(payload, `"iss"`, `"iss" `, 1)) + "." + parts[2]
	_, err = v.Validate(context.Background(), tampered)
	wantErr(t, err, token.ErrSignature)
}

func b64(s string) string { return b64s([]byte(s)) }

func b64s(b []byte) string {
	return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(stdB64(b)), "=")
}

func TestOversizedToken(t *testing.T) {
	s := edSigner("ed")
	v := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer("iss"))
	big := s.sign(t, with(claimsFor("iss"), "pad", strings.Repeat("x", 17<<10)), nil)
	_, err := v.Validate(context.Background(), big)
	wantErr(t, err, token.ErrTooLarge)
	noToken(t, err.Error(), big)
	_, err = v.Validate(context.Background(), strings.Repeat("a", 1<<20))
	wantErr(t, err, token.ErrTooLarge)

	small := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer("iss"), token.WithMaxTokenSize(100))
	_, err = small.Validate(context.Background(), s.sign(t, claimsFor("iss"), nil))
	wantErr(t, err, token.ErrTooLarge)
}

func TestKeyURLHeadersAreNeverFetched(t *testing.T) {
	good := rsaSigner("RS256", "good")
	attacker := signer{alg: "RS256", kid: "attacker", key: rsaKey2()}
	p := newIDP(t, good)
	// A separate counting server that the headers point to.
	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilHits.Add(1)
		http.NotFound(w, r)
	}))
	defer evil.Close()
	v := newValidator(t, token.WithDiscovery(p.issuer()), token.WithIssuer(p.issuer()),
		token.WithUnknownKIDRefreshLimit(time.Millisecond), token.WithCacheSize(0))

	jwk := map[string]any{"kty": "RSA", "kid": "attacker", "n": b64s(rsaKey2().N.Bytes()), "e": "AQAB"}
	hdr := map[string]any{"jku": evil.URL + "/jwks", "x5u": evil.URL + "/cert", "jwk": jwk}
	c := claimsFor(p.issuer())

	_, err := v.Validate(context.Background(), attacker.sign(t, c, hdr))
	wantErr(t, err, token.ErrUnknownKey)
	// Same kid as the good key, attacker's signature, attacker's embedded jwk.
	_, err = v.Validate(context.Background(), signer{alg: "RS256", kid: "good", key: rsaKey2()}.sign(t, c, hdr))
	wantErr(t, err, token.ErrSignature)
	// A genuine token that carries the headers is accepted (they are ignored).
	if _, err := v.Validate(context.Background(), good.sign(t, c, hdr)); err != nil {
		t.Fatalf("genuine token with jku: %v", err)
	}
	// Let the unknown-kid refresh happen, then check where it went.
	testkit.Eventually(t, "the unknown-kid refresh", func() bool { return p.jwksHits.Load() >= 2 })
	_ = v.Close()
	if n := evilHits.Load(); n != 0 {
		t.Fatalf("the jku/x5u server was fetched %d times", n)
	}
	if n := p.otherHits.Load(); n != 0 {
		t.Fatalf("the IdP got %d unexpected requests", n)
	}
}

func TestJWKSDownAtStart(t *testing.T) {
	s := ecSigner("ec")
	// Reserve a loopback port with nothing listening on it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	issuer := "http://" + addr

	_, err = token.NewValidator(context.Background(), token.WithAudience(testAudience), token.WithIssuer(issuer),
		token.WithDiscovery(issuer), token.WithLogger(discard))
	if err == nil || !strings.Contains(err.Error(), "WithStartWithoutKeys") {
		t.Fatalf("NewValidator with the IdP down: err = %v, want an error naming WithStartWithoutKeys", err)
	}

	v := newValidator(t, token.WithIssuer(issuer), token.WithDiscovery(issuer), token.WithStartWithoutKeys(),
		token.WithUnknownKIDRefreshLimit(time.Millisecond), token.WithRefreshInterval(time.Hour))
	raw := s.sign(t, claimsFor(issuer), nil)
	_, err = v.Validate(context.Background(), raw)
	wantErr(t, err, token.ErrUnknownKey)

	// The IdP comes up on that address.
	p := &idp{}
	p.setKeys(t, s)
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	p.srv = httptest.NewUnstartedServer(p)
	_ = p.srv.Listener.Close()
	p.srv.Listener = l2
	p.srv.Start()
	defer p.srv.Close()

	testkit.Eventually(t, "recovery once the IdP is up", func() bool {
		_, err := v.Validate(context.Background(), raw)
		return err == nil
	})
}

func TestJWKSDownAfterStartKeepsKeys(t *testing.T) {
	s := rsaSigner("RS256", "rs")
	p := newIDP(t, s)
	v := newValidator(t, token.WithJWKSURL(p.issuer()+"/keys"), token.WithIssuer(p.issuer()),
		token.WithRefreshInterval(20*time.Millisecond), token.WithCacheSize(0))
	raw := s.sign(t, claimsFor(p.issuer()), nil)
	if _, err := v.Validate(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	for _, status := range []int{http.StatusInternalServerError, 0} {
		if status == 0 {
			// 200 with garbage, then 200 with an empty set.
			p.mu.Lock()
			p.body = []byte(`{"keys": [{"kty":"RSA","n":"!!"}]}`)
			p.mu.Unlock()
		}
		p.setStatus(status)
		hits := p.jwksHits.Load()
		testkit.Eventually(t, "failed refreshes", func() bool { return p.jwksHits.Load() >= hits+2 })
		if _, err := v.Validate(context.Background(), raw); err != nil {
			t.Fatalf("after failed refreshes (status %d): %v", status, err)
		}
	}
	p.mu.Lock()
	p.body = []byte(`{"keys": []}`)
	p.mu.Unlock()
	hits := p.jwksHits.Load()
	testkit.Eventually(t, "empty-set refreshes", func() bool { return p.jwksHits.Load() >= hits+2 })
	if _, err := v.Validate(context.Background(), raw); err != nil {
		t.Fatalf("after empty sets: %v", err)
	}
}

func TestJWKSResponseIsBounded(t *testing.T) {
	s := rsaSigner("RS256", "rs")
	p := newIDP(t, s)
	p.mu.Lock()
	p.body = []byte(`{"keys":[], "pad":"` + strings.Repeat("x", 4096) + `"}`)
	p.mu.Unlock()
	_, err := token.NewValidator(context.Background(), token.WithAudience(testAudience), token.WithIssuer(p.issuer()),
		token.WithJWKSURL(p.issuer()+"/keys"), token.WithMaxJWKSSize(1024), token.WithLogger(discard))
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("err = %v, want a size limit error", err)
	}
}

func TestCacheHitSkipsVerification(t *testing.T) {
	s := rsaSigner("RS256", "rs")
	other := ecSigner("other")
	p := newIDP(t, s)
	v := newValidator(t, token.WithJWKSURL(p.issuer()+"/keys"), token.WithIssuer(p.issuer()),
		token.WithUnknownKIDRefreshLimit(time.Millisecond), token.WithKeyRotationGrace(time.Hour))
	raw := s.sign(t, claimsFor(p.issuer()), nil)
	first, err := v.Validate(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}

	// Rotate the key out of the JWK Set and wait until the validator knows
	// (the new key is accepted).
	p.setKeys(t, other)
	testkit.Eventually(t, "the new key set", func() bool {
		_, err := v.Validate(context.Background(), other.sign(t, claimsFor(p.issuer()), nil))
		return err == nil
	})

	// Within the grace period the cached token is still answered, with the
	// very same claims: no signature verification happened.
	again, err := v.Validate(context.Background(), raw)
	if err != nil {
		t.Fatalf("cached token: %v", err)
	}
	if again != first {
		t.Fatalf("cache hit returned a different *Claims")
	}
}

func TestCacheEntryExpiresAtExp(t *testing.T) {
	s := edSigner("ed")
	var now atomic.Int64
	start := testclock.Unix(1_900_000_000, 0)
	now.Store(start.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	c := with(claimsFor("iss"), "iat", start.Unix(), "nbf", start.Unix(), "exp", start.Add(10*time.Second).Unix())
	raw := s.sign(t, c, nil)

	for _, leeway := range []time.Duration{0, time.Minute} {
		v := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer("iss"),
			token.WithClock(clock), token.WithLeeway(leeway))
		now.Store(start.UnixNano())
		first, err := v.Validate(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		now.Store(start.Add(9 * time.Second).UnixNano())
		if cl, err := v.Validate(context.Background(), raw); err != nil || cl != first {
			t.Fatalf("leeway %s: before exp: %v (same claims: %t)", leeway, err, cl == first)
		}
		now.Store(start.Add(10 * time.Second).UnixNano())
		cl, err := v.Validate(context.Background(), raw)
		if leeway == 0 {
			wantErr(t, err, token.ErrExpired)
			continue
		}
		// Within the leeway the token is still valid, but the cache entry is
		// not served past exp: the token was verified again.
		if err != nil || cl == first || cl == nil {
			t.Fatalf("leeway %s: at exp: %v (same claims: %t)", leeway, err, cl == first)
		}
		now.Store(start.Add(71 * time.Second).UnixNano())
		_, err = v.Validate(context.Background(), raw)
		wantErr(t, err, token.ErrExpired)
	}
}

func TestKIDLessTokens(t *testing.T) {
	rs, ec := rsaSigner("RS256", ""), ecSigner("")
	one := newValidator(t, token.WithStaticKey("only", rs.key.Public()), token.WithIssuer("iss"))
	if _, err := one.Validate(context.Background(), rs.sign(t, claimsFor("iss"), nil)); err != nil {
		t.Fatalf("one key: %v", err)
	}
	two := newValidator(t, token.WithStaticKey("a", rs.key.Public()), token.WithStaticKey("b", rsaKey2().Public()),
		token.WithStaticKey("ec", ec.key.Public()), token.WithIssuer("iss"))
	_, err := two.Validate(context.Background(), rs.sign(t, claimsFor("iss"), nil))
	wantErr(t, err, token.ErrUnknownKey)
	// Only one EC key: kid-less ES256 is fine.
	if _, err := two.Validate(context.Background(), ec.sign(t, claimsFor("iss"), nil)); err != nil {
		t.Fatalf("one EC key: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	rs := rsaSigner("RS256", "rs")
	key := token.WithStaticKey("rs", rs.key.Public())
	iss, aud := token.WithIssuer("i"), token.WithAudience("a")
	cases := []struct {
		name string
		opts []token.Option
		want string
	}{
		{"no key source", []token.Option{iss, aud}, "no key source"},
		{"no issuer", []token.Option{key, aud}, "no issuer"},
		{"no audience", []token.Option{key, iss}, "no audience"},
		{"empty issuer", []token.Option{key, aud, token.WithIssuer("")}, "empty issuer"},
		{"empty alg list", []token.Option{key, iss, aud, token.WithAlgorithms()}, "empty algorithm list"},
		{"unknown alg", []token.Option{key, iss, aud, token.WithAlgorithms("RS1")}, "unknown algorithm"},
		{"HS without key", []token.Option{key, iss, aud, token.WithAlgorithms("RS256", "HS256")}, "no WithHMACKey"},
		{"HMAC key without HS", []token.Option{key, iss, aud, token.WithHMACKey("h", make([]byte, 32))}, "no HS* algorithm"},
		{"short HMAC key", []token.Option{iss, aud, token.WithHMACKey("h", []byte("short")), token.WithAlgorithms("HS256")}, "at least 32"},
		{"negative cache", []token.Option{key, iss, aud, token.WithCacheSize(-1)}, "WithCacheSize"},
		{"zero max size", []token.Option{key, iss, aud, token.WithMaxTokenSize(0)}, "WithMaxTokenSize"},
		{"negative leeway", []token.Option{key, iss, aud, token.WithLeeway(-time.Second)}, "WithLeeway"},
		{"huge leeway", []token.Option{key, iss, aud, token.WithLeeway(time.Hour)}, "WithLeeway"},
		{"zero refresh", []token.Option{key, iss, aud, token.WithRefreshInterval(0)}, "WithRefreshInterval"},
		{"negative kid limit", []token.Option{key, iss, aud, token.WithUnknownKIDRefreshLimit(-1)}, "WithUnknownKIDRefreshLimit"},
		{"tenant template without placeholder", []token.Option{key, aud, token.WithTenantIssuer("https://x/", "t")}, "exactly once"},
		{"tenant template without tenants", []token.Option{key, aud, token.WithTenantIssuer("https://x/{tid}/")}, "no tenants"},
		{"small RSA key", []token.Option{iss, aud, token.WithStaticKey("k", &mustRSA1024().PublicKey)}, "at least 2048"},
		{"unsupported key", []token.Option{iss, aud, token.WithStaticKey("k", []byte("secret"))}, "unsupported key type"},
		{"duplicate kid", []token.Option{key, key, iss, aud}, "duplicate kid"},
		{"plain http discovery", []token.Option{iss, aud, token.WithDiscovery("http://idp.example")}, "plain http"},
		{"relative JWKS URL", []token.Option{iss, aud, token.WithJWKSURL("/keys")}, "not absolute"},
		{"nil clock", []token.Option{key, iss, aud, token.WithClock(nil)}, "nil clock"},
		{"nil client", []token.Option{key, iss, aud, token.WithHTTPClient(nil)}, "nil client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := token.NewValidator(context.Background(), tc.opts...)
			if err == nil {
				_ = v.Close()
				t.Fatalf("NewValidator succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// A private key is reduced to its public key; http on loopback is fine.
	v, err := token.NewValidator(context.Background(), iss, aud, token.WithStaticKey("k", rs.key))
	if err != nil {
		t.Fatalf("private static key: %v", err)
	}
	_ = v.Close()
}

func TestConcurrentValidate(t *testing.T) {
	signers := []signer{rsaSigner("RS256", "rs"), ecSigner("ec"), edSigner("ed")}
	p := newIDP(t, signers...)
	v := newValidator(t, token.WithDiscovery(p.issuer()), token.WithIssuer(p.issuer()),
		token.WithCacheSize(8), token.WithUnknownKIDRefreshLimit(time.Millisecond), token.WithRefreshInterval(5*time.Millisecond))
	var toks []string
	for i := range 24 {
		s := signers[i%len(signers)]
		toks = append(toks, s.sign(t, with(claimsFor(p.issuer()), "jti", fmt.Sprint(i)), nil))
	}
	bad := signer{alg: "RS256", kid: "nope", key: rsaKey()}.sign(t, claimsFor(p.issuer()), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				raw := toks[(g*7+i)%len(toks)]
				cl, err := v.Validate(context.Background(), raw)
				if err != nil || cl.Hash != token.Hash(raw) {
					errs <- fmt.Errorf("token %d: %v", i, err)
					return
				}
				if i%50 == 0 {
					if _, err := v.Validate(context.Background(), bad); !errors.Is(err, token.ErrUnknownKey) {
						errs <- fmt.Errorf("bad token: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
