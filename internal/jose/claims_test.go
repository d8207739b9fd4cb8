package jose_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/jose"
)

// both decodes a payload into the two map kinds the claim readers serve,
// so that each case below checks that access tokens (map[string]any) and
// SETs and logout tokens (map[string]json.RawMessage) get one rule.
func both(t *testing.T, payload string) (map[string]any, map[string]json.RawMessage) {
	t.Helper()
	var a map[string]any
	var r map[string]json.RawMessage
	if err := json.Unmarshal([]byte(payload), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(payload), &r); err != nil {
		t.Fatal(err)
	}
	return a, r
}

// TestClaimReaders guards the one claim rule of issue 17 step 1: absent is
// absent; null and every other wrong type is an error naming the claim;
// NumericDate lies in [0, 2^33]; aud is a string or an array of strings.
func TestClaimReaders(t *testing.T) {
	a, r := both(t, `{"s":"x","e":"a\"b","n":null,"num":7,"arr":["p","q"],"one":"p","empty":[],"mixed":["p",1],
		"t":1700000000.5,"neg":-1,"big":8589934593,"ts":"1700000000"}`)

	for _, m := range []func(string) (string, bool, error){
		func(n string) (string, bool, error) { return jose.ClaimString(a, n) },
		func(n string) (string, bool, error) { return jose.ClaimString(r, n) },
	} {
		if s, ok, err := m("s"); s != "x" || !ok || err != nil {
			t.Errorf("s = %q %v %v", s, ok, err)
		}
		if s, ok, err := m("e"); s != `a"b` || !ok || err != nil {
			t.Errorf("escaped = %q %v %v", s, ok, err)
		}
		if _, ok, err := m("absent"); ok || err != nil {
			t.Errorf("absent = %v %v", ok, err)
		}
		for name, want := range map[string]string{"n": "not null", "num": "not a number", "arr": "not an array"} {
			if _, _, err := m(name); err == nil || !strings.Contains(err.Error(), "claim "+name+" must be a string, "+want) {
				t.Errorf("%s: err = %v, want %q", name, err, want)
			}
		}
	}

	for _, m := range []func(string) ([]string, bool, error){
		func(n string) ([]string, bool, error) { return jose.ClaimStrings(a, n) },
		func(n string) ([]string, bool, error) { return jose.ClaimStrings(r, n) },
	} {
		if v, ok, err := m("arr"); len(v) != 2 || v[1] != "q" || !ok || err != nil {
			t.Errorf("arr = %q %v %v", v, ok, err)
		}
		if v, ok, err := m("one"); len(v) != 1 || v[0] != "p" || !ok || err != nil {
			t.Errorf("one = %q %v %v", v, ok, err)
		}
		if v, ok, err := m("empty"); v == nil || len(v) != 0 || !ok || err != nil {
			t.Errorf("empty = %#v %v %v", v, ok, err)
		}
		if v, ok, err := m("absent"); v != nil || ok || err != nil {
			t.Errorf("absent = %q %v %v", v, ok, err)
		}
		for name, want := range map[string]string{"n": "must be a string or an array of strings, not null", "num": "not a number", "mixed": "must hold strings, not a number"} {
			if _, _, err := m(name); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: err = %v, want %q", name, err, want)
			}
		}
	}

	for _, m := range []func(string) (time.Time, bool, error){
		func(n string) (time.Time, bool, error) { return jose.ClaimTime(a, n) },
		func(n string) (time.Time, bool, error) { return jose.ClaimTime(r, n) },
	} {
		if v, ok, err := m("t"); !ok || err != nil || v.Unix() != 1700000000 || v.Nanosecond() != 5e8 || v.Location() != time.UTC { //datelint:ok parsed NumericDate, no clock
			t.Errorf("t = %v %v %v", v, ok, err)
		}
		if _, ok, err := m("absent"); ok || err != nil {
			t.Errorf("absent = %v %v", ok, err)
		}
		for name, want := range map[string]string{"n": "not null", "ts": "not a string", "neg": "out of range", "big": "out of range"} {
			if _, _, err := m(name); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: err = %v, want %q", name, err, want)
			}
		}
	}
}

// TestHash guards the kit's one token hash (issue 17 step 1): 12 hex
// digits of SHA-256, the same for a string and its bytes, and the three
// exported names (token.Hash, the deprecated client.TokenHash and ssf.Hash,
// left out here because revocation/ssf is being split) are that one
// function, so log lines of the server, the client and the SET
// receiver correlate.
func TestHash(t *testing.T) {
	// SHA-256("abc") = ba7816bf8f01cfea..., FIPS 180-2 appendix B.1.
	if h := jose.Hash("abc"); h != "ba7816bf8f01" || jose.Hash([]byte("abc")) != h {
		t.Fatalf("Hash = %q", h)
	}
	if token.Hash("abc") != "ba7816bf8f01" || client.TokenHash("abc") != "ba7816bf8f01" { //nolint:staticcheck // the deprecated names are what is tested
		t.Fatal("token.Hash or client.TokenHash differs from jose.Hash")
	}
}
