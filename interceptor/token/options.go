package token

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/internal/keyset"
)

// Defaults of a Validator. Each has an Option to change it.
const (
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 60 * time.Second
	// DefaultMaxTokenSize is the largest token accepted, in bytes; larger
	// ones are refused before any decoding.
	DefaultMaxTokenSize = 16 << 10
	// DefaultCacheSize is the number of verified tokens remembered.
	DefaultCacheSize = 10_000
	// DefaultRefreshInterval is how often remote key sets are re-fetched.
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultUnknownKIDRefreshLimit is the least time between two refreshes
	// of a remote key set triggered by tokens with an unknown kid.
	DefaultUnknownKIDRefreshLimit = 10 * time.Second
	// DefaultMaxJWKSSize bounds a discovery document or JWKS response, in bytes.
	DefaultMaxJWKSSize = 1 << 20
	// DefaultKeyRotationGrace is how long a key that left its JWK Set keeps
	// being accepted; see WithKeyRotationGrace.
	DefaultKeyRotationGrace = 5 * time.Minute
	// DefaultHTTPTimeout bounds one discovery or JWKS request made by the
	// default HTTP client.
	DefaultHTTPTimeout = 10 * time.Second
	// DefaultMaxTokenLifetime is the longest lifetime (exp - iat) a token
	// may have: Entra's longest CAE token lifetime, 28 hours. It is
	// revocation.DefaultRetention less its five minutes of leeway, so that a
	// store with the default retention remembers every event for as long as
	// a token it revokes can be accepted (see RetentionNeeded).
	DefaultMaxTokenLifetime = 28 * time.Hour
)

// MaxLeeway is the largest leeway WithLeeway accepts.
const MaxLeeway = 10 * time.Minute

// DefaultAlgorithms returns the default algorithm allow-list: RS256, PS256,
// ES256 and EdDSA.
func DefaultAlgorithms() []string { return []string{"RS256", "PS256", "ES256", "EdDSA"} }

// DiscoveryTenantPlaceholder is the placeholder a multi-tenant OpenID
// Provider (Entra's common, organizations and consumers endpoints) puts in
// the issuer of its discovery document: keys from that document verify
// tokens whose iss is the template with the placeholder replaced by the
// token's tid claim.
const DiscoveryTenantPlaceholder = "{tenantid}"

// minHMACKeySize is the shortest HMAC secret accepted, in bytes.
const minHMACKeySize = 32

// Option configures a Validator. Options are applied, in order, to a copy of
// the defaults; NewValidator reports every invalid one.
type Option func(*config)

type tenantIssuer struct {
	template string
	tenants  []string
}

// keySource is a remote key source and the issuers it is bound to; nil
// issuers means unbound (WithJWKSURL) or, for discovery, bound by its
// discovery document.
type keySource struct {
	url     string
	issuers []string
}

// configKey is a static public key or HMAC secret and the issuers it is
// bound to (nil: unbound).
type configKey struct {
	key     any // crypto.PublicKey or []byte
	issuers []string
}

type config struct {
	issuers         []string
	tenantIssuers   []tenantIssuer
	audiences       []string
	discovery       []keySource
	jwksURLs        []keySource
	staticKeys      map[string]configKey
	hmacKeys        map[string]configKey
	algs            []string
	leeway          time.Duration
	maxTokenSize    int
	cacheSize       int
	now             func() time.Time
	clockSet        bool // WithClock was given
	httpClient      *http.Client
	refreshInterval time.Duration
	unknownKIDLimit time.Duration
	rotationGrace   time.Duration
	logger          *slog.Logger
	startWithout    bool
	insecureHTTP    bool
	maxJWKSSize     int64
	maxLifetime     time.Duration
	acceptIDTokens  bool
	errs            []error
}

