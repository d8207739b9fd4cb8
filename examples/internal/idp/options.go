package idp

import (
	"log/slog"
	"net/http"
	"time"
)

// Defaults.
const (
	// DefaultAddr is where cmd idp listens by default.
	DefaultAddr = "127.0.0.1:8400"
	// DefaultAudience is the aud of issued tokens and SETs.
	DefaultAudience = "api://caekit-example"
	// DefaultCAELifetime is the lifetime of tokens for clients that declare cp1.
	DefaultCAELifetime = 24 * time.Hour
	// DefaultLifetime is the lifetime of tokens for other clients.
	DefaultLifetime = time.Hour
	// DefaultPushTimeout bounds one SET push.
	DefaultPushTimeout = 5 * time.Second
)

// Seeded credentials. They are public on purpose: this is a development IdP.
const (
	// Password is the password of every seeded user.
	Password = "password"
	// WorkloadClientID is the seeded client_credentials client.
	WorkloadClientID = "reporting"
	// WorkloadClientSecret is its secret.
	WorkloadClientSecret = "secret"
	// DefaultPublicClientID is the azp of password-grant tokens when the
	// request names no client_id.
	DefaultPublicClientID = "caekit-example-cli"
)

// Users are the seeded user names.
var Users = []string{"alice", "bob", "carol"}

// Option configures an IdP.
type Option func(*config)

type config struct {
	issuer      string
	audience    string
	push        []string
	pushAuth    string
	caeLifetime time.Duration
	lifetime    time.Duration
	pushTimeout time.Duration
	logger      *slog.Logger
	httpClient  *http.Client
	now         func() time.Time
	keyBits     int
}

func defaults() config {
	return config{
		audience:    DefaultAudience,
		caeLifetime: DefaultCAELifetime,
		lifetime:    DefaultLifetime,
		pushTimeout: DefaultPushTimeout,
		logger:      slog.New(slog.DiscardHandler),
		now:         time.Now,
		keyBits:     2048,
	}
}

// WithIssuer sets the issuer URL (iss of tokens and SETs, base of every
// endpoint URL). Required by New; Listen defaults it to http://<listen address>.
func WithIssuer(u string) Option { return func(c *config) { c.issuer = u } }

// WithAudience sets the aud of tokens and SETs. Default DefaultAudience.
func WithAudience(a string) Option { return func(c *config) { c.audience = a } }

// WithPushTarget adds an SSF push receiver URL (RFC 8935) that every SET is
// delivered to. Repeatable.
func WithPushTarget(u string) Option { return func(c *config) { c.push = append(c.push, u) } }

// WithPushAuth sets the Authorization header value sent with every push.
func WithPushAuth(v string) Option { return func(c *config) { c.pushAuth = v } }

// WithCAELifetime sets the lifetime of CAE (cp1) tokens. Default 24 h.
func WithCAELifetime(d time.Duration) Option { return func(c *config) { c.caeLifetime = d } }

// WithLifetime sets the lifetime of tokens for clients without cp1. Default 1 h.
func WithLifetime(d time.Duration) Option { return func(c *config) { c.lifetime = d } }

// WithPushTimeout bounds each push. Default DefaultPushTimeout.
func WithPushTimeout(d time.Duration) Option { return func(c *config) { c.pushTimeout = d } }

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithHTTPClient sets the client used for pushes. Default: a client with
// DefaultPushTimeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithClock sets the clock. Default time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }
