package testkit_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/internal/testkit"
)

// A minted token verifies with the public key, and its header carries the
// alg, the kid and the extra members asked for.
func TestMinterSignsWhatItSays(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m := testkit.Minter{Alg: "ES256", KID: "k1", Key: key}
	raw := m.MintHeader(t, map[string]any{"sub": "alice"}, map[string]any{"typ": "at+jwt"})
	tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"ES256"}))
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if tok.Header["kid"] != "k1" || tok.Header["typ"] != "at+jwt" || tok.Header["alg"] != "ES256" {
		t.Fatalf("header = %v", tok.Header)
	}
	if sub, _ := tok.Claims.GetSubject(); sub != "alice" {
		t.Fatalf("sub = %q", sub)
	}
	noKID := m.MintHeader(t, map[string]any{}, map[string]any{"kid": nil, "typ": nil})
	if tok, _, err := jwt.NewParser().ParseUnverified(noKID, jwt.MapClaims{}); err != nil || len(tok.Header) != 1 {
		t.Fatalf("a nil header member must delete it: %v, %v", tok.Header, err)
	}
	if plain := m.Mint(t, map[string]any{}); strings.Count(plain, ".") != 2 {
		t.Fatalf("not a compact JWS: %q", plain)
	}
	secret := []byte(strings.Repeat("s", 32))
	hs := testkit.Minter{Alg: "HS256", Key: secret}.Mint(t, map[string]any{"sub": "bob"})
	if _, err := jwt.Parse(hs, func(tk *jwt.Token) (any, error) {
		if _, has := tk.Header["kid"]; has {
			t.Error("an empty KID must leave kid out of the header")
		}
		return secret, nil
	}); err != nil {
		t.Fatalf("HS256 token does not verify: %v", err)
	}
}

// A key that does not fit the alg fails the test instead of minting.
func TestMinterFailsOnAMismatchedKey(t *testing.T) {
	f := &fakeTB{TB: t}
	_ = testkit.Minter{Alg: "RS256", Key: []byte("not an RSA key")}.Mint(f, map[string]any{})
	if !f.failed.Load() || !strings.Contains(f.msg, "RS256") {
		t.Fatalf("mismatched key: failed=%v msg=%q", f.failed.Load(), f.msg)
	}
	f = &fakeTB{TB: t}
	_ = testkit.Minter{Alg: "none-such"}.Mint(f, map[string]any{})
	if !f.failed.Load() || !strings.Contains(f.msg, "none-such") {
		t.Fatalf("unknown alg: failed=%v msg=%q", f.failed.Load(), f.msg)
	}
}
