package keyset

import (
	"encoding/json"
	"fmt"

	"github.com/caekit/caekit/internal/jose"
)

// Signed is a compact JWS that is not an access token (an OpenID Connect
// Back-Channel Logout token, a Global Token Revocation JWT) whose signature
// VerifySigned checked with a key bound to its issuer. Its claims other than
// iss (and tid) are not checked: the caller applies its own rules.
// token.Signed is this type.
type Signed struct {
	// Typ is the header typ ("" when absent).
	Typ string
	// Alg and KID are the header alg and kid.
	Alg, KID string
	// Issuer is the iss claim: an issuer the validator accepts, and one the
	// verifying key may sign for. TenantID is the tid claim, if any.
	Issuer, TenantID string
	// Claims is the payload: strict JSON (no duplicate members, UTF-8,
	// bounded depth), members undecoded.
	Claims map[string]json.RawMessage
	// Hash is the token's short hash (token.Hash), safe to log.
	Hash string
}

// VerifySigned checks raw, a compact JWS that is not an access token, with
// the set's size limit, algorithm allow-list, strict JSON and keys, of
// which the verifying one must be bound to the token's iss, which the set
// must accept. It checks no other claim and no typ, never touches the
// network, and its errors wrap the package's sentinel errors and never
// contain the token. token.Validator.VerifySigned documents it for users.
func (s *Set) VerifySigned(raw string) (*Signed, error) {
	if len(raw) > s.maxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(raw), s.maxTokenSize)
	}
	j, err := jose.ParseJWS(raw, s.maxTokenSize, func(alg string) bool { return s.allowed[alg] })
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	iss, _, err := jose.ClaimString(j.Claims, "iss")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	tid, _, err := jose.ClaimString(j.Claims, "tid")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if iss == "" {
		return nil, fmt.Errorf("%w: no iss claim", ErrIssuer)
	}
	if !s.AcceptsIssuer(iss, tid) {
		return nil, fmt.Errorf("%w: iss %q (tid %q) is not accepted", ErrIssuer, jose.Clip(iss), jose.Clip(tid))
	}
	now := s.now()
	var keyBuf [MaxCandidates]*Key
	keys, err := s.Lookup(keyBuf[:0], j.Alg, j.Kid, j.HasKID, now)
	if err != nil {
		return nil, err
	}
	cands := make([]any, 0, len(keys))
	for _, k := range keys {
		cands = append(cands, k.key)
	}
	var bindErr error
	for len(cands) > 0 {
		i, err := jose.VerifyJWS(j, cands)
		if err != nil {
			break
		}
		k := keys[i]
		if k.bind.accepts(iss, tid) {
			return &Signed{Typ: j.Typ, Alg: j.Alg, KID: j.Kid, Issuer: iss, TenantID: tid, Claims: j.Claims, Hash: jose.Hash(raw)}, nil
		}
		if bindErr == nil {
			bindErr = k.bind.check(iss, tid, k.kid)
		}
		keys = append(keys[:i:i], keys[i+1:]...)
		cands = append(cands[:i:i], cands[i+1:]...)
	}
	if bindErr != nil {
		return nil, bindErr
	}
	return nil, fmt.Errorf("%w: %s signature does not verify with key %q", ErrSignature, j.Alg, jose.Clip(j.Kid))
}

// AcceptsIssuer reports whether iss (with tid) is an issuer the set
// accepts.
func (s *Set) AcceptsIssuer(iss, tid string) bool {
	if s.issuers[iss] {
		return true
	}
	for i := range s.tenants {
		if s.tenants[i].match(iss, tid) {
			return true
		}
	}
	return false
}
