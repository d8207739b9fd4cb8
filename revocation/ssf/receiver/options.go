package receiver

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"github.com/caekit/caekit/revocation/ssf"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"go.opentelemetry.io/otel/metric"

	"github.com/caekit/caekit/revocation"
)

// The defaults of Limits (see its fields).
const (
	defaultMaxBodySize        = 64 << 10
	defaultIATPast            = 7 * 24 * time.Hour
	defaultIATFuture          = 5 * time.Minute
	defaultDedupMaxEntries    = 100_000
	defaultJWKSRefresh        = time.Hour
	defaultUnknownKIDRefresh  = 5 * time.Second
	defaultMaxMetadataSize    = 1 << 20
	defaultMinRSAKeyBits      = 2048
	defaultPollMaxEvents      = 100
	defaultPollMaxResponse    = 16 << 20
	defaultPollRequestTimeout = 2 * time.Minute
	defaultPollMinBackoff     = 500 * time.Millisecond
	defaultPollMaxBackoff     = time.Minute
	defaultPollInterval       = 5 * time.Second
)

// defaultAlgorithms is the default signature algorithm allow-list. RS256 is
// required by the CAEP interoperability profile and always included.
var defaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Option configures a Receiver (New) or a Poller (NewPoller). Each option
// says which constructor it is for, and the other constructor reports it
// as a bad option. WithHTTPClient, WithLogger, WithLimits and
// WithInsecureHTTP are for both: a Poller starts from its Receiver's
// logger, limits and WithInsecureHTTP, and options given to NewPoller
// override them for that Poller.
type Option func(*config)

// Limits bounds what a Receiver and its Pollers accept, hold and wait for.
// A zero field takes its default (or, for a Poller, its Receiver's value);
// a negative one is a bad option. Given to NewPoller, only the Poll fields
// matter.
type Limits struct {
	// MaxBodySize bounds a pushed SET (and a SET over gRPC), in bytes.
	// Default 64 KiB.
	MaxBodySize int64
	// MaxMetadataSize bounds a fetched JWKS or ssf-configuration document,
	// in bytes. Default 1 MiB.
	MaxMetadataSize int64
	// IATPast is how old a SET's iat may be. Default 7 days.
	IATPast time.Duration
	// IATFuture is how far in the future a SET's iat, and its event's own
	// time, may be. Default 5 minutes.
	IATFuture time.Duration
	// DedupEntries bounds the jti de-duplication memory. Default 100,000.
	DedupEntries int
	// DedupTTL is how long a jti is remembered. Default IATPast+IATFuture,
	// so that a SET is either remembered or too old to be accepted again.
	DedupTTL time.Duration
	// MinRSAKeyBits is the smallest RSA key accepted. Default 2048, as the
	// CAEP interoperability profile requires.
	MinRSAKeyBits int
	// JWKSRefresh is how often the transmitter's JWKS is refreshed in the
	// background. Default 1 hour. The last good key set is kept when a
	// refresh fails.
	JWKSRefresh time.Duration
	// UnknownKIDRefresh rate-limits the JWKS refreshes triggered by SETs
	// signed with a kid the receiver does not hold: 3 back to back, then
	// one per UnknownKIDRefresh. Default 5 seconds. A SET that finds no
	// key, or arrives while no refresh is allowed, is answered with
	// ErrKeysUnavailable at once (push: 503 with a Retry-After of this
	// interval) and is not remembered, so its redelivery triggers the next
	// refresh: a retry finds a new key soon after the transmitter
	// publishes it, while made-up kids cost the transmitter's JWKS endpoint
	// at most 3 requests plus one per interval.
	UnknownKIDRefresh time.Duration
	// PollMaxEvents is the maxEvents a Poller asks for per request.
	// Default 100.
	PollMaxEvents int
	// PollMaxResponseSize bounds one poll response, in bytes. Default 16 MiB.
	PollMaxResponseSize int64
	// PollRequestTimeout bounds one (long-)poll request. Default 2 minutes.
	PollRequestTimeout time.Duration
	// PollMinBackoff and PollMaxBackoff bound the exponential backoff, with
	// jitter, after a failed poll. Defaults 500 ms and 1 minute.
	PollMinBackoff, PollMaxBackoff time.Duration
}

