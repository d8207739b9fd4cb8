package logout_test

import (
	"strings"
	"testing"

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
