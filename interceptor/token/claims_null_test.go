package token_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
)

// TestNullClaimsRefused guards issue 17 step 1's one claim rule
// (jose.ClaimString/ClaimStrings/ClaimTime, shared with logout tokens and
// SETs): a claim the validator reads that is JSON null is the wrong type,
// not an absent claim. Before, the access-token reader took null for
// absent, so "nbf":null and "sid":null passed and "aud":null was reported as
// ErrAudience; the logout reader already refused null. RFC 7519 section 2
// defines NumericDate and StringOrURI values, neither of which is null.
func TestNullClaimsRefused(t *testing.T) {
	s := edSigner("ed")
	v := newValidator(t, token.WithStaticKey("ed", s.key.Public()), token.WithIssuer("iss"))
	null := json.RawMessage("null")
	if _, err := v.Validate(context.Background(), s.sign(t, claimsFor("iss"), nil)); err != nil {
		t.Fatalf("control token: %v", err)
	}
	for _, claim := range []string{"nbf", "aud", "sid", "email", "xms_cc", "exp", "iat"} {
		t.Run(claim, func(t *testing.T) {
			_, err := v.Validate(context.Background(), s.sign(t, with(claimsFor("iss"), claim, null), nil))
			wantErr(t, err, token.ErrMalformed)
			if !strings.Contains(err.Error(), "claim "+claim) || !strings.Contains(err.Error(), "null") {
				t.Fatalf("error %q does not name claim %s and null", err, claim)
			}
		})
	}
}
