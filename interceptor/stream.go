package interceptor

import (
	"context"
	"hash/maphash"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	"github.com/caekit/caekit/revocation"
)

// StreamServerInterceptor returns the stream interceptor.
//
// A stream is checked when it opens, then watched until it ends: the checks
// run again on every message received or sent, on every store event about one
// of the token's subjects, on every change a ChangeNotifier check reports
// (a policy reload) or RecheckStreams call, and (WithStreamRecheckInterval)
// periodically; the stream also ends when its token expires (a timer). On a
// message, the checks declaring TimeIndependent (the revocation look-ups,
// the policy engine's checks) run only if one of those changes happened
// since they last passed: with nothing changed, a message costs an atomic
// load, a look at the store's health and the checks that do not declare it.
// When any of these denies, the
// handler's context is cancelled, its pending and later RecvMsg/SendMsg calls
// fail with the denial, and the RPC ends at once with the denial's status,
// details and www-authenticate trailer, even while the handler is blocked in
// RecvMsg or SendMsg.
//
// To make that possible the handler runs on its own goroutine. When a stream
// is cut the interceptor returns before the handler does; gRPC then writes the
// status and closes the transport stream, which unblocks the handler, whose
// result is discarded. Sends are serialised with the cut: a SendMsg already
// under way is waited for (at most MaxSendFenceWait, for a send blocked by a
// client that does not read) and every later one fails with the denial, so
// no message overlaps or follows the status. A handler that ignores both its context and the errors
// of RecvMsg/SendMsg keeps running until it returns, as it would without the
// interceptor. A panic in the handler is re-raised on the interceptor's
// goroutine, so recovery interceptors chained before this one still see it.
func (s *Server) StreamServerInterceptor() grpc.StreamServerInterceptor { return s.stream }

func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	if s.isExempt(ctx, info.FullMethod, info, nil) {
		return handler(srv, ss)
	}
	now, start := callClock()
	addr := peerAddr(ctx)
	claims, raw, d := s.authenticate(ctx, metadata.ValueFromIncomingContext(ctx, "authorization"), grpcCredentials, now)
	// gRPC passes the service implementation as srv, nil for an
	// unknown-service handler.
	ms := s.methodSet(info.FullMethod, srv != nil, d == nil)
	var md metadata.MD
	if d == nil {
		if s.o.customMetadata {
			md, _ = metadata.FromIncomingContext(ctx)
		}
		d = s.evaluate(ctx, info.FullMethod, claims, md, true, addr, now)
	}
	if d != nil {
		c := s.newCut(d, claims)
		s.met.denied(ctx, ms, reasonName(d.Reason), monoNow()-start)
		return s.endStream(ss, PhaseStreamOpen, "caekit: stream denied", info.FullMethod, claims, raw, c, addr)
	}

	w, c := s.openWatch(ctx, claims, info.FullMethod, md, addr, true, nil, new(watch))
	defer w.cancel(nil)
	defer w.unindex()
	if c != nil {
		s.met.denied(ctx, ms, reasonName(c.d.Reason), monoNow()-start)
		return s.endStream(ss, PhaseStreamOpen, "caekit: stream denied", info.FullMethod, claims, raw, c, addr)
	}
	s.met.allowed(ctx, ms, start)
	s.met.active.Add(1)
	defer s.met.active.Add(-1)
	if s.o.logFields {
		// Published before the handler goroutine starts, so that the logging
		// interceptor's reads (from that goroutine) never race with this
		// write; a cut later changes only the live values.
		if up := hasLoggingFields(ctx); up || s.o.injectFields {
			w.decision, w.reason = newLiveField(outcomeAllow), newLiveField("")
			w.ctx = publishFields(ctx, w.ctx, up, s.o.injectFields, logging.Fields{
				FieldSubject, claims.Subject, FieldTenant, claims.TenantID, FieldDecision, w.decision, FieldReason, w.reason,
			})
		}
	}

	done := make(chan handlerResult) // unbuffered: see the handler goroutine
	abandoned := make(chan struct{}) // closed when the interceptor returns
	defer close(abandoned)
	go runHandler(handler, srv, &watchedStream{ServerStream: ss, w: w}, done, abandoned)

	r, finished, c := watchUntil(w, ctx, done)
	if c != nil {
		w.cancel(c.denialError(PhaseMidStream))
		w.fence()
		return s.endCut(ss, ms, info.FullMethod, claims, raw, c, addr)
	}
	if !finished {
		// The RPC ended at the transport (client cancelled, deadline,
		// connection lost): the handler's context is cancelled too, and
		// its RecvMsg/SendMsg fail. Wait for it as gRPC would.
		r = <-done
		if r.panicked {
			panic(r.panicValue)
		}
		return r.err
	}
	if r.panicked {
		panic(r.panicValue)
	}
	if c := w.cut.Load(); c != nil {
		// The handler returned after a message re-check cut the stream.
		return s.endCut(ss, ms, info.FullMethod, claims, raw, c, addr)
	}
	return r.err
}

