package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults.
const (
	// DefaultRefreshMargin is how long before expiry a token without
	// refresh_in is refreshed.
	DefaultRefreshMargin = 5 * time.Minute
	// DefaultFetchTimeout bounds one call to the TokenSource.
	DefaultFetchTimeout = 30 * time.Second
	// DefaultReplayMessages and DefaultReplayBytes bound the messages a
	// stream keeps for a replay after a challenge, like grpc-go's per-RPC
	// retry buffer.
	DefaultReplayMessages = 64
	DefaultReplayBytes    = 256 << 10
	// DefaultBackoffMin and DefaultBackoffMax bound the wait between
	// token fetch attempts after failures.
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = time.Minute
	// DefaultChallengeFetchBurst and DefaultChallengeFetchEvery bound the
	// token fetches made in answer to claims challenges, per scope set: a
	// burst of DefaultChallengeFetchBurst, then one per
	// DefaultChallengeFetchEvery.
	DefaultChallengeFetchBurst = 10
	DefaultChallengeFetchEvery = 10 * time.Second
)

// expirySkew: a token this close to expiry is not sent any more, so that it
// does not expire in flight.
const expirySkew = 10 * time.Second

// maxKeys bounds the number of scope sets cached.
const maxKeys = 256

// Option configures a Client.
type Option func(*options)

type options struct {
	scopes         []string
	capabilities   []string
	refreshMargin  time.Duration
	fetchTimeout   time.Duration
	backoffMin     time.Duration
	backoffMax     time.Duration
	replayMessages int
	replayBytes    int
	idempotent     map[string]bool // full method names whose streams may be replayed mid-stream
	allowInsecure  bool
	challengeBurst int
	challengeEvery time.Duration
	logger         *slog.Logger
	observer       Observer
	meterProvider  metric.MeterProvider
	now            func() time.Time
	sleep          func(context.Context, time.Duration) error // waits for a challenge's nbf
}

func defaults() options {
	return options{
		capabilities:   []string{"cp1"},
		refreshMargin:  DefaultRefreshMargin,
		fetchTimeout:   DefaultFetchTimeout,
		backoffMin:     DefaultBackoffMin,
		backoffMax:     DefaultBackoffMax,
		replayMessages: DefaultReplayMessages,
		replayBytes:    DefaultReplayBytes,
		challengeBurst: DefaultChallengeFetchBurst,
		challengeEvery: DefaultChallengeFetchEvery,
		now:            time.Now,
		sleep:          sleepContext,
	}
}

// validate reports every invalid setting, joined with errors.Join.
func (o *options) validate() error {
	var errs []error
	if o.refreshMargin < 0 {
		errs = append(errs, fmt.Errorf("caekit/client: negative refresh margin %v", o.refreshMargin))
	}
	if o.fetchTimeout <= 0 {
		errs = append(errs, fmt.Errorf("caekit/client: fetch timeout must be positive, got %v", o.fetchTimeout))
	}
	if o.backoffMin <= 0 || o.backoffMax < o.backoffMin {
		errs = append(errs, fmt.Errorf("caekit/client: refresh backoff must satisfy 0 < min <= max, got %v..%v", o.backoffMin, o.backoffMax))
	}
	if o.challengeBurst < 1 || o.challengeEvery <= 0 {
		errs = append(errs, fmt.Errorf("caekit/client: challenge fetch limit must have a burst of at least 1 and a positive interval, got %d per %v", o.challengeBurst, o.challengeEvery))
	}
	if o.replayMessages < 0 || o.replayBytes < 0 {
		errs = append(errs, fmt.Errorf("caekit/client: negative replay buffer limit (%d messages, %d bytes)", o.replayMessages, o.replayBytes))
	}
	for _, m := range slices.Sorted(maps.Keys(o.idempotent)) {
		if err := checkMethodName(m); err != nil {
			errs = append(errs, fmt.Errorf("caekit/client: WithIdempotentStreams: %w", err))
		}
	}
	for i, c := range o.capabilities {
		if strings.TrimSpace(c) == "" {
			errs = append(errs, fmt.Errorf("caekit/client: client capability %d is empty", i))
		}
	}
	if o.now == nil {
		errs = append(errs, errors.New("caekit/client: clock must not be nil"))
	}
	return errors.Join(errs...)
}

// WithScopes sets the scopes (or audience) of the tokens requested, e.g.
// "api://inbox/.default". One token is cached per scope set; CallScopes
// overrides the set for a single call.
func WithScopes(scopes ...string) Option {
	return func(o *options) { o.scopes = normScopes(scopes) }
}