func defaultConfig() config {
	return config{
		staticKeys:      map[string]configKey{},
		hmacKeys:        map[string]configKey{},
		algs:            DefaultAlgorithms(),
		leeway:          DefaultLeeway,
		maxTokenSize:    DefaultMaxTokenSize,
		cacheSize:       DefaultCacheSize,
		now:             time.Now,
		httpClient:      nil, // built in NewValidator unless WithHTTPClient
		refreshInterval: DefaultRefreshInterval,
		unknownKIDLimit: DefaultUnknownKIDRefreshLimit,
		rotationGrace:   DefaultKeyRotationGrace,
		logger:          slog.Default(),
		maxJWKSSize:     DefaultMaxJWKSSize,
		maxLifetime:     DefaultMaxTokenLifetime,
	}
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// WithIssuer accepts tokens whose iss claim equals one of issuers exactly.
// It may be combined with WithTenantIssuer; at least one of the two is required.
func WithIssuer(issuers ...string) Option {
	return func(c *config) {
		if len(issuers) == 0 {
			c.fail("WithIssuer: no issuer given")
		}
		for _, iss := range issuers {
			if iss == "" {
				c.fail("WithIssuer: empty issuer")
				continue
			}
			c.issuers = append(c.issuers, iss)
		}
	}
}

// TenantPlaceholder is the placeholder WithTenantIssuer replaces with the
// token's tid claim.
const TenantPlaceholder = "{tid}"

// WithTenantIssuer accepts multi-tenant issuers: a token is accepted when its
// tid claim is one of tenants (compared case-insensitively) and its iss claim
// equals template with the single "{tid}" placeholder replaced by that tid,
// e.g. WithTenantIssuer("https://login.microsoftonline.com/{tid}/v2.0", tid1, tid2).
//
// The tenant list is required: an empty list is an error, never "any tenant",
// since that would accept tokens that any tenant's administrator can mint.
// Call it once per template (Entra v1 and v2 issuers differ).
func WithTenantIssuer(template string, tenants ...string) Option {
	return func(c *config) {
		if strings.Count(template, TenantPlaceholder) != 1 {
			c.fail("WithTenantIssuer: template %q must contain %s exactly once", template, TenantPlaceholder)
			return
		}
		if len(tenants) == 0 {
			c.fail("WithTenantIssuer: template %q: no tenants given; list the accepted tenant ids explicitly", template)
			return
		}
		ts := make([]string, 0, len(tenants))
		for _, t := range tenants {
			if t == "" || strings.ContainsAny(t, "/{} ") {
				c.fail("WithTenantIssuer: invalid tenant id %q", t)
				continue
			}
			ts = append(ts, strings.ToLower(t))
		}
		c.tenantIssuers = append(c.tenantIssuers, tenantIssuer{template: template, tenants: ts})
	}
}

// WithAudience accepts tokens whose aud claim contains at least one of aud.
// At least one audience is required.
func WithAudience(aud ...string) Option {
	return func(c *config) {
		if len(aud) == 0 {
			c.fail("WithAudience: no audience given")
		}
		for _, a := range aud {
			if a == "" {
				c.fail("WithAudience: empty audience")
				continue
			}
			c.audiences = append(c.audiences, a)
		}
	}
}

// KeyOption refines one key source: WithDiscovery, WithJWKSURL,
// WithStaticKey or WithHMACKey. The only one is ForIssuers.
type KeyOption func(*keyOptions)

type keyOptions struct {
	issuers []string // nil: unbound (or, for discovery, bound by its document)
	errs    []string
}

// ForIssuers binds a key source to issuers: its keys verify only tokens
// whose iss is one of issuers, and a token they verify with another iss is
// refused with ErrKeyIssuer, so that one identity provider's key cannot
// sign tokens for another. An issuer holding TenantPlaceholder ("{tid}") is
// a template matched with the token's tid claim substituted; it must be a
// template given to WithTenantIssuer. Other issuers must be accepted by
// WithIssuer or WithTenantIssuer. At least one issuer is required.
//
// Without ForIssuers a JWKS URL, static key or HMAC secret is bound to the
// single accepted issuer (NewValidator refuses it when there are several),
// and a discovery source to the issuers its discovery document speaks for.
// Use it when one provider signs for several issuers, e.g. Entra v1
// (https://sts.windows.net/{tid}/) and v2 tokens:
//
//	token.WithDiscovery(url, token.ForIssuers(v2Template, v1Template))
func ForIssuers(issuers ...string) KeyOption {
	return func(o *keyOptions) {
		if len(issuers) == 0 {
			o.errs = append(o.errs, "ForIssuers: no issuer given")
			return
		}
		o.issuers = append(o.issuers[:0:0], issuers...)
	}
}

// keyOpts applies opts, reporting a nil one and every problem under name.
func (c *config) keyOpts(name string, opts []KeyOption) (keyOptions, bool) {
	var o keyOptions
	for i, opt := range opts {
		if opt == nil {
			o.errs = append(o.errs, fmt.Sprintf("KeyOption %d is nil", i))
			continue
		}
		opt(&o)
	}
	for _, e := range o.errs {
		c.fail("%s: %s", name, e)
	}
	return o, len(o.errs) == 0
}

// WithDiscovery fetches keys from the jwks_uri of the OpenID Provider whose
// issuer URL is issuerURL, found at issuerURL + "/.well-known/openid-configuration".
//
// Its keys verify only tokens of the issuers issuerURL speaks for: a token
// signed by them whose iss is another accepted issuer is refused with
// ErrKeyIssuer, so that one provider cannot mint tokens for another. These
// issuers are issuerURL itself, the discovery document's issuer when it
// equals issuerURL up to a trailing slash, and a document issuer holding
// DiscoveryTenantPlaceholder ("{tenantid}") of which issuerURL is an
// instance: Entra's https://login.microsoftonline.com/organizations/v2.0
// publishes https://login.microsoftonline.com/{tenantid}/v2.0, which then
// matches a token's iss with its tid claim substituted. Any other document
// issuer is ignored (and logged); use ForIssuers to name the issuers
// explicitly. Which issuers are accepted at all is still configured with
// WithIssuer or WithTenantIssuer.
//
// The URL must be https unless it is on a loopback address or
// WithInsecureHTTP is given. May be given more than once.
func WithDiscovery(issuerURL string, opts ...KeyOption) Option {
	return func(c *config) {
		if o, ok := c.keyOpts(fmt.Sprintf("WithDiscovery(%q)", issuerURL), opts); ok {
			c.discovery = append(c.discovery, keySource{url: issuerURL, issuers: o.issuers})
		}
	}
}

// WithDiscoveryFor is WithDiscovery(discoveryURL, ForIssuers(issuers...)).
//
// Deprecated: use WithDiscovery with ForIssuers.
func WithDiscoveryFor(discoveryURL string, issuers ...string) Option {
	return WithDiscovery(discoveryURL, ForIssuers(issuers...))
}

// WithJWKSURL fetches keys from a JWK Set URL. The URL must be https unless it
// is on a loopback address or WithInsecureHTTP is given. May be given more
// than once.
//
// A JWK Set does not say whose keys it holds: with a single accepted issuer
// (one WithIssuer value or one WithTenantIssuer template) its keys are bound
// to that issuer; with several, NewValidator refuses it unless ForIssuers
// names the issuers.
func WithJWKSURL(url string, opts ...KeyOption) Option {
	return func(c *config) {
		if o, ok := c.keyOpts(fmt.Sprintf("WithJWKSURL(%q)", url), opts); ok {
			c.jwksURLs = append(c.jwksURLs, keySource{url: url, issuers: o.issuers})
		}
	}
}

// WithJWKSURLFor is WithJWKSURL(url, ForIssuers(issuers...)).
//
// Deprecated: use WithJWKSURL with ForIssuers.
func WithJWKSURLFor(url string, issuers ...string) Option {
	return WithJWKSURL(url, ForIssuers(issuers...))
}

// WithStaticKey adds a fixed public key (*rsa.PublicKey of at least 2048 bits,
// *ecdsa.PublicKey on P-256, P-384 or P-521, or ed25519.PublicKey) under kid.
// A private key is accepted and reduced to its public key. Static keys are
// consulted before fetched ones. An empty kid matches tokens without a kid.
// Kids are unique across all static keys.
//
// With a single accepted issuer the key is bound to it; with several,
// NewValidator refuses it unless ForIssuers names the issuers.
func WithStaticKey(kid string, key crypto.PublicKey, opts ...KeyOption) Option {
	return func(c *config) {
		if o, ok := c.keyOpts(fmt.Sprintf("WithStaticKey(%q)", kid), opts); ok {
			c.addStaticKey("WithStaticKey", kid, key, o.issuers)
		}
	}
}

// WithStaticKeyFor is WithStaticKey(kid, key, ForIssuers(issuers...)).
//
// Deprecated: use WithStaticKey with ForIssuers.
func WithStaticKeyFor(kid string, key crypto.PublicKey, issuers ...string) Option {
	return WithStaticKey(kid, key, ForIssuers(issuers...))
}

func (c *config) addStaticKey(opt, kid string, key crypto.PublicKey, issuers []string) {
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	if err := keyset.CheckPublicKey(key); err != nil {
		c.fail("%s(%q): %w", opt, kid, err)
		return
	}
	if _, dup := c.staticKeys[kid]; dup {
		c.fail("%s: duplicate kid %q", opt, kid)
		return
	}
	c.staticKeys[kid] = configKey{key: key, issuers: issuers}
}

// WithHMACKey adds a symmetric secret (at least 32 bytes) under kid for the
// HS256, HS384 and HS512 algorithms, which must also be allowed explicitly
// with WithAlgorithms. HMAC tokens are only ever verified with these secrets,
// never with the bytes of a public key. The secret is copied.
//
// With a single accepted issuer the secret is bound to it; with several,
// NewValidator refuses it unless ForIssuers names the issuers.
func WithHMACKey(kid string, secret []byte, opts ...KeyOption) Option {
	return func(c *config) {
		if o, ok := c.keyOpts(fmt.Sprintf("WithHMACKey(%q)", kid), opts); ok {
			c.addHMACKey("WithHMACKey", kid, secret, o.issuers)
		}
	}
}

// WithHMACKeyFor is WithHMACKey(kid, secret, ForIssuers(issuers...)).
//
// Deprecated: use WithHMACKey with ForIssuers.
func WithHMACKeyFor(kid string, secret []byte, issuers ...string) Option {
	return WithHMACKey(kid, secret, ForIssuers(issuers...))
}

func (c *config) addHMACKey(opt, kid string, secret []byte, issuers []string) {
	if len(secret) < minHMACKeySize {
		c.fail("%s(%q): secret is %d bytes, need at least %d", opt, kid, len(secret), minHMACKeySize)
		return
	}
	if _, dup := c.hmacKeys[kid]; dup {
		c.fail("%s: duplicate kid %q", opt, kid)
		return
	}
	c.hmacKeys[kid] = configKey{key: append([]byte(nil), secret...), issuers: issuers}
}

// WithAlgorithms replaces the algorithm allow-list (default DefaultAlgorithms()).
// Known names: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512,
// EdDSA, HS256, HS384, HS512. "none" is an error, as is an empty list or an
// HS* algorithm without WithHMACKey.
func WithAlgorithms(algs ...string) Option {
	return func(c *config) {
		c.algs = append([]string(nil), algs...)
	}
}

// WithLeeway sets the clock skew tolerated on exp, nbf and iat (default
// DefaultLeeway, at most MaxLeeway).
func WithLeeway(d time.Duration) Option {
	return func(c *config) { c.leeway = d }
}

// WithMaxTokenSize sets the largest token accepted, in bytes (default
// DefaultMaxTokenSize). Must be positive.
func WithMaxTokenSize(n int) Option {
	return func(c *config) { c.maxTokenSize = n }
}

// WithCacheSize sets how many verified tokens are remembered (default
// DefaultCacheSize); 0 disables the cache. Memory use is about n times the
// typical token size (1-3 KB for Entra tokens) plus its claims.
func WithCacheSize(n int) Option {
	return func(c *config) { c.cacheSize = n }
}

// WithClock sets the source of the current time used for exp, nbf and iat
// (default time.Now). Network rate limits always use the real clock.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.fail("WithClock: nil clock")
			return
		}
		c.now = now
		c.clockSet = true
	}
}

