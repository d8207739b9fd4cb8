package ssf

import "testing"

// FuzzParseSubject fuzzes subject identifier parsing and the default mapping
// onto revocation keys: no panic, and every key produced is valid.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{
		`{"format":"opaque","id":"x"}`, `{"format":"email","email":"a@b"}`, `{"format":"iss_sub","iss":"i","sub":"s"}`,
		`{"format":"complex","user":{"format":"opaque","id":"u"},"session":{"format":"opaque","id":"s"}}`,
		`{"format":"aliases","identifiers":[{"format":"email","email":"a@b"},{"format":"aliases","identifiers":[]}]}`,
		`{"subject_type":"ip-addresses","ip-addresses":["::1"]}`, `{"format":"jwt_id","iss":"i","jti":"j"}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	set := &SET{Issuer: "https://tr.test", EventType: CAEPSessionRevoked}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseSubject(raw)
		if err != nil || s == nil {
			return
		}
		_ = s.String()
		keys, err := DefaultMapper{}.MapSubject(set, s)
		if err != nil {
			return
		}
		for _, k := range keys {
			_ = k.String()
		}
	})
}
