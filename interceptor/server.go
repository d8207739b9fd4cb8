package interceptor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/interceptor/token"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	"github.com/caekit/caekit/revocation"
)

// Validator verifies a raw access token and returns its claims.
// *token.Validator implements it. Implementations must be safe for
// concurrent use, must not put the token in their errors, and should wrap the
// token package's sentinel errors (token.ErrExpired gives reason TOKEN_EXPIRED,
// anything else TOKEN_INVALID).
//
// A Validator that also has the method
//
//	ValidateNow(ctx context.Context, raw string, now time.Time) (*Claims, error)
//
// (*token.Validator does) is called through it, with the time.Now reading
// the Server takes when a call arrives, so that the validator need not read
// the clock again.
type Validator interface {
	// Validate verifies raw and returns its claims, or an error that does
	// not contain raw.
	Validate(ctx context.Context, raw string) (*Claims, error)
}

var _ Validator = (*token.Validator)(nil)

// nowValidator is a Validator taking the call's time (see Validator).
type nowValidator interface {
	ValidateNow(ctx context.Context, raw string, now time.Time) (*Claims, error)
}

var _ nowValidator = (*token.Validator)(nil)

// Server holds the server-side interceptors: it authenticates every call with
// a bearer token, runs the checks (revocation first), and keeps every open
// stream under watch so that a revocation event, a failing re-check or the
// token's expiry ends it.
//
// A Server is safe for concurrent use. Call Close when done: it stops the
// store subscription and ends the streams it still watches.
type Server struct {
	v    Validator
	vnow nowValidator // v, when it is one
	// jws: v is a *token.Validator, which accepts only a compact JWS in
	// canonical base64url (no space or tab in it).
	jws    bool
	o      options
	store  revocation.Store
	checks []check.Check
	// volatile are the configured checks that do not declare
	// TimeIndependent: they run on every stream message.
	volatile []check.Check
	revoke   revocationCheck // the built-in check, s.checks[0]
	index    streamIndex
	met      *serverMetrics

	unsub     func()
	unwatch   []func() // stops the ChangeNotifier subscriptions
	closing   chan struct{}
	closed    atomic.Bool // set before closing is closed
	closeOnce sync.Once

	// changes counts what may alter a decision already taken: store
	// events, RecheckStreams (ChangeNotifier changes) and Close. A call
	// admitted with Call.Lazy snapshots it at admission and re-evaluates
	// when its watch starts if it moved (core.go).
	changes atomic.Uint64
	// lazyStarts counts the watches of lazily admitted calls that started
	// (Admission.Watch, a late Recheck): tests read it (LazyWatchStarts).
	lazyStarts atomic.Uint64
}

// New returns a Server that validates tokens with v. It returns an error
// naming every invalid option.
func New(v Validator, opts ...Option) (*Server, error) {
	if v == nil {
		return nil, errors.New("interceptor: validator is nil")
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			o.fail("nil Option")
			continue
		}
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.checks = append([]check.Check(nil), o.checks...)
	if o.store == nil {
		st, err := defaultStore(v)
		if err != nil {
			return nil, err
		}
		o.store = st
	}
	if err := checkRetention(v, o.store); err != nil {
		return nil, err
	}
	s := &Server{
		v:       v,
		o:       o,
		store:   o.store,
		closing: make(chan struct{}),
	}
	s.vnow, _ = v.(nowValidator)
	_, s.jws = v.(*token.Validator)
	s.revoke = revocationCheck{store: o.store}
	if s.jws {
		// Verdicts are keyed by the *Claims pointer: only a validator known
		// to hand out one immutable Claims per token (fresh on a miss, the
		// cached one on a hit) qualifies; a custom Validator might reuse a
		// Claims value for different tokens.
		s.revoke.gen, s.revoke.verdicts = new(atomic.Uint64), new(verdictCache)
	}
	s.checks = append(make([]check.Check, 0, 1+len(o.checks)), s.revoke)
	s.checks = append(s.checks, o.checks...)
	for _, c := range o.checks {
		if ti, ok := c.(check.TimeIndependent); !ok || !ti.TimeIndependent() {
			s.volatile = append(s.volatile, c)
		}
	}
	s.index.init()
	if o.meterProvider == nil {
		o.meterProvider = otel.GetMeterProvider()
	}
	met, err := newServerMetrics(o.meterProvider, o.store, o.allowedEvery)
	if err != nil {
		return nil, fmt.Errorf("interceptor: metrics: %w", err)
	}
	s.met = met
	s.unsub = o.store.Subscribe(func(ev revocation.Event) {
		// The change is visible to Lookup already: a later call that
		// reads the new generation looks the token up again.
		if s.revoke.gen != nil {
			s.revoke.gen.Add(1)
		}
		s.changes.Add(1)
		s.index.notify(ev)
	})
	for _, c := range o.checks {
		if n, ok := c.(check.ChangeNotifier); ok {
			s.unwatch = append(s.unwatch, n.OnChange(s.RecheckStreams))
		}
	}
	return s, nil
}

