package challenge

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMergeClaims(t *testing.T) {
	tests := []struct {
		name, claims string
		caps         []string
		want         string
	}{
		{"reference example", `{"access_token":{"acrs":{"essential":true,"value":"c25"}}}`, []string{"cp1"},
			`{"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c25"}}}`},
		{"capabilities only", "", []string{"cp1"}, `{"access_token":{"xms_cc":{"values":["cp1"]}}}`},
		{"challenge only, compacted", "{ \"access_token\" : {\"nbf\":{\"essential\":true, \"value\":\"1604106651\"}} }", nil,
			`{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}`},
		{"neither", "", nil, ""},
		{"dedupe and drop empty caps", "", []string{"cp1", "", "CP1", "cp2"}, `{"access_token":{"xms_cc":{"values":["cp1","cp2"]}}}`},
		{"other top-level keys kept in order", `{"id_token":{"auth_time":{"essential":true}},"access_token":{"nbf":{"essential":true,"value":"1"}}}`, []string{"cp1"},
			`{"id_token":{"auth_time":{"essential":true}},"access_token":{"xms_cc":{"values":["cp1"]},"nbf":{"essential":true,"value":"1"}}}`},
		{"no access_token in challenge", `{"id_token":{"acr":null}}`, []string{"cp1"},
			`{"access_token":{"xms_cc":{"values":["cp1"]}},"id_token":{"acr":null}}`},
		{"same xms_cc is no conflict", `{"access_token":{"xms_cc":{"values":["CP1"]}}}`, []string{"cp1"},
			`{"access_token":{"xms_cc":{"values":["CP1"]}}}`},
		{"html chars not escaped", `{"access_token":{"x":{"value":"<&>"}}}`, []string{"cp1"},
			`{"access_token":{"xms_cc":{"values":["cp1"]},"x":{"value":"<&>"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeClaims(tt.claims, tt.caps...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestMergeClaimsErrors(t *testing.T) {
	tests := []struct{ name, claims, want string }{
		{"conflict names key", `{"access_token":{"xms_cc":{"values":["cp2"]}}}`, `"access_token.xms_cc"`},
		{"not json", `hello`, "not JSON"},
		{"array", `[1,2]`, "not a JSON object"},
		{"access_token not object", `{"access_token":"x"}`, `key "access_token": not a JSON object`},
		{"duplicate top key", `{"access_token":{},"access_token":{}}`, `key "access_token" appears twice`},
		{"duplicate inner key", `{"access_token":{"nbf":1,"nbf":2}}`, `key "access_token.nbf" appears twice`},
		{"trailing data", `{"access_token":{}} {}`, "data after"},
		{"truncated", `{"access_token":{"nbf":`, "not JSON"},
		{"too large", `{"a":"` + strings.Repeat("x", MaxClaimsLen) + `"}`, "limit"},
		// FuzzMergeClaims found both: a merge whose result exceeded the
		// bound (so the result could not be merged again), and capability
		// bytes that JSON encoding silently turned into U+FFFD.
		{"result too large", `{"a":"` + strings.Repeat("x", MaxClaimsLen-20) + `"}`, "merged claims are"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MergeClaims(tt.claims, "cp1")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %s", err, tt.want)
			}
		})
	}
	if _, err := MergeClaims(`{"access_token":{}}`, "cp\xff"); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("capability with invalid UTF-8: err = %v", err)
	}
}

func FuzzMergeClaims(f *testing.F) {
	f.Add(`{"access_token":{"acrs":{"essential":true,"value":"c25"}}}`, "cp1")
	f.Add(`{"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}`, "cp1")
	f.Add(``, "cp1")
	f.Add(`{"access_token":{"xms_cc":{"values":["cp2"]}}}`, "cp1")
	f.Add(`{"id_token":{}}`, "")
	f.Fuzz(func(t *testing.T, claims, capability string) {
		got, err := MergeClaims(claims, capability)
		if err != nil || got == "" {
			return
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(got), &v); err != nil {
			t.Fatalf("merge of %q produced invalid JSON %q: %v", claims, got, err)
		}
		if strings.TrimSpace(capability) != "" {
			at, ok := v["access_token"].(map[string]any)
			if !ok || at["xms_cc"] == nil {
				t.Fatalf("merge of %q lost xms_cc: %s", claims, got)
			}
		}
		// Merging again is stable.
		again, err := MergeClaims(got, capability)
		if err != nil || again != got {
			t.Fatalf("merge not idempotent: %q -> %q (%v)", got, again, err)
		}
	})
}
