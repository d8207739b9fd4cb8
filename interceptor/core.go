package interceptor

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/check"
)

// This file is the transport-neutral face of the Server: the front doors
// other than gRPC (interceptor/caehttp, interceptor/caeconnect) describe a
// call with a Call, hand it to Admit and render the DenialError they get.
// The decision itself (authenticate, then the checks, revocation first), the
// watch of a long-lived call (stream index, generation counters, expiry
// timer, re-checks) and the logs, audit records and metrics are the ones the
// gRPC interceptors use.

// Call describes an incoming call to Admit without transport types.
type Call struct {
	// Method names what is called, as checks see it in
	// check.Request.FullMethod and metrics in AttrMethod: a gRPC full
	// method ("/pkg.Service/Method") or an HTTP route ("GET /v1/messages/{id}").
	Method string
	// Registered says Method comes from the server's own routing table (a
	// registered procedure or route pattern), not from the caller: it is
	// then always recorded under its own name in the metrics. Other names
	// are recorded only for authenticated callers and at most
	// MaxMetricMethods of them.
	Registered bool
	// Authorization holds the values of the call's authorization header or
	// metadata; exactly one "Bearer <token>" value is accepted.
	Authorization []string
	// Credentials names where the token was looked for, in the description
	// of an authentication failure, e.g. "Authorization header". Default:
	// "authorization metadata".
	Credentials string
	// Peer is the caller's transport address (nil if unknown): checks see it
	// in check.Request.Peer, logs and audit records carry it.
	Peer net.Addr
	// Metadata returns the call's headers as metadata (lower-case keys). It
	// is called at most once, and only when a configured check reads
	// check.Request.Metadata (see WithChecks); nil means no metadata.
	Metadata func() metadata.MD
	// Stream is check.Request.Stream: true for a streaming call.
	Stream bool
	// Watch keeps the admitted call under watch until Admission.End, like
	// a gRPC stream: a store event about its token, a failing re-check, the
	// token's expiry or Close cancels Admission.Context with a *DenialError
	// as its cause.
	Watch bool
}

var defaultCredentials = credentials{name: grpcCredentials.name, hint: grpcCredentials.hint}

// Admission is a call Admit let in. Its methods are safe for concurrent use.
//
// A watched call has no goroutine of its own while nothing happens: the
// events, policy changes and RecheckStreams calls that wake a gRPC
// stream's interceptor goroutine start a short-lived re-check goroutine
// instead, as do the token's expiry and the periodic re-check (timers),
// and Close (which wakes every watched call). End waits for it.
type Admission struct {
	s      *Server
	call   Call
	claims *Claims
	raw    string
	ms     *methodSet
	ctx    context.Context

	// Set for a watched call.
	w       *watch
	expiry  *time.Timer  // nil without exp
	tick    *time.Timer  // nil without WithStreamRecheckInterval
	pending atomic.Int64 // wakes not yet handled by a re-check goroutine
	mu      sync.Mutex   // guards ended and wg.Add
	ended   bool
	wg      sync.WaitGroup // the re-check goroutine
	logOnce sync.Once      // the cut is published once
	endOnce sync.Once
}

// Claims returns the caller's validated claims. Never modify them.
func (a *Admission) Claims() *Claims { return a.claims }

// Context returns the context to run the handler with: it carries the
// claims (ClaimsFromContext) and, for a watched call, is cancelled when the
// call is cut, with a *DenialError as its context.Cause.
func (a *Admission) Context() context.Context { return a.ctx }

// Cut returns the *DenialError that ended a watched call, or nil while it
// is not cut (and always for a call that is not watched).
func (a *Admission) Cut() error {
	if a.w == nil {
		return nil
	}
	if c := a.w.cut.Load(); c != nil {
		return c.denialError(PhaseMidStream)
	}
	return nil
}

