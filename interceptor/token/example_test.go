package token_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testclock"
)

func Example() {
	// An issuer's key pair; in production the key comes from WithDiscovery.
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	now := testclock.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

	v, err := token.NewValidator(context.Background(),
		token.WithStaticKey("key-1", priv.Public()),
		token.WithTenantIssuer("https://login.microsoftonline.com/{tid}/v2.0", "contoso-tid"),
		token.WithAudience("api://inbox"),
		token.WithClock(func() time.Time { return now }),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()

	mint := func(exp time.Time) string {
		t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"iss":    "https://login.microsoftonline.com/contoso-tid/v2.0",
			"tid":    "contoso-tid",
			"oid":    "alice-oid",
			"aud":    "api://inbox",
			"xms_cc": []string{"cp1"},
			"iat":    now.Add(-time.Minute).Unix(),
			"exp":    exp.Unix(),
		})
		t.Header["kid"] = "key-1"
		raw, _ := t.SignedString(priv)
		return raw
	}

	claims, err := v.Validate(context.Background(), mint(now.Add(time.Hour)))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(claims.TenantID, claims.ObjectID, claims.HasCapability("cp1"), len(claims.Hash))

	_, err = v.Validate(context.Background(), mint(now.Add(-time.Hour)))
	fmt.Println(errors.Is(err, token.ErrExpired))
	// Output:
	// contoso-tid alice-oid true 12
	// true
}

// Two identity providers: each key is bound to its own issuer, so that
// neither can sign tokens for the other.
func ExampleForIssuers() {
	keyA := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	keyB := ed25519.NewKeyFromSeed([]byte("0123456789abcdef0123456789abcdef"))
	now := testclock.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

	v, err := token.NewValidator(context.Background(),
		token.WithIssuer("https://idp-a.example", "https://idp-b.example"),
		token.WithStaticKey("a-1", keyA.Public(), token.ForIssuers("https://idp-a.example")),
		token.WithStaticKey("b-1", keyB.Public(), token.ForIssuers("https://idp-b.example")),
		token.WithAudience("api://inbox"),
		token.WithClock(func() time.Time { return now }),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()

	mint := func(kid string, key ed25519.PrivateKey, iss string) string {
		t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"iss": iss, "sub": "alice", "aud": "api://inbox", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		t.Header["kid"] = kid
		raw, _ := t.SignedString(key)
		return raw
	}

	_, err = v.Validate(context.Background(), mint("b-1", keyB, "https://idp-b.example"))
	fmt.Println(err)
	_, err = v.Validate(context.Background(), mint("b-1", keyB, "https://idp-a.example"))
	fmt.Println(errors.Is(err, token.ErrKeyIssuer), errors.Is(err, token.ErrIssuer))
	// Output:
	// <nil>
	// true true
}
