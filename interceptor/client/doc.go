// Package client is the client half of caekit: gRPC client interceptors that
// attach CAE-capable access tokens and answer Continuous Access Evaluation
// claims challenges.
//
// A Client wraps a TokenSource (see the adapters httpsource, azsource and
// oauth2source) with a cache that keeps one token per scope set, refreshes it
// proactively (at refresh_in, else a margin before expiry) one fetch at a
// time, and rides out identity-provider outages while the cached token is
// still valid. Failed fetches back off exponentially (WithRefreshBackoff),
// also before the first token: calls within the backoff fail at once with an
// error wrapping ErrBackingOff instead of each asking the identity provider.
// Every token request declares the client capabilities (cp1).
//
// When a call fails with codes.Unauthenticated and a claims challenge (from
// the cae.v1.ClaimsChallenge detail, else the google.rpc.ErrorInfo detail,
// else the www-authenticate metadata), the unary interceptor drops the
// rejected token, fetches one with the challenge's claims, bypassing any
// cache, and retries the call once. A second challenge goes to the caller.
// When the challenge asks for an nbf that the client's clock has not reached
// (a revocation challenge asks for the second after the event), the fetch
// first waits for it, at most MaxNotBeforeWait: an identity provider that
// ignores the claims parameter and issues at once then still issues a token
// that the event does not revoke.
// The stream interceptor re-opens a stream challenged before its first
// response and replays the buffered messages, but only when the server says
// it refused the stream at open (the handler never ran) or the method is
// declared idempotent (WithIdempotentStreams); otherwise the challenge goes
// to the application and the new token is fetched for its next call.
//
// An RFC 9470 step-up challenge (error="insufficient_user_authentication"
// with acr_values and/or max_age) is answered the same way: the fetch's
// TokenRequest carries ACRValues and MaxAge for the TokenSource to pass to
// the identity provider, and refreshes for the same scopes keep asking for
// the acr_values. Sources that cannot pass them fail the fetch, and the
// challenge reaches the application.
//
// Tokens are attached as per-call credentials and only over connections with
// privacy and integrity (TLS), unless WithInsecure says otherwise.
//
// The same Client serves plain HTTP APIs through Client.Transport, an
// http.RoundTripper, and connect-go clients through package caeconnect
// (built on Client.Answer): all share the one token cache, so a challenge
// answered on one transport is answered for all.
package client
