package oauth2source_test

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/oauth2source"
)

func Example() {
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "opaque", Expiry: time.Now().Add(time.Hour)})
	c, err := client.New(oauth2source.New(ts), client.WithScopes("api://inbox/.default"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	tok, err := c.Token(context.Background())
	fmt.Println(tok.AccessToken, err)
	// Output: opaque <nil>
}
