package logout

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MetricEvents counts processed logout and Global Token Revocation requests,
// unit "{request}", attributes AttrChannel, AttrOutcome and, for refused
// requests, AttrErrorCode (OpenTelemetry metric API; see WithMeterProvider).
// The meter is named after this package's import path.
const MetricEvents = "caekit.logout.requests"

// Attribute keys of MetricEvents.
const (
	// AttrChannel is ChannelBackChannelLogout or ChannelGTR.
	AttrChannel = "caekit.logout.channel"
	// AttrOutcome is Outcome.String().
	AttrOutcome = "caekit.outcome"
	// AttrErrorCode is the error code answered: one of the Code constants.
	AttrErrorCode = "caekit.logout.error_code"
)

const meterName = "github.com/caekit/caekit/revocation/logout"

type metrics struct {
	requests metric.Int64Counter
	next     Observer
}

func newMetrics(mp metric.MeterProvider, next Observer) (*metrics, error) {
	c, err := mp.Meter(meterName).Int64Counter(MetricEvents, metric.WithUnit("{request}"),
		metric.WithDescription("Back-Channel Logout and Global Token Revocation requests, by channel and outcome."))
	if err != nil {
		return nil, err
	}
	return &metrics{requests: c, next: next}, nil
}

// Observe records o and passes it on.
func (m *metrics) Observe(o Observation) {
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, attribute.String(AttrChannel, o.Channel), attribute.String(AttrOutcome, o.Outcome.String()))
	if o.Code != "" {
		code := o.Code
		if !knownCodes[code] {
			code = "other"
		}
		attrs = append(attrs, attribute.String(AttrErrorCode, code))
	}
	m.requests.Add(context.Background(), 1, metric.WithAttributes(attrs...))
	if m.next != nil {
		m.next.Observe(o)
	}
}
