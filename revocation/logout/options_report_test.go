package logout_test

import (
	"strings"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation/logout"
)

// TestNewReportsEveryProblemAtOnce guards issue 17 step 5's rule in logout:
// one errors.Join names every bad option. Before, a nil Option was skipped
// silently, WithKeys(nil) fell back to "WithKeys or WithIssuer is required",
// and a bad WithEmailDomains went unreported whenever another option was
// also bad (New returned after the first stage of checks).
func TestNewReportsEveryProblemAtOnce(t *testing.T) {
	_, err := logout.New(t.Context(), nil, logout.WithKeys(nil), logout.WithMaxBodySize(0), logout.WithEmailDomains("@x"))
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{"option 0 is nil", "WithKeys: nil validator", "WithStore", "WithMaxBodySize", "WithEmailDomains"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// TestWithKeysNilValidatorIsReported guards WithKeys taking the Keys
// interface: a nil *token.Validator in it is a non-nil interface, and must
// still be reported as a nil validator instead of failing on first use.
func TestWithKeysNilValidatorIsReported(t *testing.T) {
	var v *token.Validator
	_, err := logout.New(t.Context(), logout.WithKeys(v), logout.WithStore(teststore.Memory(t)), logout.WithAudience("client"))
	if err == nil || !strings.Contains(err.Error(), "WithKeys: nil validator") {
		t.Fatalf("New with a nil *token.Validator: %v", err)
	}
}
