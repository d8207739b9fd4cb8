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
	// Lazy, with Watch, admits the call with the same decision but starts
	// its watch only once the call proves long-lived: when the handler
	// waits on Admission.Context (calls its Done, as a long poll, an SSE
	// loop or a context derived from it does), when the front door calls
	// Admission.Watch (an HTTP response's first flush), or when it calls
	// Admission.Recheck (a write) after a store event, RecheckStreams or
	// Close, or more than LazyWatchGrace after admission. Until then the
	// call costs what an unwatched one does: no stream index entry, no
	// timer, no cancellable context. Nothing stored in between is missed:
	// the watch start re-evaluates the call if a store event, RecheckStreams
	// or Close happened since Admit decided, and runs the time-dependent
	// checks; a handler that has neither waited on its context nor written
	// or flushed since admission has nothing to cut yet.
	Lazy bool
}

// LazyWatchGrace is how long after admission a call admitted with
// Call.Lazy may keep writing without being watched while nothing changed
// (see Admission.Recheck). Revocation is not what it bounds: any write after
// a store event, RecheckStreams or Close starts the watch and re-evaluates
// the call first, whatever its age. It bounds how long a response that
// neither flushes nor waits on its context runs on its admission's
// time-dependent checks (the token's expiry, checks that do not declare
// check.TimeIndependent) before it is watched: a short answer (a REST
// response) writes within microseconds to milliseconds of its admission; a
// write later than this belongs to a response still under way, for which a
// watch costs a few microseconds, nothing against the time already spent.
const LazyWatchGrace = 100 * time.Millisecond

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

	// Set for a lazily watched call (Call.Lazy).
	lazy     bool
	snap     uint64        // s.changes, read before Admit's evaluation
	start    time.Duration // monoNow at admission
	md       metadata.MD
	lctx     lazyCtx     // the handler's context
	startMu  sync.Mutex  // serialises the watch start with End
	starting atomic.Bool // the watch start began (under startMu)

	// Set for a watched call once watched (for an eagerly watched one, to
	// the watch allocated with the Admission, watchedAdmission); wp is set
	// before the watch is indexed (a wake may come at once) and never
	// changes afterwards.
	wp      atomic.Pointer[watch]
	expiry  *time.Timer  // nil without exp
	tick    *time.Timer  // nil without WithStreamRecheckInterval
	pending atomic.Int64 // wakes not yet handled by a re-check goroutine
	mu      sync.Mutex   // guards ended, opening and wg.Add
	ended   bool
	// opening holds back the re-check goroutine while Admit evaluates a
	// call it just put under watch: a denial then refuses the call, it
	// does not cut it.
	opening bool
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

// Watching reports whether the call is under watch (for a call admitted
// with Call.Lazy: whether its watch started).
func (a *Admission) Watching() bool { return a.wp.Load() != nil }

// Cut returns the *DenialError that ended a watched call, or nil while it
// is not cut (and always for a call that is not watched).
func (a *Admission) Cut() error {
	w := a.wp.Load()
	if w == nil {
		return nil
	}
	if c := w.cut.Load(); c != nil {
		return c.denialError(PhaseMidStream)
	}
	return nil
}

// Watch starts the watch of a call admitted with Call.Lazy now (the
// response proved long-lived: it flushes), unless it started already or the
// call ended, and returns the *DenialError if the call is cut (the start
// re-evaluates it). For other calls it only returns Cut.
func (a *Admission) Watch() error {
	if a.lazy && a.wp.Load() == nil {
		a.startWatch()
	}
	return a.Cut()
}

// Recheck re-runs, for a watched call, the checks that may have changed
// since they last passed (the cheap per-message re-check of a gRPC stream)
// and returns the *DenialError if the call is cut. Front doors call it
// before each write of a long-lived response, so that nothing is written
// after a denial. It returns nil for a call that is not watched. A call
// admitted with Call.Lazy and not yet watched starts its watch here (and is
// re-evaluated) if it was admitted more than LazyWatchGrace ago, or if a
// store event, RecheckStreams or Close happened since Admit decided; else
// (a write of a short answer, nothing changed) it costs an atomic load and
// a monotonic clock read.
func (a *Admission) Recheck() error {
	w := a.wp.Load()
	if w == nil {
		if !a.lazy || (a.s.changes.Load() == a.snap && monoNow()-a.start < LazyWatchGrace) {
			return nil
		}
		if a.startWatch(); a.wp.Load() == nil {
			return nil // ended
		}
		return a.Cut() // startWatch evaluated the call
	}
	if w.recheck(false) != nil {
		// Published here, not only by the re-check goroutine: the handler
		// that sees this error may read its context's cause at once.
		c := w.cut.Load()
		a.publishCut(c)
		return c.denialError(PhaseMidStream)
	}
	return nil
}

