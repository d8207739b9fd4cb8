package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
)

// A transport of your own answers a challenge through the Client's cache,
// as package caeconnect does.
func ExampleClient_Answer() {
	src := client.TokenSourceFunc(func(_ context.Context, req client.TokenRequest) (*client.Token, error) {
		tok := "token-pwd"
		if len(req.ACRValues) > 0 {
			tok = "token-" + req.ACRValues[0]
		}
		return &client.Token{AccessToken: tok, ExpiresAt: time.Now().Add(time.Hour)}, nil
	})
	c, err := client.New(src, client.WithScopes("api://inbox/.default"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()
	tok, _ := c.Token(ctx)
	// The server answered the call made with tok with this challenge:
	ch, _ := challenge.Parse(`Bearer error="insufficient_user_authentication", acr_values="mfa"`)
	tok2, err := c.Answer(ctx, "GET api.example", tok, ch)
	fmt.Println(tok.AccessToken, "->", tok2.AccessToken, err)
	_, err = c.Answer(ctx, "GET api.example", tok2, &challenge.Challenge{Error: challenge.ErrorInvalidToken})
	fmt.Println(err)
	// Output:
	// token-pwd -> token-mfa <nil>
	// caekit/client: the challenge asks for nothing a new token can give (error "invalid_token")
}
