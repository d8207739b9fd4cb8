package azsource_test

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/azsource"
)

func Example() {
	// In production: cred, _ := azidentity.NewDefaultAzureCredential(nil)
	var cred azcore.TokenCredential = credFunc(func(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		fmt.Println("EnableCAE:", o.EnableCAE, "scopes:", o.Scopes)
		return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
	})
	src, err := azsource.New(cred)
	if err != nil {
		panic(err)
	}
	c, err := client.New(src, client.WithScopes("api://inbox/.default"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_, err = c.Token(context.Background())
	fmt.Println(err)
	// Output:
	// EnableCAE: true scopes: [api://inbox/.default]
	// <nil>
}
