package token

import "errors"

// Sentinel errors returned (wrapped, with a message saying what was wrong)
// by Validator.Validate. Test for them with errors.Is. No error ever contains
// the token itself; messages may carry the token's Claims.Hash-style prefix,
// header values such as kid and alg, and claim values such as iss and aud.
var (
	// ErrMissing means no token was given.
	ErrMissing = errors.New("token: missing")
	// ErrTooLarge means the token exceeds the configured maximum size; it
	// was refused before any decoding.
	ErrTooLarge = errors.New("token: too large")
	// ErrMalformed means the token is not a well-formed compact JWS with a
	// JSON object payload, lacks the exp or iat claim, has a claim of the wrong
	// type, nests JSON too deeply, repeats a member name in a JSON object of
	// its header or payload, is not UTF-8, or uses a feature this validator
	// refuses (crit header, JWE, an unexpected typ).
	ErrMalformed = errors.New("token: malformed")
	// ErrAlgorithm means the alg header is not in the allow-list (alg "none"
	// never is) or does not match the type of the key it names.
	ErrAlgorithm = errors.New("token: algorithm not allowed")
	// ErrUnknownKey means no configured or fetched key matches the kid. An
	// asynchronous, rate-limited refresh of the remote key sets has been
	// requested; a retry may succeed once it completes.
	ErrUnknownKey = errors.New("token: unknown signing key")
	// ErrKeyRetired means the kid names a key that left its JWK Set longer
	// ago than the rotation grace period (WithKeyRotationGrace). Errors
	// wrapping it also wrap ErrUnknownKey.
	ErrKeyRetired = errors.New("token: signing key withdrawn from the key set")
	// ErrSignature means the signature does not verify.
	ErrSignature = errors.New("token: invalid signature")
	// ErrIssuer means the iss claim is missing or not accepted.
	ErrIssuer = errors.New("token: issuer not accepted")
	// ErrKeyIssuer means the signature verifies, but with a key whose source
	// is bound to other issuers than the token's iss (see WithDiscovery and
	// ForIssuers): one identity provider's key cannot sign tokens for
	// another. Errors wrapping it also wrap ErrIssuer.
	ErrKeyIssuer = errors.New("token: signing key not bound to the token's issuer")
	// ErrAudience means no aud value is one of the configured audiences.
	ErrAudience = errors.New("token: audience not accepted")
	// ErrExpired means the exp claim is in the past (beyond the leeway).
	ErrExpired = errors.New("token: expired")
	// ErrNotYetValid means the nbf claim is in the future.
	ErrNotYetValid = errors.New("token: not yet valid")
	// ErrIssuedInFuture means the iat claim is in the future.
	ErrIssuedInFuture = errors.New("token: issued in the future")
	// ErrLifetime means the token lives longer (exp - iat) than the
	// validator accepts (WithMaxTokenLifetime): a revocation store would
	// forget the events that revoke it while it is still valid.
	ErrLifetime = errors.New("token: lifetime too long")
	// ErrNotAccessToken means the token is shaped like an OpenID Connect ID
	// token (or another non-access token) rather than an access token; see
	// the package documentation and WithAcceptIDTokens.
	ErrNotAccessToken = errors.New("token: not an access token")
	// ErrUnrevocable means the token names no subject that a revocation
	// event could name: it has none of sub, oid (with tid) and sid, so no
	// user, account or session event could ever revoke it.
	ErrUnrevocable = errors.New("token: no revocable subject")
)
