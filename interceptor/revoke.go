package interceptor

import (
	"context"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	"github.com/caekit/caekit/revocation"
)

// revocationCheck is the built-in first check: it denies a token that an
// event in the store revokes (event second at or after the token's effective
// issue time, revocation.Event.RevokesToken: iat, or an nbf trusted at most
// revocation.NotBeforeTrust ahead of it), and
// fails closed with codes.Unavailable while the store reports itself unhealthy.
// It runs for every token; only the form of the challenge depends on the
// client's capability.
type revocationCheck struct {
	store revocation.Store
	// gen counts the store's changes (its Subscribe notifications, which
	// come after the change is visible to Lookup); verdicts remembers, per
	// verified token, the gen value read before look-ups that found it not
	// revoked. While gen has not moved, no event can have revoked it since.
	gen      *atomic.Uint64
	verdicts *verdictCache
}

// Check denies a token that a stored event revokes, and every token while
// the store is unhealthy.
func (rc revocationCheck) Check(_ context.Context, r *check.Request) *check.Denial {
	return rc.check(r.Claims)
}

// check is Check for the token of claims.
func (rc revocationCheck) check(claims *Claims) *check.Denial {
	if d := storeHealth(rc.store); d != nil {
		return d
	}
	var g uint64
	if rc.gen != nil {
		g = rc.gen.Load()
		if rc.verdicts.passed(claims, g) {
			return nil
		}
	}
	var (
		latest  revocation.Event
		revoked bool
	)
	iat, nbf := claims.IssuedAt, claims.NotBefore
	for _, k := range claims.Keys() {
		ev, ok := rc.store.Lookup(k)
		if ok && ev.RevokesToken(iat, nbf) && (!revoked || ev.Time.After(latest.Time)) {
			latest, revoked = ev, true
		}
	}
	if !revoked {
		if rc.gen != nil {
			rc.verdicts.remember(claims, g)
		}
		return nil
	}
	return RevocationDenial(latest, iat)
}

// The verdict cache's shape: 1<<verdictSetBits sets of verdictWays slots,
// maxVerdicts slots in all (its bound). A token's verdict may be in either
// slot of its set (remember is written for two ways).
const (
	verdictWays    = 2
	verdictSetBits = 11
	maxVerdicts    = verdictWays << verdictSetBits // 4096
)

// verdictCache maps verified-token Claims (by pointer: a verified-token
// cache hands out the same *Claims for the same token, and an entry keeps
// its Claims alive, so a pointer is never reused for another token while
// it is a key) to the store generation at which the token was found not
// revoked. It is a two-way set-associative table of immutable entries read
// without locks: a look-up is two atomic loads and no write, so concurrent
// calls of a hot token share its cache lines read-only (a read lock, the
// former shards' RWMutex, wrote its reader count twice per call). A new
// or renewed entry goes first in its set and moves the other one second; a
// third token of the same set evicts the least recently remembered one,
// which then costs its next call the store look-ups, nothing else.
type verdictCache struct {
	slots [maxVerdicts]atomic.Pointer[verdict]
}

type verdict struct {
	c   *Claims
	gen uint64
}

// set returns the slots c's verdict may be in.
func (vc *verdictCache) set(c *Claims) []atomic.Pointer[verdict] {
	// Fibonacci hashing of the address: its top bits pick the set.
	h := uint64(uintptr(unsafe.Pointer(c))) * 0x9e3779b97f4a7c15
	i := int(h>>(64-verdictSetBits)) * verdictWays
	return vc.slots[i : i+verdictWays : i+verdictWays]
}

// passed reports whether c was found not revoked at generation g.
func (vc *verdictCache) passed(c *Claims, g uint64) bool {
	set := vc.set(c)
	for i := range set {
		if v := set[i].Load(); v != nil && v.c == c {
			return v.gen == g
		}
	}
	return false
}