// WithLimits sets the non-zero fields of l (see Limits). For New and
// NewPoller.
func WithLimits(l Limits) Option {
	return func(c *config) { c.limitsGiven = append(c.limitsGiven, l) }
}

type config struct {
	issuer          string
	audiences       []string
	store           revocation.Store
	jwksURL         string
	keySet          jwkset.Storage
	jwksJSON        []byte
	staticKeys      map[string]crypto.PublicKey
	algorithms      []string
	iatPast         time.Duration
	iatFuture       time.Duration
	now             func() time.Time
	dedupMax        int
	dedupTTL        time.Duration
	maxBody         int64
	maxMetadata     int64
	mapper          ssf.SubjectMapper
	observer        Observer
	logger          *slog.Logger
	httpClient      *http.Client
	jwksRefresh     time.Duration
	unknownKID      time.Duration
	pushAuth        string
	pushNoAuth      bool
	stateFunc       func(ctx context.Context, state string) bool
	stateTTL        time.Duration
	criticalMembers []string
	minRSABits      int
	meterProvider   metric.MeterProvider
	subjectIssuers  []string
	subjectTenants  []string
	emailDomains    []string
	insecureHTTP    bool

	// Poller settings (NewPoller).
	pollAuth          string
	pollHTTPClient    *http.Client
	pollMaxEvents     int
	pollMaxResp       int64
	pollTimeout       time.Duration
	pollMinBackoff    time.Duration
	pollMaxBackoff    time.Duration
	returnImmediately bool
	pollInterval      time.Duration

	// Bookkeeping of the options given, for the constructors' reports.
	limitsGiven []Limits
	forNew      []string // options only New takes
	forPoller   []string // options only NewPoller takes
	bad         []error  // bad option values
	nilOptions  []int    // positions of nil options
}

func defaultConfig() config {
	return config{
		algorithms:     append([]string(nil), defaultAlgorithms...),
		iatPast:        defaultIATPast,
		iatFuture:      defaultIATFuture,
		now:            time.Now,
		dedupMax:       defaultDedupMaxEntries,
		maxBody:        defaultMaxBodySize,
		maxMetadata:    defaultMaxMetadataSize,
		logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		observer:       nopObserver{},
		httpClient:     &http.Client{Timeout: 30 * time.Second},
		jwksRefresh:    defaultJWKSRefresh,
		unknownKID:     defaultUnknownKIDRefresh,
		stateTTL:       15 * time.Minute,
		minRSABits:     defaultMinRSAKeyBits,
		pollMaxEvents:  defaultPollMaxEvents,
		pollMaxResp:    defaultPollMaxResponse,
		pollTimeout:    defaultPollRequestTimeout,
		pollMinBackoff: defaultPollMinBackoff,
		pollMaxBackoff: defaultPollMaxBackoff,
		pollInterval:   defaultPollInterval,
	}
}

// apply applies opts to c, noting nil options, then the limits given.
func (c *config) apply(opts []Option) {
	for i, o := range opts {
		if o == nil {
			c.nilOptions = append(c.nilOptions, i)
			continue
		}
		o(c)
	}
	for _, l := range c.limitsGiven {
		c.applyLimits(l)
	}
}

