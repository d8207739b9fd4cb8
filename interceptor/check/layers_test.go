package check_test

import (
	"go/build"
	"io/fs"
	"os"
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

// TestRevocationTreeHoldsNoGRPCSurface guards the move of ssfgrpc (a gRPC
// service that runs checks) from revocation/ssf/ssfgrpc to interceptor/ssfgrpc:
// no package under revocation/ imports the interceptor, its check contract
// or ssfgrpc, and ssfgrpc itself needs only the contract, not the interceptor.
// (revocation/logout no longer imports interceptor/token either; its own
// TestLogoutImportsNothingOfTheInterceptor checks its whole dependency tree.)
func TestRevocationTreeHoldsNoGRPCSurface(t *testing.T) {
	const mod = "github.com/caekit/caekit/"
	denied := []string{mod + "interceptor", mod + "interceptor/check", mod + "interceptor/ssfgrpc", mod + "interceptor/token", mod + "policy"}
	root := filepath.FromSlash("../../revocation")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if _, ok := err.(*build.NoGoError); ok {
			return nil
		}
		if err != nil {
			return err
		}
		n++
		for _, imp := range p.Imports {
			for _, x := range denied {
				if imp == x {
					t.Errorf("%s imports %s: gRPC surfaces live under interceptor/", path, imp)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("walked %d packages under %s; the walk is broken", n, root)
	}
	if _, err := os.Stat(filepath.Join(root, "ssf", "ssfgrpc")); err == nil {
		t.Error("revocation/ssf/ssfgrpc exists again; it lives in interceptor/ssfgrpc")
	}
	p, err := build.ImportDir(filepath.FromSlash("../ssfgrpc"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range p.Imports {
		if imp == mod+"interceptor" {
			t.Error("ssfgrpc imports interceptor; it needs only interceptor/check")
		}
	}
}
