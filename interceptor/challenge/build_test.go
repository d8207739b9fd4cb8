package challenge_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor/challenge"
)

func TestHeaderEntraForm(t *testing.T) {
	// The example from Microsoft's CAE documentation, byte for byte (their
	// JSON has a space after the comma; the base64 below is of that JSON).
	c := &challenge.Challenge{
		AuthorizationURI: "https://login.microsoftonline.com/common/oauth2/authorize",
		Error:            challenge.ErrorInsufficientClaims,
		Claims:           `{"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}`,
		Description:      "not rendered for insufficient_claims",
	}
	want := `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0="`
	if got := c.Header(); got != want {
		t.Fatalf("Header:\n got %s\nwant %s", got, want)
	}
}

func TestHeaderNotBeforeClaims(t *testing.T) {
	c := &challenge.Challenge{
		AuthorizationURI: "https://login.example/authorize",
		Claims:           challenge.NotBeforeClaims(time.Unix(1604106651, 0)), //datelint:ok Entra's documented challenge value, encoded as data
	}
	want := `Bearer realm="", authorization_uri="https://login.example/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNjA0MTA2NjUxIn19fQ=="`
	if got := c.Header(); got != want {
		t.Fatalf("Header:\n got %s\nwant %s", got, want)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.SplitN(want, `claims="`, 2)[1], `"`))
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}` {
		t.Fatalf("claims decode to %s", raw)
	}
}

func TestHeaderAuthContextParams(t *testing.T) {
	c := &challenge.Challenge{
		AuthorizationURI: "https://login.example/authorize",
		Realm:            "tenant-1",
		Claims:           challenge.AuthContextClaims("c1"),
		Params: []challenge.Param{
			{Name: "client_id", Value: "api://inbox"},
			{Name: "cc_type", Value: "authcontext"},
			{Name: "claims", Value: "duplicate of a standard parameter: skipped"},
			{Name: "bad name", Value: "not a token: skipped"},
		},
	}
	want := `Bearer realm="tenant-1", authorization_uri="https://login.example/authorize", error="insufficient_claims", claims="` +
		base64.StdEncoding.EncodeToString([]byte(`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`)) +
		`", client_id="api://inbox", cc_type="authcontext"`
	if got := c.Header(); got != want {
		t.Fatalf("Header:\n got %s\nwant %s", got, want)
	}
}

func TestHeaderInvalidTokenEscaping(t *testing.T) {
	c := &challenge.Challenge{
		Error:       challenge.ErrorInvalidToken,
		Description: "bad \"token\" \\ here\r\nInjected: yes\tü",
	}
	want := `Bearer realm="", authorization_uri="", error="invalid_token", error_description="bad \"token\" \\ here??Injected: yes ??"`
	if got := c.Header(); got != want {
		t.Fatalf("Header:\n got %s\nwant %s", got, want)
	}
	// Error defaults from the presence of claims.
	if got := (&challenge.Challenge{}).Header(); !strings.Contains(got, `error="invalid_token"`) {
		t.Fatalf("empty challenge: %s", got)
	}
}

func TestHeaderBoundsDescription(t *testing.T) {
	c := &challenge.Challenge{Description: strings.Repeat("x", 1<<20)}
	if n := len(c.Header()); n > 8192 {
		t.Fatalf("header of %d bytes; descriptions must be bounded", n)
	}
}

func TestAuthContextClaimsEscapes(t *testing.T) {
	if got, want := challenge.AuthContextClaims(`c"1`), `{"access_token":{"acrs":{"essential":true,"value":"c\"1"}}}`; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}