// applyLimits sets the non-zero fields of l, noting negative ones.
func (c *config) applyLimits(l Limits) {
	set := func(name string, v int64, dst func()) {
		switch {
		case v < 0:
			c.bad = append(c.bad, fmt.Errorf("WithLimits: %s is negative (%d)", name, v))
		case v > 0:
			dst()
		}
	}
	set("MaxBodySize", l.MaxBodySize, func() { c.maxBody = l.MaxBodySize })
	set("MaxMetadataSize", l.MaxMetadataSize, func() { c.maxMetadata = l.MaxMetadataSize })
	set("IATPast", int64(l.IATPast), func() { c.iatPast = l.IATPast })
	set("IATFuture", int64(l.IATFuture), func() { c.iatFuture = l.IATFuture })
	set("DedupEntries", int64(l.DedupEntries), func() { c.dedupMax = l.DedupEntries })
	set("DedupTTL", int64(l.DedupTTL), func() { c.dedupTTL = l.DedupTTL })
	set("MinRSAKeyBits", int64(l.MinRSAKeyBits), func() { c.minRSABits = l.MinRSAKeyBits })
	set("JWKSRefresh", int64(l.JWKSRefresh), func() { c.jwksRefresh = l.JWKSRefresh })
	set("UnknownKIDRefresh", int64(l.UnknownKIDRefresh), func() { c.unknownKID = l.UnknownKIDRefresh })
	set("PollMaxEvents", int64(l.PollMaxEvents), func() { c.pollMaxEvents = l.PollMaxEvents })
	set("PollMaxResponseSize", l.PollMaxResponseSize, func() { c.pollMaxResp = l.PollMaxResponseSize })
	set("PollRequestTimeout", int64(l.PollRequestTimeout), func() { c.pollTimeout = l.PollRequestTimeout })
	set("PollMinBackoff", int64(l.PollMinBackoff), func() { c.pollMinBackoff = l.PollMinBackoff })
	set("PollMaxBackoff", int64(l.PollMaxBackoff), func() { c.pollMaxBackoff = l.PollMaxBackoff })
}

// common reports what every constructor reports: nil options, bad values,
// and the options meant for the other constructor (others; what names
// that constructor).
func (c *config) common(others []string, what string) []error {
	var errs []error
	for _, i := range c.nilOptions {
		errs = append(errs, fmt.Errorf("option %d is nil", i))
	}
	errs = append(errs, c.bad...)
	for _, name := range others {
		errs = append(errs, fmt.Errorf("%s is an option of %s", name, what))
	}
	return errs
}

// newOnly marks an option as one of New's only.
func newOnly(name string, f func(*config)) Option {
	return func(c *config) {
		c.forNew = append(c.forNew, name)
		f(c)
	}
}

// pollerOnly marks an option as one of NewPoller's only.
func pollerOnly(name string, f func(*config)) Option {
	return func(c *config) {
		c.forPoller = append(c.forPoller, name)
		f(c)
	}
}

// WithIssuer sets the transmitter's issuer. Required: a SET whose iss differs
// is refused with invalid_issuer. Unless keys are configured directly, the
// transmitter's /.well-known/ssf-configuration is fetched from this issuer and
// its jwks_uri used.
func WithIssuer(issuer string) Option {
	return newOnly("WithIssuer", func(c *config) { c.issuer = issuer })
}

// WithAudience sets the audiences this receiver accepts. Required: a SET is
// accepted when its aud contains at least one of them.
func WithAudience(aud ...string) Option {
	return newOnly("WithAudience", func(c *config) { c.audiences = append(c.audiences, aud...) })
}

// WithStore sets the revocation store events are Put to. Required.
func WithStore(s revocation.Store) Option {
	return newOnly("WithStore", func(c *config) { c.store = s })
}

// WithJWKSURL takes the transmitter's signing keys from this JWKS URL instead
// of discovering jwks_uri from its ssf-configuration.
func WithJWKSURL(url string) Option {
	return newOnly("WithJWKSURL", func(c *config) { c.jwksURL = url })
}

// WithJWKS takes the signing keys from a JWK Set document (static keys).
func WithJWKS(jwksJSON []byte) Option {
	return newOnly("WithJWKS", func(c *config) { c.jwksJSON = append([]byte(nil), jwksJSON...) })
}

// WithKeySet takes the signing keys from a jwkset.Storage the caller manages.
// Like static keys it is taken as complete: a kid it lacks is refused with
// invalid_key (a read failure of the storage is ErrKeysUnavailable).
func WithKeySet(s jwkset.Storage) Option {
	return newOnly("WithKeySet", func(c *config) { c.keySet = s })
}