// Recheck re-runs, for a watched call, the checks that may have changed
// since they last passed (the cheap per-message re-check of a gRPC stream)
// and returns the *DenialError if the call is cut. Front doors call it
// before each write of a long-lived response, so that nothing is written
// after a denial. It returns nil for a call that is not watched.
func (a *Admission) Recheck() error {
	if a.w == nil {
		return nil
	}
	if a.w.recheck(false) != nil {
		return a.w.cut.Load().denialError(PhaseMidStream)
	}
	return nil
}

// End stops watching the call and waits for a re-check under way; call it
// once the handler returned (more calls are no-ops). It returns the
// *DenialError that cut the call, or nil. The cut was logged, audited and
// counted (MetricStreamCuts) when it happened.
func (a *Admission) End() error {
	if a.w == nil {
		return nil
	}
	a.endOnce.Do(func() {
		a.w.unindex()
		a.mu.Lock()
		a.ended = true
		a.mu.Unlock()
		if a.expiry != nil {
			a.expiry.Stop()
		}
		if a.tick != nil {
			a.tick.Stop()
		}
		a.wg.Wait()
		a.w.cancel(nil)
		a.s.met.active.Add(-1)
	})
	return a.Cut()
}

// Admit decides a call arriving at a front door other than the gRPC
// interceptors: it authenticates the bearer token of c.Authorization and
// runs the checks, revocation first, exactly as the unary interceptor does.
// A refused call gets a nil Admission and a *DenialError (already logged,
// audited and counted), which the front door renders; an admitted one runs
// its handler with Admission.Context and, if c.Watch is set, calls
// Admission.End when the handler returns.
//
// Admit is the hook for transport adapters such as interceptor/caehttp and
// interceptor/caeconnect; gRPC servers use the interceptors instead.
func (s *Server) Admit(ctx context.Context, c Call) (*Admission, error) {
	start := monoNow()
	src := defaultCredentials
	if c.Credentials != "" {
		src = credentials{name: c.Credentials, hint: "Authorization: Bearer <token>"}
	}
	claims, raw, d := s.authenticate(ctx, c.Authorization, src)
	ms := s.methodSet(c.Method, c.Registered, d == nil)
	var md metadata.MD
	if d == nil {
		if s.o.customMetadata && c.Metadata != nil {
			md = c.Metadata()
		}
		d = s.evaluate(ctx, c.Method, claims, md, c.Stream, c.Peer, start)
	}
	phase := PhaseUnary
	if c.Watch || c.Stream {
		phase = PhaseStreamOpen
	}
	if d != nil {
		return nil, s.refuse(ctx, c, ms, start, phase, claims, raw, s.newCut(d, claims))
	}
	if !c.Watch {
		a := &Admission{s: s, call: c, claims: claims, raw: raw, ms: ms}
		s.met.allowed(ctx, ms, start)
		a.ctx = context.WithValue(ctx, claimsKey{}, claims)
		return a, nil
	}
	// A watched call's Admission and watch in one allocation.
	wa := &watchedAdmission{Admission: Admission{s: s, call: c, claims: claims, raw: raw, ms: ms}}
	a := &wa.Admission
	w, cu := s.openWatch(ctx, claims, c.Method, md, c.Peer, c.Stream, a, &wa.w)
	if cu != nil {
		w.unindex()
		w.cancel(nil)
		return nil, s.refuse(ctx, c, ms, start, phase, claims, raw, cu)
	}
	s.met.allowed(ctx, ms, start)
	s.met.active.Add(1)
	a.w, a.ctx = w, w.ctx
	if exp := claims.ExpiresAt; !exp.IsZero() {
		a.expiry = time.AfterFunc(exp.Sub(s.o.now()), func() { w.record(expiredDenial(exp)) })
	}
	if every := s.o.recheckEvery; every > 0 {
		a.tick = time.AfterFunc(every, func() {
			a.wake()
			a.mu.Lock()
			if !a.ended {
				a.tick.Reset(every)
			}
			a.mu.Unlock()
		})
	}
	if s.isClosed() { // Close ran between the check and the indexing
		a.wake()
	}
	return a, nil
}

// watchedAdmission is a watched call's Admission with room for its watch.
type watchedAdmission struct {
	Admission
	w watch
}

