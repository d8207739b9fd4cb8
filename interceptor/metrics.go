package interceptor

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/caekit/caekit/revocation"
)

// Instrument names of the Server's metrics (OpenTelemetry metric API; see
// WithMeterProvider). The meter is named after this package's import path.
const (
	// MetricDecisions counts decisions taken when a call arrives (unary calls
	// and stream opens), unit "{decision}", attributes AttrMethod, AttrOutcome
	// and, for denials, AttrReason. Exempt methods are not counted. It is an
	// asynchronous (observable) counter: a call adds to an atomic counter of
	// its method, and the values are read at collection, so that the SDK's
	// per-measurement work (attribute normalisation, a map look-up) is not
	// paid on every call.
	MetricDecisions = "caekit.server.decisions"
	// MetricCheckDuration is the time spent authenticating and checking a
	// call (token validation plus every Check), unit "s", attributes
	// AttrOutcome and, for denials, AttrReason. It has no AttrMethod: the
	// cost of the checks hardly depends on the method, the per-method counts
	// are in MetricDecisions, and every attribute costs on every call.
	// WithAllowedDurationEvery records only one allowed call in n.
	MetricCheckDuration = "caekit.server.check.duration"
	// MetricStreamCuts counts streams ended mid-flight by a denial (an event,
	// a failing re-check, token expiry, Close), unit "{stream}", attributes
	// AttrMethod and AttrReason. Denials when a stream opens are counted by
	// MetricDecisions instead.
	MetricStreamCuts = "caekit.server.stream.cuts"
	// MetricStreamsActive is the number of open streams under watch, unit
	// "{stream}" (an asynchronous up-down counter).
	MetricStreamsActive = "caekit.server.streams.active"
	// MetricStoreEntries is the number of events the revocation store holds,
	// unit "{event}" (an asynchronous gauge). Reported only when the store
	// has a Len() int method (revocation.Memory and the Redis store do).
	MetricStoreEntries = "caekit.revocation.store.entries"
	// MetricStoreStaleness is how long ago the revocation store last
	// confirmed it is in sync with its source of truth, unit "s" (an
	// asynchronous gauge). Reported only when the store has a
	// Staleness() time.Duration method (the Redis store does).
	MetricStoreStaleness = "caekit.revocation.store.staleness"
	// MetricStoreHealthy is 1 while the revocation store's Health returns nil
	// and 0 while it fails closed, unit "1" (an asynchronous gauge).
	MetricStoreHealthy = "caekit.revocation.store.healthy"
)

// Attribute keys of the Server's metrics.
const (
	// AttrMethod is the OpenTelemetry semantic-convention rpc.method: the
	// full method without its leading slash, "package.Service/Method", or
	// MethodOther for a method not registered with the gRPC server that no
	// authenticated caller has called yet, or past MaxMetricMethods such
	// methods.
	AttrMethod = "rpc.method"
	// AttrOutcome is "allow" or "deny".
	AttrOutcome = "caekit.outcome"
	// AttrReason is the denial's reason name without the REASON_ prefix, as
	// in the google.rpc.ErrorInfo detail: "PASSWORD_CHANGED",
	// "TOKEN_INVALID", ... Absent for allowed calls.
	AttrReason = "caekit.reason"
)

// MethodOther is the AttrMethod value of calls to methods that are not
// registered with the gRPC server (they reach it through an unknown-service
// handler) when the caller did not authenticate, or when MaxMetricMethods
// such names are known already (the semantic conventions' value for
// unrecognised methods). A registered method always reports its own name.
const MethodOther = "_OTHER"

// MaxMetricMethods bounds the number of distinct AttrMethod values a Server
// reports for methods that are not registered with the gRPC server; calls to
// further such methods are reported as MethodOther. It only matters for
// servers with an unknown-service handler, which can be called with any
// method name. Such a name is recorded only once a caller presenting a valid
// token has called it, so unauthenticated callers cannot fill the table.
// Registered methods (every unary method, and streaming methods of a
// registered service) do not count against the bound.
const MaxMetricMethods = 512

// Outcome attribute values.
const (
	outcomeAllow = "allow"
	outcomeDeny  = "deny"
)

const meterName = "github.com/caekit/caekit/interceptor"

// durationBuckets suit a check that takes microseconds on a verified-token
// cache hit and a fraction of a millisecond for a signature verification.
var durationBuckets = []float64{
	0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
}

