package ssf

import (
	"encoding/json"
	"github.com/caekit/caekit/revocation/ssf/internal/setjson"
	"strings"

	"github.com/caekit/caekit/revocation"
)

// Event-type URI prefixes.
const (
	caepPrefix = "https://schemas.openid.net/secevent/caep/event-type/"
	riscPrefix = "https://schemas.openid.net/secevent/risc/event-type/"
	ssfPrefix  = "https://schemas.openid.net/secevent/ssf/event-type/"
)

// The event-type URIs a reader of this package needs: every CAEP event
// type, the RISC ones that revoke, and SSF's own. Classify knows the other
// RISC event types too (account-enabled, identifier-changed and -recycled,
// recovery-activated, recovery-information-changed, opt-in, opt-out-*), and
// the deprecated RISC sessions-revoked (use CAEPSessionRevoked).
const (
	CAEPSessionRevoked         = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	CAEPTokenClaimsChange      = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
	CAEPCredentialChange       = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	CAEPAssuranceLevelChange   = "https://schemas.openid.net/secevent/caep/event-type/assurance-level-change"
	CAEPDeviceComplianceChange = "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change"
	CAEPSessionEstablished     = "https://schemas.openid.net/secevent/caep/event-type/session-established"
	CAEPSessionPresented       = "https://schemas.openid.net/secevent/caep/event-type/session-presented"
	CAEPRiskLevelChange        = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change"

	RISCAccountDisabled                = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	RISCAccountPurged                  = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	RISCAccountCredentialChangeRequire = "https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required"
	RISCCredentialCompromise           = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise"

	SSFVerification  = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	SSFStreamUpdated = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
)

// The RISC event types Classify knows that a caller need not name.
const (
	riscAccountEnabled             = riscPrefix + "account-enabled"
	riscIdentifierChanged          = riscPrefix + "identifier-changed"
	riscIdentifierRecycled         = riscPrefix + "identifier-recycled"
	riscRecoveryActivated          = riscPrefix + "recovery-activated"
	riscRecoveryInformationChanged = riscPrefix + "recovery-information-changed"
	riscOptIn                      = riscPrefix + "opt-in"
	riscOptOutInitiated            = riscPrefix + "opt-out-initiated"
	riscOptOutCancelled            = riscPrefix + "opt-out-cancelled"
	riscOptOutEffective            = riscPrefix + "opt-out-effective"
	riscSessionsRevoked            = riscPrefix + "sessions-revoked" // deprecated: use CAEPSessionRevoked
)

// recordedTypes are known events that never revoke.
var recordedTypes = map[string]bool{
	CAEPSessionEstablished: true, CAEPSessionPresented: true,
	riscAccountEnabled: true, riscIdentifierChanged: true, riscIdentifierRecycled: true,
	riscRecoveryActivated: true, riscRecoveryInformationChanged: true, riscOptIn: true,
	riscOptOutInitiated: true, riscOptOutCancelled: true, riscOptOutEffective: true,
	SSFVerification: true, SSFStreamUpdated: true,
}

// mfaCredentialTypes are the CAEP credential_type values whose creation means
// MFA was enabled (TypeMFAEnabled). x509, pin and verifiable-credential are
// deliberately absent (see the package documentation).
var mfaCredentialTypes = map[string]bool{
	"fido2-platform": true, "fido2-roaming": true, "fido-u2f": true,
	"phone-voice": true, "phone-sms": true, "app": true,
}

// workloadPrincipals are the CAEP risk-level-change principal values (compared
// case-insensitively) that name a workload rather than a user: their HIGH risk
// maps to TypeServicePrincipalRiskHigh.
var workloadPrincipals = map[string]bool{
	"workload": true, "service": true, "service_principal": true, "service-principal": true,
	"non_person_entity": true, "non-person-entity": true, "application": true, "ai_agent": true,
}

// Classification is what an event means for revocation.
type Classification struct {
	// Type is the revocation type; TypeUnknown when the event does not revoke.
	Type revocation.Type
	// Known is false for an event type this package does not know.
	Known bool
	// Note says, for a known event that does not revoke, why (for logs).
	Note string
	// Name is the event type's short name, as metrics and logs use it:
	// "caep.session-revoked", "risc.account-disabled", "ssf.verification",
	// ...; "_OTHER" for a type this package does not know, so that a
	// transmitter cannot grow a metric's cardinality.
	Name string
}

