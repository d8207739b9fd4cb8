package keyset

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caekit/caekit/internal/jose"
)

// methods maps every supported alg to its verifier; the table is shared
// with the SET receiver (see internal/jose).
var methods = jose.Methods

func isHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

// keyFits reports whether key may verify alg: the key type must match the
// algorithm family (and, for ECDSA, the curve). HMAC secrets are never
// passed here: they live in their own table. The rule is jose.KeyFits,
// shared with the SET receiver.
func keyFits(alg string, key any) error {
	if err := jose.KeyFits(alg, key, MinRSABits); err != nil {
		return fmt.Errorf("%w: %w", ErrAlgorithm, err)
	}
	return nil
}

// Key is one verification key as a Set knows it. Verified-token
// cache entries point at the Key that verified them, so that a key which
// leaves its JWK Set stops serving cache hits too once its grace period ends.
type Key struct {
	kid string
	alg string // the JWK's alg member, "" when absent
	key any    // a public key, or []byte for an HMAC secret
	// bind is the set of issuers the key may sign for, fixed at creation:
	// checked once per token, when it is verified, so cache hits need not.
	bind *issuerBinding
	// until is the unix-nanosecond instant from which the key is no longer
	// accepted: math.MaxInt64 while it is configured or published, the
	// withdrawal time plus the rotation grace once it left its JWK Set.
	until atomic.Int64
}

func newKey(kid, alg string, key any, bind *issuerBinding) *Key {
	r := &Key{kid: kid, alg: alg, key: key, bind: bind}
	r.until.Store(math.MaxInt64)
	return r
}

// NewKey returns a key with no issuer binding (one that signs for no
// issuer), accepted until withdrawn: for tests of what holds a *Key.
func NewKey(kid, alg string, key any) *Key { return newKey(kid, alg, key, nil) }

// Live reports whether the key is accepted at now (unix nanos).
func (r *Key) Live(now int64) bool { return now < r.until.Load() }

// Withdraw sets the unix-nanosecond instant from which the key is no longer
// accepted (math.MaxInt64: accepted again). The key sets call it when a key
// leaves or comes back to its JWK Set.
func (r *Key) Withdraw(until int64) { r.until.Store(until) }

// KID is the key id.
func (r *Key) KID() string { return r.kid }

// Public is the verification key: a crypto.PublicKey, or []byte for an
// HMAC secret.
func (r *Key) Public() any { return r.key }

// Accepts reports whether the key may sign for iss (with tid).
func (r *Key) Accepts(iss, tid string) bool { return r.bind.accepts(iss, tid) }

// CheckIssuer returns nil if the key may sign for iss (with tid), else an
// error wrapping ErrIssuer and ErrKeyIssuer that names the key's source and
// the issuers it signs for.
func (r *Key) CheckIssuer(iss, tid string) error { return r.bind.check(iss, tid, r.kid) }

// MaxCandidates bounds how many keys sharing one kid a token is checked
// against (at most one per key source: a JWK Set keeps only the first key
// of a kid), so that colliding kids cost a bounded number of signature
// checks.
const MaxCandidates = 8

// Lookup finds the keys a token header may name at now: for a kid, every
// key of that kid that fits alg, from the static keys and from each remote
// source, since independent sources may publish the same kid (issue 12 item
// 8); the caller verifies the signature with each and keeps those bound to
// the token's issuer. It never touches the network: on an unknown kid it
// asks the remote sources for an asynchronous, rate-limited refresh and
// fails at once. The keys are appended to dst[:0].
func (s *Set) Lookup(dst []*Key, alg, kid string, hasKID bool, now time.Time) ([]*Key, error) {
	if isHMAC(alg) {
		if !hasKID && len(s.hmacKeys) == 1 {
			for _, k := range s.hmacKeys {
				return append(dst, k), nil
			}
		}
		if k, ok := s.hmacKeys[kid]; ok {
			return append(dst, k), nil
		}
		return nil, fmt.Errorf("%w: no HMAC key with kid %q", ErrUnknownKey, jose.Clip(kid))
	}

	if !hasKID {
		k, err := s.onlyKey(alg, now)
		if err != nil {
			return nil, err
		}
		return append(dst, k), nil
	}
	found := dst[:0]
	var firstErr error // why a key with this kid was passed over
	consider := func(k *Key) {
		if err := keyFits(alg, k.key); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		if len(found) < MaxCandidates {
			found = append(found, k)
		}
	}
	if k, ok := s.staticKeys[kid]; ok {
		consider(k)
	}
	for _, r := range s.remotes {
		k, err := r.key(alg, kid, now)
		switch {
		case err == nil:
			consider(k)
		case !errors.Is(err, errKeyNotFound):
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if len(found) > 0 {
		return found, nil
	}
	if firstErr != nil {
		return nil, firstErr
	}
	for _, r := range s.remotes {
		r.requestRefresh()
	}
	if len(s.remotes) > 0 {
		return nil, fmt.Errorf("%w: kid %q not in the key sets; a background refresh was requested", ErrUnknownKey, jose.Clip(kid))
	}
	return nil, fmt.Errorf("%w: kid %q not configured", ErrUnknownKey, jose.Clip(kid))
}

// onlyKey serves tokens without a kid: they are accepted only when exactly
// one known key fits alg, so a kid-less token never costs more than one
// signature check. Keys withdrawn from their JWK Set are not considered.
func (s *Set) onlyKey(alg string, now time.Time) (*Key, error) {
	var found *Key
	n := 0
	consider := func(k *Key) {
		if keyFits(alg, k.key) == nil && (k.alg == "" || k.alg == alg) {
			found = k
			n++
		}
	}
	for _, k := range s.staticKeys {
		consider(k)
	}
	for _, r := range s.remotes {
		if snap := r.keys.Load(); snap != nil {
			for _, k := range snap.list {
				consider(k)
			}
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("%w: token has no kid and %d known keys fit alg %s; exactly one must", ErrUnknownKey, n, alg)
	}
	return found, nil
}