// RecheckStreams re-runs the checks on every open stream now, idle ones
// included, and ends those that no longer pass. Checks that implement
// ChangeNotifier get this on every change; call it yourself after changing
// what another check decides on. It never blocks: each stream's own goroutine
// does its re-check.
func (s *Server) RecheckStreams() {
	s.changes.Add(1)
	s.index.pokeAll()
}

// Store returns the revocation store the Server consults (the one given with
// WithStore, or the Server's own in-memory store).
func (s *Server) Store() revocation.Store { return s.store }

// Close stops the store subscription and ends every stream and watched call
// still open with codes.Unavailable (reason STATE_UNAVAILABLE): once events
// no longer arrive, they could no longer be revoked. Calls that arrive after
// Close are refused the same way. Close is idempotent and does not wait for
// handlers; it waits for what the Server owns: the store and change
// subscriptions are stopped and the metrics unregistered when it returns.
// Its error reports a metrics unregistration that failed; later calls
// return nil.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		s.changes.Add(1)
		s.index.pokeAll() // watched calls without a goroutine of their own
		s.unsub()
		for _, stop := range s.unwatch {
			if stop != nil {
				stop()
			}
		}
		if e := s.met.close(); e != nil {
			err = fmt.Errorf("interceptor: close: %w", e)
		}
	})
	return err
}

func (s *Server) isClosed() bool { return s.closed.Load() }

// ServerOptions returns the grpc.ServerOptions that install both interceptors
// (chained, so they compose with other interceptors).
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(s.StreamServerInterceptor()),
	}
}

type claimsKey struct{}

// claimsCtx is a handler's context: the call's context and its claims,
// which ClaimsFromContext finds under claimsKey. It is
// context.WithValue(parent, claimsKey{}, claims) in half the allocation (24
// bytes, not 48: neither the key nor the claims are boxed in an interface).
type claimsCtx struct {
	context.Context
	claims *Claims
}

// withClaims returns parent carrying claims for ClaimsFromContext.
func withClaims(parent context.Context, claims *Claims) context.Context {
	return &claimsCtx{Context: parent, claims: claims}
}

// Value returns the claims for claimsKey, else the parent's value.
func (c *claimsCtx) Value(key any) any {
	if _, ok := key.(claimsKey); ok {
		return c.claims
	}
	return c.Context.Value(key)
}

// String describes the context as the context package does: the parent's
// String, or its type name (never its contents), and no claims.
func (c *claimsCtx) String() string {
	parent := fmt.Sprintf("%T", c.Context)
	if s, ok := c.Context.(fmt.Stringer); ok {
		parent = s.String()
	}
	return parent + ".WithValue(caekit claims)"
}

// ClaimsFromContext returns the validated token claims of the call, as put
// into the handler's context by the Server's interceptors. It reports false
// for exempt methods and outside an intercepted call. Never modify the Claims.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// HealthAndReflection matches the gRPC health service and both server
// reflection services; use it with WithExempt to let probes and tooling in
// without a token. It refuses full methods with extra path segments, which a
// matcher looking at CallMeta.Service alone would let through.
func HealthAndReflection() selector.Matcher {
	return selector.MatchFunc(func(_ context.Context, cm interceptors.CallMeta) bool {
		// CallMeta splits the full method at its first '/', but grpc-go
		// routes at the last: "/grpc.health.v1.Health/x/admin.v1.Admin/Delete"
		// would look like health yet reach an UnknownServiceHandler. A
		// method name never contains '/'.
		if strings.Contains(cm.Method, "/") {
			return false
		}
		switch cm.Service {
		case "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection":
			return true
		}
		return false
	})
}

