package logout

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/internal/keyset"
	"github.com/caekit/caekit/revocation"
)

// Defaults.
const (
	// DefaultMaxBodySize bounds a request body (a form with one logout
	// token, or a Global Token Revocation JSON document).
	DefaultMaxBodySize = 32 << 10
	// DefaultIATPast is how old a logout token's iat may be. IdPs send a
	// logout token at once; a few retry for minutes.
	DefaultIATPast = 10 * time.Minute
	// DefaultLeeway is the clock skew tolerated on iat (ahead) and exp.
	DefaultLeeway = time.Minute
	// DefaultMaxGTRLifetime bounds exp - iat and exp - now of a Global Token
	// Revocation JWT: Okta's live for five minutes.
	DefaultMaxGTRLifetime = 10 * time.Minute
	// DefaultReplayEntries bounds the jti replay memory.
	DefaultReplayEntries = 100_000
)

// Option configures a Receiver.
type Option func(*config)

type config struct {
	store          revocation.Store
	keys           Keys
	nilKeys        bool // WithKeys(nil) was given
	issuers        []string
	insecureHTTP   bool
	audiences      []string
	gtrEndpoint    string
	now            func() time.Time
	iatPast        time.Duration
	leeway         time.Duration
	maxGTRLifetime time.Duration
	maxBody        int64
	replayMax      int
	logger         *slog.Logger
	observer       Observer
	meterProvider  metric.MeterProvider
	subjectIssuers []string
	subjectTenants []string
	emailDomains   []string
}

func defaultConfig() config {
	return config{
		now:            time.Now,
		iatPast:        DefaultIATPast,
		leeway:         DefaultLeeway,
		maxGTRLifetime: DefaultMaxGTRLifetime,
		maxBody:        DefaultMaxBodySize,
		replayMax:      DefaultReplayEntries,
		logger:         slog.Default(),
	}
}

// WithStore sets the store the events go to (required). An event is
// acknowledged only once its Put returned nil.
func WithStore(s revocation.Store) Option { return func(c *config) { c.store = s } }

// Keys verifies signed JWTs with keys bound to their issuers: what the
// Receiver needs of the access-token validator. *token.Validator
// (interceptor/token) implements it with its VerifySigned, whose result
// type is token.Signed; logout depends on this interface, not on the
// interceptor layer.
type Keys interface {
	VerifySigned(raw string) (*keyset.Signed, error)
}

// WithKeys shares the key sources of v, the access-token validator (a
// *token.Validator): logout tokens and Global Token Revocation JWTs are
// verified with its keys (from discovery, JWKS URLs or static keys,
// refreshed in the background), each bound to its issuer, under its
// algorithm allow-list and token size limit (token.Validator.VerifySigned),
// and their iss must be an issuer v accepts. The caller owns v and closes
// it after the Receiver. Without WithKeys, New builds its own key set over
// the OIDC discovery of each WithIssuer issuer (the same key machinery as
// the validator's) and Close closes it.
func WithKeys(v Keys) Option {
	return func(c *config) { c.keys, c.nilKeys = v, isNil(v) }
}

