package token

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/internal/keyset"
	"github.com/caekit/caekit/revocation"
)

// Validator validates JWT access tokens locally. It is safe for concurrent
// use. Validate never touches the network: remote key sets are fetched and
// refreshed by background goroutines, which Close stops.
type Validator struct {
	keys         *keyset.Set // key sources, issuers, algorithm allow-list
	audiences    []string
	cache        *cache
	now          func() time.Time
	clockSet     bool // WithClock: ValidateNow reads now, not its argument
	leeway       time.Duration
	maxTokenSize int
	maxLifetime  time.Duration
	acceptIDTok  bool
	log          *slog.Logger
}

// NewValidator builds a Validator from opts. It needs an issuer, an audience
// and a key source. ctx bounds the initial discovery and JWKS fetches; when
// one fails NewValidator fails, unless WithStartWithoutKeys is given. Call
// Close to stop the background refreshes.
func NewValidator(ctx context.Context, opts ...Option) (*Validator, error) {
	cfg := defaultConfig()
	for i, o := range opts {
		if o == nil {
			cfg.fail("option %d is nil", i)
			continue
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("token: invalid options: %w", err)
	}
	keys, err := keyset.New(ctx, cfg.keysetConfig())
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return &Validator{
		keys:         keys,
		audiences:    cfg.audiences,
		cache:        newCache(cfg.cacheSize),
		now:          cfg.now,
		clockSet:     cfg.clockSet,
		leeway:       cfg.leeway,
		maxTokenSize: cfg.maxTokenSize,
		maxLifetime:  cfg.maxLifetime,
		acceptIDTok:  cfg.acceptIDTokens,
		log:          cfg.logger,
	}, nil
}

// keysetConfig is the key part of c, for keyset.New.
func (c *config) keysetConfig() keyset.Config {
	kc := keyset.Config{
		Issuers:          c.issuers,
		StaticKeys:       make(map[string]keyset.StaticKey, len(c.staticKeys)),
		HMACKeys:         make(map[string]keyset.StaticKey, len(c.hmacKeys)),
		Algorithms:       c.algs,
		MaxTokenSize:     c.maxTokenSize,
		Now:              c.now,
		HTTPClient:       c.httpClient,
		RefreshInterval:  c.refreshInterval,
		UnknownKIDLimit:  c.unknownKIDLimit,
		RotationGrace:    c.rotationGrace,
		MaxJWKSSize:      c.maxJWKSSize,
		Logger:           c.logger,
		Component:        "caekit/token",
		StartWithoutKeys: c.startWithout,
		InsecureHTTP:     c.insecureHTTP,
		InsecureOption:   "WithInsecureHTTP",
	}
	for _, ti := range c.tenantIssuers {
		kc.TenantIssuers = append(kc.TenantIssuers, keyset.TenantIssuer{Template: ti.template, Tenants: ti.tenants})
	}
	for _, src := range c.discovery {
		kc.Discovery = append(kc.Discovery, keyset.Source{URL: src.url, Issuers: src.issuers})
	}
	for _, src := range c.jwksURLs {
		kc.JWKSURLs = append(kc.JWKSURLs, keyset.Source{URL: src.url, Issuers: src.issuers})
	}
	for kid, k := range c.staticKeys {
		kc.StaticKeys[kid] = keyset.StaticKey{Key: k.key, Issuers: k.issuers}
	}
	for kid, k := range c.hmacKeys {
		kc.HMACKeys[kid] = keyset.StaticKey{Key: k.key, Issuers: k.issuers}
	}
	return kc
}

// Close stops the background key refreshes and waits for them to end. The
// Validator still validates afterwards, with the keys it has. Close is
// idempotent and always returns nil.
func (v *Validator) Close() error { return v.keys.Close() }

// MaxTokenLifetime returns the longest lifetime (exp - iat) of a token the
// validator accepts (WithMaxTokenLifetime).
func (v *Validator) MaxTokenLifetime() time.Duration { return v.maxLifetime }

// RetentionNeeded returns how long a revocation store must remember an
// event so that it is never forgotten while a token it revokes is still
// accepted: the maximum token lifetime, plus the leeway (a token is accepted
// until exp plus the leeway, and its iat may be up to the leeway ahead),
// plus one second (events and iat are compared at one-second resolution).
// An event at time T revokes tokens issued at or before T, and such a token
// is accepted until at most T + RetentionNeeded.
//
// interceptor.New refuses a store whose retention (revocation.Retainer) is
// shorter.
func (v *Validator) RetentionNeeded() time.Duration {
	return v.maxLifetime + v.leeway + time.Second
}

// Hash returns the short hash of a raw token that Claims.Hash holds, and
// that every caekit component logs in place of a token: the first 12 hex
// digits of its SHA-256. It is safe to log.
func Hash(raw string) string { return jose.Hash(raw) }

// allowedAlg reports whether alg is in the allow-list (WithAlgorithms).
func (v *Validator) allowedAlg(alg string) bool { return v.keys.AllowedAlg(alg) }

// Validate checks raw, a compact JWS access token (without a "Bearer "
// prefix), and returns its claims. Errors wrap one of the package's sentinel
// errors and never contain the token.
//
// A token seen before and still within its lifetime is answered from the
// verified-token cache without signature verification, as long as the key
// that verified it is still accepted (see WithKeyRotationGrace); the returned
// *Claims is then the same pointer as before, and must not be modified.
// Validate never touches the network; ctx is accepted for symmetry and
// future use.
func (v *Validator) Validate(ctx context.Context, raw string) (*Claims, error) {
	return v.validate(raw, v.now())
}

// ValidateNow is Validate for a caller that has just read the clock: now, a
// time.Now reading, stands in for the validator's own, which saves a clock
// read per call (the interceptor passes the reading it takes when a call
// arrives). A Validator made WithClock ignores now and reads its clock.
func (v *Validator) ValidateNow(ctx context.Context, raw string, now time.Time) (*Claims, error) {
	if v.clockSet {
		now = v.now()
	}
	return v.validate(raw, now)
}

func (v *Validator) validate(raw string, now time.Time) (*Claims, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty token", ErrMissing)
	}
	if len(raw) > v.maxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(raw), v.maxTokenSize)
	}
	if v.cache != nil {
		if cl, ok := v.cache.get(raw, now.UnixNano(), int64(v.leeway)); ok {
			return cl, nil
		}
	}
	cl, key, err := v.verify(raw, now)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(raw, cl, key, now.UnixNano())
	}
	return cl, nil
}

