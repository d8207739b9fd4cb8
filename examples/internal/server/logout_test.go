package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/examples/internal/server"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// TestServerLogoutChannels drives issue 14 end to end over real HTTP and
// gRPC: the dev IdP posts a Back-Channel Logout token (sid of carol's
// latest session) to the server's /backchannel-logout and then a Global
// Token Revocation request to /global-token-revocation. The logout revokes
// only the latest session's token; the universal logout revokes all of
// carol's tokens; bob is never affected.
func TestServerLogoutChannels(t *testing.T) {
	p := startIdP(t)
	s := start(t, server.Config{
		Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0", Issuer: p.Issuer(), Audience: p.Audience(), EventsAuth: "Bearer push",
	})
	if err := p.SetLogoutTargets([]string{s.BackChannelLogoutURL()}, []string{s.GTRURL()}); err != nil {
		t.Fatal(err)
	}
	inbox := inboxv1.NewInboxServiceClient(dial(t, s.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := func(tok string) error {
		_, err := inbox.GetMessage(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), &inboxv1.GetMessageRequest{Id: "1"})
		return err
	}
	first, latest, bob := token(t, p, "carol"), token(t, p, "carol"), token(t, p, "bob")
	for _, tok := range []string{first, latest, bob} {
		if err := call(tok); err != nil {
			t.Fatalf("before: %v", err)
		}
	}
	// The logout is dated at the logout token's iat: tokens issued in that
	// second or before are revoked (the same-second rule).
	res, err := p.UserAction(ctx, "carol", idp.ActionLogout)
	if err != nil || !res.Delivered() || res.SessionID == "" {
		t.Fatalf("logout: %+v %v", res, err)
	}
	if err := call(latest); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("latest session after its logout: %v, want Unauthenticated", err)
	}
	if err := call(first); err != nil {
		t.Fatalf("carol's other session after the logout: %v", err)
	}
	res, err = p.UserAction(ctx, "carol", idp.ActionUniversalLogout)
	if err != nil || !res.Delivered() || res.Pushes[0].Status != 204 {
		t.Fatalf("universal logout: %+v %v", res, err)
	}
	if err := call(first); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("carol's first session after the universal logout: %v, want Unauthenticated", err)
	}
	if err := call(bob); err != nil {
		t.Fatalf("bob after carol's logouts: %v", err)
	}
}