// serverMetrics holds the instruments and the cached attribute sets of the
// allow path, so that an allowed call records its metrics without building
// attribute sets or allocating.
type serverMetrics struct {
	decisions metric.Int64ObservableCounter
	duration  metric.Float64Histogram
	allowRec  []metric.RecordOption // the duration of allowed calls
	every     int64                 // record the duration of every every-th allowed call of a method; 0: none
	cuts      metric.Int64Counter
	reg       metric.Registration
	active    atomic.Int64

	mu           sync.Mutex                            // serialises additions to methods
	methods      atomic.Pointer[map[string]*methodSet] // copy on write; read lock-free
	unregistered int                                   // names in methods not registered with the gRPC server; under mu
	other        *methodSet

	denyMu sync.Mutex
	denies map[denyKey]*denyCount // bounded: methods × reasons
}

// methodSet is one method's attribute value, its pre-built allow attributes
// and its count of allowed decisions.
type methodSet struct {
	name    string // AttrMethod value
	allowed atomic.Int64
	allowOb []metric.ObserveOption
}

type denyKey struct{ method, reason string }

type denyCount struct {
	n  int64 // under denyMu
	ob []metric.ObserveOption
}

func newMethodSet(name string) *methodSet {
	opt := metric.WithAttributeSet(attribute.NewSet(
		attribute.String(AttrMethod, name),
		attribute.String(AttrOutcome, outcomeAllow),
	))
	return &methodSet{name: name, allowOb: []metric.ObserveOption{opt}}
}

func newServerMetrics(mp metric.MeterProvider, store revocation.Store, allowedEvery int) (*serverMetrics, error) {
	m := mp.Meter(meterName)
	sm := &serverMetrics{
		other:    newMethodSet(MethodOther),
		every:    int64(allowedEvery),
		denies:   map[denyKey]*denyCount{},
		allowRec: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(AttrOutcome, outcomeAllow)))},
	}
	empty := map[string]*methodSet{}
	sm.methods.Store(&empty)
	var err error
	if sm.decisions, err = m.Int64ObservableCounter(MetricDecisions, metric.WithUnit("{decision}"),
		metric.WithDescription("Access decisions taken when a call arrives, by method, outcome and reason.")); err != nil {
		return nil, err
	}
	if sm.duration, err = m.Float64Histogram(MetricCheckDuration, metric.WithUnit("s"),
		metric.WithDescription("Time spent validating the token and running the checks of a call."),
		metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		return nil, err
	}
	if sm.cuts, err = m.Int64Counter(MetricStreamCuts, metric.WithUnit("{stream}"),
		metric.WithDescription("Streams ended mid-flight by a denial, by method and reason.")); err != nil {
		return nil, err
	}
	active, err := m.Int64ObservableUpDownCounter(MetricStreamsActive, metric.WithUnit("{stream}"),
		metric.WithDescription("Open streams under continuous evaluation."))
	if err != nil {
		return nil, err
	}
	healthy, err := m.Int64ObservableGauge(MetricStoreHealthy, metric.WithUnit("1"),
		metric.WithDescription("1 while the revocation store can be trusted, 0 while calls fail closed."))
	if err != nil {
		return nil, err
	}
	instruments := []metric.Observable{sm.decisions, active, healthy}
	var entries metric.Int64ObservableGauge
	sized, hasLen := store.(interface{ Len() int })
	if hasLen {
		if entries, err = m.Int64ObservableGauge(MetricStoreEntries, metric.WithUnit("{event}"),
			metric.WithDescription("Events held by the revocation store.")); err != nil {
			return nil, err
		}
		instruments = append(instruments, entries)
	}
	var staleness metric.Float64ObservableGauge
	stale, hasStaleness := store.(interface{ Staleness() time.Duration })
	if hasStaleness {
		if staleness, err = m.Float64ObservableGauge(MetricStoreStaleness, metric.WithUnit("s"),
			metric.WithDescription("Time since the revocation store last confirmed it is in sync.")); err != nil {
			return nil, err
		}
		instruments = append(instruments, staleness)
	}
	sm.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		sm.observeDecisions(o)
		o.ObserveInt64(active, sm.active.Load())
		h := int64(1)
		if store.Health() != nil {
			h = 0
		}
		o.ObserveInt64(healthy, h)
		if hasLen {
			o.ObserveInt64(entries, int64(sized.Len()))
		}
		if hasStaleness {
			o.ObserveFloat64(staleness, stale.Staleness().Seconds())
		}
		return nil
	}, instruments...)
	if err != nil {
		return nil, err
	}
	return sm, nil
}

func (sm *serverMetrics) close() error {
	if sm.reg != nil {
		return sm.reg.Unregister()
	}
	return nil
}

