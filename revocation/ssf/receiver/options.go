package receiver

import (
	"context"
	"crypto"
	"github.com/caekit/caekit/revocation/ssf"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"go.opentelemetry.io/otel/metric"

	"github.com/caekit/caekit/revocation"
)

// Defaults.
const (
	// DefaultMaxBodySize bounds a pushed SET (and a SET over gRPC).
	DefaultMaxBodySize = 64 << 10
	// DefaultIATPast is how old a SET's iat may be.
	DefaultIATPast = 7 * 24 * time.Hour
	// DefaultIATFuture is how far in the future a SET's iat (and event time) may be.
	DefaultIATFuture = 5 * time.Minute
	// DefaultDedupMaxEntries bounds the jti de-duplication memory.
	DefaultDedupMaxEntries = 100_000
	// DefaultJWKSRefresh is how often the transmitter's JWKS is refreshed.
	DefaultJWKSRefresh = time.Hour
	// DefaultUnknownKIDRefresh is the interval at which refreshes of the
	// JWKS triggered by SETs signed with an unknown kid are allowed, after a
	// burst of UnknownKIDRefreshBurst. It is short because a SET whose kid
	// is unknown is answered as temporarily unavailable (ErrKeysUnavailable)
	// and redelivered: its retry should find the new key soon after the
	// transmitter publishes it.
	DefaultUnknownKIDRefresh = 5 * time.Second
	// DefaultMaxMetadataSize bounds a fetched JWKS or ssf-configuration document.
	DefaultMaxMetadataSize = 1 << 20
)

// DefaultAlgorithms is the default signature algorithm allow-list. RS256 is
// required by the CAEP interoperability profile and always included.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Option configures a Receiver.
type Option func(*config)

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
}

func defaultConfig() config {
	return config{
		algorithms:  append([]string(nil), DefaultAlgorithms...),
		iatPast:     DefaultIATPast,
		iatFuture:   DefaultIATFuture,
		now:         time.Now,
		dedupMax:    DefaultDedupMaxEntries,
		maxBody:     DefaultMaxBodySize,
		maxMetadata: DefaultMaxMetadataSize,
		logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		observer:    nopObserver{},
		httpClient:  &http.Client{Timeout: 30 * time.Second},
		jwksRefresh: DefaultJWKSRefresh,
		unknownKID:  DefaultUnknownKIDRefresh,
		stateTTL:    15 * time.Minute,
		minRSABits:  2048,
	}
}

// WithIssuer sets the transmitter's issuer. Required: a SET whose iss differs
// is refused with invalid_issuer. Unless keys are configured directly, the
// transmitter's /.well-known/ssf-configuration is fetched from this issuer and
// its jwks_uri used.
func WithIssuer(issuer string) Option { return func(c *config) { c.issuer = issuer } }

// WithAudience sets the audiences this receiver accepts. Required: a SET is
// accepted when its aud contains at least one of them.
func WithAudience(aud ...string) Option {
	return func(c *config) { c.audiences = append(c.audiences, aud...) }
}

// WithStore sets the revocation store events are Put to. Required.
func WithStore(s revocation.Store) Option { return func(c *config) { c.store = s } }

// WithJWKSURL takes the transmitter's signing keys from this JWKS URL instead
// of discovering jwks_uri from its ssf-configuration.
func WithJWKSURL(url string) Option { return func(c *config) { c.jwksURL = url } }

// WithJWKS takes the signing keys from a JWK Set document (static keys).
func WithJWKS(jwksJSON []byte) Option {
	return func(c *config) { c.jwksJSON = append([]byte(nil), jwksJSON...) }
}

// WithKeySet takes the signing keys from a jwkset.Storage the caller manages.
// Like static keys it is taken as complete: a kid it lacks is refused with
// invalid_key (a read failure of the storage is ErrKeysUnavailable).
func WithKeySet(s jwkset.Storage) Option { return func(c *config) { c.keySet = s } }