// WithHTTPClient sets the client for discovery and JWKS requests (default: a
// client with a DefaultHTTPTimeout timeout). Whatever the client, responses
// are size-bounded and redirects are held to the URL rule of configured URLs
// (https, plain http only on loopback or with WithInsecureHTTP); the client
// itself is not modified.
func WithHTTPClient(client *http.Client) Option {
	return func(c *config) {
		if client == nil {
			c.fail("WithHTTPClient: nil client")
			return
		}
		c.httpClient = client
	}
}

// WithRefreshInterval sets how often remote key sets are re-fetched in the
// background (default DefaultRefreshInterval). After a failed fetch the
// validator retries sooner, with backoff from 1s up to this interval, and
// keeps using the last good key set meanwhile.
func WithRefreshInterval(d time.Duration) Option {
	return func(c *config) { c.refreshInterval = d }
}

// WithUnknownKIDRefreshLimit sets the least time between two background
// refreshes of a remote key set triggered by tokens with an unknown kid
// (default DefaultUnknownKIDRefreshLimit); 0 disables such refreshes. Such a
// token is refused at once with ErrUnknownKey: Validate never waits for the
// network.
func WithUnknownKIDRefreshLimit(d time.Duration) Option {
	return func(c *config) { c.unknownKIDLimit = d }
}

