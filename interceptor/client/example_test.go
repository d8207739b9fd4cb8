package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// stepUpServer challenges every token that was not obtained with the "c1"
// auth context. Here the token source marks such tokens itself.
type stepUpServer struct {
	inboxv1.UnimplementedInboxServiceServer
}

func (stepUpServer) GetMessage(ctx context.Context, _ *inboxv1.GetMessageRequest) (*inboxv1.GetMessageResponse, error) {
	return &inboxv1.GetMessageResponse{Body: "hello"}, nil
}

func Example() {
	// A server whose interceptor asks for auth context c1.
	lis := bufconn.Listen(1 << 16)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if auth := metadataValue(ctx, "authorization"); auth != "Bearer token-with-c1" {
			c := &challenge.Challenge{Claims: challenge.AuthContextClaims("c1")}
			return nil, c.Status(codes.Unauthenticated, "step-up required").Err()
		}
		return h(ctx, req)
	}))
	inboxv1.RegisterInboxServiceServer(srv, stepUpServer{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	// A token source that honours the claims request.
	src := client.TokenSourceFunc(func(_ context.Context, req client.TokenRequest) (*client.Token, error) {
		fmt.Println("token request:", req.Claims)
		tok := "plain-token"
		if req.ChallengeClaims != "" {
			tok = "token-with-c1"
		}
		return &client.Token{AccessToken: tok, ExpiresAt: time.Now().Add(time.Hour)}, nil
	})
	c, err := client.New(src, client.WithScopes("api://inbox/.default"), client.WithInsecure() /* bufconn has no TLS */)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	conn, err := grpc.NewClient("passthrough:///bufnet", append(c.DialOptions(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	resp, err := inboxv1.NewInboxServiceClient(conn).GetMessage(context.Background(), &inboxv1.GetMessageRequest{Id: "1"})
	fmt.Println(resp.GetBody(), err)
	// Output:
	// token request: {"access_token":{"xms_cc":{"values":["cp1"]}}}
	// token request: {"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c1"}}}
	// hello <nil>
}

// Example_challenge shows how an application reads a challenge the client
// returned to it (one it could not answer, or a plain rejection):
// challenge.Extract, the kit's one way to get a challenge out of an error.
func Example_challenge() {
	c := &challenge.Challenge{Claims: challenge.AuthContextClaims("c2")}
	err := c.Status(codes.Unauthenticated, "step-up required").Err()

	if ch, xerr := challenge.Extract(err); xerr == nil && ch.InsufficientClaims() {
		fmt.Println("server asks for:", ch.Claims)
	}
	_, xerr := challenge.Extract(status.Error(codes.Unavailable, "down"))
	fmt.Println(errors.Is(xerr, challenge.ErrNoChallenge))
	// Output:
	// server asks for: {"access_token":{"acrs":{"essential":true,"value":"c2"}}}
	// true
}
