package token

import "github.com/caekit/caekit/internal/keyset"

// Signed is a compact JWS that is not an access token (an OpenID Connect
// Back-Channel Logout token, a Global Token Revocation JWT) whose signature
// VerifySigned checked with a key bound to its issuer. Its claims other than
// iss (and tid) are not checked: the caller applies its own rules.
//
// Its fields: Typ is the header typ ("" when absent); Alg and KID are the
// header alg and kid; Issuer is the iss claim (an issuer the validator
// accepts, and one the verifying key may sign for) and TenantID the tid
// claim, if any; Claims is the payload (strict JSON: no duplicate members,
// UTF-8, bounded depth), members undecoded; Hash is Hash(raw), safe to log.
type Signed = keyset.Signed

// VerifySigned checks raw, a compact JWS issued by an identity provider this
// validator trusts but which is not an access token, with the validator's
// rules and keys: its size limit (WithMaxTokenSize), algorithm allow-list
// (WithAlgorithms), strict JSON, and keys (static or from discovery and
// JWKS URLs, refreshed in the background), of which the verifying one must
// be bound to the token's iss, which the validator must accept (WithIssuer,
// WithTenantIssuer). It is the seam through which caekit's logout receivers
// (revocation/logout) share the validator's key sources instead of running
// their own: it never touches the network.
//
// It checks no other claim (not aud, exp or iat) and no typ: the caller
// does. Errors wrap the package's sentinel errors (ErrMalformed,
// ErrAlgorithm, ErrUnknownKey, ErrSignature, ErrIssuer) and never contain
// the token.
func (v *Validator) VerifySigned(raw string) (*Signed, error) { return v.keys.VerifySigned(raw) }
