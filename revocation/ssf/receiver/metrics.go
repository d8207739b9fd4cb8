package receiver

import (
	"context"
	"github.com/caekit/caekit/revocation/ssf"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Instrument names of the Receiver's metrics (OpenTelemetry metric API; see
// WithMeterProvider). The meter is named "github.com/caekit/caekit/revocation/ssf".
const (
	// metricEvents counts processed SETs, unit "{event}", attributes
	// attrEventType, attrOutcome, attrDelivery and, for rejected SETs,
	// attrErrorCode.
	metricEvents = "caekit.ssf.events"
	// metricJWKSRefreshFailures counts failed background refreshes of the
	// transmitter's JWKS (the last good key set is kept), unit "{failure}".
	metricJWKSRefreshFailures = "caekit.ssf.jwks.refresh.failures"
)

// Attribute keys of the Receiver's metrics.
const (
	// attrEventType is the event type, shortened to "caep.session-revoked",
	// "risc.account-disabled", "ssf.verification", ... for the types this
	// package knows, "_OTHER" for any other (including a SET refused
	// before its event type could be read), so that a transmitter cannot
	// grow the metric's cardinality.
	attrEventType = "caekit.ssf.event_type"
	// attrOutcome is Outcome.String(): "stored", "duplicate", "recorded",
	// "unmapped", "unknown_type", "rejected", "store_failed" or
	// "keys_unavailable".
	attrOutcome = "caekit.outcome"
	// attrDelivery is "push", "poll", "grpc" or "direct" (Receive).
	attrDelivery = "caekit.ssf.delivery"
	// attrErrorCode is the RFC 8935 error code of a rejected SET
	// ("invalid_key", "invalid_audience", ...).
	attrErrorCode = "caekit.ssf.error_code"
)

// meterName is the instrumentation scope of the metrics: the import path
// of package ssf, where the receiver lived before issue 17 step 4, kept so
// that dashboards keep working.
const meterName = "github.com/caekit/caekit/revocation/ssf"

var knownCodes = map[string]bool{
	CodeInvalidRequest: true, CodeInvalidKey: true, CodeInvalidIssuer: true, CodeInvalidAudience: true,
	CodeAuthenticationFailed: true, codeAccessDenied: true, CodeInvalidState: true,
}

// metrics is the Observer that records metricEvents; it passes every
// Observation on to the configured Observer.
type metrics struct {
	events       metric.Int64Counter
	jwksFailures metric.Int64Counter
	next         Observer
}

func newMetrics(mp metric.MeterProvider, next Observer) (*metrics, error) {
	m := mp.Meter(meterName)
	events, err := m.Int64Counter(metricEvents, metric.WithUnit("{event}"),
		metric.WithDescription("Security Event Tokens processed, by event type, outcome and delivery."))
	if err != nil {
		return nil, err
	}
	fails, err := m.Int64Counter(metricJWKSRefreshFailures, metric.WithUnit("{failure}"),
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
		attribute.String(attrEventType, ssf.Classify(o.EventType, nil).Name),
		attribute.String(attrOutcome, o.Outcome.String()),
		attribute.String(attrDelivery, delivery),
	)
	if o.Outcome == OutcomeRejected {
		code := o.Code
		if !knownCodes[code] {
			code = "other"
		}
		attrs = append(attrs, attribute.String(attrErrorCode, code))
	}
	m.events.Add(context.Background(), 1, metric.WithAttributes(attrs...))
	m.next.Observe(o)
}

func (m *metrics) jwksRefreshFailed(ctx context.Context) { m.jwksFailures.Add(ctx, 1) }
