package revocation

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is the kind of subject an event or a token names.
type Kind uint8

// The subject kinds. A Key of each kind is built from token claims as follows
// (see Keys in package interceptor/token):
//
//	KindObject        Scope = tid, ID = oid          (users and service principals)
//	KindIssuerSubject Scope = iss, ID = sub
//	KindSession       Scope = iss, ID = sid
//	KindClient        Scope = iss, ID = azp or appid (the client application)
//	KindEmail         Scope = "",  ID = lower-cased email, else upn
//	KindToken         Scope = iss, ID = jti or uti   (one token)
//	KindDevice        Scope = iss, ID = deviceid
//
// Every identifier that only its issuer gives meaning to (sub, sid, client,
// token and device ids) is scoped by the issuer, so that an event about one
// issuer's session "abc" cannot revoke another issuer's session "abc". Object
// ids are scoped by tenant; e-mail addresses are global, and receivers accept
// them only for the domains a transmitter is allowed.
const (
	KindUnknown Kind = iota
	KindObject
	KindIssuerSubject
	KindSession
	KindClient
	KindEmail
	KindToken
	KindDevice
	kindCount
)

var kindNames = [...]string{"unknown", "object", "iss_sub", "session", "client", "email", "token", "device"}

// String returns the stable lower-case name of k, as used in storage encodings.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if i > 0 && n == s {
			return Kind(i), nil
		}
	}
	return KindUnknown, fmt.Errorf("revocation: unknown subject kind %q", s)
}

// Key identifies a subject. It is comparable and used directly as a map key.
type Key struct {
	Kind  Kind   // what ID identifies
	Scope string // tenant id or issuer, or "" (see Kind)
	ID    string // the identifier itself (see Kind)
}

// String renders k as kind:scope:id for logs and errors.
func (k Key) String() string { return k.Kind.String() + ":" + k.Scope + ":" + k.ID }

// Valid reports whether k names a subject.
func (k Key) Valid() bool { return k.Kind > KindUnknown && k.Kind < kindCount && k.ID != "" }

// ObjectKey names a user or service principal by tenant and object id.
// Tenant and object ids that are GUIDs are compared case-insensitively (they
// are canonicalised to lower case, as tokens carry them), other ids exactly.
func ObjectKey(tenantID, objectID string) Key {
	return Key{Kind: KindObject, Scope: lowerGUID(tenantID), ID: lowerGUID(objectID)}
}

// lowerGUID lower-cases s if it is a GUID (8-4-4-4-12 hex digits) and
// returns it unchanged otherwise. It does not allocate for lower-case input.
func lowerGUID(s string) string {
	if len(s) != 36 {
		return s
	}
	upper := false
	for i := 0; i < 36; i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return s
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return s
		}
	}
	if !upper {
		return s
	}
	return strings.ToLower(s)
}

// IssuerSubjectKey names a subject by issuer and sub.
func IssuerSubjectKey(issuer, subject string) Key {
	return Key{Kind: KindIssuerSubject, Scope: issuer, ID: subject}
}

// SessionKey names a session by the issuer of its tokens and its sid.
func SessionKey(issuer, sid string) Key { return Key{Kind: KindSession, Scope: issuer, ID: sid} }

// ClientKey names a client application by the issuer of its tokens and its
// id (azp or appid).
func ClientKey(issuer, clientID string) Key {
	return Key{Kind: KindClient, Scope: issuer, ID: clientID}
}

// EmailKey names a subject by e-mail address, canonicalised to lower case.
func EmailKey(email string) Key {
	return Key{Kind: KindEmail, ID: strings.ToLower(strings.TrimSpace(email))}
}

// TokenKey names one token by issuer and token id (jti or uti).
func TokenKey(issuer, tokenID string) Key {
	return Key{Kind: KindToken, Scope: issuer, ID: tokenID}
}

// DeviceKey names a device by the issuer of its tokens and its device id.
func DeviceKey(issuer, deviceID string) Key {
	return Key{Kind: KindDevice, Scope: issuer, ID: deviceID}
}

// Type is the type of a critical event.
type Type uint8

// The critical event types: every event in Entra's list, plus those that CAEP
// and RISC define and that revoke tokens.
const (
	// TypeUnknown is the zero Type; an Event of this type is invalid.
	TypeUnknown                  Type = iota
	TypeUserDisabled                  // account deleted or disabled (disabled part)
	TypeUserDeleted                   // account deleted or purged
	TypePasswordChanged               // password changed or reset
	TypeMFAEnabled                    // MFA enabled for the user
	TypeRefreshTokensRevoked          // admin revoked all refresh tokens / all sessions
	TypeUserRiskHigh                  // high user risk
	TypeServicePrincipalDisabled      // workload identity disabled
	TypeServicePrincipalDeleted       // workload identity deleted
	TypeServicePrincipalRiskHigh      // high service principal risk
	TypeSessionRevoked                // one session revoked, by sid
	TypeTokenClaimsChanged            // CAEP token-claims-change
	TypeDeviceNotCompliant            // CAEP device-compliance-change to not-compliant
	TypeAssuranceDecreased            // CAEP assurance-level-change with decrease
	TypeCredentialCompromised         // RISC credential-compromise / account-credential-change-required
	typeCount
)

var typeNames = [...]string{
	"unknown", "user_disabled", "user_deleted", "password_changed", "mfa_enabled",
	"refresh_tokens_revoked", "user_risk_high", "service_principal_disabled",
	"service_principal_deleted", "service_principal_risk_high", "session_revoked",
	"token_claims_changed", "device_not_compliant", "assurance_decreased",
	"credential_compromised",
}

