package ssf

import (
	"encoding/json"
	"github.com/caekit/caekit/revocation/ssf/internal/setjson"
	"strings"

	"github.com/caekit/caekit/revocation"
)

// Event-type URI prefixes.
const (
	CAEPPrefix = "https://schemas.openid.net/secevent/caep/event-type/"
	RISCPrefix = "https://schemas.openid.net/secevent/risc/event-type/"
	SSFPrefix  = "https://schemas.openid.net/secevent/ssf/event-type/"
)

// Event-type URIs this package knows.
const (
	CAEPSessionRevoked         = CAEPPrefix + "session-revoked"
	CAEPTokenClaimsChange      = CAEPPrefix + "token-claims-change"
	CAEPCredentialChange       = CAEPPrefix + "credential-change"
	CAEPAssuranceLevelChange   = CAEPPrefix + "assurance-level-change"
	CAEPDeviceComplianceChange = CAEPPrefix + "device-compliance-change"
	CAEPSessionEstablished     = CAEPPrefix + "session-established"
	CAEPSessionPresented       = CAEPPrefix + "session-presented"
	CAEPRiskLevelChange        = CAEPPrefix + "risk-level-change"

	RISCAccountDisabled                = RISCPrefix + "account-disabled"
	RISCAccountEnabled                 = RISCPrefix + "account-enabled"
	RISCAccountPurged                  = RISCPrefix + "account-purged"
	RISCAccountCredentialChangeRequire = RISCPrefix + "account-credential-change-required"
	RISCCredentialCompromise           = RISCPrefix + "credential-compromise"
	RISCIdentifierChanged              = RISCPrefix + "identifier-changed"
	RISCIdentifierRecycled             = RISCPrefix + "identifier-recycled"
	RISCRecoveryActivated              = RISCPrefix + "recovery-activated"
	RISCRecoveryInformationChanged     = RISCPrefix + "recovery-information-changed"
	RISCOptIn                          = RISCPrefix + "opt-in"
	RISCOptOutInitiated                = RISCPrefix + "opt-out-initiated"
	RISCOptOutCancelled                = RISCPrefix + "opt-out-cancelled"
	RISCOptOutEffective                = RISCPrefix + "opt-out-effective"
	RISCSessionsRevoked                = RISCPrefix + "sessions-revoked" // deprecated: use CAEPSessionRevoked

	SSFVerification  = SSFPrefix + "verification"
	SSFStreamUpdated = SSFPrefix + "stream-updated"
)

// recordedTypes are known events that never revoke.
var recordedTypes = map[string]bool{
	CAEPSessionEstablished: true, CAEPSessionPresented: true,
	RISCAccountEnabled: true, RISCIdentifierChanged: true, RISCIdentifierRecycled: true,
	RISCRecoveryActivated: true, RISCRecoveryInformationChanged: true, RISCOptIn: true,
	RISCOptOutInitiated: true, RISCOptOutCancelled: true, RISCOptOutEffective: true,
	SSFVerification: true, SSFStreamUpdated: true,
}

// MFACredentialTypes are the CAEP credential_type values whose creation means
// MFA was enabled (TypeMFAEnabled). x509, pin and verifiable-credential are
// deliberately absent (see the package documentation).
var MFACredentialTypes = map[string]bool{
	"fido2-platform": true, "fido2-roaming": true, "fido-u2f": true,
	"phone-voice": true, "phone-sms": true, "app": true,
}

// WorkloadPrincipals are the CAEP risk-level-change principal values (compared
// case-insensitively) that name a workload rather than a user: their HIGH risk
// maps to TypeServicePrincipalRiskHigh.
var WorkloadPrincipals = map[string]bool{
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
}

// Revokes reports whether the event revokes tokens.
func (c Classification) Revokes() bool { return c.Type != revocation.TypeUnknown }

// Classify maps an event type URI and its payload onto a revocation type. It
// never fails: a payload field of the wrong type reads as absent.
func Classify(eventType string, payload map[string]json.RawMessage) Classification {
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
		case MFACredentialTypes[ct] && ch == "create":
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
		if WorkloadPrincipals[strings.ToLower(get("principal"))] {
			return Classification{Type: revocation.TypeServicePrincipalRiskHigh, Known: true}
		}
		return Classification{Type: revocation.TypeUserRiskHigh, Known: true}
	case RISCAccountDisabled:
		return Classification{Type: revocation.TypeUserDisabled, Known: true}
	case RISCAccountPurged:
		return Classification{Type: revocation.TypeUserDeleted, Known: true}
	case RISCAccountCredentialChangeRequire, RISCCredentialCompromise:
		return Classification{Type: revocation.TypeCredentialCompromised, Known: true}
	case RISCSessionsRevoked:
		return Classification{Type: revocation.TypeRefreshTokensRevoked, Known: true}
	}
	if recordedTypes[eventType] {
		return Classification{Known: true, Note: "informational event"}
	}
	return Classification{}
}