// openWatch puts a call that passed its first evaluation under watch: it
// indexes it under its token's revocation keys and evaluates it once more
// (an event stored between the first evaluation and the indexing would not
// have woken it). It returns the watch, whose ctx is the handler's context
// (parent plus the claims, cancelled with w.cancel), and the denial of the
// second evaluation, if any; the caller calls w.unindex when the call ends.
//
// w is the zero watch to fill in (allocated by the caller, with the
// Admission for a call admitted by Admit).
func (s *Server) openWatch(parent context.Context, claims *Claims, method string, md metadata.MD, addr net.Addr, stream bool, adm *Admission, w *watch) (*watch, *cut) {
	hctx, cancel := context.WithCancelCause(withClaims(parent, claims))
	s.initWatch(w, hctx, cancel, claims, method, md, addr, stream, adm)
	s.indexWatch(w)
	if err := w.recheck(true); err != nil {
		return w, w.cut.Load()
	}
	return w, nil
}

// initWatch fills in the zero watch w, not yet indexed, whose handler
// context is ctx (cancelled with cancel), and returns it. adm is the
// Admission of a call admitted by Admit (nil for a gRPC stream, which has a
// goroutine of its own and a wake channel).
func (s *Server) initWatch(w *watch, ctx context.Context, cancel context.CancelCauseFunc, claims *Claims, method string, md metadata.MD, addr net.Addr, stream bool, adm *Admission) *watch {
	w.s, w.claims, w.method, w.md, w.peer, w.stream = s, claims, method, md, addr, stream
	w.ctx, w.cancel, w.adm = ctx, cancel, adm
	if adm == nil {
		w.wake = make(chan struct{}, 1)
	}
	w.gen.Store(1) // checked is 0: the call has not passed yet
	return w
}

// indexWatch indexes w under its token's revocation keys, so that store
// events about them wake it (w.unindex undoes it).
func (s *Server) indexWatch(w *watch) {
	keys := w.claims.Keys()
	if len(keys) == 0 {
		// No event can name this call, but RecheckStreams must still
		// reach it: index it under the zero key, which no event carries.
		keys = []revocation.Key{{}}
	}
	w.keys = keys
	s.index.add(w, keys)
}

// unindex removes w from the stream index; the caller of openWatch (or of
// indexWatch) calls it once the call ends (a method, not a closure: one allocation less per
// watched call).
func (w *watch) unindex() { w.s.index.remove(w, w.keys) }

// watchUntil is the watch loop of a long-lived call, transport-neutral: it
// re-evaluates w on every wake (a store event about one of the token's
// keys, a ChangeNotifier change, RecheckStreams, a message re-check that
// recorded a denial), on the periodic re-check (WithStreamRecheckInterval),
// at the token's expiry and when the Server closes. It returns the first
// value done yields (finished true), or when transport ends (finished false,
// c nil), or the call's cut (c non-nil); it does not cancel w's context.
func watchUntil[T any](w *watch, transport context.Context, done <-chan T) (v T, finished bool, c *cut) {
	s := w.s
	var expiry <-chan time.Time
	if exp := w.claims.ExpiresAt; !exp.IsZero() {
		t := time.NewTimer(exp.Sub(s.o.now()))
		defer t.Stop()
		expiry = t.C
	}
	var tick <-chan time.Time
	if s.o.recheckEvery > 0 {
		t := time.NewTicker(s.o.recheckEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case v = <-done:
			return v, true, nil
		case <-w.wake:
		case <-expiry:
			w.record(expiredDenial(w.claims.ExpiresAt))
		case <-tick:
		case <-s.closing:
			w.record(closedDenial())
		case <-transport.Done():
			return v, false, nil
		}
		if err := w.recheck(true); err != nil {
			return v, false, w.cut.Load()
		}
	}
}

// MaxSendFenceWait bounds how long a mid-stream cut waits for a handler's
// SendMsg already under way (see watch.fence). A send normally completes in
// microseconds; one blocked because the client stopped reading (HTTP/2 flow
// control) would hold the cut hostage, so past this wait the cut proceeds:
// gRPC's transport then fails the blocked write when it writes the status,
// and nothing of it is sent.
const MaxSendFenceWait = 250 * time.Millisecond

