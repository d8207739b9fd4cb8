package interceptor_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/internal/testkit/teststore"
)

// nowRecorder is a Validator with ValidateNow: it records the time it is
// given and accepts every token.
type nowRecorder struct {
	plain bool // Validate was called
	now   time.Time
}

func (n *nowRecorder) Validate(context.Context, string) (*interceptor.Claims, error) {
	n.plain = true
	return &interceptor.Claims{Subject: "alice"}, nil
}

func (n *nowRecorder) ValidateNow(_ context.Context, _ string, now time.Time) (*interceptor.Claims, error) {
	n.now = now
	return &interceptor.Claims{Subject: "alice"}, nil
}

// TestOneClockReadPerCall: a Validator with ValidateNow gets the time read
// when the call arrived, the one the checks see as check.Request.Now.
func TestOneClockReadPerCall(t *testing.T) {
	v := &nowRecorder{}
	var seen time.Time
	s, err := interceptor.New(v, interceptor.WithStore(teststore.Memory(t)),
		interceptor.WithChecks(check.CheckFunc(func(_ context.Context, r *check.Request) *check.Denial {
			seen = r.Now
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer tok"))
	before := time.Now()
	if _, err := s.UnaryServerInterceptor()(ctx, "req", benchInfo, benchHandler); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if v.plain || v.now.Before(before) || v.now.After(after) || !seen.Equal(v.now) {
		t.Fatalf("Validate called: %v; ValidateNow at %v, Request.Now %v, call between %v and %v", v.plain, v.now, seen, before, after)
	}
}
