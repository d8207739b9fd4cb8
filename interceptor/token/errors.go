package token

import (
	"errors"

	"github.com/caekit/caekit/internal/keyset"
)

// Sentinel errors returned (wrapped, with a message saying what was wrong)
// by Validator.Validate. Test for them with errors.Is. No error ever contains
// the token itself; messages may carry the token's Claims.Hash-style prefix,
// header values such as kid and alg, and claim values such as iss and aud.
// The key and signature errors are shared with the logout receivers
// (revocation/logout), which verify with the same key machinery.
var (
	// ErrMissing means no token was given.
	ErrMissing = errors.New("token: missing")
	// ErrTooLarge means the token exceeds the configured maximum size; it
	// was refused before any decoding.
	ErrTooLarge = keyset.ErrTooLarge
	// ErrMalformed means the token is not a well-formed compact JWS with a
	// JSON object payload, lacks the exp or iat claim, has a claim of the wrong
	// type, nests JSON too deeply, repeats a member name in a JSON object of
	// its header or payload, is not UTF-8, or uses a feature this validator
	// refuses (crit header, JWE, an unexpected typ).
	ErrMalformed = keyset.ErrMalformed
	// ErrAlgorithm means the alg header is not in the allow-list (alg "none"
	// never is) or does not match the type of the key it names.
	ErrAlgorithm = keyset.ErrAlgorithm
	// ErrUnknownKey means no configured or fetched key matches the kid. An
	// asynchronous, rate-limited refresh of the remote key sets has been
	// requested; a retry may succeed once it completes.
	ErrUnknownKey = keyset.ErrUnknownKey
	// ErrKeyRetired means the kid names a key that left its JWK Set longer
	// ago than the rotation grace period (WithKeyRotationGrace). Errors
	// wrapping it also wrap ErrUnknownKey.
	ErrKeyRetired = keyset.ErrKeyRetired
	// ErrSignature means the signature does not verify.
	ErrSignature = keyset.ErrSignature
	// ErrIssuer means the iss claim is missing or not accepted.
	ErrIssuer = keyset.ErrIssuer
	// ErrKeyIssuer means the signature verifies, but with a key whose source
	// is bound to other issuers than the token's iss (see WithDiscovery and
	// ForIssuers): one identity provider's key cannot sign tokens for
	// another. Errors wrapping it also wrap ErrIssuer.
	ErrKeyIssuer = keyset.ErrKeyIssuer
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
