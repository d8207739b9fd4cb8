package token_test

import (
	"context"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor/token"
)

// TestValidateNow: ValidateNow judges a token at the time it is given,
// from the cache too, unless the validator has a clock of its own
// (WithClock), which it then reads instead.
func TestValidateNow(t *testing.T) {
	s := edSigner("ed")
	ctx := context.Background()
	raw := s.sign(t, claimsFor(shapeIss), nil) // exp in an hour
	late := time.Now().Add(2 * time.Hour)

	v := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer(shapeIss))
	if _, err := v.ValidateNow(ctx, raw, late); err == nil {
		t.Fatal("an expired token (as of now) passed, before it was cached")
	}
	if _, err := v.ValidateNow(ctx, raw, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.ValidateNow(ctx, raw, late); err == nil {
		t.Fatal("an expired token (as of now) passed from the cache")
	}

	clocked := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer(shapeIss),
		token.WithClock(shapeClock(time.Now())))
	if _, err := clocked.ValidateNow(ctx, raw, late); err != nil {
		t.Fatalf("a validator with a clock of its own judged at the time given: %v", err)
	}
}

// TestTokenWithSpaceRefused pins what the interceptor relies on to look for
// spaces in a token only after the validator refused it: a valid token with
// a space or a tab put anywhere in it is refused, after the token itself
// was cached too.
func TestTokenWithSpaceRefused(t *testing.T) {
	s := edSigner("ed")
	v := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer(shapeIss))
	raw := s.sign(t, claimsFor(shapeIss), nil)
	if _, err := v.Validate(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= len(raw); i++ {
		for _, sp := range []string{" ", "\t"} {
			if _, err := v.Validate(context.Background(), raw[:i]+sp+raw[i:]); err == nil {
				t.Fatalf("accepted with %q at %d", sp, i)
			}
		}
	}
}
