package interceptor

import "testing"

// TestVerdictCacheBounded guards the bound of the revocation verdict cache
// (issue 16 item 1): with a validator without a verified-token cache every
// call brings new Claims, and the cache must not grow past maxVerdicts.
func TestVerdictCacheBounded(t *testing.T) {
	var vc verdictCache
	keep := make([]*Claims, 0, 3*maxVerdicts)
	for range 3 * maxVerdicts {
		c := new(Claims)
		keep = append(keep, c)
		vc.remember(c, 1)
		if n := vc.len(); n > maxVerdicts {
			t.Fatalf("verdict cache holds %d entries, bound %d", n, maxVerdicts)
		}
	}
	last := keep[len(keep)-1]
	if !vc.passed(last, 1) || vc.passed(last, 2) {
		t.Fatal("the latest verdict is not found at its generation only")
	}
}
