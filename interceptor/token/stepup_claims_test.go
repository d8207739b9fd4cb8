package token_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor/token"
)

// TestACRAndAuthTime guards the RFC 9470 inputs: acr and auth_time (OIDC
// Core §2, carried in access tokens per RFC 9068 §2.2.3.1) are exposed, and
// auth_time is a NumericDate read as strictly as exp, nbf and iat: a string
// or out-of-range auth_time is a malformed token, not an absent claim (which
// would let a max_age rule be judged on a value the validator never read).
func TestACRAndAuthTime(t *testing.T) {
	s := edSigner("ed")
	v := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer("iss"))
	authAt := time.Now().Add(-10 * time.Minute).Unix()
	cl, err := v.Validate(context.Background(), s.sign(t, with(claimsFor("iss"), "acr", "urn:example:mfa", "auth_time", authAt), nil))
	if err != nil {
		t.Fatal(err)
	}
	if cl.ACR != "urn:example:mfa" || !cl.AuthTime.Equal(time.Unix(authAt, 0)) {
		t.Fatalf("acr %q auth_time %v, want urn:example:mfa %v", cl.ACR, cl.AuthTime, time.Unix(authAt, 0))
	}
	cl, err = v.Validate(context.Background(), s.sign(t, claimsFor("iss"), nil))
	if err != nil || cl.ACR != "" || !cl.AuthTime.IsZero() {
		t.Fatalf("absent: acr %q auth_time %v err %v", cl.ACR, cl.AuthTime, err)
	}
	for name, bad := range map[string][]any{
		"auth_time string":   {"auth_time", "1700000000"},
		"auth_time negative": {"auth_time", -1},
		"auth_time huge":     {"auth_time", 1e12},
		"acr number":         {"acr", 2},
		"acr array":          {"acr", []string{"a", "b"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Validate(context.Background(), s.sign(t, with(claimsFor("iss"), bad...), nil))
			if !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}