// remember records that c was found not revoked by look-ups that started at
// generation g. Racing calls may lose an entry or leave a stale one; either
// only costs a later call the store look-ups.
func (vc *verdictCache) remember(c *Claims, g uint64) {
	set := vc.set(c)
	nv := &verdict{c: c, gen: g}
	first := set[0].Load()
	if first == nil || first.c == c {
		set[0].Store(nv)
		return
	}
	set[1].Store(first) // c's old entry, if second, goes
	set[0].Store(nv)
}

// len returns the number of entries (for tests).
func (vc *verdictCache) len() int {
	n := 0
	for i := range vc.slots {
		if vc.slots[i].Load() != nil {
			n++
		}
	}
	return n
}

// storeHealth returns the fail-closed denial while store is unhealthy.
func storeHealth(store revocation.Store) *check.Denial {
	if err := store.Health(); err != nil {
		return &check.Denial{
			Code:        codeUnavailable,
			Reason:      caev1.Reason_REASON_STATE_UNAVAILABLE,
			Description: "revocation state cannot be trusted, failing closed; try again later",
		}
	}
	return nil
}

// RevocationDenial returns the denial for a token issued at iat and revoked by
// ev: reason from the event type (ReasonForType), and Entra's claims challenge
// asking for a token not valid before the second after the event,
// {"access_token":{"nbf":{"essential":true,"value":"<event unix time + 1>"}}}
// (revocation.Event.NotBefore): a token issued in the event's own second is
// still revoked, so asking for the event's second would ask for a token that
// is refused again.
func RevocationDenial(ev revocation.Event, iat time.Time) *check.Denial {
	desc := "token revoked: a " + ev.Type.String() + " event at " + ev.Time.UTC().Format(time.RFC3339) +
		" invalidates tokens issued in or before its second"
	if !iat.IsZero() {
		desc += " (this one was issued at " + iat.UTC().Format(time.RFC3339) + ")"
	}
	return &check.Denial{
		Reason:      ReasonForType(ev.Type),
		Claims:      challenge.NotBeforeClaims(ev.NotBefore()),
		Description: desc + "; get a new token",
		EventTime:   ev.Time,
		EventID:     ev.ID,
	}
}

var typeReasons = map[revocation.Type]caev1.Reason{
	revocation.TypeUserDisabled:             caev1.Reason_REASON_USER_DISABLED,
	revocation.TypeUserDeleted:              caev1.Reason_REASON_USER_DELETED,
	revocation.TypePasswordChanged:          caev1.Reason_REASON_PASSWORD_CHANGED,
	revocation.TypeMFAEnabled:               caev1.Reason_REASON_MFA_ENABLED,
	revocation.TypeRefreshTokensRevoked:     caev1.Reason_REASON_REFRESH_TOKENS_REVOKED,
	revocation.TypeUserRiskHigh:             caev1.Reason_REASON_USER_RISK_HIGH,
	revocation.TypeServicePrincipalDisabled: caev1.Reason_REASON_SERVICE_PRINCIPAL_DISABLED,
	revocation.TypeServicePrincipalDeleted:  caev1.Reason_REASON_SERVICE_PRINCIPAL_DELETED,
	revocation.TypeServicePrincipalRiskHigh: caev1.Reason_REASON_SERVICE_PRINCIPAL_RISK_HIGH,
	revocation.TypeSessionRevoked:           caev1.Reason_REASON_SESSION_REVOKED,
	revocation.TypeTokenClaimsChanged:       caev1.Reason_REASON_TOKEN_CLAIMS_CHANGED,
	revocation.TypeDeviceNotCompliant:       caev1.Reason_REASON_DEVICE_NOT_COMPLIANT,
	revocation.TypeAssuranceDecreased:       caev1.Reason_REASON_ASSURANCE_DECREASED,
	revocation.TypeCredentialCompromised:    caev1.Reason_REASON_CREDENTIAL_COMPROMISED,
}

// ReasonForType maps a critical event type to the reason its denials carry.
// An unknown type maps to REASON_TOKEN_INVALID: the token is still refused.
func ReasonForType(t revocation.Type) caev1.Reason {
	if r, ok := typeReasons[t]; ok {
		return r
	}
	return caev1.Reason_REASON_TOKEN_INVALID
}
