package interceptor

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestClaimsCtx: the handler's context (withClaims) answers
// ClaimsFromContext, through contexts derived from it too, defers every
// other value, deadline and cancellation to its parent, and a context
// derived from it is cancelled with its parent, cause included.
func TestClaimsCtx(t *testing.T) {
	type otherKey struct{}
	claims := &Claims{Subject: "alice"}
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), otherKey{}, "v"))
	ctx := withClaims(parent, claims)
	child, stop := context.WithCancel(context.WithValue(ctx, otherKey{}, "w"))
	defer stop()
	for _, c := range []context.Context{ctx, child} {
		if got, ok := ClaimsFromContext(c); !ok || got != claims {
			t.Fatalf("ClaimsFromContext = %v, %v", got, ok)
		}
	}
	if ctx.Value(otherKey{}) != "v" || child.Value(otherKey{}) != "w" {
		t.Fatal("other values not deferred to the parent")
	}
	if _, ok := ClaimsFromContext(parent); ok {
		t.Fatal("the parent has claims")
	}
	if got, want := fmt.Sprint(ctx), fmt.Sprint(parent)+".WithValue(caekit claims)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	type opaque struct{ context.Context }
	if got := fmt.Sprint(withClaims(opaque{context.Background()}, claims)); got != "interceptor.opaque.WithValue(caekit claims)" {
		t.Fatalf("String() of a context without String = %q", got)
	}
	cause := errors.New("cut")
	cancel(cause)
	<-child.Done()
	if ctx.Err() != context.Canceled || context.Cause(child) != cause {
		t.Fatalf("Err %v, child cause %v", ctx.Err(), context.Cause(child))
	}
}
