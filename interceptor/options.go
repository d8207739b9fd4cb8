package interceptor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"go.opentelemetry.io/otel/metric"

	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/revocation"
)

// DefaultCapability is the client capability that marks a CAE-capable client
// (Entra's "cp1"). Only tokens whose xms_cc claim lists it get claims challenges.
const DefaultCapability = "cp1"

// Option configures a Server. Options are applied, in order, to a copy of the
// defaults; New reports invalid values.
type Option func(*options)

type options struct {
	store          revocation.Store
	checks         []check.Check
	authzURI       string
	realm          string
	capability     string
	challengeAll   bool
	maxNonCAE      time.Duration
	exempt         []selector.Matcher
	exemptMethods  map[string]struct{}
	logger         *slog.Logger
	now            func() time.Time
	recheckEvery   time.Duration
	errs           []error
	customMetadata bool
	meterProvider  metric.MeterProvider
	audit          AuditHook
	logFields      bool
	injectFields   bool
	// resourceMetadata is the RFC 9728 metadata URL (WithResourceMetadata).
	resourceMetadata string
	// allowedEvery is WithAllowedDurationEvery's n.
	allowedEvery int
	// clockSet is true after WithClock: check.Request.Now is then read
	// from now on every call, not taken from the call's own clock read
	// (callClock).
	clockSet bool
}

func defaultOptions() options {
	return options{
		capability:   DefaultCapability,
		logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:          time.Now,
		logFields:    true,
		allowedEvery: 1,
	}
}

func (o *options) fail(format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf("interceptor: "+format, args...))
}

func (o *options) validate() error {
	if o.authzURI != "" {
		u, err := url.Parse(o.authzURI)
		if err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			o.fail("authorization URI %q must be an absolute http(s) URL", o.authzURI)
		}
	}
	if strings.ContainsAny(o.authzURI+o.realm, "\"\\\r\n") {
		o.fail("authorization URI and realm must not contain quotes, backslashes or line breaks")
	}
	return errors.Join(o.errs...)
}

// WithStore sets the revocation store the built-in revocation check consults
// and whose events end open streams. Default: a new revocation.Memory owned by
// the Server, reachable through Server.Store, whose retention covers the
// validator's maximum token lifetime.
//
// New refuses a store that says how long it keeps events
// (revocation.Retainer) when that is shorter than the validator needs
// (token.Validator.RetentionNeeded): a revoked token would be accepted again
// once the store forgot its event.
//
// The Server relies on the store keeping revocation.Store's Subscribe
// contract (every stored event that changes what Lookup returns is notified,
// after Lookup returns it): with a *token.Validator, a token found not
// revoked is not looked up again until the store notifies a change (a
// bounded cache of verdicts), and open
// streams re-run their look-ups only on such notifications. Health is
// consulted on every call and message.
func WithStore(s revocation.Store) Option {
	return func(o *options) {
		if s == nil {
			o.fail("WithStore: store is nil")
			return
		}
		o.store = s
	}
}

// WithChecks appends checks that run, in order, after the built-in revocation
// check; the first denial wins. A check implements check.Check (package
// interceptor/check), e.g. policy.Engine.Checks() or a check.CheckFunc. Setting any check makes the interceptor fill
// check.Request.Metadata (a copy of the incoming metadata, one extra allocation per
// call); without custom checks check.Request.Metadata is nil.
func WithChecks(checks ...check.Check) Option {
	return func(o *options) {
		for i, c := range checks {
			if c == nil {
				o.fail("WithChecks: check %d is nil", i)
				return
			}
		}
		o.checks = append(o.checks, checks...)
		for _, c := range checks {
			if mu, ok := c.(check.MetadataUser); !ok || mu.UsesMetadata() {
				o.customMetadata = true
			}
		}
	}
}

// WithAuthorizationURI sets the authorization_uri of every challenge: where a
// client obtains a new token (Entra: https://login.microsoftonline.com/<tenant>/oauth2/authorize).
// It must be an absolute http(s) URL. The default is "": the parameter is still
// emitted, empty, but clients that follow Entra's rules need it, so set it.
func WithAuthorizationURI(uri string) Option {
	return func(o *options) { o.authzURI = uri }
}

// WithRealm sets the realm of every challenge. Default "".
func WithRealm(realm string) Option {
	return func(o *options) { o.realm = realm }
}

// WithCapability sets the client capability (xms_cc value, compared
// case-insensitively) that earns a token claims challenges. Default "cp1".
// Tokens without it are still subject to every check; their denials are plain
// invalid_token rejections without claims.
func WithCapability(name string) Option {
	return func(o *options) {
		if name == "" || strings.ContainsAny(name, " \t\r\n\",") {
			o.fail("WithCapability: %q is not a capability name", name)
			return
		}
		o.capability = name
	}
}

// WithChallengeAll sends claims challenges to every client, capable or not.
// Use it only when every client of the service handles insufficient_claims.
func WithChallengeAll() Option {
	return func(o *options) { o.challengeAll = true }
}

// WithMaxNonCAELifetime rejects, with reason TOKEN_LIFETIME, tokens lacking
// the capability whose lifetime (exp - iat) exceeds d: long-lived tokens are
// only acceptable from clients that can answer a claims challenge. Zero (the
// default) disables the check.
func WithMaxNonCAELifetime(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.fail("WithMaxNonCAELifetime: negative duration %v", d)
			return
		}
		o.maxNonCAE = d
	}
}

