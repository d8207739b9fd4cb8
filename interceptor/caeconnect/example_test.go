package caeconnect_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"connectrpc.com/connect"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/caeconnect"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit/testcae"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/proto/example/inbox/v1/inboxv1connect"
	"github.com/caekit/caekit/revocation"
)

// The Connect interceptor in front of a connect-go service; the same
// interceptor.Server can serve the gRPC interceptors and the HTTP
// middleware too.
func ExampleNewServerInterceptor() {
	v, err := token.NewValidator(context.Background(),
		token.WithIssuer(testcae.Issuer), token.WithAudience(testcae.Audience),
		token.WithStaticKey(testcae.KID, &testcae.Key().PublicKey), token.WithLogger(nil))
	if err != nil {
		panic(err)
	}
	defer v.Close()
	store, err := revocation.NewMemory()
	if err != nil {
		panic(err)
	}
	srv, err := interceptor.New(v, interceptor.WithStore(store), interceptor.WithAuthorizationURI(testcae.AuthorizationURI))
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	ic, err := caeconnect.NewServerInterceptor(srv)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(inboxv1connect.NewInboxServiceHandler(inbox{}, connect.WithInterceptors(ic)))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	// A token as the identity provider issues it to a cp1-capable client.
	iat := time.Now().Add(-time.Minute)
	jt := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": testcae.Issuer, "aud": testcae.Audience, "sub": "alice", "oid": "oid-alice", "tid": testcae.Tenant,
		"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(), "xms_cc": []string{"cp1"},
	})
	jt.Header["kid"] = testcae.KID
	tok, err := jt.SignedString(testcae.Key())
	if err != nil {
		panic(err)
	}

	client := inboxv1connect.NewInboxServiceClient(ts.Client(), ts.URL)
	call := func() {
		req := connect.NewRequest(&inboxv1.GetMessageRequest{Id: "1"})
		req.Header().Set("Authorization", "Bearer "+tok)
		resp, err := client.GetMessage(context.Background(), req)
		if err != nil {
			ce := err.(*connect.Error)
			ch, _ := challenge.Parse(ce.Meta().Values(challenge.MetadataKey)...)
			fmt.Println(connect.CodeOf(err), ch.Error)
			return
		}
		fmt.Println(resp.Msg.GetBody())
	}
	call()
	_ = store.Put(context.Background(), revocation.Event{
		Type: revocation.TypeUserDisabled, Subject: revocation.ObjectKey(testcae.Tenant, "oid-alice"), Time: time.Now(),
	})
	call()
	// Output:
	// hello alice
	// unauthenticated insufficient_claims
}
