package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The identity provider every case trusts. Tokens look like Entra access
// tokens: the identifiers caekit's revocation check looks up (tid+oid,
// iss+sub, sid, azp, upn, jti) and a scope.
const (
	issuer   = "https://idp.bench.example/tenant-1/v2.0"
	audience = "api://inbox"
	tenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID = "5b4c3d2e-1f00-4a5b-8c9d-0e1f2a3b4c5d"
	keyID    = "bench-key-1"
	scope    = "Inbox.Read Inbox.Watch"
)

// Algorithms the suite signs with.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
)

var allAlgs = []string{algRS256, algES256, algEdDSA}

// signer holds one signing key of an algorithm.
type signer struct {
	alg    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func (s *signer) public() crypto.PublicKey { return s.priv.Public() }

// newSigner generates a fresh key for alg (RSA 2048 bits, P-256, Ed25519).
func newSigner(alg string) (*signer, error) {
	switch alg {
	case algRS256:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate RSA key: %w", err)
		}
		return &signer{alg: alg, method: jwt.SigningMethodRS256, priv: k}, nil
	case algES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate EC key: %w", err)
		}
		return &signer{alg: alg, method: jwt.SigningMethodES256, priv: k}, nil
	case algEdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate Ed25519 key: %w", err)
		}
		return &signer{alg: alg, method: jwt.SigningMethodEdDSA, priv: k}, nil
	}
	return nil, fmt.Errorf("unknown algorithm %q", alg)
}

// tokenClaims returns the claims of user n's token with session sid.
func tokenClaims(n int, sid string, now time.Time) jwt.MapClaims {
	user := "user-" + strconv.Itoa(n)
	return jwt.MapClaims{
		"iss":                issuer,
		"aud":                audience,
		"sub":                "sub-" + user,
		"tid":                tenantID,
		"oid":                "oid-" + user,
		"sid":                sid,
		"azp":                clientID,
		"jti":                "jti-" + user + "-" + sid,
		"preferred_username": user + "@contoso.example",
		"scp":                scope,
		"xms_cc":             []string{"cp1"},
		"iat":                now.Add(-time.Minute).Unix(),
		"nbf":                now.Add(-time.Minute).Unix(),
		"exp":                now.Add(time.Hour).Unix(),
	}
}

// sign signs claims with kid keyID.
func (s *signer) sign(c jwt.MapClaims) (string, error) {
	t := jwt.NewWithClaims(s.method, c)
	t.Header["kid"] = keyID
	raw, err := t.SignedString(s.priv)
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", s.alg, err)
	}
	return raw, nil
}

// mint returns the token of user n, session sid, issued now.
func (s *signer) mint(n int, sid string) (string, error) {
	return s.sign(tokenClaims(n, sid, time.Now()))
}
