// Package check is the contract between the CAE server interceptor and the
// rules it enforces on every call: a Check looks at a Request (method,
// validated claims, peer, metadata) and returns nil to allow or a Denial to
// refuse, optionally as a claims challenge.
//
// The package is a leaf: it holds only the contract, so that packages
// providing checks (package policy, custom rules) and packages running them
// (package interceptor) both import it and neither imports the other. A
// check may implement the optional interfaces MetadataUser, ChangeNotifier
// and TimeIndependent to let the interceptor skip work.
//
//	deny := check.CheckFunc(func(ctx context.Context, r *check.Request) *check.Denial {
//		if r.Claims.TenantID != "contoso" {
//			return &check.Denial{Code: codes.PermissionDenied, Description: "wrong tenant"}
//		}
//		return nil
//	})
//	cae, _ := interceptor.New(v, interceptor.WithChecks(deny))
package check

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/token"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// Request is what a Check sees of one call. The interceptor builds it once per call (and once per re-check on a stream); checks must not retain it.
type Request struct {
	// FullMethod is the gRPC method, "/package.Service/Method".
	FullMethod string
	// Claims are the validated token claims. Never nil.
	Claims *token.Claims
	// Peer is the transport peer address of the caller (may be nil in tests).
	Peer net.Addr
	// Metadata is the incoming request metadata.
	Metadata metadata.MD
	// Stream is true for streaming calls.
	Stream bool
	// Now is the time of the evaluation.
	Now time.Time
}

// Check decides whether a call may proceed. Revocation, location, auth context
// and custom rules are all Checks, evaluated in order; the first denial wins.
//
// Check returns nil to allow. It must be safe for concurrent use, must not
// touch the network and should not allocate on the allow path: it runs on
// every call and, for streams, on every message and on every event.
type Check interface {
	// Check returns nil to allow the call described by req, else the denial.
	Check(ctx context.Context, req *Request) *Denial
}

// MetadataUser may be implemented by a Check to say whether it reads
// Request.Metadata. Copying the incoming metadata costs several allocations
// per call, so the interceptor fills Request.Metadata only when at least one
// configured check does not implement MetadataUser or returns true. A check
// that returns false and still needs a single key reads it from the call's
// context with metadata.ValueFromIncomingContext.
type MetadataUser interface {
	// UsesMetadata reports whether the check reads Request.Metadata.
	UsesMetadata() bool
}

// ChangeNotifier may be implemented by a Check whose decisions can change
// without a revocation event: a policy engine whose policy is reloaded, a
// check reading a file or a feature flag. The interceptor.Server subscribes when it
// is created (and unsubscribes on Close) and, on every change, re-checks every
// open stream at once, idle ones included (a stream whose handler is blocked
// in RecvMsg), instead of waiting for its next message.
type ChangeNotifier interface {
	// OnChange registers f to be called after each change takes effect, and
	// returns a function that removes it. f never blocks; OnChange may call
	// it from any goroutine.
	OnChange(f func()) (stop func())
}

// TimeIndependent may be implemented by a Check to declare that, for an
// open stream, its decision can change only when a revocation event about
// the token arrives or when the check itself reports a change
// (ChangeNotifier): it does not depend on Request.Now, nor on state that
// changes without notice. The method, claims, peer and metadata of a
// stream's Request stay the same for the whole stream.
//
// On a stream, the interceptor runs the checks that return true only when
// something changed since they last passed (a store event about one of the
// token's subjects, a ChangeNotifier change, RecheckStreams, the periodic
// re-check of interceptor.WithStreamRecheckInterval), instead of on every message: a
// message then costs one atomic load for them. Checks that do not implement
// TimeIndependent, or return false, still run on every message (and on
// every change). Unary calls and stream opens always run every check.
//
// The built-in revocation check is time-independent in this sense, except
// for the store's health, which is checked on every message.
type TimeIndependent interface {
	// TimeIndependent reports whether the check's decision for a stream
	// changes only on revocation events and on the check's own
	// ChangeNotifier changes.
	TimeIndependent() bool
}

// MethodTimeIndependent may be implemented by a Check whose time dependence
// varies with the stream's method under its current configuration (a
// policy with a time limit on some methods only). TimeIndependentFor
// reports, in TimeIndependent's sense, for streams of fullMethod as the
// check is configured now. The interceptor asks when a stream opens and
// again after every change the check reports through ChangeNotifier, which
// such a check must implement: a configuration change that makes a method
// time-dependent must be notified.
type MethodTimeIndependent interface {
	// TimeIndependentFor reports whether, for streams of fullMethod, the
	// check's decision changes only on revocation events and on the
	// check's own ChangeNotifier changes.
	TimeIndependentFor(fullMethod string) bool
}

// CheckFunc adapts a function to Check.
type CheckFunc func(ctx context.Context, req *Request) *Denial

// Check calls f.
func (f CheckFunc) Check(ctx context.Context, req *Request) *Denial { return f(ctx, req) }

// Denial is a Check's refusal.
//
// With Claims set it is a claims challenge: clients that declared the CAE
// capability (cp1) get error="insufficient_claims" with those claims and can
// fetch a satisfying token and retry. Without Claims, or for a client without
// the capability, it is a plain rejection.
type Denial struct {
	// Code is the gRPC code; zero means codes.Unauthenticated.
	Code codes.Code
	// Reason is the machine-readable reason.
	Reason caev1.Reason
	// Claims is the claims-request JSON, e.g.
	// {"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}; empty for none.
	Claims string
	// Description is a human-readable explanation. It must never contain a token.
	Description string
	// EventTime is the time of the causing event, if any.
	EventTime time.Time
	// EventID is the id (jti) of the causing event, if any.
	EventID string
	// Params are extra www-authenticate parameters, e.g.
	// cc_type="authcontext", in order.
	Params []challenge.Param
	// ACRValues and MaxAge, when either is set (and Claims is not), make the
	// denial an RFC 9470 step-up challenge: error=
	// "insufficient_user_authentication" with acr_values and max_age (see
	// challenge.Challenge for their meaning), sent to every client, since
	// that dialect needs no declared capability.
	ACRValues []string
	// MaxAge: see ACRValues.
	MaxAge time.Duration
}