// WithKeyRotationGrace sets how long a key that has left its remote JWK Set
// keeps being accepted (default DefaultKeyRotationGrace); 0 refuses its
// tokens as soon as a refresh no longer finds it. Once the grace period
// ends, tokens signed by the key are refused with ErrKeyRetired, including
// tokens already in the verified-token cache. A key that comes back into the
// set is accepted again.
//
// The grace period absorbs a JWK Set that flaps during a rollover (CDN edges
// serving old and new sets) and tokens in flight; the IdP's own rollover
// practice (publishing the next key in advance, withdrawing the old one
// after its tokens have expired) makes it rarely needed. A key withdrawn
// because it was compromised stays usable for up to the refresh interval
// plus this grace: lower both where that matters. Grace periods are measured
// with the WithClock clock. Static keys never leave.
func WithKeyRotationGrace(d time.Duration) Option {
	return func(c *config) { c.rotationGrace = d }
}

// WithLogger sets the logger for key refresh events (default slog.Default()).
// Nil discards logs. Tokens are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
	}
}

// WithStartWithoutKeys lets NewValidator succeed when the initial discovery
// or JWKS fetch fails. Until a background retry succeeds, tokens signed with
// keys from that source are refused with ErrUnknownKey. Without this option
// such a failure makes NewValidator return an error.
func WithStartWithoutKeys() Option {
	return func(c *config) { c.startWithout = true }
}

