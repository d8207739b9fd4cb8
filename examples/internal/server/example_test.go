package server_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/examples/internal/server"
)

// Start the example server against a development IdP, both on free ports,
// and point the IdP's pushes at the server's SSF receiver.
func Example() {
	p, err := idp.Listen("127.0.0.1:0", idp.WithPushAuth("Bearer example"))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	s, err := server.Start(context.Background(), server.Config{
		Addr: "127.0.0.1:0", EventsAddr: "127.0.0.1:0",
		Issuer: p.Issuer(), Audience: p.Audience(), EventsAuth: "Bearer example",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	if err := p.SetPushTargets(s.EventsURL()); err != nil {
		panic(err)
	}
	fmt.Println("serving")
	// Output: serving
}
