package idp

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
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
	// DefaultLogoutAudience is the client id of the example API as the IdP
	// knows it: the aud of the logout tokens it sends.
	DefaultLogoutAudience = "caekit-example-api"
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
	bcl         []string // Back-Channel Logout endpoints
	gtr         []string // Global Token Revocation endpoints
	logoutAud   string
	caeLifetime time.Duration
	lifetime    time.Duration
	pushTimeout time.Duration
	logger      *slog.Logger
	httpClient  *http.Client
	now         func() time.Time
	keyBits     int
	nbfMode     NotBeforeMode
	// refreshLifetime is how long a refresh token is valid.
	refreshLifetime time.Duration
}

func defaults() config {
	return config{
		audience:        DefaultAudience,
		logoutAud:       DefaultLogoutAudience,
		caeLifetime:     DefaultCAELifetime,
		lifetime:        DefaultLifetime,
		pushTimeout:     DefaultPushTimeout,
		logger:          slog.New(slog.DiscardHandler),
		now:             time.Now,
		keyBits:         2048,
		refreshLifetime: DefaultRefreshTokenLifetime,
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

// WithBackChannelLogoutTarget adds an OpenID Connect Back-Channel Logout
// endpoint of a relying party: the "logout" admin action posts a logout
// token to it. Repeatable.
func WithBackChannelLogoutTarget(u string) Option {
	return func(c *config) { c.bcl = append(c.bcl, u) }
}

// WithGTRTarget adds a Global Token Revocation endpoint: the
// "universal-logout" admin action posts a request to it, authenticated by a
// JWT whose aud is that URL (as Okta Universal Logout does). Repeatable.
func WithGTRTarget(u string) Option { return func(c *config) { c.gtr = append(c.gtr, u) } }

// WithLogoutAudience sets the aud of logout tokens: the relying party's
// client id. Default DefaultLogoutAudience.
func WithLogoutAudience(a string) Option { return func(c *config) { c.logoutAud = a } }

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

// WithRefreshTokenLifetime sets how long a refresh token is valid after it
// is issued, default DefaultRefreshTokenLifetime.
func WithRefreshTokenLifetime(d time.Duration) Option {
	return func(c *config) { c.refreshLifetime = d }
}

// WithClock sets the clock. Default time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// NotBeforeMode is how the IdP answers a token request whose claims ask for
// an nbf, as a revocation challenge does
// ({"access_token":{"nbf":{"essential":true,"value":"<unix>"}}}). Each mode
// is the behaviour of a family of real identity providers, so that caekit is
// tested against all of them (issue 12 item 2).
type NotBeforeMode int

// The nbf modes. The zero value, NotBeforeIgnore, is the default: it is the
// behaviour of most IdPs, and the one that does not hide the same-second
// problem.
const (
	// NotBeforeIgnore (mode b) ignores the requested nbf and issues at once,
	// as identity providers that do not implement the OIDC claims request
	// parameter do. OpenID Connect Core 1.0 §5.5 makes that parameter
	// optional (an OP that does not support it advertises
	// claims_parameter_supported false and "SHOULD" answer as it sees fit);
	// Okta's /token endpoint takes no claims parameter
	// (https://developer.okta.com/docs/reference/api/oidc/#token), Auth0
	// does not support it ("that method of requesting claims is not
	// supported", https://community.auth0.com/t/correct-way-to-request-userinfo-claims-oidc-client/8844),
	// and Keycloak acts only on the acr member of a claims request
	// (https://github.com/keycloak/keycloak/issues/39262) and long
	// advertised claims_parameter_supported false
	// (https://github.com/keycloak/keycloak-oauth-sig/issues/32).
	NotBeforeIgnore NotBeforeMode = iota
	// NotBeforeHonor (mode a) honours the requested nbf by putting it in the
	// token's nbf claim and issues at once (iat is the current time). A
	// requested nbf more than the token's lifetime ahead is refused.
	NotBeforeHonor
	// NotBeforeWait (mode c) waits until the requested nbf (at most a few
	// seconds; further ahead is refused) and then issues, so iat >= nbf.
	// This was the dev IdP's only behaviour before issue 12, and it hid the
	// same-second problem.
	NotBeforeWait
)

var nbfModeNames = [...]string{"ignore", "honor", "wait"}

// String returns the mode's flag value: ignore, honor or wait.
func (m NotBeforeMode) String() string {
	if m >= 0 && int(m) < len(nbfModeNames) {
		return nbfModeNames[m]
	}
	return fmt.Sprintf("NotBeforeMode(%d)", int(m))
}

// ParseNotBeforeMode is the inverse of String; it also accepts the mode
// letters a, b and c and the spelling "honour".
func ParseNotBeforeMode(s string) (NotBeforeMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "ignore", "b":
		return NotBeforeIgnore, nil
	case "honor", "honour", "a":
		return NotBeforeHonor, nil
	case "wait", "c":
		return NotBeforeWait, nil
	}
	return 0, fmt.Errorf("idp: nbf mode %q is not one of ignore (b), honor (a), wait (c)", s)
}

// WithNotBeforeMode sets how a requested nbf is answered. Default
// NotBeforeIgnore.
func WithNotBeforeMode(m NotBeforeMode) Option { return func(c *config) { c.nbfMode = m } }
