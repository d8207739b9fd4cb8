package interceptor_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// TestAdmitUnwatched guards the transport-neutral hook on its own: an
// unwatched admission carries the claims and has nothing to end; a refusal
// is a *DenialError that status.FromError reads as the very status (with
// the same challenge) the gRPC interceptors send.
func TestAdmitUnwatched(t *testing.T) {
	e := newEnv(t, envOpt{})
	tok := mint(t, tok{sub: "zoe"})
	a, err := e.srv.Admit(context.Background(), interceptor.Call{Method: "GET /x", Authorization: []string{"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := interceptor.ClaimsFromContext(a.Context()); !ok || c.Subject != "zoe" || a.Claims() != c {
		t.Fatalf("claims %v %v", c, ok)
	}
	if a.Cut() != nil || a.Recheck() != nil || a.End() != nil {
		t.Fatal("an unwatched admission reports a cut")
	}

	_, err = e.srv.Admit(context.Background(), interceptor.Call{Method: "GET /x"})
	var d *interceptor.DenialError
	if !errors.As(err, &d) || d.Code() != codes.Unauthenticated || d.MidStream() {
		t.Fatalf("no token: %v", err)
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unauthenticated || len(st.Details()) != 2 {
		t.Fatalf("status %v", st)
	}
	p, ok := st.Details()[0].(*caev1.ClaimsChallenge)
	if !ok || p.GetWwwAuthenticate() != d.Challenge() {
		t.Fatalf("detail %v, want www_authenticate %q", st.Details()[0], d.Challenge())
	}
	if ch, err := challenge.Parse(d.Challenge()); err != nil || ch.Error != challenge.ErrorInvalidToken {
		t.Fatalf("challenge %q: %v", d.Challenge(), err)
	}
}

// TestCloseReturnsNil guards Close's new signature: nil, also when called
// again.
func TestCloseReturnsNil(t *testing.T) {
	s, err := interceptor.New(newValidator(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
