package token_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
)

// TestNilOptionsReported guards issue 17 step 5's rule in token: every bad
// option is reported in one errors.Join, a nil Option or KeyOption included
// (before, NewValidator skipped a nil Option silently, so a conditional
// option that evaluated to nil, say a missing key source, went unnoticed).
func TestNilOptionsReported(t *testing.T) {
	s := edSigner("ed")
	_, err := token.NewValidator(context.Background(),
		token.WithAudience(testAudience), token.WithLogger(discard), token.WithIssuer("iss"),
		nil,
		token.WithStaticKey("ed", s.key.Public(), nil),
		token.WithLeeway(-1),
	)
	if err == nil {
		t.Fatal("NewValidator accepted a nil Option and a nil KeyOption")
	}
	for _, want := range []string{"option 3 is nil", `WithStaticKey("ed"): KeyOption 0 is nil`, "WithLeeway"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) < 3 {
		t.Errorf("error %q is not one errors.Join of every problem", err)
	}
}

// TestForIssuersTwins guards the migration of issue 17 step 5: the
// deprecated With…For options are the plain options with ForIssuers, so
// old code keeps the same binding (a key bound to b.example refuses a token
// of a.example with ErrKeyIssuer either way).
func TestForIssuersTwins(t *testing.T) {
	s := edSigner("ed")
	two := token.WithIssuer("https://a.example", "https://b.example")
	for name, opt := range map[string]token.Option{
		"WithStaticKey+ForIssuers": token.WithStaticKey("ed", s.key.Public(), token.ForIssuers("https://b.example")),
		"WithStaticKeyFor":         token.WithStaticKeyFor("ed", s.key.Public(), "https://b.example"), //nolint:staticcheck // the deprecated twin is what is tested
	} {
		t.Run(name, func(t *testing.T) {
			v := newValidator(t, two, opt)
			if _, err := v.Validate(context.Background(), s.sign(t, claimsFor("https://b.example"), nil)); err != nil {
				t.Fatalf("bound issuer: %v", err)
			}
			_, err := v.Validate(context.Background(), s.sign(t, claimsFor("https://a.example"), nil))
			wantErr(t, err, token.ErrKeyIssuer)
		})
	}
}