func (s *Server) isExempt(ctx context.Context, fullMethod string, info *grpc.StreamServerInfo, req any) bool {
	if s.o.exemptMethods != nil {
		if _, ok := s.o.exemptMethods[fullMethod]; ok {
			return true
		}
		if i := strings.LastIndexByte(fullMethod, '/'); i > 0 {
			if _, ok := s.o.exemptMethods[fullMethod[:i+1]]; ok {
				return true
			}
		}
	}
	if len(s.o.exempt) > 0 {
		cm := interceptors.NewServerCallMeta(fullMethod, info, req)
		for _, m := range s.o.exempt {
			if m.Match(ctx, cm) {
				return true
			}
		}
	}
	return false
}

// RegisterMethods records the methods of every service registered with gs
// (a *grpc.Server) as registered methods for the Server's metrics, so that
// they always report their own AttrMethod value. Calling it is optional: the
// interceptors recognise registered methods by themselves (unary calls, and
// streams whose service implementation gRPC passes in), except the streaming
// methods of a service registered with a nil implementation.
func (s *Server) RegisterMethods(gs interface {
	GetServiceInfo() map[string]grpc.ServiceInfo
}) {
	for svc, info := range gs.GetServiceInfo() {
		for _, m := range info.Methods {
			s.met.method("/"+svc+"/"+m.Name, true)
		}
	}
}

// UnaryServerInterceptor returns the unary interceptor.
func (s *Server) UnaryServerInterceptor() grpc.UnaryServerInterceptor { return s.unary }

func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.isExempt(ctx, info.FullMethod, nil, req) {
		return handler(ctx, req)
	}
	now, start := callClock()
	// gRPC calls unary interceptors for registered methods only.
	ms := s.met.method(info.FullMethod, true)
	claims, raw, d := s.authenticate(ctx, metadata.ValueFromIncomingContext(ctx, "authorization"), grpcCredentials, now)
	var addr net.Addr // read when a check or a denial needs it
	if d == nil {
		var md metadata.MD
		if s.o.customMetadata {
			md, _ = metadata.FromIncomingContext(ctx)
		}
		if len(s.o.checks) > 0 {
			addr = peerAddr(ctx)
		}
		d = s.evaluate(ctx, info.FullMethod, claims, md, false, addr, now)
	}
	if d != nil {
		if addr == nil {
			addr = peerAddr(ctx)
		}
		c := s.newCut(d, claims)
		s.met.denied(ctx, ms, reasonName(d.Reason), monoNow()-start)
		if c.header != "" {
			_ = grpc.SetTrailer(ctx, metadata.Pairs(challenge.MetadataKey, c.header))
		}
		s.denied(ctx, PhaseUnary, "caekit: call denied", info.FullMethod, claims, raw, c, addr)
		return nil, c.err
	}
	s.met.allowed(ctx, ms, start)
	hctx := withClaims(ctx, claims)
	if s.o.logFields {
		if up := hasLoggingFields(ctx); up || s.o.injectFields {
			hctx = publishFields(ctx, hctx, up, s.o.injectFields, logging.Fields{
				FieldSubject, claims.Subject, FieldTenant, claims.TenantID, FieldDecision, outcomeAllow,
			})
		}
	}
	return handler(hctx, req)
}

// peerAddr returns the gRPC peer address of ctx, nil when unknown.
func peerAddr(ctx context.Context) net.Addr {
	if p, ok := peer.FromContext(ctx); ok {
		return p.Addr
	}
	return nil
}

// credentials names where a front door reads the bearer token, for the
// descriptions of authentication failures.
type credentials struct {
	name string // e.g. "authorization metadata"
	hint string // e.g. "authorization: Bearer <token>"
}

var grpcCredentials = credentials{name: "authorization metadata", hint: "authorization: Bearer <token>"}