// WithCapabilities sets the client capabilities declared in every claims
// request, default ["cp1"] (CAE-capable). WithCapabilities() with none
// declares nothing: the identity provider then treats the client as not
// CAE-capable and servers answer with plain rejections, not challenges.
func WithCapabilities(capabilities ...string) Option {
	return func(o *options) { o.capabilities = slices.Clone(capabilities) }
}

// WithRefreshMargin sets how long before expiry a token that came without a
// refresh time (refresh_in) is refreshed, default DefaultRefreshMargin. The
// refresh never happens before half of the token's remaining lifetime.
func WithRefreshMargin(d time.Duration) Option {
	return func(o *options) { o.refreshMargin = d }
}

// WithFetchTimeout bounds each call to the TokenSource, default
// DefaultFetchTimeout.
func WithFetchTimeout(d time.Duration) Option {
	return func(o *options) { o.fetchTimeout = d }
}

// WithRefreshBackoff sets the exponential backoff between token fetches
// after failures: proactive refreshes that failed while the cached token was
// still valid, and fetches that failed while no token was cached. In the
// latter case calls within the backoff fail at once with an error wrapping
// ErrBackingOff and the last fetch's error, without a request to the
// identity provider. A claims challenge still fetches a token at once.
func WithRefreshBackoff(minWait, maxWait time.Duration) Option {
	return func(o *options) { o.backoffMin, o.backoffMax = minWait, maxWait }
}

// WithChallengeFetchLimit bounds the token fetches made in answer to claims
// challenges (which bypass any token cache at the identity provider), per
// scope set, with a token bucket: burst fetches at once, then one per every.
// Default DefaultChallengeFetchBurst per DefaultChallengeFetchEvery. Past
// the limit the call is not retried: it fails with a *ReacquireError that
// carries the server's challenge (challenge.Extract sees it) and wraps
// ErrChallengeFetchLimited, and the rejected token stays cached. Without a
// limit, a server that challenges every call drives one identity provider
// request per call. Concurrent calls answered by one fetch count once, and a
// token already obtained for the same claims is reused without a fetch.
func WithChallengeFetchLimit(burst int, every time.Duration) Option {
	return func(o *options) { o.challengeBurst, o.challengeEvery = burst, every }
}

// WithStreamReplayBuffer bounds what a stream keeps to replay after a
// challenge that arrives before the first response message: at most
// messages messages and bytes bytes (proto.Size). Past either limit the
// stream stops buffering and a later challenge is returned to the
// application instead. WithStreamReplayBuffer(0, 0) disables stream replay.
// Which streams are replayed at all: see WithIdempotentStreams.
func WithStreamReplayBuffer(messages, bytes int) Option {
	return func(o *options) { o.replayMessages, o.replayBytes = messages, bytes }
}

// WithIdempotentStreams declares the streaming methods (full names, e.g.
// "/inbox.v1.InboxService/Upload") whose handlers may safely see the same
// messages twice. Their streams are replayed after a claims challenge that
// cut them before the first response, even when the server may already have
// processed some messages (challenge phase PHASE_MID_STREAM or unspecified).
// Streams of other methods are replayed only when the server says it refused
// them at open (PHASE_OPEN); otherwise the challenge goes to the application.
// The option adds to the methods of earlier WithIdempotentStreams options.
func WithIdempotentStreams(methods ...string) Option {
	return func(o *options) {
		if o.idempotent == nil {
			o.idempotent = make(map[string]bool, len(methods))
		}
		for _, m := range methods {
			o.idempotent[m] = true
		}
	}
}

// checkMethodName accepts a full gRPC method name, "/package.Service/Method".
func checkMethodName(m string) error {
	rest, ok := strings.CutPrefix(m, "/")
	svc, name, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || svc == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("method %q is not a full gRPC method name like \"/package.Service/Method\"", m)
	}
	return nil
}

// WithInsecure allows sending tokens over connections without privacy and
// integrity (plaintext h2c). Risk: anyone on the path can steal the bearer
// token and replay it until it expires or is revoked. Use it for tests and
// loopback development only.
func WithInsecure() Option {
	return func(o *options) { o.allowInsecure = true }
}

// WithLogger sets the logger, default slog.Default(). Tokens are never
// logged, only a short hash prefix.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithMeterProvider sets the OpenTelemetry MeterProvider of the Client's
// metrics (MetricChallenges, MetricRetries, MetricTokenFetches). Default:
// otel.GetMeterProvider(), the global provider, which records nothing until
// an SDK is installed. The metrics are recorded in addition to WithObserver's
// Observer.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meterProvider = mp }
}

// WithObserver registers an Observer for challenges, retries and token
// fetches.
func WithObserver(obs Observer) Option {
	return func(o *options) { o.observer = obs }
}

// normScopes sorts and deduplicates scopes, dropping empty ones.
func normScopes(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