// WithPublicKey adds a static signing key with key id kid ("" matches a SET
// without kid). May be given several times. A SET naming another kid is
// refused with invalid_key.
func WithPublicKey(kid string, key crypto.PublicKey) Option {
	return func(c *config) {
		if c.staticKeys == nil {
			c.staticKeys = map[string]crypto.PublicKey{}
		}
		c.staticKeys[kid] = key
	}
}

// WithAlgorithms replaces the signature algorithm allow-list. "none" and the
// HMAC algorithms are refused by New; RS256 is always added.
func WithAlgorithms(algs ...string) Option {
	return func(c *config) { c.algorithms = append([]string(nil), algs...) }
}

// WithIATWindow sets how far in the past and the future a SET's iat may be.
// Defaults DefaultIATPast and DefaultIATFuture. The future bound also applies
// to the event's own time.
func WithIATWindow(past, future time.Duration) Option {
	return func(c *config) { c.iatPast, c.iatFuture = past, future }
}

// WithClock sets the clock. Default time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithDedup bounds the jti de-duplication memory: at most maxEntries jtis,
// each remembered for ttl (default: the iat past window, so that a SET is
// either remembered or too old to be accepted again).
func WithDedup(maxEntries int, ttl time.Duration) Option {
	return func(c *config) { c.dedupMax, c.dedupTTL = maxEntries, ttl }
}

// WithMaxBodySize bounds a SET's size in bytes. Default DefaultMaxBodySize.
func WithMaxBodySize(n int64) Option { return func(c *config) { c.maxBody = n } }

// WithMaxMetadataSize bounds the size of a fetched JWKS or configuration
// document. Default DefaultMaxMetadataSize.
func WithMaxMetadataSize(n int64) Option { return func(c *config) { c.maxMetadata = n } }

// WithSubjectMapper sets how subjects map onto revocation Keys. Default:
// DefaultMapper{} (see its documentation).
func WithSubjectMapper(m ssf.SubjectMapper) Option { return func(c *config) { c.mapper = m } }

// WithObserver sets the metrics and audit hook. Default: none.
func WithObserver(o Observer) Option { return func(c *config) { c.observer = o } }

// WithMeterProvider sets the OpenTelemetry MeterProvider of the Receiver's
// metrics (MetricEvents, MetricJWKSRefreshFailures). Default:
// otel.GetMeterProvider(), the global provider, which records nothing until an
// SDK is installed. The metrics are recorded in addition to WithObserver's
// Observer.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithHTTPClient sets the client used to fetch the ssf-configuration and the
// JWKS. Default: a client with a 30 s timeout. Responses are size-bounded
// and redirects held to the https rule (see WithInsecureHTTP) regardless.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithJWKSRefresh sets the periodic JWKS refresh interval (default
// DefaultJWKSRefresh) and the rate limit of refreshes triggered by a SET
// signed with a kid the receiver does not hold: UnknownKIDRefreshBurst back
// to back, then one per unknownKIDMinInterval (default
// DefaultUnknownKIDRefresh). A SET that finds no key, or arrives while no
// refresh is allowed, is answered with ErrKeysUnavailable at once (push:
// 503 with a Retry-After of unknownKIDMinInterval) and is not remembered,
// so its redelivery triggers the next refresh. The last good key set is
// kept when a refresh fails.
func WithJWKSRefresh(every, unknownKIDMinInterval time.Duration) Option {
	return func(c *config) { c.jwksRefresh, c.unknownKID = every, unknownKIDMinInterval }
}

// WithPushAuthorization sets the exact Authorization header value the
// transmitter sends with pushed SETs (the stream's authorization_header),
// e.g. "Bearer 3f9c...". It is compared in constant time. Without it, or
// WithInsecurePushWithoutAuthorization, the push handler refuses every request.
func WithPushAuthorization(header string) Option { return func(c *config) { c.pushAuth = header } }

