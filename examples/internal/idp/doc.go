// Package idp is a development identity provider for caekit's examples, demo
// and integration tests. It is NOT for production: accounts, passwords and
// signing keys live in memory, the admin endpoints have no authentication, and
// everything is seeded with well-known secrets.
//
// It speaks just enough OpenID Connect, OAuth 2.0 and Shared Signals to
// exercise Continuous Access Evaluation end to end:
//
//   - GET /.well-known/openid-configuration and /.well-known/ssf-configuration
//   - GET /jwks: the RS256 signing keys, by kid
//   - POST /token: grant_type=password or client_credentials, with an optional
//     claims request. A request that declares the cp1 capability
//     ({"access_token":{"xms_cc":{"values":["cp1"]}}}) gets a long-lived CAE
//     token and a refresh_in hint; others get a short-lived token. An acrs
//     claims request gets a token that satisfies that authentication context.
//     An nbf claims request (a revocation challenge) is answered by the
//     NotBeforeMode: ignored, the token issued at once (the default, as most
//     IdPs do); honoured in the token's nbf claim, issued at once; or waited
//     for. The IdP never waits past a subject's latest event on its own: a
//     token asked for in the event's second is issued in it, and resource
//     servers refuse it (the same-second rule, see revocation.Event.RevokesToken).
//   - POST /admin/users/{name}/{action}: disable, enable, reset-password,
//     enable-mfa, revoke-sessions, risk-high. Each changes the account and
//     pushes the matching CAEP or RISC Security Event Token (RFC 8417) to every
//     push target (RFC 8935). Every password sign-in is a new session, with
//     its own sid in the access token.
//   - POST /admin/users/{name}/logout: ends the user's latest session and
//     posts an OpenID Connect Back-Channel Logout 1.0 logout token (with that
//     sid and the user's sub, typ logout+jwt, aud WithLogoutAudience) to every
//     Back-Channel Logout target (WithBackChannelLogoutTarget).
//   - POST /admin/users/{name}/universal-logout: ends all the user's sessions
//     and posts a Global Token Revocation request (an iss_sub sub_id,
//     authenticated by a global-token-revocation+jwt bearer JWT whose aud is
//     the target, as Okta Universal Logout sends it) to every GTR target
//     (WithGTRTarget).
//   - POST /admin/clients/{id}/{disable|enable} and POST /admin/rotate-keys.
//
// Seeded accounts: users alice, bob and carol with password "password"; the
// workload client "reporting" with secret "secret".
package idp
