package challenge

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The exact strings from the protocol reference.
const (
	entraHeader = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0="`
	entraClaims = `{"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}`
	acrsClaims  = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	authURI     = "https://login.microsoftonline.com/common/oauth2/authorize"
)

func TestParseHeaderTable(t *testing.T) {
	acrsB64 := base64.StdEncoding.EncodeToString([]byte(acrsClaims))
	tests := []struct {
		name   string
		values []string
		want   []AuthChallenge
	}{
		{
			name:   "entra",
			values: []string{entraHeader},
			want: []AuthChallenge{{Scheme: "Bearer", Params: []Param{
				{"realm", ""}, {"authorization_uri", authURI}, {"error", "insufficient_claims"},
				{"claims", "eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0="},
			}}},
		},
		{
			name:   "pop then bearer",
			values: []string{`PoP realm="x", nonce="y", Bearer realm="", authorization_uri="` + authURI + `", error="insufficient_claims", claims="` + acrsB64 + `"`},
			want: []AuthChallenge{
				{Scheme: "PoP", Params: []Param{{"realm", "x"}, {"nonce", "y"}}},
				{Scheme: "Bearer", Params: []Param{{"realm", ""}, {"authorization_uri", authURI}, {"error", "insufficient_claims"}, {"claims", acrsB64}}},
			},
		},
		{
			name:   "token68 and bare scheme",
			values: []string{`Negotiate abc+/de==, Basic, Bearer error=invalid_token`},
			want: []AuthChallenge{
				{Scheme: "Negotiate", Token68: "abc+/de=="},
				{Scheme: "Basic"},
				{Scheme: "Bearer", Params: []Param{{"error", "invalid_token"}}},
			},
		},
		{
			name:   "escapes, BWS, tabs and empty list elements",
			values: []string{` ,, Bearer  realm = "a \"q\" \\ b" ,	error="insufficient_claims" , `},
			want:   []AuthChallenge{{Scheme: "Bearer", Params: []Param{{"realm", `a "q" \ b`}, {"error", "insufficient_claims"}}}},
		},
		{
			name:   "several metadata values",
			values: []string{`Basic realm="r"`, `Bearer error="invalid_token"`},
			want: []AuthChallenge{
				{Scheme: "Basic", Params: []Param{{"realm", "r"}}},
				{Scheme: "Bearer", Params: []Param{{"error", "invalid_token"}}},
			},
		},
		{
			name:   "unquoted base64 value",
			values: []string{`Bearer claims=` + acrsB64 + `, error=insufficient_claims`},
			want:   []AuthChallenge{{Scheme: "Bearer", Params: []Param{{"claims", acrsB64}, {"error", "insufficient_claims"}}}},
		},
		{name: "empty", values: []string{""}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHeader(tt.values...)
			if err != nil {
				t.Fatalf("ParseHeader: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseHeaderErrors(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"unterminated", `Bearer realm="abc`, "not terminated"},
		{"lone backslash", `Bearer realm="abc\`, "lone backslash"},
		{"control char", "Bearer realm=\"a\x01\"", "control character"},
		{"duplicate", `Bearer error="a", ERROR="b"`, `duplicate parameter "ERROR"`},
		{"missing equals", `Bearer realm="a", claims`, ""}, // "claims" is read as a new scheme: fine
		{"garbage after value", `Bearer realm="a" error="b"`, "expected ','"},
		{"no scheme", `="x"`, "expected an auth-scheme"},
		{"too long", "Bearer realm=\"" + strings.Repeat("a", MaxHeaderLen) + "\"", "limit"},
		{"too many params", "Bearer " + manyParams(MaxParams+1), "more than"},
		{"too many challenges", strings.Repeat("Basic, ", MaxChallenges+1), "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHeader(tt.value)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("p")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString(`="v"`)
	}
	return b.String()
}

func TestParse(t *testing.T) {
	acrsB64 := base64.StdEncoding.EncodeToString([]byte(acrsClaims))
	t.Run("entra", func(t *testing.T) {
		c, err := Parse(entraHeader)
		if err != nil {
			t.Fatal(err)
		}
		want := &Challenge{Scheme: "Bearer", Realm: "", AuthorizationURI: authURI, Error: ErrorInsufficientClaims, Claims: entraClaims}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("got %+v want %+v", c, want)
		}
		if !c.InsufficientClaims() {
			t.Fatal("InsufficientClaims() = false")
		}
	})
	t.Run("authcontext with extra params, mixed case, any order", func(t *testing.T) {
		h := `bEaReR CLAIMS="` + acrsB64 + `", cc_type="authcontext", Error="insufficient_claims", client_id="api://x", errorDescription="step up", authorization_uri="` + authURI + `"`
		c, err := Parse(`PoP realm="x", nonce="y", ` + h)
		if err != nil {
			t.Fatal(err)
		}
		if c.Claims != acrsClaims || c.Error != ErrorInsufficientClaims || c.Description != "step up" || c.AuthorizationURI != authURI {
			t.Fatalf("got %+v", c)
		}
		wantParams := []Param{{"cc_type", "authcontext"}, {"client_id", "api://x"}}
		if !reflect.DeepEqual(c.Params, wantParams) {
			t.Fatalf("params %v want %v", c.Params, wantParams)
		}
	})
	t.Run("prefers bearer with error", func(t *testing.T) {
		c, err := Parse(`Bearer realm="a"`, `Bearer realm="b", error="invalid_token"`)
		if err != nil {
			t.Fatal(err)
		}
		if c.Realm != "b" || c.InsufficientClaims() {
			t.Fatalf("got %+v", c)
		}
	})
	t.Run("no bearer", func(t *testing.T) {
		_, err := Parse(`Basic realm="x"`)
		if !errors.Is(err, ErrNoChallenge) {
			t.Fatalf("err = %v, want ErrNoChallenge", err)
		}
	})
	t.Run("bad claims", func(t *testing.T) {
		_, err := Parse(`Bearer error="insufficient_claims", claims="!!!notbase64"`)
		if err == nil || !strings.Contains(err.Error(), "neither a JSON object nor base64") {
			t.Fatalf("err = %v", err)
		}
		_, err = Parse(`Bearer error="insufficient_claims", claims="` + base64.StdEncoding.EncodeToString([]byte("hello")) + `"`)
		if err == nil || !strings.Contains(err.Error(), "not a JSON object") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDecodeClaims(t *testing.T) {
	raw := `{"access_token":{"acrs":{"essential":true,"value":"c2"}},"x":"?>?~"}`
	for name, in := range map[string]string{
		"std padded":   base64.StdEncoding.EncodeToString([]byte(raw)),
		"std unpadded": base64.RawStdEncoding.EncodeToString([]byte(raw)),
		"url padded":   base64.URLEncoding.EncodeToString([]byte(raw)),
		"url unpadded": base64.RawURLEncoding.EncodeToString([]byte(raw)),
		"raw json":     raw,
		"spaces":       "  " + base64.StdEncoding.EncodeToString([]byte(raw)) + " ",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeClaims(in)
			if err != nil {
				t.Fatal(err)
			}
			if got != raw {
				t.Fatalf("got %q want %q", got, raw)
			}
		})
	}
	if got, err := DecodeClaims(""); got != "" || err != nil {
		t.Fatalf("empty: %q %v", got, err)
	}
	for name, in := range map[string]string{
		"array":     base64.StdEncoding.EncodeToString([]byte(`[1]`)),
		"broken":    `{"a":`,
		"not b64":   "***",
		"too large": base64.StdEncoding.EncodeToString([]byte(`{"a":"` + strings.Repeat("x", MaxClaimsLen) + `"}`)),
	} {
		t.Run("bad "+name, func(t *testing.T) {
			if _, err := DecodeClaims(in); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(entraHeader)
	f.Add(`PoP realm="x", nonce="y", ` + entraHeader)
	f.Add(`Negotiate abc+/de==, Basic, Bearer error=invalid_token`)
	f.Add(`Bearer realm="a \"q\" \\ b", error=insufficient_claims, claims={"access_token":{}}`)
	f.Add(`Bearer realm="`)
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseHeader(s)
		if err != nil {
			return
		}
		for _, c := range cs {
			if c.Scheme == "" {
				t.Fatalf("empty scheme from %q", s)
			}
			if c.Token68 != "" && len(c.Params) > 0 {
				t.Fatalf("token68 and params from %q", s)
			}
		}
		if c, err := Parse(s); err == nil && c.Claims != "" {
			if err := checkJSONObject([]byte(c.Claims)); err != nil {
				t.Fatalf("Parse returned non-object claims %q", c.Claims)
			}
		}
	})
}
