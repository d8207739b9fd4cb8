package quickstart_test

import (
	"os"
	"strings"
	"testing"
	"unicode"
)

// TestReadmeQuickStarts keeps the README's quick starts honest: every Go
// snippet of its "Quick starts" section must appear in quickstart_test.go,
// line by line in order (whitespace aside, other lines allowed between),
// where go vet and go test compile it; each is under 15 lines, and there is
// one per surface.
func TestReadmeQuickStarts(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("quickstart_test.go")
	if err != nil {
		t.Fatal(err)
	}
	section, ok := cutSection(string(readme), "## Quick starts\n")
	if !ok {
		t.Fatal("README has no Quick starts section")
	}
	blocks := goBlocks(section)
	if len(blocks) != 8 {
		t.Fatalf("%d Go snippets in Quick starts, want 8 (gRPC server and client, net/http middleware, RoundTripper, Connect server and client, RFC 9728, RFC 9470)", len(blocks))
	}
	code := strip(string(src))
	for i, b := range blocks {
		lines := strings.Split(strings.TrimSpace(b), "\n")
		if len(lines) >= 15 {
			t.Errorf("snippet %d has %d lines, want under 15", i+1, len(lines))
		}
		at := 0
		for _, l := range lines {
			l = strip(l)
			if l == "" {
				continue
			}
			j := strings.Index(code[at:], l)
			if j < 0 {
				t.Errorf("snippet %d: %q is not in quickstart_test.go (after the snippet's previous lines)", i+1, l)
				break
			}
			at += j + len(l)
		}
	}
}

func cutSection(s, heading string) (string, bool) {
	i := strings.Index(s, heading)
	if i < 0 {
		return "", false
	}
	s = s[i+len(heading):]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s, true
}

func goBlocks(s string) []string {
	var out []string
	for {
		i := strings.Index(s, "```go\n")
		if i < 0 {
			return out
		}
		s = s[i+len("```go\n"):]
		j := strings.Index(s, "```")
		if j < 0 {
			return out
		}
		out = append(out, s[:j])
		s = s[j+3:]
	}
}

func strip(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}
