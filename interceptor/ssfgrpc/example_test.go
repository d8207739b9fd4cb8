package ssfgrpc_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/ssfgrpc"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// A Server publishes SETs into the store of an receiver.Receiver. In production it
// is registered on a grpc.Server (caev1.RegisterSecurityEventServiceServer)
// behind caekit's interceptors with RequireRole among the checks; here its
// method is called directly.
func Example() {
	tr := ssftest.New() // a test transmitter on loopback, serving its keys
	defer tr.Close()

	store, err := revocation.NewMemory()
	if err != nil {
		panic(err)
	}
	r, err := receiver.New(context.Background(),
		receiver.WithIssuer(tr.Issuer),
		receiver.WithAudience(ssftest.Audience),
		receiver.WithStore(store),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	srv := ssfgrpc.New(r)

	set, _ := tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{"format": "opaque", "id": "session-1"})
	res, err := srv.Publish(context.Background(), &caev1.PublishRequest{Set: set})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("duplicate:", res.GetDuplicate())
	_, revoked := store.Lookup(revocation.SessionKey(tr.Issuer, "session-1"))
	fmt.Println("revoked:", revoked)

	res, _ = srv.Publish(context.Background(), &caev1.PublishRequest{Set: set})
	fmt.Println("redelivery duplicate:", res.GetDuplicate())

	_, err = srv.Publish(context.Background(), &caev1.PublishRequest{Set: "not-a-jwt"})
	fmt.Println("garbage:", status.Code(err))
	// Output:
	// duplicate: false
	// revoked: true
	// redelivery duplicate: true
	// garbage: InvalidArgument
}

// RequireRole lets only callers whose token carries the publishing role call
// cae.v1.SecurityEventService; other services pass untouched.
func ExampleRequireRole() {
	check := ssfgrpc.RequireRole("") // DefaultRole
	ctx := context.Background()
	publish := ssfgrpc.ServicePrefix + "Publish"

	reader := &interceptor.Claims{Raw: map[string]any{"roles": []any{"Mail.Read"}}}
	publisher := &interceptor.Claims{Raw: map[string]any{"roles": []any{ssfgrpc.DefaultRole}}}

	d := check.Check(ctx, &interceptor.Request{FullMethod: publish, Claims: reader})
	fmt.Println("reader:", d.Code, "-", d.Description)
	fmt.Println("publisher denied:", check.Check(ctx, &interceptor.Request{FullMethod: publish, Claims: publisher}) != nil)
	fmt.Println("reader on another service denied:", check.Check(ctx, &interceptor.Request{FullMethod: "/inbox.v1.InboxService/GetMessage", Claims: reader}) != nil)
	// Output:
	// reader: PermissionDenied - publishing security events requires the role SecurityEvents.Publish
	// publisher denied: false
	// reader on another service denied: false
}