// WithInsecureHTTP allows plain-http discovery and JWKS URLs on non-loopback
// hosts. Risk: anyone on the network path can then substitute signing keys
// and mint accepted tokens. Only for closed test networks.
func WithInsecureHTTP() Option {
	return func(c *config) { c.insecureHTTP = true }
}

// WithMaxJWKSSize bounds a discovery document or JWKS response, in bytes
// (default DefaultMaxJWKSSize). Must be positive.
func WithMaxJWKSSize(n int64) Option {
	return func(c *config) { c.maxJWKSSize = n }
}

// WithMaxTokenLifetime sets the longest lifetime, exp - iat, a token may
// have (default DefaultMaxTokenLifetime, 28 hours); a longer-lived token is
// refused with ErrLifetime. Every token must carry iat (ErrMalformed
// otherwise): without it neither its lifetime nor which events revoke it is
// known.
//
// The bound ties tokens to the revocation store's memory: a store forgets an
// event after its retention, so a token that outlived the retention would be
// accepted again once the event that revoked it is forgotten. The
// interceptor refuses a store whose retention is shorter than
// RetentionNeeded (this lifetime plus the leeway); raise the store's
// retention together with this value.
func WithMaxTokenLifetime(d time.Duration) Option {
	return func(c *config) { c.maxLifetime = d }
}