// WithExempt skips the interceptor (no token needed, no checks) for calls the
// matcher matches, in the go-grpc-middleware selector idiom. Nothing is
// exempt by default; HealthAndReflection is a ready matcher. A matcher that
// looks only at CallMeta.Service is not safe on a server with an unknown-
// service handler: CallMeta splits at the first '/' and grpc-go routes at
// the last, so also refuse methods containing '/' (or use WithExemptMethods,
// which matches full method names exactly).
func WithExempt(m selector.Matcher) Option {
	return func(o *options) {
		if m == nil {
			o.fail("WithExempt: matcher is nil")
			return
		}
		o.exempt = append(o.exempt, m)
	}
}

// WithExemptMethods skips the interceptor for the named methods, given as
// full method names ("/package.Service/Method") or whole services
// ("/package.Service/").
func WithExemptMethods(fullMethods ...string) Option {
	return func(o *options) {
		for _, m := range fullMethods {
			if len(m) < 3 || m[0] != '/' || !strings.Contains(m[1:], "/") {
				o.fail("WithExemptMethods: %q is not /package.Service/Method or /package.Service/", m)
				return
			}
			if o.exemptMethods == nil {
				o.exemptMethods = make(map[string]struct{})
			}
			o.exemptMethods[m] = struct{}{}
		}
	}
}

// WithLogger sets the logger for denials and stream cuts. Tokens are never
// logged, only their hash prefix. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.fail("WithLogger: logger is nil")
			return
		}
		o.logger = l
	}
}

// WithClock sets the clock for check.Request.Now, lifetime and mid-stream expiry
// checks. Timers still run on the real clock. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now == nil {
			o.fail("WithClock: clock is nil")
			return
		}
		o.now = now
		o.clockSet = true
	}
}

// MinStreamRecheckInterval is the shortest interval WithStreamRecheckInterval accepts.
const MinStreamRecheckInterval = 10 * time.Millisecond

// WithStreamRecheckInterval re-runs every check on each open stream every d,
// in addition to the re-checks on each message and on each event. It catches
// what events do not announce (a store turning unhealthy on an idle stream, a
// custom check whose inputs change) and is the schedule on which checks
// declaring check.TimeIndependent also run when nothing was announced. Zero (the
// default) disables it.
func WithStreamRecheckInterval(d time.Duration) Option {
	return func(o *options) {
		if d < 0 || (d > 0 && d < MinStreamRecheckInterval) {
			o.fail("WithStreamRecheckInterval: %v is neither 0 nor at least %v", d, MinStreamRecheckInterval)
			return
		}
		o.recheckEvery = d
	}
}

// WithMeterProvider sets the OpenTelemetry MeterProvider of the Server's
// metrics (see the Metric constants). Default: otel.GetMeterProvider(), the
// global provider, which records nothing until an SDK is installed.
//
// An allowed call records one counter increment and one histogram value with
// attribute sets built once per method, so it does not allocate.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) {
		if mp == nil {
			o.fail("WithMeterProvider: meter provider is nil")
			return
		}
		o.meterProvider = mp
	}
}

// WithAllowedDurationEvery records the check duration
// (MetricCheckDuration) of one allowed call in n per method: 1 (the
// default) records every call, 0 none. Denials are always recorded, and
// MetricDecisions counts every decision whatever n is, so only the
// histogram's count and sum shrink to about 1/n of the allowed calls: its
// buckets remain a sample of the latency distribution. On a verified-token
// cache hit, the clock read and the histogram's Record are about 45 % of
// the instructions of caekit's call with the OpenTelemetry SDK installed
// (BENCHMARKS.md, issue 16 item 1, third pass), most of it the SDK's
// attribute handling; a large n, such as 64, removes most of it. A
// negative n is an error.
func WithAllowedDurationEvery(n int) Option {
	return func(o *options) {
		if n < 0 {
			o.fail("WithAllowedDurationEvery: n must not be negative, got %d", n)
			return
		}
		o.allowedEvery = n
	}
}

// WithAuditHook calls hook with an AuditRecord for every denial: refused
// unary calls, refused stream opens and streams cut mid-flight. The record
// holds the token's hash prefix, never the token.
//
// The hook is called synchronously on the call's goroutine (for a mid-stream
// cut, the interceptor's goroutine, before the stream's status is written),
// so it delays the denied caller's answer: keep it fast, or hand the record
// off (a buffered channel, a queue) and do slow work elsewhere. It must be
// safe for concurrent use. Default: none.
func WithAuditHook(hook func(ctx context.Context, r AuditRecord)) Option {
	return func(o *options) {
		if hook == nil {
			o.fail("WithAuditHook: hook is nil")
			return
		}
		o.audit = hook
	}
}

// WithoutLoggingFields stops the interceptors from setting the caekit.*
// logging fields (FieldSubject, FieldTenant, FieldDecision, FieldReason).
//
// By default, when a go-grpc-middleware v2 logging interceptor (or anything
// that calls logging.InjectFields) runs before this one, every call's fields
// are added to the fields that interceptor logs, denials included; for a
// stream, FieldDecision and FieldReason turn to deny when it is cut. Nothing
// is done, and nothing allocated, when no logging fields are in the context.
func WithoutLoggingFields() Option {
	return func(o *options) { o.logFields = false }
}

// WithInjectLoggingFields also puts the caekit.* logging fields into the
// handler's context (logging.InjectFields) when no logging interceptor runs
// before this one: for a logging interceptor chained after this one, or
// handlers that read logging.ExtractFields. It costs a few allocations per
// allowed call.
func WithInjectLoggingFields() Option {
	return func(o *options) { o.injectFields = true }
}
