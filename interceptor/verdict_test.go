package interceptor_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
)

// lookupCounter is a real Memory store that counts look-ups.
type lookupCounter struct {
	*revocation.Memory
	lookups atomic.Int64
}

func (c *lookupCounter) Lookup(k revocation.Key) (revocation.Event, bool) {
	c.lookups.Add(1)
	return c.Memory.Lookup(k)
}

// TestRevocationVerdictReusedUntilStoreChanges guards issue 16 item 1: every
// call used to look up all of the token's revocation subjects (7 look-ups,
// about a fifth of caekit's per-call cost with a verified-token cache hit).
// Now a token found not revoked is not looked up again until the store
// reports a change (Store.Subscribe): the second call does no look-up, a call
// after an event about someone else looks up again and passes, and a call
// after an event revoking the token is denied.
func TestRevocationVerdictReusedUntilStoreChanges(t *testing.T) {
	st := &lookupCounter{Memory: teststore.Memory(t)}
	e := newEnv(t, envOpt{store: st})
	ctx := withToken(testCtx(t), mint(t, tok{sid: "s-verdict"}))
	if _, err, _, _ := e.callUnary(ctx); err != nil {
		t.Fatal(err)
	}
	first := st.lookups.Load()
	if first == 0 {
		t.Fatal("first call did no look-up")
	}
	if _, err, _, _ := e.callUnary(ctx); err != nil {
		t.Fatal(err)
	}
	if n := st.lookups.Load() - first; n != 0 {
		t.Fatalf("second call with the same token and an unchanged store did %d look-ups, want 0", n)
	}
	putSession(t, st, "s-someone-else", revocation.TypeSessionRevoked)
	before := st.lookups.Load()
	if _, err, _, _ := e.callUnary(ctx); err != nil {
		t.Fatalf("after an event about another session: %v", err)
	}
	if st.lookups.Load() == before {
		t.Fatal("no look-up after the store changed")
	}
	putSession(t, st, "s-verdict", revocation.TypeSessionRevoked)
	if _, err, _, _ := e.callUnary(ctx); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("after the token's session was revoked: %v, want Unauthenticated", err)
	}
}

// sameClaimsValidator returns one Claims value for every token, rewriting
// it: a custom Validator the verdict cache must not trust.
type sameClaimsValidator struct {
	mu sync.Mutex
	c  interceptor.Claims
	v  interceptor.Validator
}

func (s *sameClaimsValidator) Validate(ctx context.Context, raw string) (*interceptor.Claims, error) {
	c, err := s.v.Validate(ctx, raw)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c = *c
	return &s.c, nil
}

// TestVerdictCacheOnlyWithTokenValidator guards the verdict cache's key: it
// is the *Claims pointer, which only token.Validator promises is one
// immutable value per token. A custom Validator that reuses one Claims
// value must not let a revoked token ride on another token's verdict.
func TestVerdictCacheOnlyWithTokenValidator(t *testing.T) {
	st := &lookupCounter{Memory: teststore.Memory(t)}
	e := newEnv(t, envOpt{store: st, validator: &sameClaimsValidator{v: newValidator(t)}})
	ok := withToken(testCtx(t), mint(t, tok{sid: "s-good"}))
	bad := withToken(testCtx(t), mint(t, tok{sid: "s-bad"}))
	putSession(t, st, "s-bad", revocation.TypeSessionRevoked)
	if _, err, _, _ := e.callUnary(ok); err != nil {
		t.Fatal(err)
	}
	if _, err, _, _ := e.callUnary(bad); statusCode(err) != codes.Unauthenticated {
		t.Fatalf("revoked token through a Claims-reusing validator: %v, want Unauthenticated", err)
	}
}