// refuse publishes a denial at admission and returns its error.
func (s *Server) refuse(ctx context.Context, c Call, ms *methodSet, start time.Duration, phase AuditPhase, claims *Claims, raw string, cu *cut) error {
	s.met.denied(ctx, ms, reasonName(cu.d.Reason), monoNow()-start)
	s.denied(ctx, phase, "caekit: call denied", c.Method, claims, raw, cu, c.Peer)
	return cu.denialError(phase)
}

// wake is the watch's onWake: it starts a re-check goroutine unless one is
// running (which then re-checks once more) or the call has ended. It never
// blocks for long: it runs under the stream index's shard lock.
func (a *Admission) wake() {
	if a.pending.Add(1) != 1 {
		return // the running goroutine sees the new count
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended {
		return
	}
	a.wg.Add(1)
	go a.recheckLoop()
}

// recheckLoop re-evaluates the call until no wake is pending; a cut
// cancels the handler's context with its *DenialError, then is logged,
// audited and counted once.
func (a *Admission) recheckLoop() {
	defer a.wg.Done()
	for {
		n := a.pending.Load()
		if err := a.w.recheck(true); err != nil {
			a.publishCut(a.w.cut.Load())
		}
		if a.pending.CompareAndSwap(n, 0) {
			return
		}
	}
}

func (a *Admission) publishCut(c *cut) {
	a.logOnce.Do(func() {
		s := a.s
		a.w.cancel(c.denialError(PhaseMidStream))
		ctx := context.WithoutCancel(a.w.ctx)
		s.met.cut(ctx, a.ms, reasonName(c.d.Reason))
		s.denied(ctx, PhaseMidStream, "caekit: call ended", a.call.Method, a.claims, a.raw, c, a.call.Peer)
	})
}

// DenialError is a denial as every front door renders it: the gRPC status
// with its details, the www-authenticate challenge (when the denial is a
// challenge) and the check.Denial behind them. The HTTP and Connect front
// doors return it from Admit, and a watched call's context has it as its
// context.Cause once cut. status.FromError understands it (GRPCStatus).
type DenialError struct {
	c     *cut
	phase AuditPhase
}

func (c *cut) denialError(p AuditPhase) *DenialError { return &DenialError{c: c, phase: p} }

// Error returns the status code and the denial's description; it never
// contains a token.
func (e *DenialError) Error() string {
	st := e.GRPCStatus()
	return "caekit: " + st.Code().String() + ": " + st.Message()
}

// Denial returns a copy of the check's denial (reason, description, event,
// claims request).
func (e *DenialError) Denial() check.Denial { return *e.c.d }

// Code is the gRPC status code of the denial: Unauthenticated for a
// challenge, PermissionDenied or Unavailable (revocation state not
// trusted, or the Server closed) otherwise.
func (e *DenialError) Code() codes.Code { return e.c.st.Code() }

// Challenge returns the www-authenticate value, in Microsoft Entra's form
// (see challenge.Challenge.Header), or "" when the denial is not a
// challenge.
func (e *DenialError) Challenge() string { return e.c.header }

// MidStream reports whether the call was cut after its handler started.
func (e *DenialError) MidStream() bool { return e.phase == PhaseMidStream }

// GRPCStatus returns the status the gRPC interceptors send for this denial,
// with its cae.v1.ClaimsChallenge (phase set) and google.rpc.ErrorInfo
// details.
func (e *DenialError) GRPCStatus() *status.Status {
	st, _ := status.FromError(e.c.errAt(e.phase))
	return st
}

// methodSet returns the metrics' entry for a call of name. A method name
// goes into the metrics' method table if it is registered, or once a caller
// with a valid token (authenticated) calls it: junk names from
// unauthenticated callers never fill the table (issue 13 item 7). The gRPC
// stream interceptor and Admit share it.
func (s *Server) methodSet(name string, registered, authenticated bool) *methodSet {
	switch {
	case registered:
		return s.met.method(name, true)
	case authenticated:
		return s.met.method(name, false)
	default:
		return s.met.known(name)
	}
}