// WithAcceptIDTokens accepts tokens shaped like OpenID Connect ID tokens as
// access tokens, for the rare identity provider whose access tokens carry
// ID-token claims. By default they are refused with ErrNotAccessToken; see
// the package documentation (ID tokens) for the rules. Risk: an ID token is
// handed to every client application that signs the user in, including ones
// that must not call this API; accepting it as an access token lets any such
// client do so, if its aud is one of the accepted audiences.
func WithAcceptIDTokens() Option {
	return func(c *config) { c.acceptIDTokens = true }
}

// validate checks the assembled configuration and returns every problem.
func (c *config) validate() error {
	errs := append([]error(nil), c.errs...)
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(c.issuers) == 0 && len(c.tenantIssuers) == 0 {
		add("no issuer: use WithIssuer or WithTenantIssuer")
	}
	if len(c.audiences) == 0 {
		add("no audience: use WithAudience")
	}
	if len(c.discovery) == 0 && len(c.jwksURLs) == 0 && len(c.staticKeys) == 0 && len(c.hmacKeys) == 0 {
		add("no key source: use WithDiscovery, WithJWKSURL, WithStaticKey or WithHMACKey")
	}
	for _, src := range c.discovery {
		if err := checkURL(src.url, c.insecureHTTP); err != nil {
			add("WithDiscovery: %w", err)
		}
	}
	for _, src := range c.jwksURLs {
		if err := checkURL(src.url, c.insecureHTTP); err != nil {
			add("WithJWKSURL: %w", err)
		}
	}
	errs = append(errs, c.checkBindings()...)

	if len(c.algs) == 0 {
		add("WithAlgorithms: empty algorithm list")
	}
	hasHMAC := false
	for _, a := range c.algs {
		switch {
		case strings.EqualFold(a, "none"):
			add("WithAlgorithms: alg %q is never accepted", a)
		case jose.Methods[a] == nil:
			add("WithAlgorithms: unknown algorithm %q", a)
		case strings.HasPrefix(a, "HS"):
			hasHMAC = true
		}
	}
	if hasHMAC && len(c.hmacKeys) == 0 {
		add("WithAlgorithms: an HS* algorithm is allowed but no WithHMACKey is configured")
	}
	if !hasHMAC && len(c.hmacKeys) > 0 {
		add("WithHMACKey: no HS* algorithm is allowed; add it with WithAlgorithms")
	}

	if c.leeway < 0 || c.leeway > MaxLeeway {
		add("WithLeeway: %s is outside [0, %s]", c.leeway, MaxLeeway)
	}
	if c.maxTokenSize <= 0 {
		add("WithMaxTokenSize: %d is not positive", c.maxTokenSize)
	}
	if c.cacheSize < 0 {
		add("WithCacheSize: %d is negative", c.cacheSize)
	}
	if c.refreshInterval <= 0 {
		add("WithRefreshInterval: %s is not positive", c.refreshInterval)
	}
	if c.unknownKIDLimit < 0 {
		add("WithUnknownKIDRefreshLimit: %s is negative", c.unknownKIDLimit)
	}
	if c.rotationGrace < 0 {
		add("WithKeyRotationGrace: %s is negative", c.rotationGrace)
	}
	if c.maxJWKSSize <= 0 {
		add("WithMaxJWKSSize: %d is not positive", c.maxJWKSSize)
	}
	if c.maxLifetime <= 0 {
		add("WithMaxTokenLifetime: %s is not positive", c.maxLifetime)
	}
	return errors.Join(errs...)
}

