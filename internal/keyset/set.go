// Package keyset holds the verification keys of caekit's token checks: the
// key sources (static keys, HMAC secrets, OpenID discovery and JWKS URLs
// refreshed in the background), the binding of every key to the issuers
// it may sign for, the rotation grace of a key that left its JWK Set, and
// the verification of signed JWTs that are not access tokens.
//
// interceptor/token's Validator keeps its keys in a Set, and
// revocation/logout, which must not import the interceptor layer, builds a
// Set of its own over its issuers' discovery when it is not given the
// validator: one key machinery, two users. Its sentinel errors are the
// token package's (token re-exports them), so errors.Is works across both.
package keyset

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caekit/caekit/internal/jose"
)

// The sentinel errors of key look-up and signed-JWT verification;
// interceptor/token exports them under the same names.
var (
	ErrTooLarge   = errors.New("token: too large")
	ErrMalformed  = errors.New("token: malformed")
	ErrAlgorithm  = errors.New("token: algorithm not allowed")
	ErrUnknownKey = errors.New("token: unknown signing key")
	ErrKeyRetired = errors.New("token: signing key withdrawn from the key set")
	ErrSignature  = errors.New("token: invalid signature")
	ErrIssuer     = errors.New("token: issuer not accepted")
	ErrKeyIssuer  = errors.New("token: signing key not bound to the token's issuer")
)

// TenantPlaceholder is the placeholder of an issuer template
// (token.TenantPlaceholder).
const TenantPlaceholder = "{tid}"

// HTTPTimeout bounds one discovery or JWKS request (token.DefaultHTTPTimeout).
const HTTPTimeout = 10 * time.Second

// MinRSABits is the smallest RSA modulus accepted, for static and fetched
// keys.
const MinRSABits = 2048

// Defaults returns the Config of interceptor/token's defaults (its
// DefaultMaxTokenSize, DefaultRefreshInterval, DefaultUnknownKIDRefreshLimit,
// DefaultKeyRotationGrace, DefaultMaxJWKSSize and DefaultAlgorithms; its
// tests check that they agree), with no issuer and no key source.
func Defaults() Config {
	return Config{
		Algorithms:      DefaultAlgorithms(),
		MaxTokenSize:    16 << 10,
		Now:             time.Now,
		RefreshInterval: 5 * time.Minute,
		UnknownKIDLimit: 10 * time.Second,
		RotationGrace:   5 * time.Minute,
		MaxJWKSSize:     1 << 20,
		Logger:          slog.Default(),
		Component:       "caekit/token",
		InsecureOption:  "WithInsecureHTTP",
	}
}

// DefaultAlgorithms returns the default algorithm allow-list: RS256, PS256,
// ES256 and EdDSA.
func DefaultAlgorithms() []string { return []string{"RS256", "PS256", "ES256", "EdDSA"} }

// Source is a remote key source and the issuers it is bound to; nil
// Issuers means unbound (a JWKS URL, then bound to the one accepted
// issuer) or, for discovery, bound by its discovery document.
type Source struct {
	URL     string
	Issuers []string
}

// StaticKey is a configured public key or HMAC secret and the issuers it
// is bound to (nil: the one accepted issuer).
type StaticKey struct {
	Key     any // crypto.PublicKey or []byte
	Issuers []string
}

// TenantIssuer is an issuer template holding TenantPlaceholder and the
// tenants (lower case) it accepts.
type TenantIssuer struct {
	Template string
	Tenants  []string
}

// Config describes a Set. Its users check their own options; New checks
// only the source URLs (an absolute URL, https unless loopback or
// InsecureHTTP) and trusts the rest. Start from Defaults.
type Config struct {
	Issuers       []string
	TenantIssuers []TenantIssuer
	Discovery     []Source
	JWKSURLs      []Source
	StaticKeys    map[string]StaticKey
	HMACKeys      map[string]StaticKey
	Algorithms    []string // the allow-list
	MaxTokenSize  int
	Now           func() time.Time
	// HTTPClient fetches discovery documents and JWK Sets; nil: a client of
	// the Set's own (HTTPTimeout), whose idle connections Close drops.
	HTTPClient      *http.Client
	RefreshInterval time.Duration
	UnknownKIDLimit time.Duration // least time between kid-triggered refreshes; 0: no such refresh
	RotationGrace   time.Duration
	MaxJWKSSize     int64
	Logger          *slog.Logger
	// Component is the logs' component attribute (e.g. "caekit/token").
	Component string
	// StartWithoutKeys lets New succeed when an initial fetch fails (the
	// refresh goroutines retry); otherwise that failure fails New.
	StartWithoutKeys bool
	// InsecureHTTP allows plain-http URLs on non-loopback hosts;
	// InsecureOption names the option that sets it, for errors.
	InsecureHTTP   bool
	InsecureOption string
}

