package challenge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor/challenge"
)

func TestRequestedNotBefore(t *testing.T) {
	for _, tc := range []struct {
		name, claims string
		want         int64 // 0: no nbf requested
	}{
		{"empty", "", 0},
		{"no access_token", `{"id_token":{"auth_time":{"essential":true}}}`, 0},
		{"no nbf", `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`, 0},
		{"null nbf", `{"access_token":{"nbf":null}}`, 0},
		// Microsoft's CAE documentation example (string value, a space after the comma).
		{"Entra form", `{"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}`, 1604106651},
		{"number value", `{"access_token":{"nbf":{"value":1604106651}}}`, 1604106651},
		{"merged with cp1", `{"access_token":{"xms_cc":{"values":["cp1"]},"nbf":{"essential":true,"value":"1800000001"}}}`, 1800000001},
		{"built by NotBeforeClaims", challenge.NotBeforeClaims(time.Unix(1800000001, 0)), 1800000001}, //datelint:ok encoding data; no clock
	} {
		got, err := challenge.RequestedNotBefore(tc.claims)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if (tc.want == 0) != got.IsZero() || (tc.want != 0 && got.Unix() != tc.want) {
			t.Errorf("%s: got %v, want %d", tc.name, got, tc.want)
		}
	}
}

func TestRequestedNotBeforeErrors(t *testing.T) {
	for _, tc := range []struct{ name, claims, want string }{
		{"not JSON", `{"access_token":`, "not JSON"},
		{"not an object", `[1]`, "not a JSON object"},
		{"duplicate nbf", `{"access_token":{"nbf":{"value":"1"},"nbf":{"value":"2"}}}`, `"access_token.nbf" appears twice`},
		{"nbf not an object", `{"access_token":{"nbf":"1800000000"}}`, "not a JSON object"},
		{"no value", `{"access_token":{"nbf":{"essential":true}}}`, "has no value"},
		{"not a number", `{"access_token":{"nbf":{"value":"soon"}}}`, `value "soon" is not a positive integer`},
		{"fraction", `{"access_token":{"nbf":{"value":1.5}}}`, "not a positive integer"},
		{"zero", `{"access_token":{"nbf":{"value":"0"}}}`, "not a positive integer"},
		{"negative", `{"access_token":{"nbf":{"value":-5}}}`, "not a positive integer"},
		{"beyond 2242", `{"access_token":{"nbf":{"value":"99999999999"}}}`, "not a positive integer"},
		{"too large", `{"a":"` + strings.Repeat("x", challenge.MaxClaimsLen) + `"}`, "limit"},
	} {
		_, err := challenge.RequestedNotBefore(tc.claims)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestStepUpClaims(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`, `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`},
		{`{"access_token":{"nbf":{"essential":true,"value":"1"},"acrs":{"essential":true,"values":["c1","c2"]}}}`, `{"access_token":{"acrs":{"essential":true,"values":["c1","c2"]}}}`},
		{`{"access_token":{"nbf":{"essential":true,"value":"1"}}}`, ""},
		{`{"id_token":{"acrs":{}}}`, ""},
		{`{"access_token":null}`, ""},
		{`{"access_token":{"acrs":1,"acrs":2}}`, ""}, // a repeated key is no claims request
		{`not json`, ""},
		{"", ""},
	} {
		if got := challenge.StepUpClaims(c.in); got != c.want {
			t.Errorf("StepUpClaims(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}