// WithInsecurePushWithoutAuthorization lets the push handler accept requests
// without an Authorization header: the Google mode. Google's Cross-Account
// Protection (RISC) pushes SETs with no Authorization header, authenticated
// by their signature and aud alone
// (https://developers.google.com/identity/protocols/risc). Off by default.
// Every SET is still checked exactly as with a header: its signature against
// the transmitter's keys, iss, aud, iat and the subject scope; only the
// caller's own credential is not. The cost: anyone who can reach the
// endpoint can make the receiver verify signatures and fill its logs (bounded
// by WithMaxBodySize and the unknown-kid refresh limit). Prefer
// WithPushAuthorization wherever the transmitter supports it.
func WithInsecurePushWithoutAuthorization() Option { return func(c *config) { c.pushNoAuth = true } }

// WithVerificationState sets a function that accepts or refuses the state of
// an SSF verification event, in addition to the states registered with
// Receiver.ExpectState.
func WithVerificationState(f func(ctx context.Context, state string) bool) Option {
	return func(c *config) { c.stateFunc = f }
}

// WithCriticalSubjectMembers sets the transmitter's critical_subject_members
// (also read from its ssf-configuration when discovered). An event whose
// complex subject has a critical member this receiver cannot process
// (org_unit, group, or any unknown member) is discarded: acknowledged and
// counted as OutcomeUnmapped, never enforced partially.
func WithCriticalSubjectMembers(members ...string) Option {
	return func(c *config) { c.criticalMembers = append(c.criticalMembers, members...) }
}

// WithMinRSAKeyBits sets the smallest RSA key accepted. Default 2048, as the
// CAEP interoperability profile requires.
func WithMinRSAKeyBits(bits int) Option { return func(c *config) { c.minRSABits = bits } }

// WithSubjectIssuers lets this transmitter name the subjects, sessions,
// tokens, devices and clients of these further token issuers. By default
// it may name only those of its own iss (WithIssuer) and of the
// DefaultMapper's TokenIssuer. A SET whose subject names another issuer
// (an iss_sub or jwt_id subject, or a custom mapper's key) is refused with
// invalid_request naming the issuer, and nothing of it is stored: one
// transmitter, or a leak of its signing key, cannot revoke the users of an
// issuer it does not speak for.
func WithSubjectIssuers(issuers ...string) Option {
	return func(c *config) { c.subjectIssuers = append(c.subjectIssuers, issuers...) }
}

// WithSubjectTenants lets this transmitter name the users and service
// principals (ObjectKey: tid + oid) of these tenants, compared as ObjectKey
// compares them (GUIDs case-insensitively, other ids exactly). By default it
// may name only the DefaultMapper's OpaqueTenant. A SET whose subject names
// another tenant (a complex {tenant, user}) is refused with invalid_request
// naming the tenant.
func WithSubjectTenants(tenants ...string) Option {
	return func(c *config) { c.subjectTenants = append(c.subjectTenants, tenants...) }
}

// WithEmailDomains lets this transmitter name e-mail (and account acct:)
// subjects of these domains, matched exactly and case-insensitively
// ("example.com" does not admit "sub.example.com"). By default none: an
// e-mail address is not scoped by any issuer, so an e-mail subject would
// revoke the tokens of every issuer that carries that address. A SET with
// an e-mail subject of another domain is refused with invalid_request
// naming the domain.
func WithEmailDomains(domains ...string) Option {
	return func(c *config) { c.emailDomains = append(c.emailDomains, domains...) }
}

// WithInsecureHTTP allows plain-http URLs on non-loopback hosts for the
// issuer's ssf-configuration, the jwks_uri, the poll endpoint and the
// redirects they follow. By default every such URL must be https (plain
// http only on a loopback address), so that a network attacker cannot
// substitute the transmitter's keys and forge lock-outs. Use it only in
// closed test networks.
func WithInsecureHTTP() Option { return func(c *config) { c.insecureHTTP = true } }
