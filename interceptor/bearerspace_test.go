package interceptor_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/internal/testkit/teststore"
)

// acceptAll is a Validator that accepts every token and counts its calls.
type acceptAll struct{ calls int }

func (a *acceptAll) Validate(context.Context, string) (*interceptor.Claims, error) {
	a.calls++
	return &interceptor.Claims{Subject: "alice"}, nil
}

// TestTokenWithInnerSpace: a token with a space or a tab in it is refused
// as not "Bearer <token>", with a *token.Validator (which refuses it itself:
// the interceptor looks for the space only after it did) and with any other
// Validator, which never sees it.
func TestTokenWithInnerSpace(t *testing.T) {
	good := mint(t, tok{})
	values := []string{
		"Bearer " + good[:10] + " " + good[10:],
		"Bearer " + good[:10] + "\t" + good[10:],
		"Bearer " + good + " x",
	}
	custom := &acceptAll{}
	for name, v := range map[string]interceptor.Validator{"token.Validator": newValidator(t), "custom": custom} {
		s, err := interceptor.New(v, interceptor.WithStore(teststore.Memory(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		unary := s.UnaryServerInterceptor()
		for _, val := range values {
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", val))
			_, err := unary(ctx, "req", benchInfo, benchHandler)
			st, _ := status.FromError(err)
			if st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), `authorization metadata is not "Bearer <token>"`) {
				t.Errorf("%s, %q: %v", name, val, err)
			}
		}
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+good))
		if _, err := unary(ctx, "req", benchInfo, benchHandler); err != nil {
			t.Errorf("%s: the token without the space: %v", name, err)
		}
	}
	if custom.calls != 1 {
		t.Errorf("the custom validator was called %d times, want once (for the token without the space)", custom.calls)
	}
}