// verify does the full check of a token that is not in the cache and returns
// its claims and the key that verified it.
func (v *Validator) verify(raw string, now time.Time) (*Claims, *keyset.Key, error) {
	j, err := jose.SplitJWS(raw, v.maxTokenSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := j.CheckAlg(v.allowedAlg); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrAlgorithm, err)
	}
	if !accessTokenType(j.Typ) {
		return nil, nil, fmt.Errorf("%w: typ %q is not an access token type", ErrMalformed, jose.Clip(j.Typ))
	}

	// Keys and signature, before the payload is parsed. Several keys may
	// share the kid (from independent sources): keep every one that
	// verifies, and pick the one bound to the token's issuer below.
	var keyBuf, verBuf [keyset.MaxCandidates]*keyset.Key
	keys, err := v.keys.Lookup(keyBuf[:0], j.Alg, j.Kid, j.HasKID, now)
	if err != nil {
		return nil, nil, err
	}
	verified := verBuf[:0]
	for _, k := range keys {
		if j.Verify(k.Public()) {
			verified = append(verified, k)
		}
	}
	if len(verified) == 0 {
		if len(keys) > 1 {
			return nil, nil, fmt.Errorf("%w: %s signature verifies with none of the %d keys with kid %q", ErrSignature, j.Alg, len(keys), jose.Clip(j.Kid))
		}
		return nil, nil, fmt.Errorf("%w: %s signature does not verify with key %q", ErrSignature, j.Alg, jose.Clip(j.Kid))
	}

	// Payload.
	pb, err := j.PayloadJSON()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var m map[string]any
	if err := json.Unmarshal(pb, &m); err != nil || m == nil {
		return nil, nil, fmt.Errorf("%w: payload is not a JSON object", ErrMalformed)
	}
	cl, err := claimsFrom(m)
	if err != nil {
		return nil, nil, err
	}
	// The first verifying key bound to the token's issuer; if none is,
	// checkClaims refuses the token with the first one's binding error.
	key := verified[0]
	for _, k := range verified {
		if k.Accepts(cl.Issuer, cl.TenantID) {
			key = k
			break
		}
	}
	if err := v.checkClaims(cl, key, now); err != nil {
		return nil, nil, err
	}
	if !v.acceptIDTok {
		if why := notAccessToken(j.Typ, m); why != "" {
			return nil, nil, fmt.Errorf("%w: %s (WithAcceptIDTokens accepts such tokens)", ErrNotAccessToken, why)
		}
	}
	cl.Seal()
	if !revocable(cl.Keys()) {
		return nil, nil, fmt.Errorf("%w: the token has none of sub, oid with tid, and sid, so no revocation event could ever name it", ErrUnrevocable)
	}
	cl.Hash = Hash(raw)
	return cl, key, nil
}

