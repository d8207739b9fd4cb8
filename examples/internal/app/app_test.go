package app_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/examples/internal/app"
	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/examples/internal/server"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

func TestDialErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := app.Dial(ctx, app.Config{}); err == nil {
		t.Error("Dial without Server and IdP succeeded")
	}
	if _, err := app.Dial(ctx, app.Config{Server: "127.0.0.1:1", IdP: "http://127.0.0.1:1", User: "alice"}); err == nil {
		t.Error("Dial with an unreachable IdP succeeded")
	}
	p, err := idp.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := app.Dial(ctx, app.Config{Server: "127.0.0.1:1", IdP: p.Issuer()}); err == nil {
		t.Error("Dial without credentials succeeded")
	}
}

// A wrong password reaches the app as the IdP's invalid_grant, and a
// revoked, then disabled, workload client's call is explained as a sign-in
// failure.
func TestWorkloadClientDisabled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := idp.Listen("127.0.0.1:0", idp.WithPushAuth("Bearer t"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0", Issuer: p.Issuer(), EventsAuth: "Bearer t", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = p.SetPushTargets(s.EventsURL())

	bad, err := app.Dial(ctx, app.Config{Server: s.Addr(), IdP: p.Issuer(), User: "alice", Password: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.Inbox.GetMessage(ctx, &inboxv1.GetMessageRequest{})
	var oe *httpsource.Error
	if status.Code(err) != codes.Unauthenticated || !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("wrong password: %v", err)
	}

	var mu sync.Mutex
	var events []app.Event
	c, err := app.Dial(ctx, app.Config{Server: s.Addr(), IdP: p.Issuer(), ClientID: idp.WorkloadClientID, ClientSecret: idp.WorkloadClientSecret,
		OnEvent: func(e app.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Inbox.GetMessage(ctx, &inboxv1.GetMessageRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ClientAction(ctx, idp.WorkloadClientID, idp.ActionDisable); err != nil {
		t.Fatal(err)
	}
	_, err = c.Inbox.GetMessage(ctx, &inboxv1.GetMessageRequest{})
	if err == nil {
		t.Fatal("a disabled client's call succeeded")
	}
	var se *app.SignInError
	if !errors.As(c.Explain(err), &se) || se.Reason != "USER_DISABLED" || se.IdP.Code != "invalid_grant" {
		t.Fatalf("Explain(%v) = %v", err, c.Explain(err))
	}
	mu.Lock()
	n := len(events)
	mu.Unlock()
	if n == 0 || len(c.TakeEvents()) != n || len(c.TakeEvents()) != 0 {
		t.Fatalf("events: OnEvent saw %d", len(events))
	}
}