// Revokes reports whether the event revokes tokens.
func (c Classification) Revokes() bool { return c.Type != revocation.TypeUnknown }

// Classify maps an event type URI and its payload onto a revocation type. It
// never fails: a payload field of the wrong type reads as absent.
func Classify(eventType string, payload map[string]json.RawMessage) Classification {
	c := classify(eventType, payload)
	c.Name = eventTypeName(eventType)
	return c
}

func classify(eventType string, payload map[string]json.RawMessage) Classification {
	get := func(name string) string {
		v, _ := setjson.String(payload, name)
		return v
	}
	switch eventType {
	case CAEPSessionRevoked:
		return Classification{Type: revocation.TypeSessionRevoked, Known: true}
	case CAEPTokenClaimsChange:
		return Classification{Type: revocation.TypeTokenClaimsChanged, Known: true}
	case CAEPCredentialChange:
		ct, ch := strings.ToLower(get("credential_type")), strings.ToLower(get("change_type"))
		switch {
		case ct == "password":
			return Classification{Type: revocation.TypePasswordChanged, Known: true}
		case mfaCredentialTypes[ct] && ch == "create":
			return Classification{Type: revocation.TypeMFAEnabled, Known: true}
		}
		return Classification{Known: true, Note: "credential-change " + ct + "/" + ch + " does not revoke"}
	case CAEPAssuranceLevelChange:
		if strings.EqualFold(get("change_direction"), "decrease") {
			return Classification{Type: revocation.TypeAssuranceDecreased, Known: true}
		}
		return Classification{Known: true, Note: "assurance level did not decrease"}
	case CAEPDeviceComplianceChange:
		if strings.EqualFold(get("current_status"), "not-compliant") {
			return Classification{Type: revocation.TypeDeviceNotCompliant, Known: true}
		}
		return Classification{Known: true, Note: "device is compliant"}
	case CAEPRiskLevelChange:
		if !strings.EqualFold(get("current_level"), "high") {
			return Classification{Known: true, Note: "risk level is not HIGH"}
		}
		if workloadPrincipals[strings.ToLower(get("principal"))] {
			return Classification{Type: revocation.TypeServicePrincipalRiskHigh, Known: true}
		}
		return Classification{Type: revocation.TypeUserRiskHigh, Known: true}
	case RISCAccountDisabled:
		return Classification{Type: revocation.TypeUserDisabled, Known: true}
	case RISCAccountPurged:
		return Classification{Type: revocation.TypeUserDeleted, Known: true}
	case RISCAccountCredentialChangeRequire, RISCCredentialCompromise:
		return Classification{Type: revocation.TypeCredentialCompromised, Known: true}
	case riscSessionsRevoked:
		return Classification{Type: revocation.TypeRefreshTokensRevoked, Known: true}
	}
	if recordedTypes[eventType] {
		return Classification{Known: true, Note: "informational event"}
	}
	return Classification{}
}

// eventTypeOther is the Classification.Name of event types this package does not
// know.
const eventTypeOther = "_OTHER"

// shortTypes maps every known event-type URI to its metric name.
var shortTypes = func() map[string]string {
	m := map[string]string{}
	for _, uri := range []string{
		CAEPSessionRevoked, CAEPTokenClaimsChange, CAEPCredentialChange, CAEPAssuranceLevelChange,
		CAEPDeviceComplianceChange, CAEPSessionEstablished, CAEPSessionPresented, CAEPRiskLevelChange,
		RISCAccountDisabled, riscAccountEnabled, RISCAccountPurged, RISCAccountCredentialChangeRequire,
		RISCCredentialCompromise, riscIdentifierChanged, riscIdentifierRecycled, riscRecoveryActivated,
		riscRecoveryInformationChanged, riscOptIn, riscOptOutInitiated, riscOptOutCancelled,
		riscOptOutEffective, riscSessionsRevoked, SSFVerification, SSFStreamUpdated,
	} {
		for prefix, name := range map[string]string{caepPrefix: "caep.", riscPrefix: "risc.", ssfPrefix: ""} {
			if rest, ok := strings.CutPrefix(uri, prefix); ok {
				m[uri] = name + rest
			}
		}
	}
	return m
}()

// eventTypeName returns the Name of an event-type URI (see Classification).
func eventTypeName(uri string) string {
	if n, ok := shortTypes[uri]; ok {
		return n
	}
	return eventTypeOther
}
