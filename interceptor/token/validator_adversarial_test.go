package token_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
)

// signJWS signs the exact header and payload JSON texts with s, so that a
// test controls every byte the validator sees (duplicate members, escapes,
// invalid UTF-8), which a JSON encoder would never produce.
func signJWS(t testing.TB, s signer, header, payload string) string {
	t.Helper()
	return signSegments(t, s, b64(header), b64(payload))
}

// signSegments signs two already-encoded segments as they are.
func signSegments(t testing.TB, s signer, header, payload string) string {
	t.Helper()
	signing := header + "." + payload
	sig, err := jwt.GetSigningMethod(s.alg).Sign(signing, s.key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return signing + "." + b64s(sig)
}

// countingServer counts every request; headers of hostile tokens point at it
// to prove the validator never fetches what a token names.
func countingServer(t testing.TB) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestAdversarialTokens is the refusal suite: every row is a token an
// attacker could send, and each must be refused with the sentinel that says
// why. A row that is accepted, or refused for another reason, fails.
func TestAdversarialTokens(t *testing.T) {
	ctx := context.Background()
	rs := rsaSigner("RS256", "rs")
	ec := ecSigner("ec")
	ed := edSigner("ed")
	attacker := signer{alg: "RS256", kid: "rs", key: rsaKey2()}
	evil, evilHits := countingServer(t)
	p := newIDP(t, rs, ec, ed)
	iss := p.issuer()

	const tenantTmpl = "https://login.microsoftonline.com/{tid}/v2.0"
	// The main validator: discovery from a real IdP on loopback, unknown-kid
	// refreshes allowed often so that any (wrong) fetch of a URL named by a
	// token would have every chance to show.
	v := newValidator(t, token.WithDiscovery(iss, token.ForIssuers(iss, tenantTmpl)), token.WithIssuer(iss),
		token.WithTenantIssuer(tenantTmpl, "tenant-a"), token.WithUnknownKIDRefreshLimit(time.Millisecond),
		token.WithLeeway(30*time.Second), token.WithCacheSize(0))
	// A validator that allows HS256 with its own secret, next to RS256.
	hmacSecret := []byte(strings.Repeat("s", 32))
	vHMAC := newValidator(t, token.WithJWKSURL(iss+"/keys"), token.WithIssuer(iss),
		token.WithHMACKey("hk", hmacSecret), token.WithAlgorithms("RS256", "HS256"))

	c := claimsFor(iss)
	now := time.Now()
	expPayload := fmt.Sprintf(`"aud":%q,"iat":%d,"exp":%d`, testAudience, now.Add(-time.Minute).Unix(), now.Add(time.Hour).Unix())
	ecHeader := `{"alg":"ES256","kid":"ec","typ":"JWT"}`
	payloadOK := fmt.Sprintf(`{"iss":%q,"sub":"alice",%s}`, iss, expPayload)

	der, err := x509.MarshalPKIXPublicKey(rs.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs256 := func(kid string, secret []byte) string {
		return testkit.Minter{Alg: "HS256", KID: kid, Key: secret}.Mint(t, c)
	}
	good := ec.sign(t, c, nil)
	gparts := strings.Split(good, ".")
	deep := strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200)
	jwk := map[string]any{"kty": "RSA", "kid": "rs", "n": b64s(rsaKey2().N.Bytes()), "e": "AQAB"}
	urlHeaders := map[string]any{"jku": evil.URL + "/jwks", "x5u": evil.URL + "/x5u", "jwk": jwk,
		"x5c": []string{"MIIB"}, "x5t": "abc"}
	tenantIss := func(tid string) string { return strings.Replace(tenantTmpl, "{tid}", tid, 1) }

	rows := []struct {
		name string
		v    *token.Validator
		raw  string
		want []error // every one must match (errors.Is)
	}{
		// Algorithms.
		{"alg none, empty signature", v, rawToken(`{"alg":"none"}`, payloadOK, nil), []error{token.ErrAlgorithm}},
		{"alg None with a kid", v, rawToken(`{"alg":"None","kid":"rs"}`, payloadOK, []byte("x")), []error{token.ErrAlgorithm}},
		{"alg NONE on an HMAC-enabled validator", vHMAC, rawToken(`{"alg":"NONE"}`, payloadOK, nil), []error{token.ErrAlgorithm}},
		{"alg not in the allow-list (HS256)", v, hs256("rs", pubPEM), []error{token.ErrAlgorithm}},
		{"alg unknown", v, rawToken(`{"alg":"RS1","kid":"rs"}`, payloadOK, []byte("x")), []error{token.ErrAlgorithm}},
		{"HS256 with the RSA public key PEM as secret, kid of the RSA key", vHMAC, hs256("rs", pubPEM), []error{token.ErrUnknownKey}},
		{"HS256 with the RSA public key DER as secret, kid of the RSA key", vHMAC, hs256("rs", der), []error{token.ErrUnknownKey}},
		{"HS256 with the RSA public key PEM as secret, HMAC kid", vHMAC, hs256("hk", pubPEM), []error{token.ErrSignature}},
		{"HS256 with the RSA public key PEM as secret, no kid", vHMAC, hs256("", pubPEM), []error{token.ErrSignature}},
		{"RS256 with the kid of an EC key", v, signer{alg: "RS256", kid: "ec", key: rs.key}.sign(t, c, nil), []error{token.ErrAlgorithm}},
		{"ES256 with the kid of an RSA key", v, signer{alg: "ES256", kid: "rs", key: ec.key}.sign(t, c, nil), []error{token.ErrAlgorithm}},
		{"EdDSA with the kid of an EC key", v, signer{alg: "EdDSA", kid: "ec", key: ed.key}.sign(t, c, nil), []error{token.ErrAlgorithm}},
		{"PS256 with the kid of an Ed25519 key", v, signer{alg: "PS256", kid: "ed", key: rs.key}.sign(t, c, nil), []error{token.ErrAlgorithm}},

		// Key identifiers and key-URL headers.
		{"kid path traversal", v, signer{alg: "RS256", kid: "../../etc/passwd", key: rs.key}.sign(t, c, nil), []error{token.ErrUnknownKey}},
		{"kid URL", v, signer{alg: "RS256", kid: evil.URL + "/k", key: rs.key}.sign(t, c, nil), []error{token.ErrUnknownKey}},
		{"kid file URL", v, signer{alg: "RS256", kid: "file:///etc/passwd", key: rs.key}.sign(t, c, nil), []error{token.ErrUnknownKey}},
		{"kid with NUL and newline", v, signer{alg: "RS256", kid: "rs\x00\nx", key: rs.key}.sign(t, c, nil), []error{token.ErrUnknownKey}},
		{"kid not a string", v, signJWS(t, ec, `{"alg":"ES256","kid":["ec"]}`, payloadOK), []error{token.ErrMalformed}},
		{"jku/x5u/jwk/x5c headers with the attacker's kid", v,
			signer{alg: "RS256", kid: "attacker", key: rsaKey2()}.sign(t, c, urlHeaders), []error{token.ErrUnknownKey}},
		{"jku/x5u/jwk/x5c headers with a trusted kid, attacker's signature", v, attacker.sign(t, c, urlHeaders), []error{token.ErrSignature}},
		{"embedded jwk, no kid", v, signer{alg: "RS256", key: rsaKey2()}.sign(t, c, map[string]any{"jwk": jwk}), []error{token.ErrSignature}},
		{"crit header", v, ec.sign(t, c, map[string]any{"crit": []string{"exp"}, "exp": 1}), []error{token.ErrMalformed}},
		{"crit empty", v, ec.sign(t, c, map[string]any{"crit": []string{}}), []error{token.ErrMalformed}},

		// Claims under a valid signature.
		{"wrong issuer", v, ec.sign(t, with(c, "iss", "https://evil.example"), nil), []error{token.ErrIssuer}},
		{"issuer with a trailing slash", v, ec.sign(t, with(c, "iss", iss+"/"), nil), []error{token.ErrIssuer}},
		{"no issuer", v, ec.sign(t, with(c, "iss", nil), nil), []error{token.ErrIssuer}},
		{"issuer not a string", v, ec.sign(t, with(c, "iss", []string{iss}), nil), []error{token.ErrMalformed}},
		{"wrong audience", v, ec.sign(t, with(c, "aud", "api://other"), nil), []error{token.ErrAudience}},
		{"audience list without ours", v, ec.sign(t, with(c, "aud", []string{"api://a", "api://b"}), nil), []error{token.ErrAudience}},
		{"audience prefix of ours", v, ec.sign(t, with(c, "aud", testAudience[:len(testAudience)-1]), nil), []error{token.ErrAudience}},
		{"no audience", v, ec.sign(t, with(c, "aud", nil), nil), []error{token.ErrAudience}},
		{"tenant issuer of an unlisted tenant", v, ec.sign(t, with(c, "iss", tenantIss("tenant-b"), "tid", "tenant-b"), nil), []error{token.ErrIssuer}},
		{"listed tenant's issuer with another tid", v, ec.sign(t, with(c, "iss", tenantIss("tenant-a"), "tid", "tenant-b"), nil), []error{token.ErrIssuer}},
		{"unlisted tenant's issuer with a listed tid", v, ec.sign(t, with(c, "iss", tenantIss("tenant-b"), "tid", "tenant-a"), nil), []error{token.ErrIssuer}},
		{"expired", v, ec.sign(t, with(c, "exp", now.Add(-time.Minute).Unix()), nil), []error{token.ErrExpired}},
		{"expired long ago", v, ec.sign(t, with(c, "exp", 1, "iat", 0, "nbf", 0), nil), []error{token.ErrExpired}},
		{"no exp", v, ec.sign(t, with(c, "exp", nil), nil), []error{token.ErrMalformed}},
		{"exp as a string", v, ec.sign(t, with(c, "exp", fmt.Sprint(now.Add(time.Hour).Unix())), nil), []error{token.ErrMalformed}},
		{"exp far beyond year 2242", v, ec.sign(t, with(c, "exp", 1e300), nil), []error{token.ErrMalformed}},
		{"nbf in the future", v, ec.sign(t, with(c, "nbf", now.Add(10*time.Minute).Unix()), nil), []error{token.ErrNotYetValid}},
		{"iat in the future beyond leeway", v, ec.sign(t, with(c, "iat", now.Add(10*time.Minute).Unix(), "nbf", nil), nil), []error{token.ErrIssuedInFuture}},

		// Duplicate members: encoding/json keeps the last, other libraries
		// the first; a token that two parsers read differently is refused.
		{"payload with two sub", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"sub":"alice","sub":"admin",%s}`, iss, expPayload)), []error{token.ErrMalformed}},
		{"payload with two iss", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":"https://evil.example","iss":%q,%s}`, iss, expPayload)), []error{token.ErrMalformed}},
		{"payload with two exp", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,%s,"exp":1}`, iss, expPayload)), []error{token.ErrMalformed}},
		{"payload duplicate names that are distinct bytes but not UTF-8", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"s`+"\xff"+`":"a","s`+"\xfe"+`":"b",%s}`, iss, expPayload)), []error{token.ErrMalformed}},
		{"payload duplicate hidden by an escape", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"sub":"alice","s\u0075b":"admin",%s}`, iss, expPayload)), []error{token.ErrMalformed}},
		{"payload duplicate in a nested object", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"ctx":{"a":1,"a":2},%s}`, iss, expPayload)), []error{token.ErrMalformed}},
		{"payload duplicate among many members", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,%s%s,"m7":0}`, iss, expPayload, manyMembers(40))), []error{token.ErrMalformed}},
		{"header with two alg", v, signJWS(t, ec, `{"alg":"none","alg":"ES256","kid":"ec"}`, payloadOK), []error{token.ErrMalformed}},
		{"header with two kid", v, signJWS(t, ec, `{"alg":"ES256","kid":"other","kid":"ec"}`, payloadOK), []error{token.ErrMalformed}},
		{"header alg only in upper case", v, signJWS(t, ec, `{"ALG":"ES256","kid":"ec"}`, payloadOK), []error{token.ErrMalformed}},
		{"payload with invalid JSON escapes", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"sub":"al\xffice",%s}`, iss, expPayload)), []error{token.ErrMalformed}},
		{"payload not UTF-8", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"sub":"al`+"\xff"+`ice",%s}`, iss, expPayload)), []error{token.ErrMalformed}},
		{"header not UTF-8", v, signJWS(t, ec, "{\"alg\":\"ES256\",\"kid\":\"ec\",\"x\":\"\xfe\"}", payloadOK), []error{token.ErrMalformed}},

		// Size and shape.
		{"huge token", v, ec.sign(t, with(c, "pad", strings.Repeat("x", 20<<10)), nil), []error{token.ErrTooLarge}},
		{"huge header", v, ec.sign(t, c, map[string]any{"pad": strings.Repeat("h", 20<<10)}), []error{token.ErrTooLarge}},
		{"one megabyte of dots", v, strings.Repeat(".", 1<<20), []error{token.ErrTooLarge}},
		{"deeply nested header", v, signJWS(t, ec, `{"alg":"ES256","kid":"ec","x":`+deep+`}`, payloadOK), []error{token.ErrMalformed}},
		{"deeply nested payload", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"x":%s,%s}`, iss, deep, expPayload)), []error{token.ErrMalformed}},
		{"deeply nested arrays in the payload", v, signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"x":%s1%s,%s}`, iss, strings.Repeat("[", 5000), strings.Repeat("]", 5000), expPayload)), []error{token.ErrMalformed}},
		{"truncated signature", v, good[:len(good)-10], []error{token.ErrSignature}},
		{"signature cut to one byte", v, gparts[0] + "." + gparts[1] + ".AA", []error{token.ErrSignature}},
		{"empty signature", v, gparts[0] + "." + gparts[1] + ".", []error{token.ErrSignature}},
		{"signature in standard base64", v, gparts[0] + "." + gparts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(gparts[2]) + "+/", []error{token.ErrMalformed}},
		{"signature with padding", v, good + "==", []error{token.ErrMalformed}},
		{"header with a space", v, gparts[0][:4] + " " + gparts[0][4:] + "." + gparts[1] + "." + gparts[2], []error{token.ErrMalformed}},
		{"payload not base64url under a valid signature", v, signSegments(t, ec, b64(ecHeader), b64(payloadOK)+"*"), []error{token.ErrMalformed}},
		{"payload with padding under a valid signature", v, signSegments(t, ec, b64(ecHeader), b64(payloadOK+" ")+"="), []error{token.ErrMalformed}},
		{"JWE", v, "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", []error{token.ErrMalformed}},
		{"SET replayed as an access token", v, ec.sign(t, c, map[string]any{"typ": "secevent+jwt"}), []error{token.ErrMalformed}},
		{"empty", v, "", []error{token.ErrMissing}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			cl, err := row.v.Validate(ctx, row.raw)
			if err == nil || cl != nil {
				t.Fatalf("accepted (claims %v, err %v)", cl, err)
			}
			for _, want := range row.want {
				if !errors.Is(err, want) {
					t.Fatalf("error = %v, want %v", err, want)
				}
			}
			noToken(t, err.Error(), row.raw)
		})
	}

	// Controls: the same validators accept genuine tokens, so the refusals
	// above are not an artefact of a broken setup.
	for name, raw := range map[string]string{
		"ES256":                   good,
		"RS256":                   rs.sign(t, c, nil),
		"signed JSON text":        signJWS(t, ec, ecHeader, payloadOK),
		"listed tenant":           ec.sign(t, with(c, "iss", tenantIss("tenant-a"), "tid", "tenant-a"), nil),
		"iat within leeway":       ec.sign(t, with(c, "iat", now.Add(10*time.Second).Unix(), "nbf", nil), nil),
		"key URL headers ignored": rs.sign(t, c, urlHeaders),
		"31 levels of nesting":    signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"sub":"s","x":%s1%s,%s}`, iss, strings.Repeat("[", 30), strings.Repeat("]", 30), expPayload)),
		"same name in sibling objects": signJWS(t, ec, ecHeader,
			fmt.Sprintf(`{"iss":%q,"sub":"s","a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}],"k":3,%s}`, iss, expPayload)),
		"many distinct members":          signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"sub":"s",%s%s}`, iss, expPayload, manyMembers(40))),
		"names that differ only in case": signJWS(t, ec, ecHeader, fmt.Sprintf(`{"iss":%q,"Sub":"x","sub":"y",%s}`, iss, expPayload)),
	} {
		if _, err := v.Validate(ctx, raw); err != nil {
			t.Errorf("control %s: %v", name, err)
		}
	}
	if _, err := vHMAC.Validate(ctx, hs256("hk", hmacSecret)); err != nil {
		t.Errorf("control HS256 with its own secret: %v", err)
	}

	// Let any unknown-kid refresh run, then prove that nothing a token named
	// was ever fetched and the IdP saw only discovery and JWKS requests.
	// (One JWKS fetch each at start, then the unknown-kid refresh of v.)
	testkit.Eventually(t, "the unknown-kid refresh", func() bool { return p.jwksHits.Load() >= 3 })
	_ = v.Close()
	_ = vHMAC.Close()
	if n := evilHits.Load(); n != 0 {
		t.Fatalf("a URL named by a token was fetched %d times", n)
	}
	if n := p.otherHits.Load(); n != 0 {
		t.Fatalf("the IdP got %d requests for paths a token named", n)
	}
}

// manyMembers returns n distinct members, each preceded by a comma.
func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `,"m%d":%d`, i, i)
	}
	return b.String()
}

// TestKeyRotationGrace rotates a key out of the JWK Set and checks that its
// tokens, fresh and cached, are accepted during the grace period and refused
// with ErrKeyRetired after it, and that the key is accepted again if it
// comes back.
func TestKeyRotationGrace(t *testing.T) {
	old, next := rsaSigner("RS256", "old"), ecSigner("next")
	p := newIDP(t, old)
	var clock atomic.Int64
	start := time.Now()
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	const grace = 10 * time.Minute
	v := newValidator(t, token.WithJWKSURL(p.issuer()+"/keys"), token.WithIssuer(p.issuer()),
		token.WithClock(now), token.WithKeyRotationGrace(grace), token.WithUnknownKIDRefreshLimit(time.Millisecond))
	c := with(claimsFor(p.issuer()), "exp", start.Add(24*time.Hour).Unix())
	cached := old.sign(t, c, nil)
	first, err := v.Validate(context.Background(), cached)
	if err != nil {
		t.Fatal(err)
	}

	// Rotate: "old" leaves, "next" arrives. A token with the new kid
	// triggers the refresh; once it validates, the withdrawal is known.
	p.setKeys(t, next)
	rotate := func() {
		t.Helper()
		n := 0
		testkit.Eventually(t, "the new key set", func() bool {
			n++
			_, err := v.Validate(context.Background(), next.sign(t, with(c, "jti", fmt.Sprint("n", n)), nil))
			return err == nil
		})
	}
	rotate()

	// Within the grace period: the cached token is a hit, a fresh one verifies.
	clock.Store(start.Add(grace - time.Second).UnixNano())
	if cl, err := v.Validate(context.Background(), cached); err != nil || cl != first {
		t.Fatalf("cached token within the grace period: %v (cache hit: %t)", err, cl == first)
	}
	fresh := old.sign(t, with(c, "jti", "fresh"), nil)
	if _, err := v.Validate(context.Background(), fresh); err != nil {
		t.Fatalf("fresh token within the grace period: %v", err)
	}

	// After it: both refused, with ErrKeyRetired (which is an ErrUnknownKey).
	clock.Store(start.Add(grace + time.Second).UnixNano())
	for name, raw := range map[string]string{"cached": cached, "fresh": fresh, "new": old.sign(t, with(c, "jti", "new"), nil)} {
		_, err := v.Validate(context.Background(), raw)
		if !errors.Is(err, token.ErrKeyRetired) || !errors.Is(err, token.ErrUnknownKey) {
			t.Fatalf("%s token after the grace period: err = %v, want ErrKeyRetired and ErrUnknownKey", name, err)
		}
	}
	// The other key is unaffected.
	if _, err := v.Validate(context.Background(), next.sign(t, c, nil)); err != nil {
		t.Fatalf("the current key after the grace period: %v", err)
	}

	// The key comes back: accepted again.
	p.setKeys(t, next, old)
	testkit.Eventually(t, "the returned key", func() bool {
		// A kid-triggered refresh brings it back.
		_, _ = v.Validate(context.Background(), signer{alg: "RS256", kid: "unknown", key: old.key}.sign(t, c, nil))
		_, err := v.Validate(context.Background(), cached)
		return err == nil
	})
}

// TestKeyRotationWithoutGrace checks WithKeyRotationGrace(0): a withdrawn
// key's cached tokens are refused as soon as a refresh misses it.
func TestKeyRotationWithoutGrace(t *testing.T) {
	old, next := edSigner("old"), ecSigner("next")
	p := newIDP(t, old)
	v := newValidator(t, token.WithJWKSURL(p.issuer()+"/keys"), token.WithIssuer(p.issuer()),
		token.WithKeyRotationGrace(0), token.WithUnknownKIDRefreshLimit(time.Millisecond))
	c := claimsFor(p.issuer())
	cached := old.sign(t, c, nil)
	if _, err := v.Validate(context.Background(), cached); err != nil {
		t.Fatal(err)
	}
	p.setKeys(t, next)
	testkit.Eventually(t, "the new key set", func() bool {
		_, err := v.Validate(context.Background(), next.sign(t, c, nil))
		return err == nil
	})
	_, err := v.Validate(context.Background(), cached)
	wantErr(t, err, token.ErrUnknownKey)
}

// TestKeyReplacedUnderSameKID: an IdP that re-keys under the same kid
// withdraws the old key material; cached tokens of the old material end
// with the grace period, and new tokens of the old material never verify.
func TestKeyReplacedUnderSameKID(t *testing.T) {
	oldMat := signer{alg: "RS256", kid: "k", key: rsaKey()}
	newMat := signer{alg: "RS256", kid: "k", key: rsaKey2()}
	p := newIDP(t, oldMat)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	v := newValidator(t, token.WithJWKSURL(p.issuer()+"/keys"), token.WithIssuer(p.issuer()), token.WithClock(now),
		token.WithKeyRotationGrace(time.Minute), token.WithRefreshInterval(20*time.Millisecond))
	c := with(claimsFor(p.issuer()), "exp", time.Now().Add(24*time.Hour).Unix())
	cached := oldMat.sign(t, c, nil)
	if _, err := v.Validate(context.Background(), cached); err != nil {
		t.Fatal(err)
	}
	p.setKeys(t, newMat)
	testkit.Eventually(t, "the new material", func() bool {
		_, err := v.Validate(context.Background(), newMat.sign(t, c, nil))
		return err == nil
	})
	if _, err := v.Validate(context.Background(), cached); err != nil {
		t.Fatalf("cached token of the old material within the grace period: %v", err)
	}
	_, err := v.Validate(context.Background(), oldMat.sign(t, with(c, "jti", "new"), nil))
	wantErr(t, err, token.ErrSignature)
	clock.Add(int64(2 * time.Minute))
	_, err = v.Validate(context.Background(), cached)
	wantErr(t, err, token.ErrSignature)
}
