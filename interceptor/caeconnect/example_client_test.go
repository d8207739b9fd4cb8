package caeconnect_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"connectrpc.com/connect"

	"github.com/caekit/caekit/interceptor/caeconnect"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// A connect client whose server wants an RFC 9470 step-up: the interceptor
// asks the token source for the challenge's acr_values and retries once.
func ExampleNewClientInterceptor() {
	mux := http.NewServeMux()
	mux.Handle(getMessage, connect.NewUnaryHandler(getMessage, func(_ context.Context, req *connect.Request[inboxv1.GetMessageRequest]) (*connect.Response[inboxv1.GetMessageResponse], error) {
		if req.Header().Get("Authorization") != "Bearer token-mfa" {
			ch := &challenge.Challenge{ACRValues: []string{"urn:example:mfa"}}
			e := connect.NewError(connect.CodeUnauthenticated, errors.New("step-up required"))
			e.Meta().Set(challenge.MetadataKey, ch.Header())
			return nil, e
		}
		return connect.NewResponse(&inboxv1.GetMessageResponse{Body: "hello"}), nil
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	src := client.TokenSourceFunc(func(_ context.Context, req client.TokenRequest) (*client.Token, error) {
		fmt.Println("token request: acr_values", req.ACRValues)
		tok := "token-pwd"
		if len(req.ACRValues) > 0 {
			tok = "token-mfa"
		}
		return &client.Token{AccessToken: tok, ExpiresAt: time.Now().Add(time.Hour)}, nil
	})
	c, err := client.New(src, client.WithScopes("api://inbox/.default"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ic, err := caeconnect.NewClientInterceptor(c)
	if err != nil {
		panic(err)
	}
	hc := srv.Client()
	defer hc.CloseIdleConnections()
	api := connect.NewClient[inboxv1.GetMessageRequest, inboxv1.GetMessageResponse](hc, srv.URL+getMessage, connect.WithInterceptors(ic))
	resp, err := api.CallUnary(context.Background(), connect.NewRequest(&inboxv1.GetMessageRequest{Id: "m1"}))
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Msg.GetBody())
	// Output:
	// token request: acr_values []
	// token request: acr_values [urn:example:mfa]
	// hello
}
