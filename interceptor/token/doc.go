// Package token validates JWT access tokens locally: signature against keys
// from OIDC discovery, a JWKS URL or static keys; an algorithm allow-list that
// never admits "none"; iss, aud, exp, nbf and iat with leeway; a size bound;
// and a bounded cache of verified tokens so that repeat calls skip the
// signature check. Nothing on the validation path touches the network.
//
// # Keys
//
// Remote key sets (WithDiscovery, WithJWKSURL) are fetched once by
// NewValidator and then by one background goroutine per source: every
// WithRefreshInterval, sooner with backoff after a failure, and when a token
// names an unknown kid. Such a token is refused at once with ErrUnknownKey;
// the refresh it triggers runs asynchronously and at most once per
// WithUnknownKIDRefreshLimit, so neither a key rotation nor an attacker
// sending random kids can make Validate wait for the network or flood the
// IdP. A failed or empty fetch keeps the last good key set. Responses are
// size-bounded, only signature keys are taken, symmetric keys from the
// network are ignored, and the jku, x5u, x5c and jwk headers of a token are
// never used.
//
// A key that leaves its JWK Set is withdrawn: its tokens are still accepted
// for WithKeyRotationGrace (default DefaultKeyRotationGrace, 5 minutes), then
// refused with ErrKeyRetired, tokens already in the verified-token cache
// included. Each cache entry points at the key that verified it, so the
// check on a hit is one atomic load.
//
// Independent sources may publish the same kid. A token is checked against
// every live key with its kid that fits its alg (at most one per source, and
// at most 8), and the key used is one whose signature verifies and that is
// bound to the token's issuer.
//
// # Issuers
//
// Every key is bound to the issuers it may sign for, and a token whose
// signature verifies with a key bound to other issuers is refused with
// ErrKeyIssuer (which also matches ErrIssuer): with several identity
// providers configured, one provider's key can never mint tokens for
// another. WithDiscovery binds its keys to the discovery URL, and to the
// issuer its discovery document publishes when that is the same URL or a
// "{tenantid}" template of which the URL is an instance (Entra's
// multi-tenant endpoints; the token's tid fills the placeholder). Sources
// that do not say whose keys they hold (WithJWKSURL, WithStaticKey,
// WithHMACKey) are bound to the single accepted issuer; with several
// accepted issuers NewValidator refuses them, and the key source option's
// ForIssuers must name the issuers instead (as it may for WithDiscovery). The binding is checked when a token is verified; cache
// hits were verified with it and cost nothing more.
//
// # Algorithms
//
// Only algorithms in the allow-list (DefaultAlgorithms() unless
// WithAlgorithms) are accepted; "none" never is. The key a kid names must
// match the algorithm family (RSA for RS*/PS*, the right curve for ES*,
// Ed25519 for EdDSA). HMAC algorithms need WithHMACKey and are verified only
// with those secrets, so an HS256 token "signed" with a public key's bytes is
// refused. Tokens with a crit header, encrypted tokens (JWE) and tokens whose
// typ is not a JWT access token type (e.g. a Security Event Token) are refused.
//
// # Lifetime, ID tokens and revocability
//
// Every token must carry iat, and live at most WithMaxTokenLifetime (exp -
// iat, default DefaultMaxTokenLifetime, 28 hours); a longer-lived token is
// refused with ErrLifetime. A revocation store forgets an event after its
// retention: a token that outlived it would be accepted again once the
// event that revoked it is forgotten. RetentionNeeded says how long a store
// must remember events for this validator, and interceptor.New refuses a
// store that remembers less.
//
// Tokens shaped like something other than an access token are refused with
// ErrNotAccessToken unless WithAcceptIDTokens is given. A token with header
// typ at+jwt (RFC 9068) is always an access token. Otherwise it is refused
// when its payload has at_hash, c_hash or s_hash (only ID tokens carry
// them), an events claim (security event and back-channel logout tokens), a
// typ claim of "ID", "Refresh" or "Offline" (Keycloak's markers; its access
// tokens say "Bearer"), or a nonce claim together with neither scp nor
// scope. Access tokens of Entra (v1, v2, app-only, and Graph tokens, whose
// nonce is in the header and not looked at), Okta, Keycloak (whose access
// tokens carried the login's nonce before version 24, always with scope)
// and Auth0 pass these rules. An ID token without any of these marks (no
// nonce, no at_hash) is still accepted if its aud, the client id, is one of
// the accepted audiences: keep the API's audience distinct from the client
// ids users sign in to.
//
// A token must name an account or a session (sub, oid with tid, or sid):
// otherwise no user, account or session event could ever revoke it, and it
// is refused with ErrUnrevocable.
//
// # JSON
//
// Header and payload must be UTF-8 JSON objects that nest at most 32 deep
// and never repeat a member name in one object (compared after unescaping,
// so "sub" and "s\u0075b" are the same name). encoding/json keeps the last
// of two equal names and other JWT libraries the first; a token that two
// parsers would read differently is refused with ErrMalformed. Header member
// names are matched exactly ("ALG" is not "alg").
//
// # Cache
//
// A verified token is remembered (WithCacheSize, default 10,000) until its
// exp. A cache hit returns the same *Claims without verifying the signature
// again, but still checks exp, nbf and that the verifying key has not been
// withdrawn beyond its grace period; it takes a shard read lock and does
// not allocate. The cache never replaces the revocation and policy checks
// that callers run on the claims.
package token
