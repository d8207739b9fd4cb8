package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/policy/clientip"
	"github.com/caekit/caekit/policy/location"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// Engine enforces a Policy as check.Check values. The compiled policy
// is immutable and swapped atomically by Update (or a Watcher), so checks
// never wait for a reload. An Engine is safe for concurrent use.
type Engine struct {
	cur  atomic.Pointer[compiled]
	opts options
	mem  *memory

	subMu  sync.Mutex
	subs   map[uint64]func() // OnChange subscribers
	nextID uint64
}

type options struct {
	logger       *slog.Logger
	clientID     string
	memEntries   int
	memTTL       time.Duration
	window       time.Duration
	iatSkew      time.Duration
	strictV6Bits int
}

// Option configures an Engine.
type Option func(*options)

// WithLogger sets the logger (default slog.Default()). Denials are logged
// with the token's hash prefix, never the token.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithClientID adds client_id="<id>" (the API's application id) to
// auth-context challenges, as Entra's sample does.
func WithClientID(id string) Option { return func(o *options) { o.clientID = id } }

// WithChallengeMemory bounds the memory of recent challenges that lets the
// engine turn a challenge the client cannot satisfy into a plain denial
// instead of a loop: at most entries (rule, caller) pairs, each holding up
// to 8 addresses, each kept for ttl. Defaults: 10,000 and 1 hour. See the
// package doc.
func WithChallengeMemory(entries int, ttl time.Duration) Option {
	return func(o *options) { o.memEntries, o.memTTL = entries, ttl }
}

// DefaultChallengeAnswerWindow is how long after a challenge a new token
// that still fails counts as the answer to it (and gets the plain denial
// instead of another challenge); see WithChallengeAnswerWindow.
const DefaultChallengeAnswerWindow = 2 * time.Minute

// WithChallengeAnswerWindow sets how long after a challenge a token first
// seen, issued after the challenge and still failing the rule, is taken for
// the client's answer to it, and gets a plain PermissionDenied instead of
// another challenge (default DefaultChallengeAnswerWindow). A new token
// first seen later is not an answer (a proactive refresh, another device):
// it is challenged, and the window starts again. Clients retry a challenged
// call at once, so the window only needs to cover one trip to the identity
// provider, interactive step-up included.
func WithChallengeAnswerWindow(d time.Duration) Option {
	return func(o *options) { o.window = d }
}

// WithIssuedAtSkew sets how much earlier than a recorded challenge a new
// token's iat may be and still count as issued in answer to it (default 10
// minutes: Entra backdates iat and nbf by 5 minutes, and clocks drift).
func WithIssuedAtSkew(d time.Duration) Option { return func(o *options) { o.iatSkew = d } }

// WithStrictIPv6Prefix makes strict mode compare IPv6 addresses by their
// first bits bits instead of all 128, so that privacy addresses rotating
// within one /64 are not a mismatch. Default 128 (exact). IPv4 is always exact.
func WithStrictIPv6Prefix(bits int) Option { return func(o *options) { o.strictV6Bits = bits } }

// compiled is an immutable, ready-to-evaluate policy.
type compiled struct {
	pol      *Policy
	table    *location.Table
	resolver *clientip.Resolver
	exact    map[string]*crule // "/pkg.Service/Method"
	service  map[string]*crule // "/pkg.Service/"
	def      *crule            // "*"
}

type crule struct {
	rule       *Rule
	pattern    string // the most readable pattern, for logs
	allow      []bool // by location index; nil: no allow list
	block      []bool
	needIP     bool
	strict     bool
	acrs       []string
	acrsClaims string        // challenge claims for acrs[0]
	acrsKey    string        // challenge memory key of the auth context requirement
	acrValues  []string      // RFC 9470 acr_values; nil: none
	maxAge     time.Duration // RFC 9470 max_age; 0: none
	stepUpKey  string        // challenge memory key of the RFC 9470 requirement
	locKey     string        // challenge memory key of the location rule
}