// checkBindings checks that every issuer a key source is bound to is
// accepted, and that no key source is unbound when several issuers are:
// a key must never verify tokens of an issuer it does not belong to.
func (c *config) checkBindings() []error {
	var errs []error
	check := func(what string, issuers []string) {
		for _, iss := range issuers {
			if err := c.acceptsBoundIssuer(iss); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
			}
		}
	}
	var unbound []string
	for _, src := range c.discovery {
		check(fmt.Sprintf("WithDiscovery(%q)", src.url), src.issuers)
	}
	for _, src := range c.jwksURLs {
		if src.issuers == nil {
			unbound = append(unbound, fmt.Sprintf("WithJWKSURL(%q)", src.url))
		}
		check(fmt.Sprintf("WithJWKSURL(%q)", src.url), src.issuers)
	}
	for _, kid := range slices.Sorted(maps.Keys(c.staticKeys)) {
		k := c.staticKeys[kid]
		if k.issuers == nil {
			unbound = append(unbound, fmt.Sprintf("WithStaticKey(%q)", kid))
		}
		check(fmt.Sprintf("WithStaticKey(%q)", kid), k.issuers)
	}
	for _, kid := range slices.Sorted(maps.Keys(c.hmacKeys)) {
		k := c.hmacKeys[kid]
		if k.issuers == nil {
			unbound = append(unbound, fmt.Sprintf("WithHMACKey(%q)", kid))
		}
		check(fmt.Sprintf("WithHMACKey(%q)", kid), k.issuers)
	}
	kc := c.keysetConfig()
	if n := len(kc.DistinctIssuers()); n > 1 && len(unbound) > 0 {
		errs = append(errs, fmt.Errorf("%d issuers are accepted, so every key source must name the issuers it signs for, "+
			"or any of them could sign tokens for the others; not bound: %s (bind each with ForIssuers, e.g. "+
			"WithJWKSURL(url, ForIssuers(iss)))", n, strings.Join(unbound, ", ")))
	}
	return errs
}

// acceptsBoundIssuer checks an issuer a key source is bound to: a template
// must be a WithTenantIssuer template, an exact issuer a WithIssuer value or
// an instance of a WithTenantIssuer template for one of its tenants.
func (c *config) acceptsBoundIssuer(iss string) error {
	if iss == "" {
		return errors.New("empty issuer")
	}
	if strings.Contains(iss, TenantPlaceholder) {
		for _, ti := range c.tenantIssuers {
			if ti.template == iss {
				return nil
			}
		}
		return fmt.Errorf("issuer template %q is not given to WithTenantIssuer", iss)
	}
	if slices.Contains(c.issuers, iss) {
		return nil
	}
	for _, ti := range c.tenantIssuers {
		prefix, suffix, _ := strings.Cut(ti.template, TenantPlaceholder)
		if len(iss) > len(prefix)+len(suffix) && strings.HasPrefix(iss, prefix) && strings.HasSuffix(iss, suffix) &&
			slices.Contains(ti.tenants, strings.ToLower(iss[len(prefix):len(iss)-len(suffix)])) {
			return nil
		}
	}
	return fmt.Errorf("issuer %q is not accepted: add it with WithIssuer or WithTenantIssuer", iss)
}

// checkURL requires an absolute http(s) URL, https unless the host is a
// loopback address or insecure is set (jose.CheckURL, shared with the SET
// receiver).
func checkURL(raw string, insecure bool) error {
	return jose.CheckURL(raw, insecure, "WithInsecureHTTP")
}