// fence is called once the stream's cut is recorded and before the
// interceptor returns (after which gRPC writes the status): it waits until
// no handler SendMsg is in flight. Sends hold sendMu for their re-check and
// their transport write, and refuse once the cut is recorded, so after fence
// no send overlaps the status or follows it (issue 13 item 13). A send
// blocked past MaxSendFenceWait is left to fail when the status is written.
func (w *watch) fence() {
	if w.sendMu.TryLock() {
		w.sendMu.Unlock() // no send in flight; later ones see the cut
		return
	}
	// A send is under way: wait for it, polling (a cut is rare, a send
	// normally takes microseconds), at most MaxSendFenceWait.
	deadline := time.Now().Add(MaxSendFenceWait)
	for d := 10 * time.Microsecond; ; {
		time.Sleep(d)
		if w.sendMu.TryLock() {
			w.sendMu.Unlock()
			return
		}
		if !time.Now().Before(deadline) {
			return
		}
		if d < time.Millisecond {
			d *= 2
		}
	}
}

// endCut ends a stream cut mid-flight.
func (s *Server) endCut(ss grpc.ServerStream, ms *methodSet, method string, claims *Claims, raw string, c *cut, addr net.Addr) error {
	s.met.cut(ss.Context(), ms, reasonName(c.d.Reason))
	return s.endStream(ss, PhaseMidStream, "caekit: stream ended", method, claims, raw, c, addr)
}

// endStream sets the www-authenticate trailer, logs, audits and returns the status.
func (s *Server) endStream(ss grpc.ServerStream, phase AuditPhase, msg, method string, claims *Claims, raw string, c *cut, addr net.Addr) error {
	if c.header != "" {
		ss.SetTrailer(metadata.Pairs(challenge.MetadataKey, c.header))
	}
	s.denied(ss.Context(), phase, msg, method, claims, raw, c, addr)
	return c.errAt(phase)
}

type handlerResult struct {
	err        error
	panicked   bool
	panicValue any
}

// runHandler runs the stream handler and hands its result to the interceptor
// if it is still waiting; a panic nobody waits for any more is re-raised here.
func runHandler(handler grpc.StreamHandler, srv any, ws *watchedStream, done chan<- handlerResult, abandoned <-chan struct{}) {
	var r handlerResult
	defer func() {
		if p := recover(); p != nil {
			r = handlerResult{panicked: true, panicValue: p}
		}
		select {
		case done <- r:
		case <-abandoned:
			if r.panicked {
				panic(r.panicValue)
			}
		}
	}()
	r.err = handler(srv, ws)
}

func expiredDenial(exp time.Time) *check.Denial {
	return &check.Denial{
		Reason:      caev1.Reason_REASON_TOKEN_EXPIRED,
		Description: "token expired at " + exp.UTC().Format(time.RFC3339) + " during the stream: get a new token and reopen the stream",
	}
}

// watch is one open stream (or other long-lived call) under evaluation.
type watch struct {
	s      *Server
	claims *Claims
	method string
	md     metadata.MD
	peer   net.Addr
	stream bool                    // check.Request.Stream of its re-checks
	ctx    context.Context         // the handler's context
	cancel context.CancelCauseFunc // cancels ctx
	wake   chan struct{}           // capacity 1: "re-evaluate"
	// adm, when set, replaces wake: a call watched without a goroutine of
	// its own (Admission) starts its re-check on demand (Admission.wake).
	adm  *Admission
	keys []revocation.Key // indexed under these (openWatch)
	cut  atomic.Pointer[cut]
	// gen counts the changes that may alter the decision of the
	// time-independent checks (poke bumps it); checked is the gen value read
	// before the last full evaluation that passed. While they are equal, a
	// message runs only the checks that are not time-independent.
	gen, checked atomic.Uint64
	// volatile is the list of checks run on every message (volatileFor,
	// refreshed by every full re-check); nil until the first: s.volatile.
	volatile atomic.Pointer[[]check.Check]
	// sendMu is held by a handler's SendMsg from its re-check
	// through its transport write; fence takes it to wait for that write.
	sendMu sync.Mutex

	// decision and reason are the stream's published logging fields, nil
	// when none were published.
	decision, reason *liveField
}

