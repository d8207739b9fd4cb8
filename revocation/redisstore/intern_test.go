package redisstore

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/caekit/caekit/revocation"
)

// within reports whether sub's bytes lie inside s's.
func within(sub, s string) bool {
	if len(sub) == 0 {
		return false
	}
	p, b := uintptr(unsafe.Pointer(unsafe.StringData(sub))), uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return p >= b && p < b+uintptr(len(s))
}

// TestDecodeDoesNotKeepTheValue guards the mirror's memory per entry
// (BenchmarkMirrorBytes, issue 16 item 3): decode used to slice scope, id and
// event id out of the Redis value, so every mirrored entry kept the whole
// value alive, header included. Now no decoded string points into the value,
// and the scopes of two events of one tenant share their bytes.
func TestDecodeDoesNotKeepTheValue(t *testing.T) {
	mk := func(i int) string {
		return encode(revocation.Event{
			ID:      fmt.Sprintf("jti-%018d", i),
			Type:    revocation.TypeUserDisabled,
			Subject: revocation.ObjectKey("0b1e9b3c-7d43-4d0a-9f3e-decode0test0"[:36], fmt.Sprintf("4a6e1b2c-1d2e-4f5a-8b9c-%012d", i)),
			Time:    time.Unix(1_700_000_000, 0), //datelint:ok encoding data; no store sees it
		})
	}
	v1, v2 := mk(1), mk(2)
	e1, err := decode(v1)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := decode(v2)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"scope": e1.Subject.Scope, "id": e1.Subject.ID, "event id": e1.ID} {
		if within(s, v1) {
			t.Errorf("decoded %s points into the Redis value: the entry keeps the whole value alive", name)
		}
	}
	if unsafe.StringData(e1.Subject.Scope) != unsafe.StringData(e2.Subject.Scope) {
		t.Error("two events of one tenant hold separate copies of its id (scope not interned)")
	}
}

// TestInternIsBounded: a flood of distinct scopes does not grow the intern
// table past maxInterned; such scopes are copied, still correct.
func TestInternIsBounded(t *testing.T) {
	scopes.mu.Lock()
	saved := scopes.m
	scopes.m = nil
	scopes.mu.Unlock()
	t.Cleanup(func() { scopes.mu.Lock(); scopes.m = saved; scopes.mu.Unlock() })
	for i := 0; i < maxInterned+100; i++ {
		s := fmt.Sprintf("https://issuer-%d.test", i)
		if got := intern(s); got != s {
			t.Fatalf("intern(%q) = %q", s, got)
		}
	}
	scopes.mu.RLock()
	n := len(scopes.m)
	scopes.mu.RUnlock()
	if n > maxInterned {
		t.Fatalf("intern table holds %d scopes, bound is %d", n, maxInterned)
	}
}
