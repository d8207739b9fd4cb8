package logout

import "github.com/caekit/caekit/revocation"

// Outcome is what became of one request.
type Outcome uint8

// The outcomes reported to an Observer.
const (
	// OutcomeStored: the event was stored; the request was acknowledged.
	OutcomeStored Outcome = iota + 1
	// OutcomeRejected: the request was refused (Observation.Code, Status).
	OutcomeRejected
	// OutcomeReplayed: the (iss, jti) was seen before; refused.
	OutcomeReplayed
	// OutcomeStoreFailed: the store failed; answered 503 and not
	// acknowledged, so the IdP may send it again.
	OutcomeStoreFailed
)

var outcomeNames = [...]string{"", "stored", "rejected", "replayed", "store_failed"}

// String returns the snake_case name of o, suitable as a metric label.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && o > 0 {
		return outcomeNames[o]
	}
	return "unknown"
}

// The channels, as Observation.Channel and the AttrChannel metric attribute.
const (
	// ChannelBackChannelLogout is OpenID Connect Back-Channel Logout 1.0.
	ChannelBackChannelLogout = "backchannel_logout"
	// ChannelGTR is Global Token Revocation
	// (draft-parecki-oauth-global-token-revocation; Okta Universal Logout).
	ChannelGTR = "global_token_revocation"
)

// Observation describes one processed request, for metrics and audit.
type Observation struct {
	// Channel is ChannelBackChannelLogout or ChannelGTR.
	Channel string
	// Outcome is what became of the request.
	Outcome Outcome
	// Status is the HTTP status answered.
	Status int
	// Code is the error code answered ("" on success).
	Code string
	// Issuer and JTI are the verified token's iss and jti ("" before the
	// signature verified).
	Issuer, JTI string
	// Hash is the short hash of the logout token or GTR JWT ("" when there
	// was none); the token itself is never reported.
	Hash string
	// Keys are the subject Keys the event was stored under (OutcomeStored)
	// or was to be stored under (OutcomeStoreFailed).
	Keys []revocation.Key
	// Event is the event stored (OutcomeStored), with Keys[0] as subject.
	Event revocation.Event
}

// Observer receives an Observation for every request. It is called
// synchronously and must be fast and safe for concurrent use.
type Observer interface {
	// Observe is told what became of one request.
	Observe(o Observation)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(o Observation)

// Observe calls f.
func (f ObserverFunc) Observe(o Observation) { f(o) }
