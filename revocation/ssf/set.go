package ssf

import (
	"encoding/json"
	"time"
)

// SET is a validated Security Event Token carrying exactly one event.
type SET struct {
	// Issuer is iss.
	Issuer string
	// Audience is aud, as a list.
	Audience []string
	// JTI is jti.
	JTI string
	// IssuedAt is iat.
	IssuedAt time.Time
	// TimeOfEvent is toe; zero when absent.
	TimeOfEvent time.Time
	// Txn is txn; "" when absent.
	Txn string
	// EventType is the single event's type URI.
	EventType string
	// Event is the event payload's members, undecoded.
	Event map[string]json.RawMessage
	// Subject is the top-level sub_id, else the legacy in-event "subject";
	// nil when there is neither.
	Subject *Subject
	// EventTime is when the event happened: CAEP event_timestamp, else toe,
	// else iat.
	EventTime time.Time
	// KeyID and Algorithm are the JWS header's kid and alg.
	KeyID, Algorithm string
	// Hash is a short, non-reversible prefix of the SET's SHA-256, safe to log.
	Hash string
}
