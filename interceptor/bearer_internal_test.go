package interceptor

import (
	"strings"
	"testing"
)

// TestBearerSchemeFold: bearerToken's ASCII case folding of the scheme
// agrees with strings.EqualFold on every value that differs from "bearer"
// in one byte, and on every case mix of it.
func TestBearerSchemeFold(t *testing.T) {
	const scheme = "bearer"
	check := func(s string) {
		t.Helper()
		_, got := bearerToken(s + " tok")
		if want := strings.EqualFold(s, scheme); got != want {
			t.Errorf("bearerToken(%q + \" tok\"): ok = %v, strings.EqualFold says %v", s, got, want)
		}
	}
	for i := range len(scheme) {
		for c := range 256 {
			b := []byte(scheme)
			b[i] = byte(c)
			check(string(b))
		}
	}
	for mask := range 1 << len(scheme) {
		b := []byte(scheme)
		for i := range b {
			if mask&(1<<i) != 0 {
				b[i] -= 'a' - 'A'
			}
		}
		check(string(b))
	}
}