// WithPublicKey adds a static signing key with key id kid ("" matches a SET
// without kid). May be given several times. A SET naming another kid is
// refused with invalid_key.
func WithPublicKey(kid string, key crypto.PublicKey) Option {
	return newOnly("WithPublicKey", func(c *config) {
		if c.staticKeys == nil {
			c.staticKeys = map[string]crypto.PublicKey{}
		}
		c.staticKeys[kid] = key
	})
}

// WithAlgorithms replaces the signature algorithm allow-list. "none" and the
// HMAC algorithms are refused by New; RS256 is always added.
func WithAlgorithms(algs ...string) Option {
	return newOnly("WithAlgorithms", func(c *config) { c.algorithms = append([]string(nil), algs...) })
}

// WithClock sets the clock. Default time.Now.
func WithClock(now func() time.Time) Option {
	return newOnly("WithClock", func(c *config) { c.now = now })
}

// WithSubjectMapper sets how subjects map onto revocation Keys. Default:
// DefaultMapper{} (see its documentation).
func WithSubjectMapper(m ssf.SubjectMapper) Option {
	return newOnly("WithSubjectMapper", func(c *config) { c.mapper = m })
}

// WithObserver sets the metrics and audit hook. Default: none.
func WithObserver(o Observer) Option {
	return newOnly("WithObserver", func(c *config) { c.observer = o })
}

// WithMeterProvider sets the OpenTelemetry MeterProvider of the Receiver's
// metrics (metricEvents, metricJWKSRefreshFailures). Default:
// otel.GetMeterProvider(), the global provider, which records nothing until an
// SDK is installed. The metrics are recorded in addition to WithObserver's
// Observer.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return newOnly("WithMeterProvider", func(c *config) { c.meterProvider = mp })
}

// WithLogger sets the logger. Default: discard; a Poller's default is its
// Receiver's. For New and NewPoller.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		c.logger = l
		if l == nil {
			c.bad = append(c.bad, errors.New("WithLogger: nil logger"))
		}
	}
}

// WithHTTPClient sets the HTTP client. Given to New, it fetches the
// ssf-configuration and the JWKS (default: a client with a 30 s timeout);
// given to NewPoller, it makes the poll requests (default: a client
// without timeout, each request bounded by Limits.PollRequestTimeout, since
// a long poll is held open; its own Timeout, if any, must exceed the
// transmitter's hold). Responses are size-bounded and redirects held to
// the https rule (see WithInsecureHTTP) regardless. For New and NewPoller.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) {
		c.httpClient, c.pollHTTPClient = hc, hc
		if hc == nil {
			c.bad = append(c.bad, errors.New("WithHTTPClient: nil client"))
		}
	}
}

// WithPushAuthorization sets the exact Authorization header value the
// transmitter sends with pushed SETs (the stream's authorization_header),
// e.g. "Bearer 3f9c...". It is compared in constant time. Without it, or
// WithInsecurePushWithoutAuthorization, the push handler refuses every request.
func WithPushAuthorization(header string) Option {
	return newOnly("WithPushAuthorization", func(c *config) { c.pushAuth = header })
}

// WithInsecurePushWithoutAuthorization lets the push handler accept requests
// without an Authorization header: the Google mode. Google's Cross-Account
// Protection (RISC) pushes SETs with no Authorization header, authenticated
// by their signature and aud alone
// (https://developers.google.com/identity/protocols/risc). Off by default.
// Every SET is still checked exactly as with a header: its signature against
// the transmitter's keys, iss, aud, iat and the subject scope; only the
// caller's own credential is not. The cost: anyone who can reach the
// endpoint can make the receiver verify signatures and fill its logs (bounded
// by Limits.MaxBodySize and the unknown-kid refresh limit). Prefer
// WithPushAuthorization wherever the transmitter supports it.
func WithInsecurePushWithoutAuthorization() Option {
	return newOnly("WithInsecurePushWithoutAuthorization", func(c *config) { c.pushNoAuth = true })
}

