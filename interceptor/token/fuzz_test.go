package token_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testclock"
)

// sentinels are the errors Validate may wrap; every refusal wraps one.
var sentinels = []error{token.ErrMissing, token.ErrTooLarge, token.ErrMalformed, token.ErrAlgorithm,
	token.ErrUnknownKey, token.ErrSignature, token.ErrIssuer, token.ErrAudience, token.ErrExpired,
	token.ErrNotYetValid, token.ErrIssuedInFuture}

// FuzzValidate feeds arbitrary strings to Validate: nothing may panic, every
// refusal wraps a sentinel and never echoes the token, and anything accepted
// must be one of the genuinely signed seeds (a mutation that still verifies
// would be a forgery).
func FuzzValidate(f *testing.F) {
	ec, ed := ecSigner("ec"), edSigner("ed")
	at := testclock.Unix(1_900_000_000, 0)
	c := with(claimsFor("iss"), "iat", at.Unix()-60, "nbf", at.Unix()-60, "exp", at.Unix()+3600)
	genuine := map[string]bool{}
	for _, raw := range []string{
		ec.sign(f, c, nil), ed.sign(f, c, nil), ed.sign(f, with(c, "aud", []string{"x", testAudience}), nil),
		signJWS(f, ed, `{"alg":"EdDSA","kid":"ed"}`, `{"iss":"iss","aud":"api://inbox","exp":1900003600,"a":{"b":[1,2,{"c":null}]}}`),
	} {
		genuine[raw] = true
		f.Add(raw)
	}
	f.Add(signJWS(f, ed, `{"alg":"EdDSA","kid":"ed","alg":"none"}`, `{"iss":"iss","aud":"api://inbox","exp":1900003600}`))
	f.Add(signJWS(f, ed, `{"alg":"EdDSA","kid":"ed"}`, `{"iss":"iss","aud":"api://inbox","exp":1900003600,"s\ud800":1,"s\udc00":2}`))
	f.Add(rawToken(`{"alg":"none"}`, `{"iss":"iss"}`, nil))
	f.Add("a.b.c")
	f.Add("..")
	f.Add("a.b.c.d.e")
	v, err := token.NewValidator(context.Background(), token.WithAudience(testAudience), token.WithIssuer("iss"),
		token.WithStaticKey("ec", ec.key.Public()), token.WithStaticKey("ed", ed.key.Public()),
		token.WithClock(func() time.Time { return at }), token.WithLogger(discard), token.WithCacheSize(64))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.Close() })
	f.Fuzz(func(t *testing.T, raw string) {
		cl, err := v.Validate(context.Background(), raw)
		if err == nil {
			if cl == nil {
				t.Fatal("nil claims without an error")
			}
			if !genuine[raw] {
				t.Fatalf("accepted a token that was never signed: %q", raw)
			}
			return
		}
		if cl != nil {
			t.Fatal("claims with an error")
		}
		wrapped := false
		for _, s := range sentinels {
			wrapped = wrapped || errors.Is(err, s)
		}
		if !wrapped {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if len(raw) >= 16 && strings.Contains(err.Error(), raw) {
			t.Fatalf("error echoes the token: %v", err)
		}
	})
}
