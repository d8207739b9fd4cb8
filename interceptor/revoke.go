package interceptor

import (
	"context"
	"time"

	"github.com/caekit/caekit/interceptor/challenge"
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
}

// Check denies a token that a stored event revokes, and every token while
// the store is unhealthy.
func (rc revocationCheck) Check(_ context.Context, r *Request) *Denial {
	if d := storeHealth(rc.store); d != nil {
		return d
	}
	var (
		latest  revocation.Event
		revoked bool
	)
	iat, nbf := r.Claims.IssuedAt, r.Claims.NotBefore
	for _, k := range r.Claims.Keys() {
		ev, ok := rc.store.Lookup(k)
		if ok && ev.RevokesToken(iat, nbf) && (!revoked || ev.Time.After(latest.Time)) {
			latest, revoked = ev, true
		}
	}
	if !revoked {
		return nil
	}
	return RevocationDenial(latest, iat)
}

// storeHealth returns the fail-closed denial while store is unhealthy.
func storeHealth(store revocation.Store) *Denial {
	if err := store.Health(); err != nil {
		return &Denial{
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
func RevocationDenial(ev revocation.Event, iat time.Time) *Denial {
	desc := "token revoked: a " + ev.Type.String() + " event at " + ev.Time.UTC().Format(time.RFC3339) +
		" invalidates tokens issued in or before its second"
	if !iat.IsZero() {
		desc += " (this one was issued at " + iat.UTC().Format(time.RFC3339) + ")"
	}
	return &Denial{
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