// NewEngine validates p, copies it and returns an Engine enforcing it.
// Invalid options are all reported at once, joined with errors.Join, before
// p is looked at.
func NewEngine(p *Policy, opts ...Option) (*Engine, error) {
	o := options{
		logger:       slog.Default(),
		memEntries:   10000,
		memTTL:       time.Hour,
		window:       DefaultChallengeAnswerWindow,
		iatSkew:      10 * time.Minute,
		strictV6Bits: 128,
	}
	var errs []error
	for i, opt := range opts {
		if opt == nil {
			errs = append(errs, fmt.Errorf("policy: option %d is nil", i))
			continue
		}
		opt(&o)
	}
	if o.memEntries < 1 || o.memTTL <= 0 {
		errs = append(errs, fmt.Errorf("policy: challenge memory needs at least 1 entry and a positive ttl (got %d, %v)", o.memEntries, o.memTTL))
	}
	if o.window <= 0 {
		errs = append(errs, fmt.Errorf("policy: challenge answer window %v is not positive", o.window))
	}
	if o.iatSkew < 0 {
		errs = append(errs, fmt.Errorf("policy: issued-at skew %v is negative", o.iatSkew))
	}
	if o.strictV6Bits < 1 || o.strictV6Bits > 128 {
		errs = append(errs, fmt.Errorf("policy: strict IPv6 prefix /%d outside /1../128", o.strictV6Bits))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e := &Engine{opts: o, mem: newMemory(o.memEntries, o.memTTL, o.window)}
	if err := e.Update(p); err != nil {
		return nil, err
	}
	return e, nil
}

// Update validates p and, if it is valid, makes a copy of it the policy in
// force, atomically; calls already being checked finish with the old one.
// An invalid p changes nothing.
func (e *Engine) Update(p *Policy) error {
	c, err := compile(p)
	if err != nil {
		return err
	}
	e.cur.Store(c)
	e.notify()
	return nil
}

// OnChange registers f to be called after each successful Update (including
// a Watcher's reloads), once the new policy is in force, and returns a
// function that removes it. The interceptor.Server uses it (through the
// check.ChangeNotifier interface of the Engine and its Checks) to
// re-check every open stream at once when the policy changes, idle streams
// included. f is called on the updating goroutine and must not block.
func (e *Engine) OnChange(f func()) (stop func()) {
	if f == nil {
		return func() {}
	}
	e.subMu.Lock()
	defer e.subMu.Unlock()
	if e.subs == nil {
		e.subs = make(map[uint64]func())
	}
	id := e.nextID
	e.nextID++
	e.subs[id] = f
	return func() {
		e.subMu.Lock()
		delete(e.subs, id)
		e.subMu.Unlock()
	}
}

// notify calls the OnChange subscribers.
func (e *Engine) notify() {
	e.subMu.Lock()
	fs := make([]func(), 0, len(e.subs))
	for _, f := range e.subs {
		fs = append(fs, f)
	}
	e.subMu.Unlock()
	for _, f := range fs {
		f()
	}
}

// Policy returns a copy of the policy in force.
func (e *Engine) Policy() *Policy { return e.cur.Load().pol.Clone() }

func compile(p *Policy) (*compiled, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.Clone()
	for i := range p.Locations { // canonical form (IPv4-mapped -> IPv4)
		for k, r := range p.Locations[i].Ranges {
			p.Locations[i].Ranges[k], _ = location.Normalize(r)
		}
	}
	t, err := location.NewTable(p.Locations)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	res, err := p.ClientIP.resolver()
	if err != nil {
		return nil, fmt.Errorf("policy: client_ip: %w", err)
	}
	c := &compiled{pol: p, table: t, resolver: res, exact: map[string]*crule{}, service: map[string]*crule{}}
	for i := range p.Rules {
		r := &p.Rules[i]
		cr := &crule{rule: r, pattern: r.Methods[0], locKey: "loc:" + r.Methods[0], strict: r.Strict, acrs: r.AuthContext}
		if len(r.AllowLocations) > 0 || r.AllowTrusted {
			cr.allow = make([]bool, t.Len())
			for _, n := range r.AllowLocations {
				cr.allow[t.Index(n)] = true
			}
			if r.AllowTrusted {
				for id := range t.Len() {
					if t.Location(int32(id)).Trusted {
						cr.allow[id] = true
					}
				}
			}
		}
		if len(r.BlockLocations) > 0 {
			cr.block = make([]bool, t.Len())
			for _, n := range r.BlockLocations {
				cr.block[t.Index(n)] = true
			}
		}
		cr.needIP = cr.allow != nil || cr.block != nil || cr.strict
		if len(cr.acrs) > 0 {
			cr.acrsClaims = challenge.AuthContextClaims(cr.acrs[0])
			cr.acrsKey = "acrs:" + strings.Join(cr.acrs, ",")
		}
		if r.stepUp() {
			cr.acrValues, cr.maxAge = r.ACRValues, r.MaxAge
			cr.stepUpKey = "stepup:" + strings.Join(r.ACRValues, " ") + ";" + challenge.MaxAgeParam(r.MaxAge)
		}
		for _, m := range r.Methods {
			switch {
			case m == "*":
				c.def = cr
			case strings.HasSuffix(m, "/*"):
				c.service[m[:len(m)-1]] = cr
			default:
				c.exact[m] = cr
			}
		}
	}
	c.inheritBlocks()
	return c, nil
}

// inheritBlocks makes block lists accumulate: every "/pkg.Service/*" rule
// also blocks what "*" blocks, and every exact rule also blocks what its
// service rule and "*" block. Allow lists, strict and auth_context are not
// inherited: they come from the most specific rule alone. A rule whose
// blocks grow gets its own copy per pattern, because one Rule may list
// patterns of several services, each with different broader rules.
func (c *compiled) inheritBlocks() {
	var def []bool
	if c.def != nil {
		def = c.def.block
	}
	for prefix, r := range c.service {
		c.service[prefix] = r.withBlocks(prefix+"*", def)
	}
	for m, r := range c.exact {
		inherited := def
		if i := strings.LastIndexByte(m, '/'); i > 0 {
			if s := c.service[m[:i+1]]; s != nil {
				inherited = s.block // already holds the "*" blocks
			}
		}
		c.exact[m] = r.withBlocks(m, inherited)
	}
}

// withBlocks returns r if inherited adds nothing to its block list, else a
// copy of r, named by pattern, that also blocks the inherited locations.
func (r *crule) withBlocks(pattern string, inherited []bool) *crule {
	if inherited == nil {
		return r
	}
	merged := make([]bool, len(inherited))
	grows := false
	for id, b := range inherited {
		own := r.block != nil && r.block[id]
		merged[id] = b || own
		grows = grows || (b && !own)
	}
	if !grows {
		return r
	}
	cp := *r
	cp.pattern = pattern
	cp.locKey = "loc:" + pattern
	cp.block = merged
	cp.needIP = true
	return &cp
}

// ruleFor returns the most specific rule for fullMethod, or nil. Its block
// list already holds the blocks of the broader rules (inheritBlocks).
func (c *compiled) ruleFor(fullMethod string) *crule {
	if r := c.exact[fullMethod]; r != nil {
		return r
	}
	if i := strings.LastIndexByte(fullMethod, '/'); i > 0 {
		if r := c.service[fullMethod[:i+1]]; r != nil {
			return r
		}
	}
	return c.def
}

// Checks returns the location check, the auth-context check and the RFC
// 9470 step-up check, in that order, for interceptor.WithChecks.
func (e *Engine) Checks() []check.Check {
	return []check.Check{e.LocationCheck(), e.AuthContextCheck(), e.StepUpCheck()}
}

// StepUpCheck returns the check that enforces acr_values and max_age (RFC
// 9470). Unlike the others it is not check.TimeIndependent: a max_age
// requirement is met by a token at one time and failed later. It is
// check.MethodTimeIndependent instead: open streams run it on every message
// only for methods whose rule has a max_age.
func (e *Engine) StepUpCheck() check.Check {
	return engineCheck{e: e, check: e.checkStepUp, timeDependent: true}
}

// LocationCheck returns the check that enforces allow_locations,
// allow_trusted, block_locations and strict.
func (e *Engine) LocationCheck() check.Check {
	return engineCheck{e: e, check: e.checkLocation}
}

// AuthContextCheck returns the check that enforces auth_context.
func (e *Engine) AuthContextCheck() check.Check {
	return engineCheck{e: e, check: e.checkAuthContext}
}

// engineCheck is one of the Engine's checks. It reads the forwarding header
// from the call's context itself, so the interceptor need not copy the
// incoming metadata (check.MetadataUser).
type engineCheck struct {
	e             *Engine
	check         func(context.Context, *check.Request) *check.Denial
	timeDependent bool
}

var (
	_ check.ChangeNotifier = engineCheck{}
	_ check.ChangeNotifier = (*Engine)(nil)
)

// OnChange is the Engine's OnChange: open streams are re-checked when the
// policy changes.
func (c engineCheck) OnChange(f func()) (stop func()) { return c.e.OnChange(f) }

// Check runs the Engine check c wraps.
func (c engineCheck) Check(ctx context.Context, req *check.Request) *check.Denial {
	return c.check(ctx, req)
}

// UsesMetadata reports false: the policy reads single keys from ctx.
func (engineCheck) UsesMetadata() bool { return false }

// UsesMetadata reports false: the policy reads single keys from ctx.
func (e *Engine) UsesMetadata() bool { return false }

var (
	_ check.TimeIndependent = engineCheck{}
	_ check.TimeIndependent = (*Engine)(nil)
)

// TimeIndependent reports true for the location and auth-context checks:
// whether a stream passes depends only on the policy (whose every change
// OnChange reports), the stream's method, token, peer and forwarding header,
// never on the time; only the form of a denial (challenge or plain denial,
// from the challenge memory) does. Open streams therefore skip them on
// messages while nothing changed. It reports false for StepUpCheck, whose
// max_age depends on the time.
func (c engineCheck) TimeIndependent() bool { return !c.timeDependent }

var _ check.MethodTimeIndependent = engineCheck{}

// TimeIndependentFor reports, for streams of fullMethod under the current
// policy, whether the check can skip messages while nothing changed: always
// for the location and auth-context checks; for StepUpCheck unless the
// method's rule has a max_age (acr_values alone do not depend on the time).
// A reload that changes this is reported through OnChange.
func (c engineCheck) TimeIndependentFor(fullMethod string) bool {
	if !c.timeDependent {
		return true
	}
	r := c.e.cur.Load().ruleFor(fullMethod)
	return r == nil || r.maxAge == 0
}

// TimeIndependent reports false: the Engine as one check includes the RFC
// 9470 max_age requirement, which depends on the time. Install Checks()
// instead to let open streams skip the location and auth-context checks.
func (e *Engine) TimeIndependent() bool { return false }

// Check runs the location check, then the auth-context check, then the
// step-up check.
func (e *Engine) Check(ctx context.Context, req *check.Request) *check.Denial {
	if d := e.checkLocation(ctx, req); d != nil {
		return d
	}
	if d := e.checkAuthContext(ctx, req); d != nil {
		return d
	}
	return e.checkStepUp(ctx, req)
}

var noClaims token.Claims

// claimsOf returns the request's claims; an empty set if (against the
// interceptor's contract) there are none, so that nothing panics.
func claimsOf(req *check.Request) *token.Claims {
	if req.Claims == nil {
		return &noClaims
	}
	return req.Claims
}

func now(req *check.Request) time.Time {
	if req.Now.IsZero() {
		return time.Now()
	}
	return req.Now
}

func (e *Engine) checkLocation(ctx context.Context, req *check.Request) *check.Denial {
	c := e.cur.Load()
	r := c.ruleFor(req.FullMethod)
	if r == nil || !r.needIP {
		return nil
	}
	var ip netip.Addr
	var err error
	if req.Metadata != nil {
		ip, err = c.resolver.ClientIP(req.Peer, req.Metadata)
	} else {
		ip, err = c.resolver.ClientIPFromContext(ctx, req.Peer)
	}
	if err != nil {
		e.opts.logger.LogAttrs(ctx, slog.LevelWarn, "policy: cannot determine client IP; denying",
			slog.String("method", req.FullMethod), slog.String("error", err.Error()), tokenAttr(req.Claims))
		return &check.Denial{
			Code:        codes.PermissionDenied,
			Reason:      caev1.Reason_REASON_LOCATION,
			Description: "location policy: the caller's IP address could not be determined",
		}
	}
	ids := c.table.Lookup(ip)
	blocked, allowed := false, r.allow == nil
	for _, id := range ids {
		if r.block != nil && r.block[id] {
			blocked = true
		}
		if r.allow != nil && r.allow[id] {
			allowed = true
		}
	}
	why := ""
	switch {
	case blocked:
		why = "is in a blocked location"
	case !allowed:
		why = "is not in an allowed location"
	case r.strict && !e.sameIP(claimsOf(req).IPAddr, ip):
		why = "does not match the address the identity provider saw (strict location enforcement)"
	default:
		// The caller passes this rule: forget its challenges for the rule,
		// at every address, so that a later refusal (a return to a
		// challenged address, a refreshed token) is challenged again
		// rather than denied outright.
		e.mem.clear(memKey{rule: r.locKey, sub: subjectOf(claimsOf(req))})
		return nil
	}
	return e.locationDenial(ctx, req, c, r, ip, ids, why)
}

func (e *Engine) sameIP(claim string, ip netip.Addr) bool {
	tip, err := netip.ParseAddr(claim)
	if err != nil {
		return false
	}
	tip = tip.Unmap().WithZone("")
	if tip.Is6() && ip.Is6() && e.opts.strictV6Bits < 128 {
		a, _ := tip.Prefix(e.opts.strictV6Bits)
		b, _ := ip.Prefix(e.opts.strictV6Bits)
		return a == b
	}
	return tip == ip
}

// locationDenial decides between a claims challenge and a plain denial; see
// "Avoiding challenge loops" in the package doc.
func (e *Engine) locationDenial(ctx context.Context, req *check.Request, c *compiled, r *crule, ip netip.Addr, ids []int32, why string) *check.Denial {
	t := now(req)
	cl := claimsOf(req)
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = c.table.Location(id).Name
	}
	attrs := []slog.Attr{
		slog.String("method", req.FullMethod), slog.String("rule", r.pattern),
		slog.String("client_ip", ip.String()), slog.Any("locations", names),
		slog.String("token_ipaddr", cl.IPAddr), tokenAttr(cl), slog.String("why", why),
	}
	seen := e.sameIP(cl.IPAddr, ip)
	first, plain := e.mem.decide(memKey{rule: r.locKey, sub: subjectOf(cl)}, ip, cl, t, e.opts.iatSkew)
	if seen {
		plain = true // the IdP issued this token seeing this very address
	}
	if plain {
		e.opts.logger.LogAttrs(ctx, slog.LevelInfo, "policy: location denied; a new token would not help", attrs...)
		msg := fmt.Sprintf("location policy: this service sees the caller at %s, which %s for %s", ip, why, req.FullMethod)
		if seen {
			msg += "; the identity provider issued this token seeing the same address, so a new token will not help"
		} else {
			msg += fmt.Sprintf("; the token was issued after the location challenge of %s, so a new token will not help", first.UTC().Format(time.RFC3339))
			if cl.IPAddr != "" {
				msg += fmt.Sprintf(" (the identity provider sees the caller at %s: if that is the same network, its %s ranges may be missing from the named location)", cl.IPAddr, otherFamily(ip))
			}
		}
		return &check.Denial{Code: codes.PermissionDenied, Reason: caev1.Reason_REASON_LOCATION, Description: msg, EventTime: first}
	}
	e.opts.logger.LogAttrs(ctx, slog.LevelDebug, "policy: location challenge", attrs...)
	return &check.Denial{
		Reason:      caev1.Reason_REASON_LOCATION,
		Claims:      challenge.NotBeforeClaims(first),
		Description: fmt.Sprintf("location policy: this service sees the caller at %s, which %s for %s; get a new token", ip, why, req.FullMethod),
		EventTime:   first,
	}
}

