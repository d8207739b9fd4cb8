package client_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/caekit/caekit/interceptor/client"
)

// BenchmarkUnaryInterceptorCached measures the interceptor's own cost on the
// hot path: a cached token, no challenge (the invoker does nothing).
func BenchmarkUnaryInterceptorCached(b *testing.B) {
	src := client.TokenSourceFunc(func(context.Context, client.TokenRequest) (*client.Token, error) {
		return &client.Token{AccessToken: "eyJhbGciOi.payload.sig", ExpiresAt: time.Now().Add(time.Hour)}, nil
	})
	c, err := client.New(src, client.WithScopes("api://inbox/.default"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ui := c.UnaryClientInterceptor()
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx := context.Background()
	if err := ui(ctx, "/x/Y", nil, nil, nil, invoker); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := ui(ctx, "/x/Y", nil, nil, nil, invoker); err != nil {
				b.Fatal(err)
			}
		}
	})
}
