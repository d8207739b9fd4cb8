// Package caehttp is the net/http front door of a caekit interceptor.Server:
// a middleware that enforces Continuous Access Evaluation on REST APIs,
// Server-Sent Events and other streamed responses with the same validator,
// revocation store, checks, challenge form, metrics, audit hook and logs as
// the gRPC interceptors, and a handler for the RFC 9728 protected resource
// metadata document.
//
// A refused request gets 401 with a WWW-Authenticate challenge that is
// byte for byte the www-authenticate trailer the gRPC interceptors send for
// the same denial (Microsoft Entra's form, which the Azure SDKs' bearer
// token policies answer), 403 for a plain denial and 503 while the
// revocation state cannot be trusted, each with a small RFC 9457
// application/problem+json body. A short answer is decided once, at
// admission, like a gRPC unary call. A response that proves long-lived (it
// flushes, its handler waits on the request's context, or it writes after
// a store event or policy change or more than interceptor.LazyWatchGrace
// after admission) is watched until its handler returns, after a re-check
// of anything that changed since admission: a revocation event about its
// token, a failing re-check or the token's expiry cancels the request's
// context, whose context.Cause is then an *interceptor.DenialError, and
// every later write fails with it.
package caehttp