// known returns the cached attribute set of fullMethod, or the MethodOther
// set if the method is not known yet. It never adds a method: it serves
// calls to unregistered methods whose caller did not authenticate.
func (sm *serverMetrics) known(fullMethod string) *methodSet {
	if ms, ok := (*sm.methods.Load())[fullMethod]; ok {
		return ms
	}
	return sm.other
}

// method returns the cached attribute set of fullMethod, adding it if it is
// registered with the gRPC server, or else unless MaxMetricMethods
// unregistered methods are known already.
func (sm *serverMetrics) method(fullMethod string, registered bool) *methodSet {
	if ms, ok := (*sm.methods.Load())[fullMethod]; ok {
		return ms
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	cur := *sm.methods.Load()
	if ms, ok := cur[fullMethod]; ok {
		return ms
	}
	if !registered {
		if sm.unregistered >= MaxMetricMethods {
			return sm.other
		}
		sm.unregistered++
	}
	next := make(map[string]*methodSet, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	ms := newMethodSet(strings.TrimPrefix(fullMethod, "/"))
	next[fullMethod] = ms
	sm.methods.Store(&next)
	return ms
}

// observeDecisions reports the decision counts (MetricDecisions).
func (sm *serverMetrics) observeDecisions(o metric.Observer) {
	seen := false
	for _, ms := range *sm.methods.Load() {
		if n := ms.allowed.Load(); n > 0 {
			o.ObserveInt64(sm.decisions, n, ms.allowOb...)
		}
		if ms == sm.other {
			seen = true
		}
	}
	if n := sm.other.allowed.Load(); n > 0 && !seen {
		o.ObserveInt64(sm.decisions, n, sm.other.allowOb...)
	}
	sm.denyMu.Lock()
	defer sm.denyMu.Unlock()
	for _, dc := range sm.denies {
		o.ObserveInt64(sm.decisions, dc.n, dc.ob...)
	}
}

// allowed records an allowed call whose check started at start (monoNow):
// an atomic add, and, for every sm.every-th allowed call of the method
// (WithAllowedDurationEvery), the duration into a histogram whose only
// attribute is the outcome. The calls not sampled read no clock here: the
// clock read and the SDK's Record were ~30 % of a cache-hit call recording
// into the OTel SDK (BenchmarkUnaryInterceptorCacheHitSDKJSONLog profile).
func (sm *serverMetrics) allowed(ctx context.Context, ms *methodSet, start time.Duration) {
	n := ms.allowed.Add(1)
	if sm.every == 0 || (sm.every > 1 && n%sm.every != 0) {
		return
	}
	sm.duration.Record(ctx, (monoNow() - start).Seconds(), sm.allowRec...)
}

// denied records a denied call that took d to check. Denials are rare and
// allocate anyway; their counts are kept under a mutex.
func (sm *serverMetrics) denied(ctx context.Context, ms *methodSet, reason string, d time.Duration) {
	k := denyKey{ms.name, reason}
	sm.denyMu.Lock()
	dc := sm.denies[k]
	if dc == nil {
		dc = &denyCount{ob: []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(
			attribute.String(AttrMethod, ms.name),
			attribute.String(AttrOutcome, outcomeDeny),
			attribute.String(AttrReason, reason),
		))}}
		sm.denies[k] = dc
	}
	dc.n++
	sm.denyMu.Unlock()
	sm.duration.Record(ctx, d.Seconds(), metric.WithAttributeSet(attribute.NewSet(
		attribute.String(AttrOutcome, outcomeDeny),
		attribute.String(AttrReason, reason),
	)))
}

// cut records a stream ended mid-flight.
func (sm *serverMetrics) cut(ctx context.Context, ms *methodSet, reason string) {
	sm.cuts.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(
		attribute.String(AttrMethod, ms.name),
		attribute.String(AttrReason, reason),
	)))
}

// monoEpoch anchors monoNow.
var monoEpoch = time.Now()

// monoNow is a reading of the monotonic clock only: time.Now also reads the
// wall clock, which on some virtual machines costs several times more (a
// profile on the benchmark VM: ~75 ns a call), and a check's duration needs
// the monotonic clock alone.
func monoNow() time.Duration { return time.Since(monoEpoch) }

// callClock reads the clock when a call arrives: the wall-clock time, which
// the validator (ValidateNow) and check.Request.Now use, and its monotonic
// reading as monoNow gives it, the start of the check's duration. One
// time.Now, where a monotonic read at the start and the validator's own
// time.Now were two reads.
func callClock() (now time.Time, start time.Duration) {
	now = time.Now()
	return now, now.Sub(monoEpoch)
}
