package server_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/examples/internal/server"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/policy"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// TestDecisionLogRFC9470Challenge guards the decision log's outcome for an
// RFC 9470 step-up challenge: "challenge", like a claims challenge, not
// "deny" (it had only looked for insufficient_claims).
func TestDecisionLogRFC9470Challenge(t *testing.T) {
	p := startIdP(t)
	var logs testkit.LogBuffer
	s := start(t, server.Config{
		Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0", Issuer: p.Issuer(), Audience: p.Audience(),
		EventsAuth: "Bearer push", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Policy: &policy.Policy{Rules: []policy.Rule{{Methods: []string{"/example.inbox.v1.InboxService/GetMessage"}, ACRValues: []string{"urn:example:mfa"}}}},
	})
	cc := dial(t, s.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token(t, p, "carol"))
	if _, err := inboxv1.NewInboxServiceClient(cc).GetMessage(actx, &inboxv1.GetMessageRequest{Id: "1"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("err = %v, want the step-up challenge", err)
	}
	if l := logs.String(); !strings.Contains(l, "method=/example.inbox.v1.InboxService/GetMessage") || !strings.Contains(l, "outcome=challenge reason=AUTH_CONTEXT") {
		t.Fatalf("decision log lacks the challenge outcome:\n%s", l)
	}
}
