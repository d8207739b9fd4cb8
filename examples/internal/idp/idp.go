package idp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxKeys bounds the JWKS: the signing key plus previous keys kept so that
// tokens signed before a rotation still verify.
const maxKeys = 3

// TenantID is the tid of every token.
const TenantID = "7a1c0d5e-cae0-4d1e-9c1e-000000000001"

type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

type account struct {
	name     string // user name or client id
	oid      string
	secret   string // password or client secret
	app      bool
	disabled bool
	sid      string
	mfa      bool
	risk     string
}

// IdP is a development identity provider. Create one with New or Listen.
// It is safe for concurrent use.
type IdP struct {
	cfg config
	hc  *http.Client

	mu       sync.Mutex
	keys     []signingKey // keys[0] signs
	users    map[string]*account
	clients  map[string]*account
	refresh  map[string]*refreshGrant // by refreshKey, at most MaxRefreshTokens
	push     []string
	bcl, gtr []string
	lis      net.Listener
	srv      *http.Server
	serveErr chan error
}

// New returns an IdP for the issuer set with WithIssuer. Serve its Handler
// yourself, or use Listen.
func New(opts ...Option) (*IdP, error) {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.issuer == "" {
		return nil, errors.New("idp: issuer is required (WithIssuer)")
	}
	u, err := url.Parse(cfg.issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("idp: issuer %q is not an absolute http(s) URL", cfg.issuer)
	}
	cfg.issuer = strings.TrimRight(cfg.issuer, "/")
	switch {
	case cfg.audience == "":
		return nil, errors.New("idp: audience must not be empty")
	case cfg.caeLifetime <= 0 || cfg.lifetime <= 0:
		return nil, fmt.Errorf("idp: lifetimes must be positive (cae %v, default %v)", cfg.caeLifetime, cfg.lifetime)
	case cfg.pushTimeout <= 0:
		return nil, fmt.Errorf("idp: push timeout must be positive, got %v", cfg.pushTimeout)
	case cfg.logoutAud == "":
		return nil, errors.New("idp: the logout audience must not be empty")
	case cfg.logger == nil || cfg.now == nil:
		return nil, errors.New("idp: logger and clock must not be nil")
	case cfg.refreshLifetime <= 0:
		return nil, fmt.Errorf("idp: refresh token lifetime must be positive, got %v", cfg.refreshLifetime)
	case cfg.nbfMode < NotBeforeIgnore || cfg.nbfMode > NotBeforeWait:
		return nil, fmt.Errorf("idp: unknown nbf mode %d", int(cfg.nbfMode))
	}
	for _, t := range slices.Concat(cfg.push, cfg.bcl, cfg.gtr) {
		if err := checkPushURL(t); err != nil {
			return nil, err
		}
	}
	p := &IdP{
		cfg:     cfg,
		hc:      cfg.httpClient,
		users:   make(map[string]*account),
		clients: make(map[string]*account),
		refresh: make(map[string]*refreshGrant),
		push:    append([]string(nil), cfg.push...),
		bcl:     append([]string(nil), cfg.bcl...),
		gtr:     append([]string(nil), cfg.gtr...),
	}
	if p.hc == nil {
		p.hc = &http.Client{Timeout: cfg.pushTimeout}
	}
	k, err := newKey(cfg.keyBits)
	if err != nil {
		return nil, err
	}
	p.keys = []signingKey{k}
	for _, name := range Users {
		p.users[name] = &account{name: name, oid: stableUUID("user:" + name), secret: Password, sid: randomID()}
	}
	p.clients[WorkloadClientID] = &account{name: WorkloadClientID, oid: stableUUID("client:" + WorkloadClientID), secret: WorkloadClientSecret, app: true}
	return p, nil
}

// Listen listens on addr ("127.0.0.1:0" for a free port), creates an IdP whose
// issuer defaults to http://<bound address>, and serves it until Close.
func Listen(addr string, opts ...Option) (*IdP, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("idp: listen %s: %w", addr, err)
	}
	all := append([]Option{WithIssuer("http://" + lis.Addr().String())}, opts...)
	p, err := New(all...)
	if err != nil {
		_ = lis.Close()
		return nil, err
	}
	p.lis = lis
	p.srv = &http.Server{
		Handler:           p.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	p.serveErr = make(chan error, 1)
	go func() { p.serveErr <- p.srv.Serve(lis) }()
	return p, nil
}

// Addr is the listen address (Listen only; "" otherwise).
func (p *IdP) Addr() string {
	if p.lis == nil {
		return ""
	}
	return p.lis.Addr().String()
}

// Close stops a server started by Listen and waits for it.
func (p *IdP) Close() error {
	if p.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if serr := <-p.serveErr; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	p.hc.CloseIdleConnections()
	return err
}

// Issuer returns the issuer URL.
func (p *IdP) Issuer() string { return p.cfg.issuer }

// Audience returns the aud of tokens and SETs.
func (p *IdP) Audience() string { return p.cfg.audience }

// TokenURL returns the token endpoint.
func (p *IdP) TokenURL() string { return p.cfg.issuer + "/token" }

// JWKSURL returns the JWKS endpoint.
func (p *IdP) JWKSURL() string { return p.cfg.issuer + "/jwks" }

