package challenge_test

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/challenge"
)

func ExampleParse() {
	// A server offering two schemes in one www-authenticate value.
	c, err := challenge.Parse(`PoP realm="x", nonce="y", Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0="`)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Error)
	fmt.Println(c.Claims)
	// Output:
	// insufficient_claims
	// {"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}
}

func ExampleMergeClaims() {
	merged, err := challenge.MergeClaims(`{"access_token":{"acrs":{"essential":true,"value":"c25"}}}`, "cp1")
	fmt.Println(merged, err)
	_, err = challenge.MergeClaims(`{"access_token":{"xms_cc":{"values":["cp2"]}}}`, "cp1")
	fmt.Println(err)
	// Output:
	// {"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c25"}}} <nil>
	// challenge: merge claims: key "access_token.xms_cc" conflicts with the client capabilities ["cp1"]
}

func ExampleExtract() {
	// Only the www-authenticate trailer carries the challenge here.
	err := status.Error(codes.Unauthenticated, "revoked")
	trailer := metadata.Pairs(challenge.MetadataKey,
		`Bearer realm="", authorization_uri="https://idp/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnt9fQ"`)
	c, xerr := challenge.Extract(err, nil, trailer)
	fmt.Println(xerr, c.InsufficientClaims(), c.Claims)

	// An error that is no challenge says so.
	_, xerr = challenge.Extract(status.Error(codes.PermissionDenied, "no"))
	fmt.Println(xerr)
	// Output:
	// <nil> true {"access_token":{}}
	// challenge: not an Unauthenticated status: no CAE challenge
}
