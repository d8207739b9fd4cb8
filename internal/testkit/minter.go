package testkit

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Minter signs test tokens the way an identity provider does: a compact JWS
// (RFC 7515 §7.1) whose protected header names the alg and, when set, the
// kid under which the verification key is published.
type Minter struct {
	// Alg is the JWS alg: ES256, RS256, PS256, EdDSA, HS256...
	Alg string
	// KID is the header's kid; empty leaves it out.
	KID string
	// Key is the signing key: a crypto.Signer for the asymmetric algs, the
	// shared secret ([]byte) for HS*.
	Key any
}

// Mint signs claims and returns the compact token; it fails t if it cannot.
func (m Minter) Mint(t testing.TB, claims map[string]any) string {
	t.Helper()
	return m.MintHeader(t, claims, nil)
}

// MintHeader is Mint with extra protected-header members (typ, crit, jku, a
// forged alg...). They are copied over the header after alg and kid, so a
// test can make the header lie about the signature; a nil value deletes the
// member (a token without kid or typ).
func (m Minter) MintHeader(t testing.TB, claims, header map[string]any) string {
	t.Helper()
	method := jwt.GetSigningMethod(m.Alg)
	if method == nil {
		t.Fatalf("testkit.Minter: unknown alg %q", m.Alg)
		return ""
	}
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	if m.KID != "" {
		tok.Header["kid"] = m.KID
	}
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	raw, err := tok.SignedString(m.Key)
	if err != nil {
		t.Fatalf("testkit.Minter: signing with %s: %v", m.Alg, err)
	}
	return raw
}