// SetPushTargets replaces the SSF push receivers.
func (p *IdP) SetPushTargets(urls ...string) error {
	for _, u := range urls {
		if err := checkPushURL(u); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.push = append([]string(nil), urls...)
	p.mu.Unlock()
	return nil
}

// SetLogoutTargets replaces the Back-Channel Logout endpoints (bcl) and the
// Global Token Revocation endpoints (gtr).
func (p *IdP) SetLogoutTargets(bcl, gtr []string) error {
	for _, u := range slices.Concat(bcl, gtr) {
		if err := checkPushURL(u); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.bcl, p.gtr = slices.Clone(bcl), slices.Clone(gtr)
	p.mu.Unlock()
	return nil
}

// LogoutTargets returns the Back-Channel Logout and Global Token
// Revocation endpoints.
func (p *IdP) LogoutTargets() (bcl, gtr []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.bcl), slices.Clone(p.gtr)
}

// PushTargets returns the current push receivers.
func (p *IdP) PushTargets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.push...)
}

// Subject returns the sub (and oid) of a seeded user or client, and whether it exists.
func (p *IdP) Subject(name string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.users[name]; ok {
		return a.oid, true
	}
	if a, ok := p.clients[name]; ok {
		return a.oid, true
	}
	return "", false
}

// NotBeforeMode returns how the IdP answers a requested nbf.
func (p *IdP) NotBeforeMode() NotBeforeMode { return p.cfg.nbfMode }

// Banner describes the IdP and its seeded accounts, for printing at start.
func (p *IdP) Banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "caekit development IdP: FOR DEVELOPMENT ONLY (in-memory keys, well-known passwords, unauthenticated admin API)\n")
	fmt.Fprintf(&b, "  issuer     %s\n", p.cfg.issuer)
	fmt.Fprintf(&b, "  audience   %s\n", p.cfg.audience)
	fmt.Fprintf(&b, "  discovery  %s/.well-known/openid-configuration\n", p.cfg.issuer)
	fmt.Fprintf(&b, "  ssf        %s/.well-known/ssf-configuration\n", p.cfg.issuer)
	fmt.Fprintf(&b, "  token      %s\n", p.TokenURL())
	fmt.Fprintf(&b, "  lifetimes  CAE (cp1) %v, others %v\n", p.cfg.caeLifetime, p.cfg.lifetime)
	fmt.Fprintf(&b, "  refresh    refresh tokens on the password grant, valid %v, rotated on use, same sid\n", p.cfg.refreshLifetime)
	fmt.Fprintf(&b, "  nbf mode   %s (how a requested nbf is answered: ignore, honor or wait)\n", p.cfg.nbfMode)
	fmt.Fprintf(&b, "  users      %s (password %q)\n", strings.Join(Users, ", "), Password)
	fmt.Fprintf(&b, "  client     %s (secret %q, client_credentials)\n", WorkloadClientID, WorkloadClientSecret)
	bcl, gtr := p.LogoutTargets()
	if len(bcl) > 0 {
		fmt.Fprintf(&b, "  logout to  %s (Back-Channel Logout, aud %q)\n", strings.Join(bcl, ", "), p.cfg.logoutAud)
	}
	if len(gtr) > 0 {
		fmt.Fprintf(&b, "  GTR to     %s (Global Token Revocation)\n", strings.Join(gtr, ", "))
	}
	if t := p.PushTargets(); len(t) > 0 {
		fmt.Fprintf(&b, "  push to    %s\n", strings.Join(t, ", "))
	} else {
		fmt.Fprintf(&b, "  push to    (none: add -push http://127.0.0.1:8501/events)\n")
	}
	fmt.Fprintf(&b, "  admin      POST %s/admin/users/{name}/{disable|enable|reset-password|enable-mfa|revoke-sessions|risk-high|logout|universal-logout}\n", p.cfg.issuer)
	fmt.Fprintf(&b, "             POST %s/admin/clients/{id}/{disable|enable}, POST %s/admin/rotate-keys", p.cfg.issuer, p.cfg.issuer)
	return b.String()
}

// RotateKeys makes a new signing key current; previous keys stay in the JWKS
// (up to a bound) so tokens they signed still verify. It returns the new kid.
func (p *IdP) RotateKeys() (string, error) {
	k, err := newKey(p.cfg.keyBits)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append([]signingKey{k}, p.keys...)
	if len(p.keys) > maxKeys {
		p.keys = p.keys[:maxKeys]
	}
	p.cfg.logger.Info("idp: signing key rotated", "kid", k.kid)
	return k.kid, nil
}

func (p *IdP) currentKey() signingKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[0]
}

func (p *IdP) sign(claims jwt.MapClaims, typ string) (string, error) {
	k := p.currentKey()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = k.kid
	t.Header["typ"] = typ
	s, err := t.SignedString(k.key)
	if err != nil {
		return "", fmt.Errorf("idp: sign %s: %w", typ, err)
	}
	return s, nil
}

type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func (p *IdP) jwks() map[string][]jwk {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]jwk, 0, len(p.keys))
	for _, k := range p.keys {
		pub := k.key.PublicKey
		out = append(out, jwk{
			Kty: "RSA", Use: "sig", Alg: "RS256", Kid: k.kid,
			N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	return map[string][]jwk{"keys": out}
}

func newKey(bits int) (signingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return signingKey{}, fmt.Errorf("idp: generate RSA key: %w", err)
	}
	sum := sha256.Sum256(k.PublicKey.N.Bytes())
	return signingKey{kid: base64.RawURLEncoding.EncodeToString(sum[:12]), key: k}, nil
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return formatUUID(b)
}

func stableUUID(seed string) string {
	sum := sha256.Sum256([]byte("caekit-dev-idp/" + seed))
	var b [16]byte
	copy(b[:], sum[:16])
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func checkPushURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("idp: push target %q is not an absolute http(s) URL", s)
	}
	return nil
}
