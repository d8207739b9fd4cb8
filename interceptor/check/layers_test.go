package check_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportsPointDown guards the layering of issue 17 step 3: the check
// contract is a leaf under the interceptor, and the packages that provide
// checks or revocation vocabulary never import the interceptor that runs
// them (policy imported interceptor for the contract before this package
// existed). It reads the non-test imports of each package from its source.
func TestImportsPointDown(t *testing.T) {
	const mod = "github.com/caekit/caekit/"
	cases := []struct {
		dir    string   // relative to this package
		denied []string // import paths (prefixes ending in "/" match subtrees) it must not import
	}{
		{".", []string{mod + "interceptor", mod + "policy", mod + "revocation/"}},
		{"../../policy", []string{mod + "interceptor"}},
		{"../challenge", []string{mod + "interceptor", mod + "interceptor/check"}},
		{"../token", []string{mod + "interceptor", mod + "interceptor/check"}},
		{"../../revocation", []string{mod + "interceptor", mod + "policy"}},
	}
	for _, c := range cases {
		p, err := build.ImportDir(filepath.FromSlash(c.dir), 0)
		if err != nil {
			t.Fatalf("%s: %v", c.dir, err)
		}
		for _, imp := range p.Imports {
			for _, d := range c.denied {
				if imp == d || (strings.HasSuffix(d, "/") && strings.HasPrefix(imp, d)) {
					t.Errorf("package %s imports %s: imports must point down", p.Name, imp)
				}
			}
		}
	}
}