// End stops watching the call and waits for a re-check under way; call it
// once the handler returned (more calls are no-ops). It returns the
// *DenialError that cut the call, or nil. The cut was logged, audited and
// counted (MetricStreamCuts) when it happened.
func (a *Admission) End() error {
	if !a.lazy && a.wp.Load() == nil {
		return nil
	}
	a.endOnce.Do(func() {
		a.startMu.Lock()
		a.mu.Lock()
		a.ended = true
		a.mu.Unlock()
		a.startMu.Unlock()
		if a.lazy && a.wp.Load() == nil {
			a.lctx.cancel(nil) // never watched
			return
		}
		w := a.wp.Load()
		w.unindex()
		if a.expiry != nil {
			a.expiry.Stop()
		}
		if a.tick != nil {
			a.tick.Stop()
		}
		a.wg.Wait()
		w.cancel(nil)
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
	now, start := callClock()
	// Read before the evaluation: a change counted after this read may
	// have been missed by it, and a lazy watch start re-evaluates then.
	snap := s.changes.Load()
	src := defaultCredentials
	if c.Credentials != "" {
		src = credentials{name: c.Credentials, hint: "Authorization: Bearer <token>"}
	}
	claims, raw, d := s.authenticate(ctx, c.Authorization, src, now)
	ms := s.methodSet(c.Method, c.Registered, d == nil)
	var md metadata.MD
	if d == nil {
		if s.o.customMetadata && c.Metadata != nil {
			md = c.Metadata()
		}
		d = s.evaluate(ctx, c.Method, claims, md, c.Stream, c.Peer, now)
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
		a.ctx = withClaims(ctx, claims)
		return a, nil
	}
	if c.Lazy {
		// No room for a watch: most lazy calls (short answers) never start
		// one, and a start allocates it (startWatch).
		a := &Admission{s: s, call: c, claims: claims, raw: raw, ms: ms}
		s.met.allowed(ctx, ms, start)
		a.lazy, a.snap, a.start, a.md = true, snap, start, md
		a.lctx.parent, a.lctx.claims, a.lctx.a = ctx, claims, a
		a.ctx = &a.lctx
		return a, nil
	}
	// A watched call's Admission and watch in one allocation.
	wa := &watchedAdmission{Admission: Admission{s: s, call: c, claims: claims, raw: raw, ms: ms}}
	a := &wa.Admission
	hctx, cancel := context.WithCancelCause(withClaims(ctx, claims))
	w := s.initWatch(&wa.w, hctx, cancel, claims, c.Method, md, c.Peer, c.Stream, a)
	// Set before indexing: an event may wake the call at once; opening
	// defers the re-check goroutine of such a wake until the call is let in.
	a.wp.Store(w)
	a.opening = true
	a.ctx = hctx
	s.indexWatch(w)
	if err := w.recheck(true); err != nil {
		a.mu.Lock()
		a.ended = true // no re-check goroutine starts any more
		a.mu.Unlock()
		w.unindex()
		cancel(nil)
		return nil, s.refuse(ctx, c, ms, start, phase, claims, raw, w.cut.Load())
	}
	s.met.allowed(ctx, ms, start)
	s.met.active.Add(1)
	a.mu.Lock()
	a.opening = false
	if a.pending.Load() != 0 { // woken while opening
		a.wg.Add(1)
		go a.recheckLoop()
	}
	a.mu.Unlock()
	a.startTimers(w)
	return a, nil
}

// startTimers arms the token's expiry and the periodic re-check of a call
// just put under watch, and wakes it if the Server closed meanwhile.
func (a *Admission) startTimers(w *watch) {
	s := a.s
	if exp := a.claims.ExpiresAt; !exp.IsZero() {
		a.expiry = time.AfterFunc(exp.Sub(s.o.now()), func() { w.record(expiredDenial(exp)) })
	}
	if every := s.o.recheckEvery; every > 0 {
		a.mu.Lock() // the first tick may come before a.tick is set
		a.tick = time.AfterFunc(every, func() {
			a.wake()
			a.mu.Lock()
			if !a.ended {
				a.tick.Reset(every)
			}
			a.mu.Unlock()
		})
		a.mu.Unlock()
	}
	if s.isClosed() { // Close ran between the check and the indexing
		a.wake()
	}
}

// startWatch starts the watch of a lazily admitted call (Call.Lazy) unless
// it started already or the call ended. The call passed its evaluation at
// admission, as of the change count a.snap: if nothing changed since (no
// store event, RecheckStreams or Close), only the checks that depend on
// time or the store's health run again, else all of them, after the
// indexing (an event stored after it wakes the call). A denial cuts the
// call as a mid-stream denial.
func (a *Admission) startWatch() {
	a.startMu.Lock()
	defer a.startMu.Unlock()
	a.mu.Lock()
	ended := a.ended
	a.mu.Unlock()
	if ended || a.wp.Load() != nil {
		return
	}
	// A check calling Done on the handler's context (w.ctx) during the
	// re-check below must not start the watch again.
	a.starting.Store(true)
	s := a.s
	w := s.initWatch(new(watch), &a.lctx, a.lctx.cancel, a.claims, a.call.Method, a.md, a.call.Peer, a.call.Stream, a)
	a.wp.Store(w) // before indexing: an event may wake the call at once
	s.indexWatch(w)
	s.lazyStarts.Add(1)
	s.met.active.Add(1)
	g := w.gen.Load()
	full := s.changes.Load() != a.snap
	if !full {
		// Admit's evaluation passed as of a.snap and nothing that could
		// change its time-independent checks happened since; a change
		// after this read pokes w (it is indexed) and moves gen past g.
		// The per-message checks are those of that evaluation's
		// configuration, unchanged since (a change would have moved
		// s.changes): what a full re-check would store.
		w.volatile.Store(s.volatileFor(w.method))
		w.checked.Store(g)
	}
	if w.recheck(full) != nil {
		a.publishCut(w.cut.Load())
	} else if exp := a.claims.ExpiresAt; !exp.IsZero() && !s.o.now().Before(exp) {
		a.publishCut(w.record(expiredDenial(exp)))
	}
	a.startTimers(w)
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

// wake is how the watch (watch.adm) asks for a re-check: it starts a re-check goroutine unless one is
// running (which then re-checks once more) or the call has ended. It never
// blocks for long: it runs under the stream index's shard lock.
func (a *Admission) wake() {
	if a.pending.Add(1) != 1 {
		return // the running goroutine sees the new count
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended || a.opening {
		return // Admit starts the goroutine once opening ends
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
		w := a.wp.Load()
		if err := w.recheck(true); err != nil {
			a.publishCut(w.cut.Load())
		}
		if a.pending.CompareAndSwap(n, 0) {
			return
		}
	}
}

func (a *Admission) publishCut(c *cut) {
	a.logOnce.Do(func() {
		s := a.s
		w := a.wp.Load()
		w.cancel(c.denialError(PhaseMidStream))
		ctx := context.WithoutCancel(w.ctx)
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

// LazyWatchStarts returns how many watches of calls admitted with Call.Lazy
// have started on s (see Admission.Watch): a front door's tests use it to
// show that a short answer is never watched.
func (s *Server) LazyWatchStarts() uint64 { return s.lazyStarts.Load() }

// lazyCtx is the handler's context of a call admitted with Call.Lazy: the
// parent plus the claims, made cancellable (a context.WithCancelCause of
// the parent) only when first asked for its Done channel or cancelled, so
// that a short answer whose handler never waits on it allocates nothing
// for it. Asking for Done starts the call's watch: only then can the
// handler see a cut other than as a failed write. Once made, every method
// but the claims' Value defers to the cancellable context, so
// context.Cause sees the *DenialError of a cut.
type lazyCtx struct {
	a      *Admission
	parent context.Context
	claims *Claims
	inner  atomic.Pointer[innerCtx]
	ended  atomic.Bool // End ran: a context made later is born cancelled
	mu     sync.Mutex  // serialises making inner
}

type innerCtx struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (c *lazyCtx) get() *innerCtx {
	if in := c.inner.Load(); in != nil {
		return in
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if in := c.inner.Load(); in != nil {
		return in
	}
	ctx, cancel := context.WithCancelCause(c.parent)
	in := &innerCtx{ctx: ctx, cancel: cancel}
	if c.ended.Load() {
		cancel(nil)
	}
	c.inner.Store(in)
	return in
}

// cancel cancels the context with cause; cancel(nil) is End's: it cancels
// the context if it was made, and any made later.
func (c *lazyCtx) cancel(cause error) {
	if cause != nil {
		c.get().cancel(cause)
		return
	}
	c.mu.Lock()
	c.ended.Store(true)
	in := c.inner.Load()
	c.mu.Unlock()
	if in != nil {
		in.cancel(nil)
	}
}

func (c *lazyCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *lazyCtx) Done() <-chan struct{} {
	in := c.get()
	if a := c.a; a.wp.Load() == nil && !a.starting.Load() {
		a.startWatch()
	}
	return in.ctx.Done()
}

func (c *lazyCtx) Err() error {
	if in := c.inner.Load(); in != nil {
		return in.ctx.Err()
	}
	if c.ended.Load() {
		return c.get().ctx.Err()
	}
	return c.parent.Err()
}

func (c *lazyCtx) Value(key any) any {
	if _, ok := key.(claimsKey); ok {
		return c.claims
	}
	if in := c.inner.Load(); in != nil {
		return in.ctx.Value(key)
	}
	return c.parent.Value(key)
}

func (c *lazyCtx) String() string { return "caekit.Admission.Context" }
