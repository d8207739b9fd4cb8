package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
)

// An HTTP API that wants an RFC 9470 step-up: the Transport passes the
// challenge's acr_values and max_age to the token source and retries once.
func ExampleClient_Transport() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer token-mfa" {
			c := &challenge.Challenge{ACRValues: []string{"urn:example:mfa"}, MaxAge: 5 * time.Minute}
			w.Header().Set("WWW-Authenticate", c.Header())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "hello")
	}))
	defer api.Close()

	src := client.TokenSourceFunc(func(_ context.Context, req client.TokenRequest) (*client.Token, error) {
		fmt.Println("token request: acr_values", req.ACRValues, "max_age", req.MaxAge)
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
	hc := &http.Client{Transport: c.Transport(nil)} // loopback http is allowed
	resp, err := hc.Post(api.URL+"/v1/messages", "text/plain", strings.NewReader("hi"))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	hc.CloseIdleConnections()
	// Output:
	// token request: acr_values [] max_age 0s
	// token request: acr_values [urn:example:mfa] max_age 5m0s
	// 200 hello
}