// String returns the stable snake_case name of t, as used in storage encodings.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType is the inverse of Type.String.
func ParseType(s string) (Type, error) {
	for i, n := range typeNames {
		if i > 0 && n == s {
			return Type(i), nil
		}
	}
	return TypeUnknown, fmt.Errorf("revocation: unknown event type %q", s)
}

// Types lists every known event type, for tests and documentation.
func Types() []Type {
	ts := make([]Type, 0, typeCount-1)
	for t := TypeUnknown + 1; t < typeCount; t++ {
		ts = append(ts, t)
	}
	return ts
}

// Event is one critical event about one subject.
type Event struct {
	// ID identifies the event, e.g. the jti of the SET that carried it. Optional.
	ID string
	// Type is what happened.
	Type Type
	// Subject is whom it happened to.
	Subject Key
	// Time is when it happened, by the event's own clock (CAEP event_timestamp,
	// else the SET's toe, else its iat). Tokens issued at or before Time are revoked.
	Time time.Time
}

// Validation errors returned by Event.Validate and Event.ValidateAt.
var (
	ErrNoSubject = errors.New("revocation: event has no valid subject")
	ErrNoType    = errors.New("revocation: event has no known type")
	ErrNoTime    = errors.New("revocation: event has no time")
	// ErrFutureEvent: the event's time is more than MaxFutureSkew ahead of
	// the store's clock. Such an event would revoke tokens not yet issued
	// and, kept for its retention after that future time, linger for as
	// long as the sender chose; it is refused, never clamped.
	ErrFutureEvent = errors.New("revocation: event time is in the future")
)

// MaxFutureSkew is how far ahead of a store's clock an event's time may be:
// clock skew between an IdP and this host, with room to spare. Every store
// refuses events further ahead (ErrFutureEvent).
const MaxFutureSkew = 5 * time.Minute

// Validate reports what is wrong with e, if anything.
func (e Event) Validate() error {
	switch {
	case !e.Subject.Valid():
		return fmt.Errorf("%w (subject %s)", ErrNoSubject, e.Subject)
	case e.Type <= TypeUnknown || e.Type >= typeCount:
		return fmt.Errorf("%w (type %d)", ErrNoType, e.Type)
	case e.Time.IsZero():
		return ErrNoTime
	}
	return nil
}

// ValidateAt is Validate plus the check that e is not dated more than
// MaxFutureSkew after now, the store's clock.
func (e Event) ValidateAt(now time.Time) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.Time.Sub(now) > MaxFutureSkew {
		return fmt.Errorf("%w: %s is %v ahead of this host's clock (at most %v allowed)",
			ErrFutureEvent, e.Time.UTC().Format(time.RFC3339), e.Time.Sub(now).Round(time.Second), MaxFutureSkew)
	}
	return nil
}

// NotBeforeTrust is how far after its iat a token's nbf is trusted as its
// issue time (W in the same-second rule, see RevokesToken). An IdP that
// honours a revocation challenge's nbf request may mint the token during the
// event's own second with nbf one second later; trusting that nbf is what
// lets such a token through. Bounding the trust means that a token minted
// with a far-future nbf (asked for on purpose, before an event) outlives
// later events by at most NotBeforeTrust. A validator's nbf leeway must be
// at least this long for such tokens to be usable at once (interceptor/token's
// DefaultLeeway is 60 s).
const NotBeforeTrust = 3 * time.Second

// issuedAt is the effective issue time of a token with the given iat and nbf
// claims (zero when absent), at one-second resolution: iat, or nbf when nbf
// is later than iat, but never more than NotBeforeTrust after iat. A token
// without iat has the zero effective issue time: every event revokes it.
func issuedAt(iat, nbf time.Time) time.Time {
	if iat.IsZero() {
		return time.Time{}
	}
	at := iat.Unix()
	if !nbf.IsZero() && nbf.Unix() > at {
		at = min(nbf.Unix(), at+int64(NotBeforeTrust/time.Second))
	}
	return time.Unix(at, 0)
}

// NotBefore is the earliest issue time of a token that e does not revoke:
// the first second after e's second. A revocation challenge asks for it as
// nbf, so that a token that satisfies the challenge literally is accepted.
func (e Event) NotBefore() time.Time { return time.Unix(e.Time.Unix()+1, 0) }

// RevokesToken reports whether e revokes a token with the given iat and nbf
// claims (zero when absent). The same-second rule: a token is revoked when
// its effective issue time (iat, or nbf when later but at most
// NotBeforeTrust after iat; zero without iat) is at or before the event's
// second; times are compared at one-second resolution, as JWT NumericDates
// are.
//
// So a token issued (or, within NotBeforeTrust, not valid before) the second
// after the event is accepted; a token issued during the event's second is
// refused, since it may predate the event within that second; and a token
// issued before the event is refused, except one whose nbf the IdP set
// up to NotBeforeTrust ahead of its iat and past the event's second.
func (e Event) RevokesToken(iat, nbf time.Time) bool {
	return issuedAt(iat, nbf).Unix() <= e.Time.Unix()
}

// Revokes reports whether e revokes a token issued at iat that has no nbf
// later than its iat: RevokesToken(iat, time.Time{}). An event at or after
// the token's issue second revokes it.
func (e Event) Revokes(iat time.Time) bool {
	return e.RevokesToken(iat, time.Time{})
}
