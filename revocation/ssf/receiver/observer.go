package receiver

import (
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf"
)

// Outcome is what became of one delivered SET.
type Outcome uint8

// The outcomes reported to an Observer.
const (
	// OutcomeStored: the event revokes and was stored under at least one Key.
	OutcomeStored Outcome = iota + 1
	// OutcomeDuplicate: the SET had been processed before; answered again without effect.
	OutcomeDuplicate
	// OutcomeRecorded: a known event that does not revoke (account-enabled,
	// stream-updated, verification, session-established, ...); acknowledged and logged.
	OutcomeRecorded
	// OutcomeUnmapped: a revoking event whose subject maps onto no Key; acknowledged, logged at WARN.
	OutcomeUnmapped
	// OutcomeUnknownType: an event type this receiver does not know; acknowledged.
	OutcomeUnknownType
	// OutcomeRejected: the SET was refused with an RFC 8935 code (Observation.Code).
	OutcomeRejected
	// OutcomeStoreFailed: the store failed; not acknowledged, the transmitter retries.
	OutcomeStoreFailed
	// OutcomeKeysUnavailable: no key to check the signature could be obtained
	// (ErrKeysUnavailable: unknown kid, JWKS down or its refresh
	// rate-limited). Like OutcomeStoreFailed it is temporary: not
	// acknowledged, not remembered, the transmitter retries. The SET is
	// unverified, so the Observation carries no jti and no event type.
	OutcomeKeysUnavailable
)

var outcomeNames = [...]string{"", "stored", "duplicate", "recorded", "unmapped", "unknown_type", "rejected", "store_failed", "keys_unavailable"}

// String returns the snake_case name of o, suitable as a metric label.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && o > 0 {
		return outcomeNames[o]
	}
	return "unknown"
}

// Acknowledged reports whether a SET with this outcome is acknowledged to the
// transmitter (202, poll ack, gRPC OK).
func (o Outcome) Acknowledged() bool {
	return o >= OutcomeStored && o <= OutcomeUnknownType
}

// Observation describes one processed SET, for metrics and audit.
type Observation struct {
	// Delivery is "push", "poll" or "grpc" (or "" for a direct Receive call).
	Delivery string
	// EventType is the event-type URI, or "" when the SET could not be parsed that far.
	EventType string
	// Type is the revocation type the event maps to, or TypeUnknown.
	Type revocation.Type
	// JTI is the SET's jti, or "" when not (yet) known. For rejected SETs it is
	// only set once the signature verified.
	JTI string
	// Outcome is what became of the SET.
	Outcome Outcome
	// Code is the RFC 8935 code for OutcomeRejected.
	Code string
	// Keys are the subject Keys the event was stored under (OutcomeStored).
	Keys []revocation.Key
	// SET is the validated token, for accepted SETs; nil otherwise. Do not modify it.
	SET *ssf.SET
}

// Observer receives an Observation for every SET processed. It is called
// synchronously on the delivering goroutine and must be fast and safe for
// concurrent use.
type Observer interface {
	// Observe is told what became of one SET.
	Observe(o Observation)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(o Observation)

// Observe calls f.
func (f ObserverFunc) Observe(o Observation) { f(o) }

type nopObserver struct{}

// Observe does nothing.
func (nopObserver) Observe(Observation) {}
