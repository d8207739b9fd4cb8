package logout_test

import "testing"

// BenchmarkParseLogoutToken measures the validation of one logout token
// (ES256 signature, strict JSON, §2.6 claims), without the HTTP round trip.
func BenchmarkParseLogoutToken(b *testing.B) {
	e := newEnv(b)
	raw := e.idp.sign(b, e.idp.logoutClaims(), map[string]any{"typ": "logout+jwt"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.rcv.ParseLogoutToken(raw); err != nil {
			b.Fatal(err)
		}
	}
}
