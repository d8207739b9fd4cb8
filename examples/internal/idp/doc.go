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
//   - POST /token: grant_type=password, refresh_token or client_credentials,
//     with an optional claims request. The password grant starts a new
//     session (a new sid) and answers with a refresh_token bound to the
//     user, the client and that session (opaque, random, stored as a hash
//     in a table of at most MaxRefreshTokens, valid WithRefreshTokenLifetime,
//     default 24 h). grant_type=refresh_token (RFC 6749 §6) keeps the
//     session: same sid, the claims request answered as for the password
//     grant, and the refresh token rotated (the used one is refused
//     afterwards). It re-checks the account: a disabled user's refresh token
//     is refused with AADSTS50057 (and works again once enabled, as at
//     Entra); one whose session ended (logout, universal-logout,
//     revoke-sessions, reset-password, enable-mfa, risk-high) is refused
//     with invalid_grant. client_credentials gets no refresh token. A request that declares the cp1 capability
//     ({"access_token":{"xms_cc":{"values":["cp1"]}}}) gets a long-lived CAE
//     token and a refresh_in hint; others get a short-lived token. An acrs
//     claims request gets a token that satisfies that authentication context.
//     User tokens carry acr and auth_time (OIDC Core §2, RFC 9068
//     §2.2.3.1): a password sign-in is acr ACRPassword at that time, and
//     refreshes keep the session's values. The RFC 9470 §4 parameters are
//     honoured on every user grant: acr_values whose list lacks the
//     session's acr steps the session up to the first value (a new active
//     authentication: auth_time is now), and a max_age shorter than the
//     time since auth_time re-authenticates (auth_time is now). This dev IdP
//     does so without user interaction; a real one would prompt.
//     client_credentials refuses them with invalid_request: no user
//     authenticates there.
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
//     its own sid in the access token; every action but enable and disable
//     ends the user's sessions and their refresh tokens.
//   - POST /admin/users/{name}/logout: ends the user's latest session (and
//     its refresh tokens) and
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
