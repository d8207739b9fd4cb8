package client_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/internal/testkit/testidp"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// requireACR is a server check asking, RFC 9470 style, for acr
// urn:example:mfa on every call.
var requireACR = interceptor.WithChecks(check.CheckFunc(func(_ context.Context, r *check.Request) *check.Denial {
	if r.Claims.ACR == "urn:example:mfa" {
		return nil
	}
	return &check.Denial{Description: "step up", ACRValues: []string{"urn:example:mfa"}}
}))

// TestStepUpStreamReopened: a stream refused at open with an RFC 9470
// challenge is re-opened with a token fetched with acr_values, and its
// buffered messages replayed, like a claims challenge (issue 15 part B).
func TestStepUpStreamReopened(t *testing.T) {
	e := newEnv(t, envConfig{serverOpts: []interceptor.Option{requireACR}})
	st, err := e.api.Chat(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&inboxv1.ChatRequest{Text: "a"}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	m, err := st.Recv()
	if err != nil || m.GetText() != "a" {
		t.Fatalf("Recv: %v %v, want the replayed message's echo", m, err)
	}
	reqs := e.idp.Requests()
	if len(reqs) != 2 || reqs[1].ACRValues != "urn:example:mfa" {
		t.Fatalf("IdP requests %+v, want a step-up with acr_values", reqs)
	}
}

// TestStepUpSourceCannotHonour: a TokenSource that cannot pass acr_values
// fails the fetch; the caller gets the server's challenge (still readable
// with challenge.FromError) joined with the source's error, and no retry is
// made with a token that would ignore the step-up.
func TestStepUpSourceCannotHonour(t *testing.T) {
	errNoACR := errors.New("this source cannot pass acr_values")
	e := newEnv(t, envConfig{
		serverOpts: []interceptor.Option{requireACR},
		src: func(idp *testidp.IdP) client.TokenSource {
			inner := mustSource(idp)
			return client.TokenSourceFunc(func(ctx context.Context, req client.TokenRequest) (*client.Token, error) {
				if req.StepUp() {
					return nil, errNoACR
				}
				return inner.Token(ctx, req)
			})
		},
	})
	err := e.get()
	if status.Code(err) != codes.Unauthenticated || !errors.Is(err, errNoACR) {
		t.Fatalf("err = %v, want Unauthenticated joined with the source's error", err)
	}
	ch, ok := challenge.FromError(err)
	if !ok || !ch.StepUp() || ch.ACRValues[0] != "urn:example:mfa" {
		t.Fatalf("challenge %+v %v", ch, ok)
	}
	if n := e.sends.Load(); n != 1 {
		t.Fatalf("server saw %d calls, want 1 (no retry)", n)
	}
}
