package receiver

import (
	"context"
	"github.com/caekit/caekit/revocation/ssf"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Instrument names of the Receiver's metrics (OpenTelemetry metric API; see
// WithMeterProvider). The meter is named after this package's import path.
const (
	// MetricEvents counts processed SETs, unit "{event}", attributes
	// AttrEventType, AttrOutcome, AttrDelivery and, for rejected SETs,
	// AttrErrorCode.
	MetricEvents = "caekit.ssf.events"
	// MetricJWKSRefreshFailures counts failed background refreshes of the
	// transmitter's JWKS (the last good key set is kept), unit "{failure}".
	MetricJWKSRefreshFailures = "caekit.ssf.jwks.refresh.failures"
)

// Attribute keys of the Receiver's metrics.
const (
	// AttrEventType is the event type, shortened to "caep.session-revoked",
	// "risc.account-disabled", "ssf.verification", ... for the types this
	// package knows, EventTypeOther for any other (including a SET refused
	// before its event type could be read), so that a transmitter cannot
	// grow the metric's cardinality.
	AttrEventType = "caekit.ssf.event_type"
	// AttrOutcome is Outcome.String(): "stored", "duplicate", "recorded",
	// "unmapped", "unknown_type", "rejected", "store_failed" or
	// "keys_unavailable".
	AttrOutcome = "caekit.outcome"
	// AttrDelivery is "push", "poll", "grpc" or "direct" (Receive).
	AttrDelivery = "caekit.ssf.delivery"
	// AttrErrorCode is the RFC 8935 error code of a rejected SET
	// ("invalid_key", "invalid_audience", ...).
	AttrErrorCode = "caekit.ssf.error_code"
)

// EventTypeOther is the AttrEventType value of event types this package does
// not know.
const EventTypeOther = "_OTHER"

const meterName = "github.com/caekit/caekit/revocation/ssf"

// shortTypes maps every known event-type URI to its metric name.
var shortTypes = func() map[string]string {
	m := map[string]string{}
	for _, uri := range []string{
		ssf.CAEPSessionRevoked, ssf.CAEPTokenClaimsChange, ssf.CAEPCredentialChange, ssf.CAEPAssuranceLevelChange,
		ssf.CAEPDeviceComplianceChange, ssf.CAEPSessionEstablished, ssf.CAEPSessionPresented, ssf.CAEPRiskLevelChange,
		ssf.RISCAccountDisabled, ssf.RISCAccountEnabled, ssf.RISCAccountPurged, ssf.RISCAccountCredentialChangeRequire,
		ssf.RISCCredentialCompromise, ssf.RISCIdentifierChanged, ssf.RISCIdentifierRecycled, ssf.RISCRecoveryActivated,
		ssf.RISCRecoveryInformationChanged, ssf.RISCOptIn, ssf.RISCOptOutInitiated, ssf.RISCOptOutCancelled,
		ssf.RISCOptOutEffective, ssf.RISCSessionsRevoked, ssf.SSFVerification, ssf.SSFStreamUpdated,
	} {
		for prefix, name := range map[string]string{ssf.CAEPPrefix: "caep.", ssf.RISCPrefix: "risc.", ssf.SSFPrefix: "ssf."} {
			if rest, ok := strings.CutPrefix(uri, prefix); ok {
				m[uri] = name + rest
			}
		}
	}
	return m
}()

// EventTypeName returns the AttrEventType value of an event-type URI:
// "caep.session-revoked" for CAEPSessionRevoked, EventTypeOther for a type
// this package does not know.
func EventTypeName(uri string) string {
	if n, ok := shortTypes[uri]; ok {
		return n
	}
	return EventTypeOther
}

var knownCodes = map[string]bool{
	CodeInvalidRequest: true, CodeInvalidKey: true, CodeInvalidIssuer: true, CodeInvalidAudience: true,
	CodeAuthenticationFailed: true, CodeAccessDenied: true, CodeInvalidState: true,
}

// metrics is the Observer that records MetricEvents; it passes every
// Observation on to the configured Observer.
type metrics struct {
	events       metric.Int64Counter
	jwksFailures metric.Int64Counter
	next         Observer
}

func newMetrics(mp metric.MeterProvider, next Observer) (*metrics, error) {
	m := mp.Meter(meterName)
	events, err := m.Int64Counter(MetricEvents, metric.WithUnit("{event}"),
		metric.WithDescription("Security Event Tokens processed, by event type, outcome and delivery."))
	if err != nil {
		return nil, err
	}
	fails, err := m.Int64Counter(MetricJWKSRefreshFailures, metric.WithUnit("{failure}"),
		metric.WithDescription("Failed refreshes of the transmitter's JWKS; the last good key set is kept."))
	if err != nil {
		return nil, err
	}
	return &metrics{events: events, jwksFailures: fails, next: next}, nil
}

// Observe records o and passes it on. SETs are rare next to their
// signature verification, so the attribute set is built per SET.
func (m *metrics) Observe(o Observation) {
	delivery := o.Delivery
	switch delivery {
	case "push", "poll", "grpc":
	case "":
		delivery = "direct"
	default:
		delivery = "other"
	}
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs,
		attribute.String(AttrEventType, EventTypeName(o.EventType)),
		attribute.String(AttrOutcome, o.Outcome.String()),
		attribute.String(AttrDelivery, delivery),
	)
	if o.Outcome == OutcomeRejected {
		code := o.Code
		if !knownCodes[code] {
			code = "other"
		}
		attrs = append(attrs, attribute.String(AttrErrorCode, code))
	}
	m.events.Add(context.Background(), 1, metric.WithAttributes(attrs...))
	m.next.Observe(o)
}

func (m *metrics) jwksRefreshFailed(ctx context.Context) { m.jwksFailures.Add(ctx, 1) }