// authenticate validates the bearer token found in vals, the values of the
// call's authorization metadata or header. It returns the raw token (for a
// hash in logs only) and a denial on failure.
//
// now is the call's time.Now reading, for a nowValidator.
func (s *Server) authenticate(ctx context.Context, vals []string, src credentials, now time.Time) (*Claims, string, *check.Denial) {
	if s.isClosed() {
		return nil, "", closedDenial()
	}
	if len(vals) != 1 {
		desc := "missing " + src.name + `: send "` + src.hint + `"`
		if len(vals) > 1 {
			desc = "got " + strconv.Itoa(len(vals)) + " " + src.name + " values: send exactly one"
		}
		return nil, "", invalidDenial(caev1.Reason_REASON_TOKEN_INVALID, desc)
	}
	raw, ok := bearerToken(vals[0])
	// A token with a space or a tab in it is not one. A *token.Validator
	// refuses such a token anyway (s.jws), so it is looked for only once the
	// validator refused the token: scanning every token twice was ~6 % of
	// a cache-hit call.
	if !ok || (!s.jws && innerSpace(raw)) {
		return nil, "", notBearer(src)
	}
	var (
		claims *Claims
		err    error
	)
	if s.vnow != nil {
		claims, err = s.vnow.ValidateNow(ctx, raw, now)
	} else {
		claims, err = s.v.Validate(ctx, raw)
	}
	if err != nil {
		if s.jws && innerSpace(raw) {
			return nil, "", notBearer(src)
		}
		reason := caev1.Reason_REASON_TOKEN_INVALID
		if errors.Is(err, token.ErrExpired) {
			reason = caev1.Reason_REASON_TOKEN_EXPIRED
		}
		desc := "invalid token: " + err.Error()
		if strings.Contains(desc, raw) { // defence in depth: never echo a token
			desc = strings.ReplaceAll(desc, raw, "<token "+tokenHash(raw)+">")
		}
		return nil, raw, invalidDenial(reason, desc)
	}
	if claims == nil {
		return nil, raw, invalidDenial(caev1.Reason_REASON_TOKEN_INVALID, "invalid token: validator returned no claims")
	}
	if d := s.lifetime(claims); d != nil {
		return claims, raw, d
	}
	return claims, raw, nil
}

// bearerToken returns the token of an "authorization: Bearer <token>" value:
// the case-insensitive scheme, a space or a tab, and the non-empty rest,
// trimmed. The token must not contain a space or a tab either: the caller
// checks that (innerSpace).
func bearerToken(v string) (string, bool) {
	const scheme = "bearer"
	if len(v) <= len(scheme)+1 || (v[len(scheme)] != ' ' && v[len(scheme)] != '\t') {
		return "", false
	}
	// ASCII case folding of the scheme, four bytes and two at a time:
	// strings.EqualFold's Unicode folding cost more than the rest of the
	// parse, and no other bytes fold to these six ASCII letters (only k
	// and s have non-ASCII folds). Setting bit 5 maps exactly 'B' and 'b'
	// to 'b', and so on.
	const lower4, lower2 = 0x20202020, 0x2020
	w4 := uint32(v[0]) | uint32(v[1])<<8 | uint32(v[2])<<16 | uint32(v[3])<<24
	w2 := uint16(v[4]) | uint16(v[5])<<8
	if w4|lower4 != 'b'|'e'<<8|'a'<<16|'r'<<24 || w2|lower2 != 'e'|'r'<<8 {
		return "", false
	}
	t := strings.TrimSpace(v[len(scheme)+1:])
	if t == "" {
		return "", false
	}
	return t, true
}

// notBearer is the denial of an authorization value that is not
// "Bearer <token>".
func notBearer(src credentials) *check.Denial {
	return invalidDenial(caev1.Reason_REASON_TOKEN_INVALID, src.name+` is not "Bearer <token>"`)
}

// innerSpace reports whether t contains a space or a tab.
func innerSpace(t string) bool {
	return strings.IndexByte(t, ' ') >= 0 || strings.IndexByte(t, '\t') >= 0
}

func (s *Server) capable(c *Claims) bool {
	return s.o.challengeAll || (c != nil && c.HasCapability(s.o.capability))
}

