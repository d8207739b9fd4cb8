package check_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/interceptor/token"
)

// TestCheckFuncPassesThrough guards the adapter: CheckFunc.Check must call
// the function with the same context and request and return its result
// unchanged (a nil denial allows, a non-nil one is the function's).
func TestCheckFuncPassesThrough(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	want := &check.Denial{Code: codes.PermissionDenied, Params: []challenge.Param{{Name: "cc_type", Value: "authcontext"}}}
	req := &check.Request{FullMethod: "/a.B/C", Claims: &token.Claims{Subject: "s"}}
	var got *check.Request
	f := check.CheckFunc(func(c context.Context, r *check.Request) *check.Denial {
		got = r
		if c.Value(key{}) != "v" {
			t.Error("CheckFunc did not pass the caller's context")
		}
		if r.Claims.Subject == "deny" {
			return want
		}
		return nil
	})
	var c check.Check = f
	if d := c.Check(ctx, req); d != nil {
		t.Fatalf("allow path: got denial %+v", d)
	}
	if got != req {
		t.Fatal("CheckFunc did not pass the request it was given")
	}
	req.Claims.Subject = "deny"
	if d := c.Check(ctx, req); d != want {
		t.Fatalf("deny path: got %+v, want %+v", d, want)
	}
}

func ExampleCheckFunc() {
	tenantOnly := check.CheckFunc(func(_ context.Context, r *check.Request) *check.Denial {
		if r.Claims.TenantID != "contoso" {
			return &check.Denial{Code: codes.PermissionDenied, Description: "tenant " + r.Claims.TenantID + " is not allowed"}
		}
		return nil
	})
	d := tenantOnly.Check(context.Background(), &check.Request{Claims: &token.Claims{TenantID: "fabrikam"}})
	fmt.Println(d.Code, d.Description)
	// Output: PermissionDenied tenant fabrikam is not allowed
}
