package challenge_test

import (
	"testing"

	"github.com/caekit/caekit/interceptor/challenge"
)

// TestResourceMetadataParam guards the RFC 9728 §5.1 parameter: Header
// writes resource_metadata as a quoted-string (quotes and backslashes
// escaped), and Parse reads it back, whatever the case of its name.
func TestResourceMetadataParam(t *testing.T) {
	const u = `https://api.example/.well-known/oauth-protected-resource/a"b\c`
	c := &challenge.Challenge{
		Claims: `{"access_token":{"nbf":{"essential":true,"value":"1"}}}`,
		Params: []challenge.Param{{Name: challenge.ParamResourceMetadata, Value: u}},
	}
	h := c.Header()
	want := `resource_metadata="https://api.example/.well-known/oauth-protected-resource/a\"b\\c"`
	if len(h) < len(want) || h[len(h)-len(want):] != want {
		t.Fatalf("Header() = %s, want it to end with %s", h, want)
	}
	got, err := challenge.Parse(h)
	if err != nil || got.ResourceMetadata() != u || !got.InsufficientClaims() {
		t.Fatalf("Parse: %v, resource_metadata %q", err, got.ResourceMetadata())
	}
	// An MCP-style challenge: Bearer with resource_metadata only (RFC 9728 §5.1's example form).
	got, err = challenge.Parse(`Bearer Resource_Metadata="https://api.example/.well-known/oauth-protected-resource"`)
	if err != nil || got.ResourceMetadata() != "https://api.example/.well-known/oauth-protected-resource" {
		t.Fatalf("Parse bare: %v, %q", err, got)
	}
	if (&challenge.Challenge{}).ResourceMetadata() != "" {
		t.Fatal("no parameter: want empty")
	}
}