// accessTokenType accepts a missing typ and the JWT and access-token types;
// it refuses e.g. "secevent+jwt", so that a Security Event Token can never be
// replayed as an access token.
func accessTokenType(typ string) bool {
	switch strings.ToLower(typ) {
	case "", "jwt", "at+jwt", "application/jwt", "application/at+jwt":
		return true
	}
	return false
}

// checkClaims checks iss (accepted, and one that key may sign for), aud,
// exp, nbf and iat at now, and the lifetime exp - iat.
func (v *Validator) checkClaims(cl *Claims, key *keyset.Key, now time.Time) error {
	if cl.Issuer == "" {
		return fmt.Errorf("%w: no iss claim", ErrIssuer)
	}
	if !v.keys.AcceptsIssuer(cl.Issuer, cl.TenantID) {
		return fmt.Errorf("%w: iss %q (tid %q) is not accepted", ErrIssuer, jose.Clip(cl.Issuer), jose.Clip(cl.TenantID))
	}
	if err := key.CheckIssuer(cl.Issuer, cl.TenantID); err != nil {
		return err
	}
	audOK := false
	for _, a := range cl.Audience {
		for _, want := range v.audiences {
			if a == want {
				audOK = true
			}
		}
	}
	if !audOK {
		if len(cl.Audience) == 0 {
			return fmt.Errorf("%w: no aud claim", ErrAudience)
		}
		return fmt.Errorf("%w: aud %q is not accepted", ErrAudience, jose.Clip(strings.Join(cl.Audience, " ")))
	}
	if !now.Before(cl.ExpiresAt.Add(v.leeway)) {
		return fmt.Errorf("%w: exp %s is before now %s (leeway %s)", ErrExpired, cl.ExpiresAt.Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.leeway)
	}
	if !cl.NotBefore.IsZero() && now.Add(v.leeway).Before(cl.NotBefore) {
		return fmt.Errorf("%w: nbf %s is after now %s (leeway %s)", ErrNotYetValid, cl.NotBefore.Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.leeway)
	}
	if cl.IssuedAt.After(now.Add(v.leeway)) {
		return fmt.Errorf("%w: iat %s is after now %s (leeway %s)", ErrIssuedInFuture, cl.IssuedAt.Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.leeway)
	}
	if life := cl.ExpiresAt.Sub(cl.IssuedAt); life > v.maxLifetime {
		return fmt.Errorf("%w: exp - iat is %s, the limit is %s (WithMaxTokenLifetime; a revocation store would forget events while the token is still valid)",
			ErrLifetime, life, v.maxLifetime)
	}
	return nil
}

// revocable reports whether ks names the token's holder: an account (oid
// with tid, or iss with sub) or a session. Client, token, device and e-mail
// keys alone are not enough: an event about the user or the session (the
// events an IdP sends on sign-out, disable or password change) could never
// revoke such a token.
func revocable(ks []revocation.Key) bool {
	for _, k := range ks {
		switch k.Kind {
		case revocation.KindObject, revocation.KindIssuerSubject, revocation.KindSession:
			return true
		}
	}
	return false
}