// WithVerificationState sets a function that accepts or refuses the state of
// an SSF verification event, in addition to the states registered with
// Receiver.ExpectState.
func WithVerificationState(f func(ctx context.Context, state string) bool) Option {
	return newOnly("WithVerificationState", func(c *config) { c.stateFunc = f })
}

// WithCriticalSubjectMembers sets the transmitter's critical_subject_members
// (also read from its ssf-configuration when discovered). An event whose
// complex subject has a critical member this receiver cannot process
// (org_unit, group, or any unknown member) is discarded: acknowledged and
// counted as OutcomeUnmapped, never enforced partially.
func WithCriticalSubjectMembers(members ...string) Option {
	return newOnly("WithCriticalSubjectMembers", func(c *config) { c.criticalMembers = append(c.criticalMembers, members...) })
}

// WithSubjectIssuers lets this transmitter name the subjects, sessions,
// tokens, devices and clients of these further token issuers. By default
// it may name only those of its own iss (WithIssuer) and of the
// DefaultMapper's TokenIssuer. A SET whose subject names another issuer
// (an iss_sub or jwt_id subject, or a custom mapper's key) is refused with
// invalid_request naming the issuer, and nothing of it is stored: one
// transmitter, or a leak of its signing key, cannot revoke the users of an
// issuer it does not speak for.
func WithSubjectIssuers(issuers ...string) Option {
	return newOnly("WithSubjectIssuers", func(c *config) { c.subjectIssuers = append(c.subjectIssuers, issuers...) })
}

// WithSubjectTenants lets this transmitter name the users and service
// principals (ObjectKey: tid + oid) of these tenants, compared as ObjectKey
// compares them (GUIDs case-insensitively, other ids exactly). By default it
// may name only the DefaultMapper's OpaqueTenant. A SET whose subject names
// another tenant (a complex {tenant, user}) is refused with invalid_request
// naming the tenant.
func WithSubjectTenants(tenants ...string) Option {
	return newOnly("WithSubjectTenants", func(c *config) { c.subjectTenants = append(c.subjectTenants, tenants...) })
}

// WithEmailDomains lets this transmitter name e-mail (and account acct:)
// subjects of these domains, matched exactly and case-insensitively
// ("example.com" does not admit "sub.example.com"). By default none: an
// e-mail address is not scoped by any issuer, so an e-mail subject would
// revoke the tokens of every issuer that carries that address. A SET with
// an e-mail subject of another domain is refused with invalid_request
// naming the domain.
func WithEmailDomains(domains ...string) Option {
	return newOnly("WithEmailDomains", func(c *config) { c.emailDomains = append(c.emailDomains, domains...) })
}

// WithInsecureHTTP allows plain-http URLs on non-loopback hosts for the
// issuer's ssf-configuration, the jwks_uri, the poll endpoint and the
// redirects they follow. By default every such URL must be https (plain
// http only on a loopback address), so that a network attacker cannot
// substitute the transmitter's keys and forge lock-outs. Use it only in
// closed test networks. For New and NewPoller (a Poller of a Receiver
// with WithInsecureHTTP has it too).
func WithInsecureHTTP() Option { return func(c *config) { c.insecureHTTP = true } }

// WithPollAuthorization sets the Authorization header a Poller sends to the
// poll endpoint, e.g. "Bearer 3f9c...". For NewPoller.
func WithPollAuthorization(header string) Option {
	return pollerOnly("WithPollAuthorization", func(c *config) { c.pollAuth = header })
}

// WithReturnImmediately asks the transmitter not to hold a poll request
// open (short polling); the Poller then waits interval between empty
// polls. For NewPoller.
func WithReturnImmediately(interval time.Duration) Option {
	return pollerOnly("WithReturnImmediately", func(c *config) {
		c.returnImmediately, c.pollInterval = true, interval
		if interval < 0 {
			c.bad = append(c.bad, fmt.Errorf("WithReturnImmediately: interval %v is negative", interval))
		}
	})
}
