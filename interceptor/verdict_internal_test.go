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

// TestVerdictCacheSet: a set keeps the verdicts of its two most recently
// remembered tokens, each at its own generation; a third evicts the older.
func TestVerdictCacheSet(t *testing.T) {
	var vc verdictCache
	// Three Claims of one set.
	var same []*Claims
	first := new(Claims)
	same = append(same, first)
	for len(same) < 3 {
		if c := new(Claims); &vc.set(c)[0] == &vc.set(first)[0] {
			same = append(same, c)
		}
	}
	a, b, c := same[0], same[1], same[2]
	vc.remember(a, 1)
	vc.remember(b, 2)
	if !vc.passed(a, 1) || !vc.passed(b, 2) || vc.passed(a, 2) || vc.passed(b, 1) || vc.passed(c, 1) {
		t.Fatal("two tokens of a set: wrong verdicts")
	}
	vc.remember(a, 3) // renewed: first again, b second
	if !vc.passed(a, 3) || !vc.passed(b, 2) {
		t.Fatal("a renewal lost a verdict")
	}
	vc.remember(c, 3) // evicts b, the least recently remembered
	if !vc.passed(c, 3) || !vc.passed(a, 3) || vc.passed(b, 2) {
		t.Fatal("a third token did not evict the least recently remembered one")
	}
	if n := vc.len(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}
