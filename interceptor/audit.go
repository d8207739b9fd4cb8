package interceptor

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc/codes"

	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// AuditPhase says when a denial happened.
type AuditPhase uint8

// The phases of a denial.
const (
	// PhaseUnary: a unary call was refused.
	PhaseUnary AuditPhase = iota + 1
	// PhaseStreamOpen: a stream was refused when it opened.
	PhaseStreamOpen
	// PhaseMidStream: an open stream was cut (an event, a failing re-check,
	// the token's expiry, or Close).
	PhaseMidStream
)

var phaseNames = [...]string{"", "unary", "stream_open", "mid_stream"}

// String returns "unary", "stream_open" or "mid_stream".
func (p AuditPhase) String() string {
	if int(p) < len(phaseNames) && p > 0 {
		return phaseNames[p]
	}
	return "unknown"
}

// AuditRecord describes one denial, for an audit trail. It never holds the
// token, only its hash prefix.
type AuditRecord struct {
	// Time is when the call was denied (the Server's clock, WithClock).
	Time time.Time
	// Phase says whether a unary call, a stream opening or an open stream was denied.
	Phase AuditPhase
	// Method is the full gRPC method, "/package.Service/Method".
	Method string
	// Subject is the token's sub, "" when the token did not validate.
	Subject string
	// Tenant is the token's tid, "" when absent or the token did not validate.
	Tenant string
	// Code is the gRPC status code the caller got.
	Code codes.Code
	// Reason is the machine-readable reason of the denial.
	Reason caev1.Reason
	// Description is the human-readable explanation the caller got.
	Description string
	// EventID is the id (jti) of the revocation event that caused the
	// denial, "" when no event did.
	EventID string
	// EventTime is the time of that event, zero when no event caused it.
	EventTime time.Time
	// Peer is the caller's transport address, nil when unknown.
	Peer net.Addr
	// TokenHash is a short, non-reversible hash prefix of the token (as
	// token.Hash), "none" when the call carried no usable token.
	TokenHash string
}

// ReasonName returns r.Reason without the REASON_ prefix, e.g. "PASSWORD_CHANGED".
func (r AuditRecord) ReasonName() string { return reasonName(r.Reason) }

// AuditHook receives an AuditRecord for every denial. See WithAuditHook.
type AuditHook func(ctx context.Context, r AuditRecord)
