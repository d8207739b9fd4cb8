package app_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/caekit/caekit/examples/internal/app"
	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/examples/internal/server"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// Call the example server as alice with a CAE-capable client.
func Example() {
	ctx := context.Background()
	p, _ := idp.Listen("127.0.0.1:0", idp.WithPushAuth("Bearer example"))
	defer p.Close()
	s, err := server.Start(ctx, server.Config{
		Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0", Issuer: p.Issuer(),
		EventsAuth: "Bearer example", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	c, err := app.Dial(ctx, app.Config{Server: s.Addr(), IdP: p.Issuer(), User: "alice", Password: idp.Password})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	r, err := c.Inbox.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"})
	if err != nil {
		panic(err)
	}
	tok, _ := c.Token(ctx)
	fmt.Println(r.GetBody(), tok.Lifetime, tok.Capabilities)
	// Output: message 1 for alice 24h0m0s [cp1]
}