// notAccessToken reports why a verified token, with header typ typ and
// payload m, is not an access token, or "" when it may be one. The rules,
// in order (see the package documentation, ID tokens):
//
//   - typ at+jwt (RFC 9068 section 2.1) is always an access token;
//   - a payload typ claim of "ID", "Refresh" or "Offline" is Keycloak's
//     marker of its ID, refresh and offline tokens (its access tokens say
//     "Bearer");
//   - at_hash, c_hash or s_hash only ever appear in ID tokens (OpenID
//     Connect Core 1.0 sections 3.1.3.6, 3.3.2.11; FAPI 1.0 Advanced 5.1);
//   - an events claim marks a Security Event or back-channel logout token
//     (RFC 8417 section 2.2; OpenID Connect Back-Channel Logout 1.0 section 2.4);
//   - a nonce claim in the payload (OpenID Connect Core 1.0 section 2)
//     without any scp or scope claim. Keycloak before 24 copied the nonce
//     into access tokens (github.com/keycloak/keycloak/issues/26893), but
//     those always carry scope; Entra's Microsoft Graph tokens carry a nonce
//     in the header, which is not looked at.
func notAccessToken(typ string, m map[string]any) string {
	switch strings.ToLower(typ) {
	case "at+jwt", "application/at+jwt":
		return ""
	}
	if t, ok := m["typ"].(string); ok {
		switch strings.ToLower(t) {
		case "id", "refresh", "offline":
			return fmt.Sprintf("payload typ claim %q marks a Keycloak %s token", jose.Clip(t), strings.ToLower(t))
		}
	}
	for _, c := range [...]string{"at_hash", "c_hash", "s_hash"} {
		if _, ok := m[c]; ok {
			return "it has an " + c + " claim, which only ID tokens carry"
		}
	}
	if _, ok := m["events"]; ok {
		return "it has an events claim: a Security Event Token or logout token"
	}
	if _, ok := m["nonce"]; ok {
		_, scp := m["scp"]
		_, scope := m["scope"]
		if !scp && !scope {
			return "it has a nonce claim and no scp or scope claim: an ID token"
		}
	}
	return ""
}

// claimsFrom maps the decoded payload to Claims, with the kit's one set of
// claim rules (jose.ClaimString, ClaimStrings, ClaimTime). A known claim of
// the wrong type, JSON null included, is an error, not an absent claim:
// revocation matches on these values.
func claimsFrom(m map[string]any) (*Claims, error) {
	cl := &Claims{Raw: m}
	var err error
	str := func(name string) string {
		s, _, e := jose.ClaimString(m, name)
		if e != nil && err == nil {
			err = e
		}
		return s
	}
	first := func(names ...string) string {
		for _, n := range names {
			if s := str(n); s != "" {
				return s
			}
		}
		return ""
	}
	cl.Issuer = str("iss")
	cl.Subject = str("sub")
	cl.ObjectID = str("oid")
	cl.TenantID = str("tid")
	cl.SessionID = str("sid")
	cl.ClientID = first("azp", "appid")
	cl.TokenID = first("jti", "uti")
	for _, name := range [...]string{"email", "upn", "preferred_username"} {
		e := str(name)
		if cl.Email == "" {
			cl.Email = e
		}
		if id := revocation.EmailKey(e).ID; id != "" && !slices.Contains(cl.Emails, id) {
			cl.Emails = append(cl.Emails, id)
		}
	}
	cl.DeviceID = str("deviceid")
	cl.IDType = str("idtyp")
	cl.IPAddr = str("ipaddr")
	cl.ACR = str("acr")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	strs := func(name string) []string {
		s, _, e := jose.ClaimStrings(m, name)
		if e != nil && err == nil {
			err = e
		}
		return s
	}
	cl.Audience = strs("aud")
	cl.Capabilities = strs("xms_cc")
	cl.ACRS = strs("acrs")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var ok bool
	if cl.ExpiresAt, ok, err = jose.ClaimTime(m, "exp"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	} else if !ok {
		return nil, fmt.Errorf("%w: required claim exp is missing", ErrMalformed)
	}
	if cl.NotBefore, _, err = jose.ClaimTime(m, "nbf"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if cl.AuthTime, _, err = jose.ClaimTime(m, "auth_time"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if cl.IssuedAt, ok, err = jose.ClaimTime(m, "iat"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	} else if !ok {
		return nil, fmt.Errorf("%w: required claim iat is missing: without it neither the token's lifetime nor which revocation events apply to it is known", ErrMalformed)
	}
	return cl, nil
}
