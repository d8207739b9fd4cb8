package httpsource_test

import (
	"context"
	"fmt"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/internal/testkit/testidp"
)

func Example() {
	idp := testidp.New() // a token endpoint on loopback
	defer idp.Close()

	src, err := httpsource.New(idp.TokenURL(), httpsource.WithClientCredentials(testidp.ClientID, testidp.ClientSecret))
	if err != nil {
		panic(err)
	}
	tok, err := src.Token(context.Background(), client.TokenRequest{
		Scopes: []string{testidp.Scope},
		Claims: `{"access_token":{"xms_cc":{"values":["cp1"]}}}`,
	})
	fmt.Println(err == nil && tok.AccessToken != "")
	fmt.Println(idp.Requests()[0].Claims)
	// Output:
	// true
	// {"access_token":{"xms_cc":{"values":["cp1"]}}}
}
