package interceptor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
)

// FuzzTokenPath drives the unary server interceptor, from incoming metadata
// to decision, with fuzzed authorization values (one, or two when second is
// non-empty). Nothing may panic; a denial is a status error with
// Unauthenticated and never echoes the token; the handler runs only for a
// single "Bearer <token>" value whose token the validator accepts on its own
// and whose subject is not revoked, and it then sees that token's claims.
func FuzzTokenPath(f *testing.F) {
	at := time.Now()
	good := mint(f, tok{sub: "alice", iat: at.Add(-time.Minute), exp: at.Add(24 * time.Hour)})
	revoked := mint(f, tok{sub: "mallory", iat: at.Add(-time.Minute), exp: at.Add(24 * time.Hour)})
	f.Add("Bearer "+good, "")
	f.Add("bearer\t"+good, "")
	f.Add("Bearer "+good, "Bearer "+good)
	f.Add("Bearer "+revoked, "")
	f.Add("Bearer  "+good+" ", "")
	f.Add("Basic "+good, "")
	f.Add("Bearer "+good[:len(good)-4], "")
	f.Add("Bearer eyJhbGciOiJub25lIn0.e30.", "")
	f.Add("Bearer", "")
	f.Add("", "")

	v, err := token.NewValidator(context.Background(), token.WithIssuer(testIssuer), token.WithAudience(testAudience),
		token.WithStaticKey(testKID, &signingKey(f).PublicKey), token.WithLogger(nil))
	if err != nil {
		f.Fatal(err)
	}
	store := teststore.Memory(f)
	if err := store.Put(context.Background(), revocation.Event{ID: "e1", Type: revocation.TypeSessionRevoked,
		Subject: revocation.IssuerSubjectKey(testIssuer, "mallory"), Time: at}); err != nil {
		f.Fatal(err)
	}
	s, err := interceptor.New(v, interceptor.WithStore(store))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close(); _ = v.Close() })
	unary := s.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/caekit.example.inbox.v1.InboxService/GetMessage"}

	f.Fuzz(func(t *testing.T, first, second string) {
		md := metadata.MD{}
		if first != "" || second != "" {
			md["authorization"] = []string{first}
		}
		if second != "" {
			md["authorization"] = append(md["authorization"], second)
		}
		ctx := metadata.NewIncomingContext(context.Background(), md)
		var seen *interceptor.Claims
		called := false
		_, err := unary(ctx, "req", info, func(ctx context.Context, _ any) (any, error) {
			called = true
			seen, _ = interceptor.ClaimsFromContext(ctx)
			return "ok", nil
		})

		// The independent oracle.
		var want *token.Claims
		if vals := md["authorization"]; len(vals) == 1 {
			if raw, ok := bearer(vals[0]); ok {
				if cl, err := v.Validate(context.Background(), raw); err == nil && cl.Subject != "mallory" {
					want = cl
				}
			}
		}
		if called != (err == nil) {
			t.Fatalf("handler called %t but err = %v", called, err)
		}
		if want == nil {
			if called {
				t.Fatalf("allowed %q / %q", first, second)
			}
			st, ok := status.FromError(err)
			if !ok || st.Code() != codes.Unauthenticated {
				t.Fatalf("denial %v, want Unauthenticated", err)
			}
			for _, val := range md["authorization"] {
				raw, _ := bearer(val)
				if len(raw) >= 16 && strings.Contains(st.Message(), raw) {
					t.Fatalf("denial echoes the token: %q", st.Message())
				}
			}
			return
		}
		if !called {
			t.Fatalf("refused a valid token: %v", err)
		}
		if seen == nil || seen.Subject != want.Subject || seen.Hash != want.Hash {
			t.Fatalf("handler saw claims %+v, want %+v", seen, want)
		}
	})
}

// bearer is the test's own reading of an authorization value: the
// case-insensitive "Bearer" scheme, one space or tab, and a token with no
// inner whitespace (surrounding spaces and tabs are trimmed).
func bearer(v string) (string, bool) {
	if len(v) < 7 || !strings.EqualFold(v[:6], "bearer") || (v[6] != ' ' && v[6] != '\t') {
		return "", false
	}
	t := strings.TrimSpace(v[7:])
	if t == "" || strings.ContainsAny(t, " \t") {
		return "", false
	}
	return t, true
}