// fill sets the fields without which a Set cannot work (clock, logger,
// names for logs and errors) when they are zero; every other field is
// taken as given (start from Defaults).
func (c *Config) fill() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Component == "" {
		c.Component = "caekit/token"
	}
	if c.InsecureOption == "" {
		c.InsecureOption = "WithInsecureHTTP"
	}
}

// DistinctIssuers returns the accepted issuers: exact ones and templates,
// without repeats. A key source without issuers is bound to them, which is
// safe only when there is one (token's options refuse more).
func (c *Config) DistinctIssuers() []string {
	var out []string
	for _, iss := range c.Issuers {
		if !slices.Contains(out, iss) {
			out = append(out, iss)
		}
	}
	for _, ti := range c.TenantIssuers {
		if !slices.Contains(out, ti.Template) {
			out = append(out, ti.Template)
		}
	}
	return out
}

// Set is a set of verification keys and the issuers they may sign for. It
// is safe for concurrent use; look-ups never touch the network: remote key
// sets are fetched and refreshed by background goroutines, which Close
// stops.
type Set struct {
	allowed      map[string]bool
	issuers      map[string]bool
	tenants      []tenantMatcher
	staticKeys   map[string]*Key
	hmacKeys     map[string]*Key
	remotes      []*remote
	now          func() time.Time
	maxTokenSize int

	ownClient *http.Client // the default client, whose idle connections Close drops
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type tenantMatcher struct {
	prefix, suffix string
	tenants        map[string]bool // lower case
}

// match reports whether iss is prefix+tid+suffix for an accepted tid.
func (t *tenantMatcher) match(iss, tid string) bool {
	if tid == "" || len(iss) != len(t.prefix)+len(tid)+len(t.suffix) ||
		!strings.HasPrefix(iss, t.prefix) || !strings.HasSuffix(iss, t.suffix) ||
		iss[len(t.prefix):len(iss)-len(t.suffix)] != tid {
		return false
	}
	return t.tenants[strings.ToLower(tid)]
}

// New builds a Set from cfg and fetches its remote key sets. ctx bounds
// those initial fetches only; when one fails New fails, unless
// cfg.StartWithoutKeys. Call Close to stop the background refreshes.
func New(ctx context.Context, cfg Config) (*Set, error) {
	cfg.fill()
	var errs []error
	for _, src := range cfg.Discovery {
		if err := jose.CheckURL(src.URL, cfg.InsecureHTTP, cfg.InsecureOption); err != nil {
			errs = append(errs, fmt.Errorf("discovery URL: %w", err))
		}
	}
	for _, src := range cfg.JWKSURLs {
		if err := jose.CheckURL(src.URL, cfg.InsecureHTTP, cfg.InsecureOption); err != nil {
			errs = append(errs, fmt.Errorf("JWKS URL: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	s := &Set{
		allowed:      map[string]bool{},
		issuers:      map[string]bool{},
		staticKeys:   make(map[string]*Key, len(cfg.StaticKeys)),
		hmacKeys:     make(map[string]*Key, len(cfg.HMACKeys)),
		now:          cfg.Now,
		maxTokenSize: cfg.MaxTokenSize,
	}
	if cfg.HTTPClient == nil {
		// An own transport, so that Close can drop its idle connections.
		cfg.HTTPClient = &http.Client{
			Timeout:   HTTPTimeout,
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
		}
		s.ownClient = cfg.HTTPClient
	}
	// Redirects are held to the same URL rule as configured URLs, with the
	// default client and with the caller's.
	cfg.HTTPClient = jose.GuardRedirects(cfg.HTTPClient, cfg.InsecureHTTP, cfg.InsecureOption, false)
	// Key sources without an issuer binding are bound to the single
	// accepted issuer; the caller has refused them if there are several.
	bound := func(source string, issuers []string) *issuerBinding {
		if issuers == nil {
			issuers = cfg.DistinctIssuers()
		}
		return bindingFor(source, issuers, TenantPlaceholder)
	}
	for kid, k := range cfg.StaticKeys {
		s.staticKeys[kid] = newKey(kid, "", k.Key, bound(fmt.Sprintf("WithStaticKey(%q)", kid), k.Issuers))
	}
	for kid, k := range cfg.HMACKeys {
		s.hmacKeys[kid] = newKey(kid, "", k.Key, bound(fmt.Sprintf("WithHMACKey(%q)", kid), k.Issuers))
	}
	for _, a := range cfg.Algorithms {
		s.allowed[a] = true
	}
	for _, iss := range cfg.Issuers {
		s.issuers[iss] = true
	}
	for _, ti := range cfg.TenantIssuers {
		prefix, suffix, _ := strings.Cut(ti.Template, TenantPlaceholder)
		m := tenantMatcher{prefix: prefix, suffix: suffix, tenants: map[string]bool{}}
		for _, t := range ti.Tenants {
			m.tenants[t] = true
		}
		s.tenants = append(s.tenants, m)
	}
	for _, src := range cfg.Discovery {
		var b *issuerBinding // the discovery document decides
		if src.Issuers != nil {
			b = bound(fmt.Sprintf("WithDiscovery(%q)", src.URL), src.Issuers)
		}
		r, err := newRemote(&cfg, src.URL, "", b)
		if err != nil {
			return nil, err
		}
		s.remotes = append(s.remotes, r)
	}
	for _, src := range cfg.JWKSURLs {
		r, err := newRemote(&cfg, "", src.URL, bound(fmt.Sprintf("WithJWKSURL(%q)", src.URL), src.Issuers))
		if err != nil {
			return nil, err
		}
		s.remotes = append(s.remotes, r)
	}

	// Initial fetches, concurrently, bounded by ctx.
	ferrs := make([]error, len(s.remotes))
	var wg sync.WaitGroup
	for i, r := range s.remotes {
		wg.Go(func() { ferrs[i] = r.refresh(ctx) })
	}
	wg.Wait()
	for i, err := range ferrs {
		if err == nil {
			continue
		}
		if !cfg.StartWithoutKeys {
			if s.ownClient != nil {
				s.ownClient.CloseIdleConnections()
			}
			return nil, fmt.Errorf("initial key fetch from %s failed (WithStartWithoutKeys tolerates this): %w", s.remotes[i].source, err)
		}
		cfg.Logger.WarnContext(ctx, "initial key fetch failed; retrying in the background", "component", cfg.Component, "source", s.remotes[i].source, "error", err)
	}

	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for i, r := range s.remotes {
		s.wg.Go(func() { r.run(bg, ferrs[i] != nil) })
	}
	return s, nil
}

// Close stops the background key refreshes and waits for them to end. The
// Set still verifies afterwards, with the keys it has. Close is idempotent
// and always returns nil.
func (s *Set) Close() error {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		if s.ownClient != nil {
			s.ownClient.CloseIdleConnections()
		}
	})
	return nil
}

// AllowedAlg reports whether alg is in the allow-list.
func (s *Set) AllowedAlg(alg string) bool { return s.allowed[alg] }

// Issuers returns, sorted, the issuers the Set accepts by exact value: the
// exact ones, and the concrete issuer of every tenant a template accepts.
func (s *Set) Issuers() []string {
	out := make([]string, 0, len(s.issuers))
	for iss := range s.issuers {
		out = append(out, iss)
	}
	for _, t := range s.tenants {
		for tid := range t.tenants {
			out = append(out, t.prefix+strings.ToLower(tid)+t.suffix)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Algorithms returns, sorted, the JWS algorithms the Set accepts.
func (s *Set) Algorithms() []string {
	out := make([]string, 0, len(s.allowed))
	for alg, ok := range s.allowed {
		if ok {
			out = append(out, alg)
		}
	}
	sort.Strings(out)
	return out
}

// CheckPublicKey accepts the public key types and sizes the kit verifies
// with: RSA of at least MinRSABits, ECDSA on P-256, P-384 or P-521, and
// Ed25519.
func CheckPublicKey(key crypto.PublicKey) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return errors.New("nil RSA key")
		}
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key has %d bits, need at least %d", k.N.BitLen(), MinRSABits)
		}
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return errors.New("nil ECDSA key")
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("Ed25519 key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
	default:
		return fmt.Errorf("unsupported key type %T", key)
	}
	return nil
}