// isNil reports whether k is nil or holds a nil pointer (a nil
// *token.Validator).
func isNil(k Keys) bool {
	if k == nil {
		return true
	}
	rv := reflect.ValueOf(k)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// WithIssuer names the identity providers whose logout tokens and Global
// Token Revocation JWTs are accepted (their iss). With WithKeys it narrows
// the validator's issuers; without, it is required, and each issuer's keys
// come from its OIDC discovery document.
func WithIssuer(issuers ...string) Option {
	return func(c *config) { c.issuers = append(c.issuers, issuers...) }
}

// WithInsecureHTTP allows plain-http discovery on non-loopback hosts when
// New builds its own validator (closed test networks only).
func WithInsecureHTTP() Option { return func(c *config) { c.insecureHTTP = true } }

// WithAudience sets the client ids of this relying party: a logout token's
// aud must contain one of them (Back-Channel Logout 1.0 §2.6 step 3). It is
// required for BackChannelHandler.
func WithAudience(clientIDs ...string) Option {
	return func(c *config) { c.audiences = append(c.audiences, clientIDs...) }
}

// WithGTREndpoint sets the absolute URL at which the Global Token
// Revocation handler is reached: a GTR JWT's aud must equal it. It is
// required for GTRHandler.
func WithGTREndpoint(url string) Option { return func(c *config) { c.gtrEndpoint = url } }

// WithClock sets the source of the current time (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithIATWindow sets how old a logout token's iat may be (default
// DefaultIATPast). The jti replay memory keeps a jti that long.
func WithIATWindow(past time.Duration) Option { return func(c *config) { c.iatPast = past } }

// WithLeeway sets the clock skew tolerated on iat and exp (default
// DefaultLeeway).
func WithLeeway(d time.Duration) Option { return func(c *config) { c.leeway = d } }

// WithMaxGTRLifetime bounds a GTR JWT's exp - iat and exp - now (default
// DefaultMaxGTRLifetime).
func WithMaxGTRLifetime(d time.Duration) Option { return func(c *config) { c.maxGTRLifetime = d } }

// WithMaxBodySize bounds a request body, in bytes (default
// DefaultMaxBodySize).
func WithMaxBodySize(n int64) Option { return func(c *config) { c.maxBody = n } }

// WithReplayMemory bounds how many (iss, jti) pairs are remembered to refuse
// replays (default DefaultReplayEntries). When full, the oldest is
// forgotten first; a forgotten logout token is still refused once its iat
// leaves the window.
func WithReplayMemory(n int) Option { return func(c *config) { c.replayMax = n } }

// WithLogger sets the logger (default slog.Default()). Tokens are never
// logged, only their short hash.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithObserver receives an Observation for every request, for audit.
func WithObserver(o Observer) Option { return func(c *config) { c.observer = o } }

// WithMeterProvider sets the OpenTelemetry meter provider for MetricEvents
// (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithSubjectIssuers lets a Global Token Revocation request name iss_sub
// subjects of these token issuers as well as of its own iss (as the SSF
// receiver's option of that name).
func WithSubjectIssuers(issuers ...string) Option {
	return func(c *config) { c.subjectIssuers = append(c.subjectIssuers, issuers...) }
}

// WithSubjectTenants lets a Global Token Revocation request name objects of
// these tenants (none by default).
func WithSubjectTenants(tenants ...string) Option {
	return func(c *config) { c.subjectTenants = append(c.subjectTenants, tenants...) }
}

// WithEmailDomains lets a Global Token Revocation request name email
// subjects of these domains (none by default: an IdP may revoke only the
// addresses of domains it is trusted for). Okta sends email subjects.
func WithEmailDomains(domains ...string) Option {
	return func(c *config) { c.emailDomains = append(c.emailDomains, domains...) }
}

// validate reports every bad option at once.
func (c *config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.store == nil {
		bad("WithStore is required")
	}
	if c.nilKeys {
		bad("WithKeys: nil validator")
	} else if c.keys == nil && len(c.issuers) == 0 {
		bad("WithKeys or WithIssuer is required: logout tokens are verified with their issuer's keys")
	}
	for _, iss := range c.issuers {
		if iss == "" {
			bad("WithIssuer: empty issuer")
		} else if c.keys == nil {
			if err := jose.CheckURL(iss, c.insecureHTTP, "WithInsecureHTTP"); err != nil {
				bad("WithIssuer: %v", err)
			}
		}
	}
	if len(c.audiences) == 0 && c.gtrEndpoint == "" {
		bad("WithAudience (for Back-Channel Logout) or WithGTREndpoint (for Global Token Revocation) is required")
	}
	for _, a := range c.audiences {
		if a == "" {
			bad("WithAudience: empty client id")
		}
	}
	if c.gtrEndpoint != "" {
		if err := jose.CheckURL(c.gtrEndpoint, true, ""); err != nil {
			bad("WithGTREndpoint: %v", err)
		}
	}
	if c.now == nil {
		bad("WithClock: nil clock")
	}
	if c.logger == nil {
		bad("WithLogger: nil logger")
	}
	if c.iatPast <= 0 {
		bad("WithIATWindow: %v is not positive", c.iatPast)
	}
	if c.leeway < 0 || c.leeway > 10*time.Minute {
		bad("WithLeeway: %v is outside 0..10m", c.leeway)
	}
	if c.maxGTRLifetime <= 0 || c.maxGTRLifetime > time.Hour {
		bad("WithMaxGTRLifetime: %v is outside (0, 1h]: a GTR JWT is meant to be short-lived", c.maxGTRLifetime)
	}
	if c.maxBody <= 0 {
		bad("WithMaxBodySize: %d is not positive", c.maxBody)
	}
	if c.replayMax <= 0 {
		bad("WithReplayMemory: %d is not positive", c.replayMax)
	}
	return errors.Join(errs...)
}
