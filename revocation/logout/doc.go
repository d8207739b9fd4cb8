// Package logout hears the logout signals that identity providers send
// today and turns them into revocation events, in the same revocation.Store
// (and so in Redis and every replica) as the SSF receiver's:
//
//   - OpenID Connect Back-Channel Logout 1.0 logout tokens
//     (https://openid.net/specs/openid-connect-backchannel-1_0.html), sent
//     by Keycloak, Auth0, Ping, Zitadel, authentik, WSO2 and Apereo CAS:
//     BackChannelHandler;
//   - Global Token Revocation requests
//     (draft-parecki-oauth-global-token-revocation), sent by Okta Workforce
//     as "Universal Logout": GTRHandler.
//
// # Keys
//
// Both are JWTs signed by the IdP. They are verified with the access-token
// validator's key sources (token.Validator.VerifySigned): the keys of the
// issuer's discovery jwks_uri, refreshed in the background, each bound to
// its issuer, under the same size limit, algorithm allow-list and strict
// JSON as access tokens. Share the server's validator (WithKeys, which
// takes the Keys interface that *token.Validator implements) or let New
// build a key set of its own over the discovery of each WithIssuer issuer:
// the same key machinery (internal/keyset) as the validator's, so logout
// does not import the interceptor layer.
//
// # Effects
//
// A logout token with sid stores revocation.TypeSessionRevoked under
// revocation.SessionKey(iss, sid): the access tokens carrying that sid
// (Keycloak puts sid in its access tokens) issued at or before the logout
// token's iat are refused. A logout token with sub alone (or an IdP whose
// access tokens carry no sid) revokes under IssuerSubjectKey(iss, sub):
// every token of that user at that issuer. A Global Token Revocation stores
// revocation.TypeRefreshTokensRevoked for its sub_id, dated at the request.
// A revoked call gets the interceptor's usual challenge, so clients
// recover with a fresh sign-in.
//
// # Strictness
//
// Every rule of Back-Channel Logout 1.0 §2.6 is enforced (see
// ParseLogoutToken); typ must be absent, JWT or logout+jwt, so that an
// access token or a SET is never taken for a logout token (and the token
// validator refuses logout tokens as access tokens). Replays of (iss, jti)
// are refused from a bounded memory (WithReplayMemory). Bodies are bounded
// (WithMaxBodySize). An event is acknowledged (200, 204) only once Put
// returned nil; a store failure is answered 503 with Retry-After and the
// jti is not remembered, so the IdP's retry is accepted. A GTR subject must
// be of the caller's own issuer, or in WithSubjectIssuers,
// WithSubjectTenants or WithEmailDomains (the SSF receiver's scope rule,
// shared in revocation/internal/scope).
//
// # Observability
//
// MetricEvents counts requests by channel and outcome (OpenTelemetry metric
// API); WithObserver sees each one, for audit; slog lines carry the
// token's short hash (token.Hash), never the token.
package logout
