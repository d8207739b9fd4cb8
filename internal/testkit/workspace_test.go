package testkit_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEveryModuleIsInTheWorkspace guards issue 17 step 6: the repository
// holds more than one module (the library and examples/), and `go test ./...`
// at the root does not enter a nested module, so .ci/run tests each module
// listed in go.work. A go.mod that go.work does not list would silently drop
// out of vet and the tests (and out of `go run ./examples/...` from the root
// if it were examples/). It fails when go.work is missing, when a go.mod is
// not listed, or when go.work lists a directory without a go.mod.
func TestEveryModuleIsInTheWorkspace(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatalf("the repository root has no go.work listing its modules: %v", err)
	}
	listed := workUses(string(work))
	if !slices.Contains(listed, ".") || !slices.Contains(listed, "examples") {
		t.Errorf("go.work uses %q; want at least the library (.) and examples", listed)
	}

	var found []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == "go.mod" {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			found = append(found, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(found)
	slices.Sort(listed)
	if !slices.Equal(found, listed) {
		t.Errorf("go.mod files in %q, go.work uses %q: run `go work use -r .` (and add the module to the README's Modules section)", found, listed)
	}
}

// workUses returns the directories of go.work's use directives, cleaned and
// relative to the workspace root ("." for the root itself).
func workUses(src string) []string {
	var dirs []string
	inBlock := false
	for line := range strings.Lines(src) {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case inBlock && f[0] == ")":
			inBlock = false
		case inBlock:
			dirs = append(dirs, filepath.ToSlash(filepath.Clean(strings.Trim(f[0], `"`))))
		case f[0] == "use" && len(f) >= 2 && f[1] == "(":
			inBlock = true
		case f[0] == "use" && len(f) >= 2:
			dirs = append(dirs, filepath.ToSlash(filepath.Clean(strings.Trim(f[1], `"`))))
		}
	}
	return dirs
}