// lifetime enforces WithMaxNonCAELifetime.
func (s *Server) lifetime(c *Claims) *check.Denial {
	limit := s.o.maxNonCAE
	if limit <= 0 || c.HasCapability(s.o.capability) {
		return nil
	}
	from := c.IssuedAt
	if from.IsZero() {
		from = s.o.now() // no iat: judge what is left of the token
	}
	life := c.ExpiresAt.Sub(from)
	if c.ExpiresAt.IsZero() || life > limit {
		return &check.Denial{
			Reason: caev1.Reason_REASON_TOKEN_LIFETIME,
			Description: "token lifetime " + life.String() + " exceeds the " + limit.String() +
				" allowed for clients without the " + s.o.capability + " capability: request a shorter-lived token or declare " + s.o.capability,
		}
	}
	return nil
}

var requestPool = sync.Pool{New: func() any { return new(check.Request) }}

// evaluate builds the Request once and runs the checks in order; the first
// denial wins.
//
// now is the call's time.Now reading (callClock): check.Request.Now under
// the default clock. Without configured checks, the built-in revocation
// check, which reads only the claims, runs without a Request.
func (s *Server) evaluate(ctx context.Context, method string, claims *Claims, md metadata.MD, stream bool, addr net.Addr, now time.Time) *check.Denial {
	if len(s.checks) == 1 {
		return s.revoke.check(claims)
	}
	r := requestPool.Get().(*check.Request)
	r.FullMethod = method
	r.Claims = claims
	r.Metadata = md
	r.Stream = stream
	if s.o.clockSet {
		r.Now = s.o.now()
	} else {
		r.Now = now
	}
	r.Peer = addr
	var d *check.Denial
	for _, c := range s.checks {
		if d = c.Check(ctx, r); d != nil {
			break
		}
	}
	*r = check.Request{}
	requestPool.Put(r)
	return d
}

func invalidDenial(reason caev1.Reason, desc string) *check.Denial {
	return &check.Denial{Reason: reason, Description: desc}
}

func closedDenial() *check.Denial {
	return &check.Denial{
		Code:        codeUnavailable,
		Reason:      caev1.Reason_REASON_STATE_UNAVAILABLE,
		Description: "the CAE interceptor is closed: retry against another server",
	}
}

// tokenHash is token.Hash, a short, non-reversible prefix safe to log.
func tokenHash(raw string) string {
	if raw == "" {
		return "none"
	}
	return token.Hash(raw)
}

// denied publishes a denial: logging fields for an upstream logging
// interceptor (not for mid-stream cuts, whose fields are live values), the
// kit's own log line and the audit hook.
func (s *Server) denied(ctx context.Context, phase AuditPhase, msg, method string, claims *Claims, raw string, c *cut, addr net.Addr) {
	sub, tid := claimFields(claims)
	if s.o.logFields && phase != PhaseMidStream && hasLoggingFields(ctx) {
		logging.AddFields(ctx, logging.Fields{
			FieldSubject, sub, FieldTenant, tid, FieldDecision, outcomeDeny, FieldReason, reasonName(c.d.Reason),
		})
	}
	h := tokenHash(raw)
	if claims != nil && claims.Hash != "" {
		h = claims.Hash
	}
	if s.o.audit != nil {
		r := AuditRecord{
			Time:        s.o.now(),
			Phase:       phase,
			Method:      method,
			Subject:     sub,
			Tenant:      tid,
			Code:        c.st.Code(),
			Reason:      c.d.Reason,
			Description: c.d.Description,
			EventID:     c.d.EventID,
			EventTime:   c.d.EventTime,
			TokenHash:   h,
		}
		if r.Description == "" {
			r.Description = c.st.Message()
		}
		r.Peer = addr
		s.o.audit(ctx, r)
	}
	if !s.o.logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", c.st.Code().String()),
		slog.String(FieldDecision, outcomeDeny),
		slog.String(FieldReason, reasonName(c.d.Reason)),
		slog.String("phase", phase.String()),
		slog.String("token", h),
		slog.String("description", c.d.Description),
	}
	if claims != nil {
		attrs = append(attrs, slog.String(FieldSubject, sub), slog.String(FieldTenant, tid))
	}
	if c.d.EventID != "" {
		attrs = append(attrs, slog.String("event_id", c.d.EventID))
	}
	if !c.d.EventTime.IsZero() {
		attrs = append(attrs, slog.Time("event_time", c.d.EventTime))
	}
	if addr != nil {
		attrs = append(attrs, slog.String("peer", addr.String()))
	}
	s.o.logger.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
}
