package token_test

import (
	"strings"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
)

// TestVerifySigned guards the seam the logout receivers use: a non-access
// JWS verified with the validator's discovered keys, bound to its issuer,
// under the validator's allow-list, and nothing else.
func TestVerifySigned(t *testing.T) {
	s := ecSigner("k1")
	p := newIDP(t, s)
	other := newIDP(t, ecSigner("k1"))
	v := newValidator(t, token.WithIssuer(p.issuer(), other.issuer()), token.WithDiscovery(p.issuer()))

	logout := map[string]any{"iss": p.issuer(), "aud": "rp", "sid": "s1", "events": map[string]any{"x": map[string]any{}}}
	raw := s.sign(t, logout, map[string]any{"typ": "logout+jwt"})
	got, err := v.VerifySigned(raw)
	if err != nil {
		t.Fatalf("VerifySigned: %v", err)
	}
	if got.Issuer != p.issuer() || got.Typ != "logout+jwt" || got.KID != "k1" || string(got.Claims["sid"]) != `"s1"` || got.Hash != token.Hash(raw) {
		t.Fatalf("Signed = %+v", got)
	}
	// Validate still refuses it as an access token.
	if _, err := v.Validate(t.Context(), raw); err == nil {
		t.Fatal("Validate accepted a logout token")
	}

	cases := map[string]struct {
		raw  string
		want error
	}{
		"issuer the key may not sign for": {s.sign(t, with(logout, "iss", other.issuer()), nil), token.ErrKeyIssuer},
		"issuer not accepted":             {s.sign(t, with(logout, "iss", "https://evil.example"), nil), token.ErrIssuer},
		"no iss":                          {s.sign(t, with(logout, "iss", nil), nil), token.ErrIssuer},
		"iss not a string":                {s.sign(t, with(logout, "iss", 7), nil), token.ErrMalformed},
		"alg not allowed":                 {rsaSigner("RS512", "k1").sign(t, logout, nil), token.ErrMalformed},
		"bad signature":                   {raw[:strings.LastIndexByte(raw, '.')+1] + "AAAA", token.ErrSignature},
		"unknown kid":                     {ecSigner("k9").sign(t, logout, nil), token.ErrUnknownKey},
		"JWE":                             {"a.b.c.d.e", token.ErrMalformed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := v.VerifySigned(c.raw)
			wantErr(t, err, c.want)
			noToken(t, err.Error(), c.raw)
		})
	}
}
