package client_test

import (
	"context"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// keepDetails rewrites a denial to carry only the details keep accepts.
func keepDetails(keep func(any) bool) func(context.Context, func() error) error {
	return func(_ context.Context, call func() error) error {
		err := call()
		st, ok := status.FromError(err)
		if !ok || st.Code() != codes.Unauthenticated {
			return err
		}
		ns := status.New(st.Code(), st.Message())
		var ds []protoadapt.MessageV1
		for _, d := range st.Details() {
			if keep(d) {
				ds = append(ds, d.(protoadapt.MessageV1))
			}
		}
		if len(ds) > 0 {
			ns, _ = ns.WithDetails(ds...)
		}
		return ns.Err()
	}
}

func TestChallengeDeliveryFallbacks(t *testing.T) {
	tests := map[string]func(any) bool{
		"ErrorInfo only":        func(d any) bool { _, ok := d.(*errdetails.ErrorInfo); return ok },
		"www-authenticate only": func(any) bool { return false },
		"ClaimsChallenge only":  func(d any) bool { _, ok := d.(*caev1.ClaimsChallenge); return ok },
	}
	for name, keep := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envConfig{wrap: keepDetails(keep)})
			if err := e.get(); err != nil {
				t.Fatal(err)
			}
			e.revoke()
			if err := e.get(); err != nil {
				t.Fatalf("not recovered: %v", err)
			}
			if e.sends.Load() != 3 || e.idp.Count() != 2 {
				t.Fatalf("sends %d token requests %d", e.sends.Load(), e.idp.Count())
			}
			if c := e.idp.Requests()[1].Claims; len(c) < 60 {
				t.Fatalf("challenge claims not requested: %s", c)
			}
		})
	}
}

func TestMalformedChallengeNotRetried(t *testing.T) {
	bad := []func(ctx context.Context) error{
		func(context.Context) error {
			st, _ := status.New(codes.Unauthenticated, "no").WithDetails(&caev1.ClaimsChallenge{Error: challenge.ErrorInsufficientClaims, Claims: "not json"})
			return st.Err()
		},
		func(ctx context.Context) error {
			_ = grpc.SetHeader(ctx, metadata.Pairs(challenge.MetadataKey, `Bearer error="insufficient_claims", claims="`))
			return status.Error(codes.Unauthenticated, "no")
		},
		func(ctx context.Context) error {
			_ = grpc.SetHeader(ctx, metadata.Pairs(challenge.MetadataKey, `Bearer error="insufficient_claims", claims="aGVsbG8="`))
			return status.Error(codes.Unauthenticated, "no")
		},
	}
	for i, f := range bad {
		e := newEnv(t, envConfig{wrap: func(ctx context.Context, _ func() error) error { return f(ctx) }})
		err := e.get()
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("%d: err = %v", i, err)
		}
		if e.sends.Load() != 1 || e.idp.Count() != 1 {
			t.Fatalf("%d: sends %d token requests %d, want no retry", i, e.sends.Load(), e.idp.Count())
		}
		if e.obs.count(client.EventMalformedChallenge) != 1 {
			t.Fatalf("%d: malformed events %d", i, e.obs.count(client.EventMalformedChallenge))
		}
	}
}
