package logout_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogoutImportsNothingOfTheInterceptor guards issue 17's layering for
// the logout receivers: neither revocation/logout nor anything it imports,
// however indirectly, is under interceptor/ (it used to import
// interceptor/token for the validator's key sources; it now takes the Keys
// interface and builds its own key set from internal/keyset). It follows
// the module's own non-test imports from source, as `go list -deps` would.
func TestLogoutImportsNothingOfTheInterceptor(t *testing.T) {
	const mod = "github.com/caekit/caekit/"
	root := filepath.FromSlash("../..")
	seen := map[string]bool{}
	queue := []string{mod + "revocation/logout"}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if seen[path] {
			continue
		}
		seen[path] = true
		p, err := build.ImportDir(filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(path, mod))), 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, imp := range p.Imports {
			if imp == mod+"interceptor" || strings.HasPrefix(imp, mod+"interceptor/") {
				t.Errorf("%s imports %s: revocation/logout must not depend on the interceptor layer", path, imp)
			}
			if strings.HasPrefix(imp, mod) {
				queue = append(queue, imp)
			}
		}
	}
	if !seen[mod+"internal/keyset"] || !seen[mod+"revocation"] {
		t.Fatalf("walked %d packages, missing internal/keyset or revocation: the walk is broken", len(seen))
	}
}
