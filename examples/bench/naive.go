package main

import (
	"context"
	"crypto"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// naiveClaims is what a hand-written resource server typically decodes.
type naiveClaims struct {
	jwt.RegisteredClaims
	Scope    string `json:"scp"`
	TenantID string `json:"tid"`
	ObjectID string `json:"oid"`
}

type naiveClaimsKey struct{}

// naiveAuth is the "Naive" case: the go-grpc-middleware v2 auth interceptor's
// AuthFunc, parsing and verifying the token with golang-jwt on every call
// (signature, alg allow-list, iss, aud, exp, iat), as most hand-written
// resource servers do. No revocation, no location policy, no cache.
func naiveAuth(alg string, pub crypto.PublicKey) auth.AuthFunc {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{alg}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(time.Minute),
	)
	keyfunc := func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != keyID {
			return nil, jwt.ErrTokenUnverifiable
		}
		return pub, nil
	}
	return func(ctx context.Context) (context.Context, error) {
		raw, err := auth.AuthFromMD(ctx, "bearer")
		if err != nil {
			return nil, err
		}
		var c naiveClaims
		if _, err := parser.ParseWithClaims(raw, &c, keyfunc); err != nil {
			return nil, status.Error(codes.Unauthenticated, "invalid token")
		}
		return context.WithValue(ctx, naiveClaimsKey{}, &c), nil
	}
}
