package interceptor_test

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeSecurityNotes guards issue 13 item 14: the README's security
// notes said the Redis store's default staleness policy keeps enforcing the
// last known state, while the code's default (redisstore options.go) is
// FailClosed. It also checks that the notes name the rules of issue 13 items
// 2, 7, 10, 12 and 13.
func TestReadmeSecurityNotes(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "## Security notes")
	if i < 0 {
		t.Fatal("README has no Security notes section")
	}
	notes := readme[i:]
	if j := strings.Index(notes[3:], "\n## "); j >= 0 {
		notes = notes[:j+3]
	}
	if strings.Contains(notes, "default staleness policy keeps") {
		t.Error("security notes still say the Redis store's default keeps the last known state; the default is FailClosed")
	}
	for _, want := range []string{
		"default staleness policy is\n  `FailClosed`",
		"trusted proxy that sends no header",
		"Policy reloads reach open streams",
		"MaxSendFenceWait",
		"DefaultChallengeAnswerWindow",
		"Bounded metrics",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("security notes lack %q", want)
		}
	}
}
