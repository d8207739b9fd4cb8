package ssf_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"sort"
	"strings"
	"testing"
)

// exported returns the exported package-level names (consts, vars, funcs,
// types) and the exported methods of exported types declared in the
// non-test files of dir.
func exported(t *testing.T, dir string) (names, methods []string) {
	t.Helper()
	pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if !d.Name.IsExported() {
						continue
					}
					if d.Recv == nil {
						names = append(names, d.Name.Name)
						continue
					}
					rt := d.Recv.List[0].Type
					if s, ok := rt.(*ast.StarExpr); ok {
						rt = s.X
					}
					if id, ok := rt.(*ast.Ident); ok && id.IsExported() {
						methods = append(methods, id.Name+"."+d.Name.Name)
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.TypeSpec:
							if s.Name.IsExported() {
								names = append(names, s.Name.Name)
							}
						case *ast.ValueSpec:
							for _, n := range s.Names {
								if n.IsExported() {
									names = append(names, n.Name)
								}
							}
						}
					}
				}
			}
		}
	}
	sort.Strings(names)
	sort.Strings(methods)
	return names, methods
}

// TestAPIWidth guards issue 17 step 4: the former revocation/ssf (161
// exported package-level names and 33 methods before the split) is three
// packages whose package-level names sum to at most half of that. A new
// exported name must push an old one out, or raise the budget here with a
// reason. Run with -v to see the names.
func TestAPIWidth(t *testing.T) {
	const budget = 93
	total, totalMethods := 0, 0
	for _, dir := range []string{".", "receiver", "stream"} {
		names, methods := exported(t, dir)
		t.Logf("%s: %d names, %d methods: %s | %s", dir, len(names), len(methods),
			strings.Join(names, " "), strings.Join(methods, " "))
		total += len(names)
		totalMethods += len(methods)
	}
	t.Logf("total: %d package-level names (budget %d), %d methods", total, budget, totalMethods)
	if total > budget {
		t.Errorf("revocation/ssf, ssf/receiver and ssf/stream export %d package-level names, more than the budget of %d", total, budget)
	}
}