// poke marks the stream's state as changed and asks the interceptor
// goroutine to re-evaluate. It never blocks.
func (w *watch) poke() {
	w.gen.Add(1)
	if w.adm != nil {
		w.adm.wake()
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// record stores d as the stream's denial unless one is already stored, and
// wakes the interceptor goroutine to end the stream.
func (w *watch) record(d *check.Denial) *cut {
	c := w.s.newCut(d, w.claims)
	if !w.cut.CompareAndSwap(nil, c) {
		c = w.cut.Load()
	} else if w.decision != nil {
		w.reason.set(reasonName(d.Reason))
		w.decision.set(outcomeDeny)
	}
	w.poke()
	return c
}

// recheck returns the stream's denial error, evaluating the checks (and the
// token's expiry) if the stream is not cut yet.
//
// With full false (a message), the time-independent checks (the revocation
// look-ups, policy checks declaring TimeIndependent) run only if the stream's
// generation moved since they last passed; the store's health, the Server's
// closing and the other checks run every time. With full true (the
// interceptor goroutine: stream open, events, policy changes, the periodic
// re-check) every check runs.
func (w *watch) recheck(full bool) error {
	if c := w.cut.Load(); c != nil {
		return c.err
	}
	s := w.s
	g := w.gen.Load()
	if !full && g == w.checked.Load() {
		if d := s.evaluateVolatile(w); d != nil {
			return w.record(d).err
		}
		return nil
	}
	now := s.o.now()
	if exp := w.claims.ExpiresAt; !exp.IsZero() && !now.Before(exp) {
		return w.record(expiredDenial(exp)).err
	}
	if d := s.evaluateWatch(w, now, s.checks); d != nil {
		return w.record(d).err
	}
	// Which checks must still run on every message of this stream, under
	// their configuration as of now (check.MethodTimeIndependent); a change
	// bumps gen, and the next message asks again.
	w.volatile.Store(s.volatileFor(w.method))
	// g was read before the evaluation: a change after it bumped gen past g,
	// so the next message evaluates again.
	w.checked.Store(g)
	return nil
}

// evaluateVolatile runs, for a message of a stream whose time-independent
// checks passed and whose state has not changed since, what may still have
// changed: the Server's closing, the store's health, and the checks that do
// not declare TimeIndependent (with the token's expiry, as of now). Expiry
// is also a timer on the interceptor goroutine.
func (s *Server) evaluateVolatile(w *watch) *check.Denial {
	if s.isClosed() {
		return closedDenial()
	}
	if d := storeHealth(s.store); d != nil {
		return d
	}
	volatile := s.volatile
	if p := w.volatile.Load(); p != nil {
		volatile = *p
	}
	if len(volatile) == 0 {
		return nil
	}
	now := s.o.now()
	if exp := w.claims.ExpiresAt; !exp.IsZero() && !now.Before(exp) {
		return expiredDenial(exp)
	}
	return s.evaluateWatch(w, now, volatile)
}

// noVolatile is the empty list of per-message checks, shared by the
// streams that need none.
var noVolatile = []check.Check{}

// volatileFor returns the checks that must run on every message of a
// stream of method: those of s.volatile that do not report
// check.MethodTimeIndependent for it. The common answer, none, allocates
// nothing.
func (s *Server) volatileFor(method string) *[]check.Check {
	var out []check.Check
	for _, c := range s.volatile {
		if m, ok := c.(check.MethodTimeIndependent); ok && m.TimeIndependentFor(method) {
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return &noVolatile
	}
	return &out
}

// evaluateWatch runs checks for an open stream, as of now.
func (s *Server) evaluateWatch(w *watch, now time.Time, checks []check.Check) *check.Denial {
	if s.isClosed() {
		return closedDenial()
	}
	r := requestPool.Get().(*check.Request)
	r.FullMethod = w.method
	r.Claims = w.claims
	r.Peer = w.peer
	r.Metadata = w.md
	r.Stream = w.stream
	r.Now = now
	var d *check.Denial
	for _, c := range checks {
		if d = c.Check(w.ctx, r); d != nil {
			break
		}
	}
	*r = check.Request{}
	requestPool.Put(r)
	return d
}

// watchedStream is the ServerStream the handler sees.
type watchedStream struct {
	grpc.ServerStream
	w *watch
}

// Context returns the handler's context: it carries the Claims and is
// cancelled when the stream is cut.
func (ws *watchedStream) Context() context.Context { return ws.w.ctx }

// RecvMsg receives, then re-runs the checks. Once the stream is cut it
// returns the denial's status error.
func (ws *watchedStream) RecvMsg(m any) error {
	if c := ws.w.cut.Load(); c != nil {
		return c.err
	}
	if err := ws.ServerStream.RecvMsg(m); err != nil {
		if c := ws.w.cut.Load(); c != nil {
			return c.err
		}
		return err
	}
	return ws.w.recheck(false)
}

// SendMsg re-runs the checks, then sends: nothing leaves after a denial.
// The re-check and the write are serialised with a cut (watch.fence), so a
// send never overlaps the status gRPC writes when the interceptor returns.
func (ws *watchedStream) SendMsg(m any) error {
	ws.w.sendMu.Lock()
	defer ws.w.sendMu.Unlock()
	if err := ws.w.recheck(false); err != nil {
		return err
	}
	if err := ws.ServerStream.SendMsg(m); err != nil {
		if c := ws.w.cut.Load(); c != nil {
			return c.err
		}
		return err
	}
	return nil
}

// streamIndex maps revocation subjects to the open streams whose tokens name
// them, so that an event wakes exactly the streams it may revoke.
type streamIndex struct {
	seed   maphash.Seed
	shards [indexShards]indexShard
}

const indexShards = 32

type indexShard struct {
	mu sync.Mutex
	m  map[revocation.Key]watchSet
}

// watchSet is the watches indexed under one key. It is held by value in
// the shard's map, with the first watch inline: the usual key has one
// watch (an HTTP request, a stream), and adding and removing it then
// allocates nothing, where a map per key cost an allocation per key per
// watched call (the top cost of the HTTP middleware in the examples/bench
// profile).
type watchSet struct {
	one  *watch
	more map[*watch]struct{} // the others, when several watches share the key
}

func (s *watchSet) add(w *watch) {
	switch {
	case s.one == nil:
		s.one = w
	case s.one != w:
		if s.more == nil {
			s.more = make(map[*watch]struct{}, 1)
		}
		s.more[w] = struct{}{}
	}
}

// remove removes w and reports whether the set is now empty.
func (s *watchSet) remove(w *watch) bool {
	if s.one == w {
		s.one = nil
		for o := range s.more { // promote another one
			s.one = o
			delete(s.more, o)
			break
		}
	} else {
		delete(s.more, w)
	}
	return s.one == nil
}

func (s *watchSet) each(f func(*watch)) {
	if s.one != nil {
		f(s.one)
	}
	for w := range s.more {
		f(w)
	}
}

func (ix *streamIndex) init() {
	ix.seed = maphash.MakeSeed()
	for i := range ix.shards {
		ix.shards[i].m = make(map[revocation.Key]watchSet)
	}
}

func (ix *streamIndex) shard(k revocation.Key) *indexShard {
	return &ix.shards[(maphash.String(ix.seed, k.ID)^uint64(k.Kind))%indexShards]
}

func (ix *streamIndex) add(w *watch, keys []revocation.Key) {
	for _, k := range keys {
		sh := ix.shard(k)
		sh.mu.Lock()
		set := sh.m[k]
		set.add(w)
		sh.m[k] = set
		sh.mu.Unlock()
	}
}

func (ix *streamIndex) remove(w *watch, keys []revocation.Key) {
	for _, k := range keys {
		sh := ix.shard(k)
		sh.mu.Lock()
		if set, ok := sh.m[k]; ok {
			if set.remove(w) {
				delete(sh.m, k)
			} else {
				sh.m[k] = set
			}
		}
		sh.mu.Unlock()
	}
}

// notify is the store subscription: it wakes every stream indexed under the
// event's subject. It never blocks (Store.Subscribe's contract).
func (ix *streamIndex) notify(ev revocation.Event) {
	sh := ix.shard(ev.Subject)
	sh.mu.Lock()
	set := sh.m[ev.Subject]
	set.each((*watch).poke)
	sh.mu.Unlock()
}

// pokeAll wakes every indexed stream once (a stream indexed under several
// keys may be poked more than once; poke is idempotent). It never blocks.
func (ix *streamIndex) pokeAll() {
	for i := range ix.shards {
		sh := &ix.shards[i]
		sh.mu.Lock()
		for _, set := range sh.m {
			set.each((*watch).poke)
		}
		sh.mu.Unlock()
	}
}

// watching reports how many streams are indexed (for tests).
func (ix *streamIndex) watching() int {
	seen := make(map[*watch]struct{})
	for i := range ix.shards {
		sh := &ix.shards[i]
		sh.mu.Lock()
		for _, set := range sh.m {
			set.each(func(w *watch) { seen[w] = struct{}{} })
		}
		sh.mu.Unlock()
	}
	return len(seen)
}
