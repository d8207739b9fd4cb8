// Package caeconnect puts a caekit interceptor.Server in front of
// connect-go (connectrpc.com/connect) services: the handler-side
// interceptor (NewServerInterceptor) decides every unary call and every
// stream with the same validator, revocation store, checks, challenge,
// metrics, audit hook and logs as the gRPC interceptors and the net/http
// middleware, for the Connect, gRPC and gRPC-Web protocols alike.
//
// A challenge is a *connect.Error with CodeUnauthenticated, the
// cae.v1.ClaimsChallenge and google.rpc.ErrorInfo details, and
// www-authenticate in its metadata, which Connect sends as an HTTP header
// (Connect unary) or trailer (streams, gRPC, gRPC-Web); a plain denial is
// CodePermissionDenied (CodeUnavailable while the revocation state cannot
// be trusted). Streams are cut as gRPC streams are.
package caeconnect