func otherFamily(ip netip.Addr) string {
	if ip.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func (e *Engine) checkAuthContext(ctx context.Context, req *check.Request) *check.Denial {
	c := e.cur.Load()
	r := c.ruleFor(req.FullMethod)
	if r == nil || len(r.acrs) == 0 {
		return nil
	}
	cl := claimsOf(req)
	for _, a := range r.acrs {
		if cl.HasACR(a) {
			// Stepped up: forget the subject's step-up challenges for this
			// requirement, so that a later token without the context (a
			// proactive refresh asking for the base claims only, another
			// device) is challenged again, not locked out.
			e.mem.clear(memKey{rule: r.acrsKey, sub: subjectOf(cl)})
			return nil
		}
	}
	t := now(req)
	first, plain := e.mem.decide(memKey{rule: r.acrsKey, sub: subjectOf(cl)}, netip.Addr{}, cl, t, e.opts.iatSkew)
	attrs := []slog.Attr{
		slog.String("method", req.FullMethod), slog.String("rule", r.pattern),
		slog.Any("required", r.acrs), slog.Any("acrs", cl.ACRS), tokenAttr(cl),
	}
	if plain {
		return e.stillUnmet(ctx, "policy: auth context missing after step-up; denying", attrs, first,
			"auth context policy: %s requires authentication context %s, and the token issued after the step-up challenge of %s still lacks it; check that the identity provider's conditional access defines it",
			req.FullMethod, strings.Join(r.acrs, " or "))
	}
	e.opts.logger.LogAttrs(ctx, slog.LevelDebug, "policy: auth context challenge", attrs...)
	params := make([]challenge.Param, 0, 2)
	if e.opts.clientID != "" {
		params = append(params, challenge.Param{Name: "client_id", Value: e.opts.clientID})
	}
	params = append(params, challenge.Param{Name: "cc_type", Value: "authcontext"})
	return &check.Denial{
		Reason:      caev1.Reason_REASON_AUTH_CONTEXT,
		Claims:      r.acrsClaims,
		Description: fmt.Sprintf("auth context policy: %s requires authentication context %s", req.FullMethod, strings.Join(r.acrs, " or ")),
		EventTime:   first,
		Params:      params,
	}
}

// checkStepUp enforces a rule's acr_values and max_age (RFC 9470): the
// token's acr must be one of acr_values and now - auth_time must be at most
// max_age (a token without auth_time fails a max_age rule). A token that
// falls short gets the step-up challenge; a token issued in answer to one
// that still falls short gets a plain PermissionDenied (see "Avoiding
// challenge loops" in the package doc).
func (e *Engine) checkStepUp(ctx context.Context, req *check.Request) *check.Denial {
	c := e.cur.Load()
	r := c.ruleFor(req.FullMethod)
	if r == nil || r.stepUpKey == "" {
		return nil
	}
	cl := claimsOf(req)
	t := now(req)
	acrOK := len(r.acrValues) == 0 || (cl.ACR != "" && slices.Contains(r.acrValues, cl.ACR))
	ageOK := r.maxAge == 0 || (!cl.AuthTime.IsZero() && t.Sub(cl.AuthTime) <= r.maxAge)
	key := memKey{rule: r.stepUpKey, sub: subjectOf(cl)}
	if acrOK && ageOK {
		e.mem.clear(key)
		return nil
	}
	var why []string
	if !acrOK {
		if cl.ACR == "" {
			why = append(why, "the token has no acr claim")
		} else {
			why = append(why, fmt.Sprintf("the token's acr %q is not one of %s", cl.ACR, strings.Join(r.acrValues, ", ")))
		}
	}
	if !ageOK {
		if cl.AuthTime.IsZero() {
			why = append(why, "the token has no auth_time claim")
		} else {
			why = append(why, fmt.Sprintf("the user authenticated %v ago, more than max_age %v", t.Sub(cl.AuthTime).Truncate(time.Second), r.maxAge))
		}
	}
	first, plain := e.mem.decide(key, netip.Addr{}, cl, t, e.opts.iatSkew)
	attrs := []slog.Attr{
		slog.String("method", req.FullMethod), slog.String("rule", r.pattern),
		slog.Any("acr_values", r.acrValues), slog.Duration("max_age", r.maxAge),
		slog.String("acr", cl.ACR), slog.Time("auth_time", cl.AuthTime), tokenAttr(cl),
	}
	if plain {
		return e.stillUnmet(ctx, "policy: step-up requirement still unmet after the step-up challenge; denying", attrs, first,
			"step-up policy: %s: %s, and the token issued after the step-up challenge of %s still falls short; check that the identity provider honours acr_values and max_age",
			req.FullMethod, strings.Join(why, "; "))
	}
	e.opts.logger.LogAttrs(ctx, slog.LevelDebug, "policy: step-up challenge", attrs...)
	return &check.Denial{
		Reason:      caev1.Reason_REASON_AUTH_CONTEXT,
		Description: fmt.Sprintf("step-up policy: %s: %s", req.FullMethod, strings.Join(why, "; ")),
		EventTime:   first,
		ACRValues:   r.acrValues,
		MaxAge:      r.maxAge,
	}
}

// stillUnmet is the plain PermissionDenied for a token issued in answer to
// a step-up challenge (first is when that challenge was sent) that still
// falls short of the rule (see "Avoiding challenge loops" in the package
// doc). format takes the method and what is missing, then first in
// RFC 3339; msg is logged at Info with attrs. The auth context and step-up
// checks share it.
func (e *Engine) stillUnmet(ctx context.Context, msg string, attrs []slog.Attr, first time.Time, format, method, missing string) *check.Denial {
	e.opts.logger.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
	return &check.Denial{
		Code:        codes.PermissionDenied,
		Reason:      caev1.Reason_REASON_AUTH_CONTEXT,
		Description: fmt.Sprintf(format, method, missing, first.UTC().Format(time.RFC3339)),
		EventTime:   first,
	}
}

func tokenAttr(c *token.Claims) slog.Attr {
	if c == nil {
		return slog.String("token", "")
	}
	return slog.String("token", c.Hash)
}

// subjectID identifies the caller for the challenge memory. It is a struct
// of the claims' own strings, so that building it never allocates (it is
// built on the allow path, to clear the memory).
type subjectID struct {
	kind byte
	a, b string
}

// subjectOf returns the caller's subjectID: tenant and object id, else
// issuer and subject, else client id, else the token's hash.
func subjectOf(c *token.Claims) subjectID {
	switch {
	case c == nil:
		return subjectID{kind: '-'}
	case c.TenantID != "" && c.ObjectID != "":
		return subjectID{'o', c.TenantID, c.ObjectID}
	case c.Subject != "":
		return subjectID{'s', c.Issuer, c.Subject}
	case c.ClientID != "":
		return subjectID{'c', c.ClientID, ""}
	}
	return subjectID{'t', c.Hash, ""}
}

// memKey is one (rule, caller) pair of the challenge memory. rule is a
// crule's locKey or acrsKey.
type memKey struct {
	rule string
	sub  subjectID
}

// memory remembers, per (rule, caller) and address, when a challenge was
// first sent and which tokens it was sent to, so that a token issued in
// answer to it that still fails gets a plain denial instead of another
// challenge (see "Avoiding challenge loops" in the package doc). It is
// written on the deny path; the allow path only clears (rule, caller) pairs,
// and takes no lock while the memory is empty.
type memory struct {
	mu      sync.RWMutex
	max     int // (rule, caller) pairs
	ttl     time.Duration
	window  time.Duration
	entries map[memKey]*memEntry
	size    atomic.Int64 // len(entries), read without the lock
}

const (
	// tokensPerRecord bounds the tokens remembered per address.
	tokensPerRecord = 8
	// addrsPerEntry bounds the addresses remembered per (rule, caller).
	addrsPerEntry = 8
)

// memEntry is one (rule, caller): a record per address (the zero address
// for auth context, which does not depend on it).
type memEntry struct {
	recs []*memRecord // at most addrsPerEntry, oldest first
}

// memRecord is the challenge of one (rule, caller) at one address.
type memRecord struct {
	addr    netip.Addr
	first   time.Time // when the challenge was (last re)started: its nbf value
	expires time.Time
	tokens  []memToken // at most tokensPerRecord, oldest first
}

// memToken is a token the record has judged.
type memToken struct {
	hash    string
	session string // sid, else deviceid: tells devices and sessions apart
	plain   bool   // it got the plain denial
}

func newMemory(max int, ttl, window time.Duration) *memory {
	return &memory{max: max, ttl: ttl, window: window, entries: make(map[memKey]*memEntry)}
}

// clear forgets every challenge of key, at every address: the caller has
// just passed the rule. It is called on the allow path: it takes no lock
// while the memory is empty, and only a read lock when key is not in it.
func (m *memory) clear(key memKey) {
	if m.size.Load() == 0 {
		return
	}
	m.mu.RLock()
	_, ok := m.entries[key]
	m.mu.RUnlock()
	if !ok {
		return
	}
	m.mu.Lock()
	delete(m.entries, key)
	m.size.Store(int64(len(m.entries)))
	m.mu.Unlock()
}

func sessionOf(c *token.Claims) string {
	if c == nil {
		return ""
	}
	if c.SessionID != "" {
		return "sid:" + c.SessionID
	}
	if c.DeviceID != "" {
		return "dev:" + c.DeviceID
	}
	return ""
}

// decide returns when the challenge for key at addr was first sent (the nbf
// value of the challenge) and whether this token must get a plain denial
// because it was issued in answer to that challenge and still fails.
//
// A token gets the plain denial only if it is new to the record, issued no
// earlier than the challenge (less skew), first seen within the answer
// window after it, and, when tokens carry a session (sid, else deviceid),
// of the same session as a challenged token. The same token presented again
// gets the same answer as before.
func (m *memory) decide(key memKey, addr netip.Addr, c *token.Claims, now time.Time, skew time.Duration) (time.Time, bool) {
	hash := ""
	var iat time.Time
	if c != nil {
		hash, iat = c.Hash, c.IssuedAt
	}
	sess := sessionOf(c)
	m.mu.Lock()
	defer func() {
		m.size.Store(int64(len(m.entries)))
		m.mu.Unlock()
	}()
	ent := m.entries[key]
	var rec *memRecord
	if ent != nil {
		ent.prune(now)
		if len(ent.recs) == 0 {
			delete(m.entries, key)
			ent = nil
		} else {
			rec = ent.find(addr)
		}
	}
	if rec == nil {
		if ent == nil {
			m.makeRoom(now)
			ent = &memEntry{}
			m.entries[key] = ent
		}
		rec = &memRecord{addr: addr}
		ent.add(rec)
		rec.restart(now, m.ttl)
		rec.remember(memToken{hash: hash, session: sess})
		return rec.first, false
	}
	if hash != "" {
		for _, t := range rec.tokens {
			if t.hash == hash {
				// The same token again: its client has not been back to
				// the IdP; the same answer as before.
				return rec.first, t.plain
			}
		}
	}
	if (hash == "" && iat.IsZero()) || (!iat.IsZero() && iat.Before(rec.first.Add(-skew))) {
		// An older token that was never challenged: challenge it too.
		rec.remember(memToken{hash: hash, session: sess})
		return rec.first, false
	}
	if now.Sub(rec.first) > m.window {
		// A new token first seen long after the challenge is no answer to
		// it (a proactive refresh, another device): challenge it, and
		// start a new challenge round.
		rec.restart(now, m.ttl)
		rec.remember(memToken{hash: hash, session: sess})
		return rec.first, false
	}
	if sess != "" && rec.otherSession(sess) {
		// Another session or device of the same caller, which was never
		// challenged: challenge it too.
		rec.remember(memToken{hash: hash, session: sess})
		return rec.first, false
	}
	rec.remember(memToken{hash: hash, session: sess, plain: true})
	return rec.first, true
}

// restart starts a new challenge round at now.
func (r *memRecord) restart(now time.Time, ttl time.Duration) {
	r.first = now.Truncate(time.Second)
	r.expires = now.Add(ttl)
}

// remember adds t, dropping the oldest token when the record is full.
func (r *memRecord) remember(t memToken) {
	if len(r.tokens) >= tokensPerRecord {
		r.tokens = append(r.tokens[:0], r.tokens[1:]...)
	}
	r.tokens = append(r.tokens, t)
}

// otherSession reports whether the challenged tokens carry sessions and
// none of them is sess.
func (r *memRecord) otherSession(sess string) bool {
	seen := false
	for _, t := range r.tokens {
		if t.plain || t.session == "" {
			continue
		}
		if t.session == sess {
			return false
		}
		seen = true
	}
	return seen
}

func (e *memEntry) find(addr netip.Addr) *memRecord {
	for _, r := range e.recs {
		if r.addr == addr {
			return r
		}
	}
	return nil
}

// add adds r, dropping the oldest record when the entry is full.
func (e *memEntry) add(r *memRecord) {
	if len(e.recs) >= addrsPerEntry {
		e.recs = append(e.recs[:0], e.recs[1:]...)
	}
	e.recs = append(e.recs, r)
}

// prune drops expired records.
func (e *memEntry) prune(now time.Time) {
	keep := e.recs[:0]
	for _, r := range e.recs {
		if now.Before(r.expires) {
			keep = append(keep, r)
		}
	}
	clear(e.recs[len(keep):])
	e.recs = keep
}

// makeRoom evicts expired entries, then arbitrary ones, until one fits.
func (m *memory) makeRoom(now time.Time) {
	if len(m.entries) < m.max {
		return
	}
	for k, v := range m.entries {
		if v.prune(now); len(v.recs) == 0 {
			delete(m.entries, k)
		}
	}
	for k := range m.entries { // map order is unspecified: evicts arbitrary entries
		if len(m.entries) < m.max-m.max/8 || len(m.entries) == 0 {
			break
		}
		delete(m.entries, k)
	}
}
