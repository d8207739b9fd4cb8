package client

import (
	"context"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/caekit/caekit/interceptor/challenge"
)

// Instrument names of the Client's metrics (OpenTelemetry metric API; see
// WithMeterProvider). The meter is named after this package's import path.
const (
	// MetricChallenges counts claims challenges received, unit
	// "{challenge}", attributes AttrMethod, AttrReason and AttrChallengeError.
	MetricChallenges = "caekit.client.challenges"
	// MetricRetries counts what became of challenged calls, unit "{call}",
	// attributes AttrMethod and AttrOutcome ("retried" or "not_retried").
	MetricRetries = "caekit.client.retries"
	// MetricTokenFetches counts token fetches from the TokenSource, unit
	// "{fetch}", attributes AttrOutcome ("success" or "failure") and, for
	// failures, AttrStale (true for a failed proactive refresh while a
	// still-valid token keeps being served).
	MetricTokenFetches = "caekit.client.token.fetches"
)

// Attribute keys of the Client's metrics.
const (
	// AttrMethod is the semantic-convention rpc.method,
	// "package.Service/Method", or MethodOther past MaxMetricMethods methods.
	AttrMethod = "rpc.method"
	// AttrReason is the challenge's reason name ("SESSION_REVOKED", ...;
	// "UNSPECIFIED" when the server sent none).
	AttrReason = "caekit.reason"
	// AttrChallengeError is the challenge's error, "insufficient_claims",
	// "insufficient_user_authentication" (RFC 9470) or "invalid_token",
	// "other" for any other, or "malformed" for a challenge that could not
	// be decoded.
	AttrChallengeError = "caekit.client.challenge_error"
	// AttrOutcome is the outcome of a retry decision or a token fetch.
	AttrOutcome = "caekit.outcome"
	// AttrStale marks failed refreshes that left a still-valid token in use.
	AttrStale = "caekit.client.stale"
)

// MethodOther is the AttrMethod value past MaxMetricMethods distinct methods.
const MethodOther = "_OTHER"

// MaxMetricMethods bounds the number of distinct AttrMethod values.
const MaxMetricMethods = 512

const meterName = "github.com/caekit/caekit/interceptor/client"

// metrics is the Observer that records the Client's metrics; it passes every
// Event on to the configured Observer. Events are rare (challenges, fetches),
// so attribute sets are built per event.
type metrics struct {
	challenges metric.Int64Counter
	retries    metric.Int64Counter
	fetches    metric.Int64Counter
	next       Observer

	mu      sync.Mutex
	methods map[string]string
}

func newMetrics(mp metric.MeterProvider, next Observer) (*metrics, error) {
	m := mp.Meter(meterName)
	out := &metrics{next: next, methods: map[string]string{}}
	var err error
	if out.challenges, err = m.Int64Counter(MetricChallenges, metric.WithUnit("{challenge}"),
		metric.WithDescription("Claims challenges received, by method, reason and error.")); err != nil {
		return nil, err
	}
	if out.retries, err = m.Int64Counter(MetricRetries, metric.WithUnit("{call}"),
		metric.WithDescription("Challenged calls retried with a new token, or returned to the application.")); err != nil {
		return nil, err
	}
	if out.fetches, err = m.Int64Counter(MetricTokenFetches, metric.WithUnit("{fetch}"),
		metric.WithDescription("Token fetches from the token source, by outcome.")); err != nil {
		return nil, err
	}
	return out, nil
}

func (m *metrics) method(full string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.methods[full]; ok {
		return n
	}
	if len(m.methods) >= MaxMetricMethods {
		return MethodOther
	}
	n := strings.TrimPrefix(full, "/")
	m.methods[full] = n
	return n
}

// Observe records e and passes it on.
func (m *metrics) Observe(ctx context.Context, e Event) {
	switch e.Kind {
	case EventChallenge, EventMalformedChallenge:
		reason, cerr := "UNSPECIFIED", "malformed"
		if e.Challenge != nil {
			reason, cerr = challenge.ReasonName(e.Challenge.Reason), e.Challenge.Error
			if cerr != challenge.ErrorInsufficientClaims && cerr != challenge.ErrorInvalidToken && cerr != challenge.ErrorInsufficientUserAuthentication {
				cerr = "other"
			}
		}
		m.challenges.Add(ctx, 1, metric.WithAttributes(
			attribute.String(AttrMethod, m.method(e.Method)),
			attribute.String(AttrReason, reason),
			attribute.String(AttrChallengeError, cerr)))
	case EventRetry, EventNotRetried:
		outcome := "retried"
		if e.Kind == EventNotRetried {
			outcome = "not_retried"
		}
		m.retries.Add(ctx, 1, metric.WithAttributes(
			attribute.String(AttrMethod, m.method(e.Method)),
			attribute.String(AttrOutcome, outcome)))
	case EventTokenFetched:
		m.fetches.Add(ctx, 1, metric.WithAttributes(attribute.String(AttrOutcome, "success")))
	case EventTokenFetchFailed:
		m.fetches.Add(ctx, 1, metric.WithAttributes(
			attribute.String(AttrOutcome, "failure"), attribute.Bool(AttrStale, e.Stale)))
	}
	if m.next != nil {
		m.next.Observe(ctx, e)
	}
}
