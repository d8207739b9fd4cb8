package testclock_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoRawFixedDates guards issue 12 item 1: TestMemorySubscribe,
// TestMemoryConcurrentWriters and ExampleMemory paired time.Date(2026, 11,
// 26, …) with a store on the wall clock and began to fail two days later.
// Every fixed instant in a test must come from testclock (so that the
// CAEKIT_TEST_CLOCK_AHEAD run moves it) or be marked "datelint:ok" as data
// that never meets a clock.
func TestNoRawFixedDates(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var bad []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") || strings.Contains(path, string(filepath.Separator)+"testclock"+string(filepath.Separator)) {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		lines := strings.Split(string(src), "\n")
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "time" {
				return true
			}
			if !fixedInstant(sel.Sel.Name, call.Args[0]) {
				return true
			}
			pos := fset.Position(call.Pos())
			if marked(lines, pos.Line) {
				return true
			}
			rel, _ := filepath.Rel(root, path)
			bad = append(bad, rel+":"+strconv.Itoa(pos.Line)+": "+strings.TrimSpace(lines[pos.Line-1]))
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("fixed instants that bypass testclock (use testclock.Date/Unix and inject a clock, or mark the line \"datelint:ok <why>\" if the value never meets a clock):\n  %s", strings.Join(bad, "\n  "))
	}
}

// fixedInstant reports whether time.<fn>(arg0, …) builds a fixed calendar
// instant: time.Date with a literal year, or time.Unix with a literal of at
// least 10^8 seconds (1973; smaller literals are offsets and encodings).
func fixedInstant(fn string, arg0 ast.Expr) bool {
	lit, ok := arg0.(*ast.BasicLit)
	if !ok {
		return false
	}
	switch fn {
	case "Date":
		return lit.Kind == token.INT
	case "Unix":
		v, err := strconv.ParseFloat(strings.ReplaceAll(lit.Value, "_", ""), 64)
		return err == nil && v >= 1e8
	}
	return false
}

func marked(lines []string, line int) bool {
	for _, l := range []int{line - 1, line - 2} {
		if l >= 0 && l < len(lines) && strings.Contains(lines[l], "datelint:ok") {
			return true
		}
	}
	return false
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}
