package idp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/interceptor/challenge"
)

const (
	maxTokenBody   = 64 << 10
	maxClaimsParam = 16 << 10
	// maxIssueWait bounds how long a token request waits for the clock to
	// reach the requested nbf (mode NotBeforeWait).
	maxIssueWait = 3 * time.Second
)

var acrPattern = regexp.MustCompile(`^c([1-9]|1[0-9]|2[0-5])$`)

// ACRPassword is the acr of a password sign-in: a single-factor
// authentication. An RFC 9470 step-up to any other acr value replaces it.
const ACRPassword = "urn:caekit:acr:pwd"

// oauthError is an RFC 6749 §5.2 error.
type oauthError struct {
	status int
	code   string
	desc   string
}

// Error returns the OAuth error code and description.
func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func badRequest(code, format string, a ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: fmt.Sprintf(format, a...)}
}

// ClaimsRequest is what the IdP understood of a token request's claims parameter.
type ClaimsRequest struct {
	// Capabilities are the xms_cc values, lower-cased.
	Capabilities []string
	// NotBefore is the requested nbf; zero if none.
	NotBefore time.Time
	// ACRS are the requested authentication contexts.
	ACRS []string
}

// CAE reports whether the request declared the cp1 capability.
func (c ClaimsRequest) CAE() bool {
	for _, v := range c.Capabilities {
		if v == "cp1" {
			return true
		}
	}
	return false
}

type claimSpec struct {
	Essential bool              `json:"essential"`
	Value     json.RawMessage   `json:"value"`
	Values    []json.RawMessage `json:"values"`
}

// ParseClaimsRequest parses an OIDC claims request as used by CAE: only its
// access_token member matters; xms_cc, nbf and acrs are understood, other
// members are ignored.
func ParseClaimsRequest(s string) (ClaimsRequest, error) {
	var out ClaimsRequest
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	if len(s) > maxClaimsParam {
		return out, fmt.Errorf("claims parameter is %d bytes, more than %d", len(s), maxClaimsParam)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &top); err != nil {
		return out, fmt.Errorf("claims parameter is not a JSON object: %w", err)
	}
	raw, ok := top["access_token"]
	if !ok {
		return out, nil
	}
	var at map[string]json.RawMessage
	if err := json.Unmarshal(raw, &at); err != nil {
		return out, fmt.Errorf("claims access_token is not a JSON object: %w", err)
	}
	for name, v := range at {
		if string(v) == "null" {
			continue
		}
		var spec claimSpec
		if err := json.Unmarshal(v, &spec); err != nil {
			return out, fmt.Errorf("claims access_token.%s is not a claim request object: %w", name, err)
		}
		switch name {
		case "xms_cc":
			vals, err := stringValues(name, spec)
			if err != nil {
				return out, err
			}
			for _, s := range vals {
				out.Capabilities = append(out.Capabilities, strings.ToLower(s))
			}
		case "acrs":
			vals, err := stringValues(name, spec)
			if err != nil {
				return out, err
			}
			for _, s := range vals {
				if !acrPattern.MatchString(s) {
					return out, fmt.Errorf("claims access_token.acrs: %q is not an authentication context id c1..c25", s)
				}
				out.ACRS = append(out.ACRS, s)
			}
		case "nbf":
			if len(spec.Value) == 0 {
				return out, errors.New("claims access_token.nbf has no value")
			}
			var str string
			var n json.Number
			if err := json.Unmarshal(spec.Value, &str); err == nil {
				n = json.Number(str)
			} else if err := json.Unmarshal(spec.Value, &n); err != nil {
				return out, fmt.Errorf("claims access_token.nbf value is neither a number nor a string")
			}
			secs, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil || secs <= 0 {
				return out, fmt.Errorf("claims access_token.nbf value %q is not a positive integer NumericDate", string(n))
			}
			out.NotBefore = time.Unix(secs, 0)
		}
	}
	return out, nil
}

func stringValues(name string, spec claimSpec) ([]string, error) {
	var out []string
	add := func(r json.RawMessage) error {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return fmt.Errorf("claims access_token.%s: values must be strings", name)
		}
		out = append(out, s)
		return nil
	}
	if len(spec.Value) > 0 {
		if err := add(spec.Value); err != nil {
			return nil, err
		}
	}
	for _, v := range spec.Values {
		if err := add(v); err != nil {
			return nil, err
		}
	}
	if len(out) > 32 {
		return nil, fmt.Errorf("claims access_token.%s: %d values, at most 32", name, len(out))
	}
	return out, nil
}

// TokenResponse is the JSON answer of the token endpoint.
type TokenResponse struct {
	TokenType    string `json:"token_type"`     // "Bearer"
	AccessToken  string `json:"access_token"`   // the signed JWT
	ExpiresIn    int64  `json:"expires_in"`     // seconds until exp
	ExtExpiresIn int64  `json:"ext_expires_in"` // seconds of the extended lifetime (as Entra sends)
	// RefreshIn is set for CAE tokens only: refresh after this many seconds.
	RefreshIn int64 `json:"refresh_in,omitempty"`
	// RefreshToken is set for the password and refresh_token grants: an
	// opaque token for grant_type=refresh_token, bound to the user, the
	// client and the session (sid), rotated on every use.
	RefreshToken string `json:"refresh_token,omitempty"`
}

func (p *IdP) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenBody)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeOAuthError(w, badRequest("invalid_request", "Content-Type must be application/x-www-form-urlencoded, got %q", ct))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, badRequest("invalid_request", "cannot parse form body: %v", err))
		return
	}
	resp, err := p.issue(r.Context(), r.PostForm, r)
	if err != nil {
		var oe *oauthError
		if !errors.As(err, &oe) {
			p.cfg.logger.Error("idp: token request failed", "err", err)
			oe = &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "internal error"}
		}
		writeOAuthError(w, oe)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

func (p *IdP) issue(ctx context.Context, form map[string][]string, r *http.Request) (*TokenResponse, error) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	cr, err := ParseClaimsRequest(get("claims"))
	if err != nil {
		return nil, badRequest("invalid_request", "%v", err)
	}
	now := p.cfg.now()
	if err := p.checkNotBefore(cr, now); err != nil {
		return nil, err
	}

	acrValues, maxAge, err := stepUpParams(get("acr_values"), get("max_age"))
	if err != nil {
		return nil, err
	}

	var acct *account
	var sid, clientID, acr string
	var authTime time.Time
	var usedRefresh string // the refresh token key the refresh grant consumes
	switch gt := get("grant_type"); gt {
	case "password":
		name, pw := get("username"), get("password")
		if name == "" {
			return nil, badRequest("invalid_request", "username is required for grant_type=password")
		}
		clientID = get("client_id")
		if clientID == "" {
			clientID = DefaultPublicClientID
		}
		p.mu.Lock()
		a, ok := p.users[name]
		if !ok || subtle.ConstantTimeCompare([]byte(a.secret), []byte(pw)) != 1 {
			p.mu.Unlock()
			return nil, badRequest("invalid_grant", "AADSTS50126: invalid username or password")
		}
		if a.disabled {
			p.mu.Unlock()
			return nil, badRequest("invalid_grant", "AADSTS50057: the user account %s is disabled", name)
		}
		// Every sign-in is a new session with its own sid, as at a real
		// IdP; the "logout" admin action ends the latest one.
		a.sid = randomID()
		cp := *a
		p.mu.Unlock()
		acct, sid = &cp, cp.sid
		authTime, acr = now, ACRPassword
	case "refresh_token":
		// RFC 6749 §6. The session (sid) is the refresh token's; the
		// account is checked again, as Entra does (a disabled user's
		// refresh token is refused with AADSTS50057 while disabled).
		rt := get("refresh_token")
		if rt == "" {
			return nil, badRequest("invalid_request", "refresh_token is required for grant_type=refresh_token")
		}
		if len(rt) > maxRefreshParam {
			return nil, badRequest("invalid_grant", "AADSTS9002313: refresh_token is %d bytes, more than %d", len(rt), maxRefreshParam)
		}
		clientID = get("client_id")
		if clientID == "" {
			clientID = DefaultPublicClientID
		}
		key := refreshKey(rt)
		p.mu.Lock()
		g, ok := p.refresh[key]
		if !ok {
			p.mu.Unlock()
			return nil, badRequest("invalid_grant", "AADSTS70000: the refresh token is unknown, already used, or its session has ended")
		}
		if !now.Before(g.expires) {
			delete(p.refresh, key)
			p.mu.Unlock()
			return nil, badRequest("invalid_grant", "AADSTS700082: the refresh token expired at %d", g.expires.Unix())
		}
		if g.client != clientID {
			p.mu.Unlock()
			return nil, badRequest("invalid_grant", "AADSTS700005: the refresh token was issued to another client than %q", clientID)
		}
		a, ok := p.users[g.user]
		if !ok {
			p.mu.Unlock()
			return nil, badRequest("invalid_grant", "AADSTS50034: the user account %s does not exist", g.user)
		}
		if a.disabled {
			p.mu.Unlock()
			return nil, badRequest("invalid_grant", "AADSTS50057: the user account %s is disabled", g.user)
		}
		cp := *a
		p.mu.Unlock()
		acct, sid, usedRefresh = &cp, g.sid, key
		authTime, acr = g.authTime, g.acr
	case "client_credentials":
		id, secret := get("client_id"), get("client_secret")
		if u, pw, ok := r.BasicAuth(); ok && id == "" {
			id, secret = u, pw
		}
		p.mu.Lock()
		a, ok := p.clients[id]
		if !ok || subtle.ConstantTimeCompare([]byte(a.secret), []byte(secret)) != 1 {
			p.mu.Unlock()
			return nil, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "AADSTS7000215: invalid client id or secret"}
		}
		if a.disabled {
			p.mu.Unlock()
			return nil, badRequest("invalid_grant", "AADSTS7000112: the application %s is disabled", id)
		}
		cp := *a
		p.mu.Unlock()
		acct, clientID = &cp, cp.name
		if len(acrValues) > 0 || maxAge != 0 {
			return nil, badRequest("invalid_request", "acr_values and max_age ask for a user authentication (RFC 9470 §4); grant_type=client_credentials has none")
		}
	case "":
		return nil, badRequest("invalid_request", "grant_type is required")
	default:
		return nil, badRequest("unsupported_grant_type", "grant_type %q is not supported (password, refresh_token, client_credentials)", gt)
	}

	// RFC 9470 §4: step up to the first requested acr when the session's is
	// not among them, and authenticate again when the last authentication
	// is older than max_age; both are a new active authentication.
	if len(acrValues) > 0 && !slices.Contains(acrValues, acr) {
		acr, authTime = acrValues[0], now
	}
	if maxAge != 0 && (maxAge < 0 || now.Sub(authTime) > maxAge) {
		authTime = now
	}

	// The requested nbf, by mode: (b) ignored, (a) put in the token's nbf
	// claim, (c) waited for. There is no other wait: a token asked for in
	// the second of the subject's latest event is issued in that second,
	// and the resource server refuses it (the same-second rule; caekit's
	// client waits for the challenge's nbf before asking, so it never asks
	// that early).
	nbf := int64(0)
	switch p.cfg.nbfMode {
	case NotBeforeHonor:
		if cr.NotBefore.Unix() > now.Unix() {
			nbf = cr.NotBefore.Unix()
		}
	case NotBeforeWait:
		if now, err = p.waitUntil(ctx, cr.NotBefore, now); err != nil {
			return nil, err
		}
	}

	life := p.cfg.lifetime
	if cr.CAE() {
		life = p.cfg.caeLifetime
	}
	iat := now.Unix()
	if nbf == 0 {
		nbf = iat
	}
	jti := randomID()
	claims := jwt.MapClaims{
		"iss":    p.cfg.issuer,
		"aud":    p.cfg.audience,
		"sub":    acct.oid,
		"oid":    acct.oid,
		"tid":    TenantID,
		"iat":    iat,
		"nbf":    nbf,
		"exp":    iat + int64(life/time.Second),
		"jti":    jti,
		"uti":    jti,
		"azp":    clientID,
		"appid":  clientID,
		"ipaddr": remoteIP(r),
		"ver":    "2.0",
	}
	if acct.app {
		claims["idtyp"] = "app"
	} else {
		claims["idtyp"] = "user"
		claims["sid"] = sid
		claims["name"] = acct.name
		claims["preferred_username"] = acct.name + "@caekit.example"
		claims["acr"] = acr
		claims["auth_time"] = authTime.Unix()
	}
	if cr.CAE() {
		claims["xms_cc"] = []string{"cp1"}
	}
	if len(cr.ACRS) > 0 {
		claims["acrs"] = cr.ACRS
	}
	tok, err := p.sign(claims, "JWT")
	if err != nil {
		return nil, err
	}
	resp := &TokenResponse{
		TokenType:    "Bearer",
		AccessToken:  tok,
		ExpiresIn:    int64(life / time.Second),
		ExtExpiresIn: int64(life / time.Second),
	}
	if cr.CAE() {
		resp.RefreshIn = int64(life / 2 / time.Second)
	}
	if !acct.app {
		// A refresh token for this session. The refresh grant's is
		// consumed (rotated) here, after any nbf wait, so that a request
		// that fails before this point leaves the client's token valid;
		// if it was consumed meanwhile (used twice, or its session ended),
		// the request fails and the access token is not given out.
		p.mu.Lock()
		if usedRefresh != "" {
			if _, ok := p.refresh[usedRefresh]; !ok {
				p.mu.Unlock()
				return nil, badRequest("invalid_grant", "AADSTS70000: the refresh token is unknown, already used, or its session has ended")
			}
			delete(p.refresh, usedRefresh)
		}
		resp.RefreshToken = p.newRefreshTokenLocked(refreshGrant{user: acct.name, client: clientID, sid: sid, expires: now.Add(p.cfg.refreshLifetime), authTime: authTime, acr: acr})
		p.mu.Unlock()
	}
	p.cfg.logger.Info("idp: token issued", "grant", get("grant_type"), "subject", acct.name, "sid", sid, "cae", cr.CAE(), "lifetime", life, "acrs", cr.ACRS, "acr", acr, "jti", jti,
		"iat", iat, "nbf", nbf, "nbf_mode", p.cfg.nbfMode.String())
	return resp, nil
}

// stepUpParams reads the RFC 9470 §4 parameters of a token request, as
// strictly as a resource server's challenge: at most
// challenge.MaxACRValues usable acr values, and max_age a number of seconds
// (0 comes back negative, see challenge.ParseMaxAge).
func stepUpParams(acrValues, maxAge string) ([]string, time.Duration, error) {
	var vs []string
	if strings.TrimSpace(acrValues) != "" {
		var err error
		if vs, err = challenge.ParseACRValues(acrValues); err != nil {
			return nil, 0, badRequest("invalid_request", "%v", err)
		}
		for _, v := range vs {
			if !challenge.ValidACRValue(v) {
				return nil, 0, badRequest("invalid_request", "acr_values: %q is not a usable acr value", v)
			}
		}
	}
	var d time.Duration
	if maxAge != "" {
		var err error
		if d, err = challenge.ParseMaxAge(maxAge); err != nil {
			return nil, 0, badRequest("invalid_request", "%v", err)
		}
	}
	return vs, d, nil
}

// checkNotBefore refuses a requested nbf that the IdP's mode cannot honour:
// in mode wait, more than maxIssueWait ahead; in mode honor, later than the
// longest token lifetime ahead (the token would expire before it is valid).
// Mode ignore accepts any.
func (p *IdP) checkNotBefore(cr ClaimsRequest, now time.Time) error {
	if cr.NotBefore.IsZero() {
		return nil
	}
	ahead := cr.NotBefore.Sub(now)
	switch p.cfg.nbfMode {
	case NotBeforeWait:
		if ahead > maxIssueWait {
			return badRequest("invalid_request", "requested nbf %d is %v in the future; this IdP waits at most %v", cr.NotBefore.Unix(), ahead.Round(time.Second), maxIssueWait)
		}
	case NotBeforeHonor:
		if limit := min(p.cfg.lifetime, p.cfg.caeLifetime); ahead > limit {
			return badRequest("invalid_request", "requested nbf %d is %v in the future, beyond the token lifetime %v", cr.NotBefore.Unix(), ahead.Round(time.Second), limit)
		}
	}
	return nil
}

// waitUntil waits until the clock reaches t (at most maxIssueWait) and
// returns the time to issue at: the clock's, never before t.
func (p *IdP) waitUntil(ctx context.Context, t, now time.Time) (time.Time, error) {
	wait := t.Sub(now)
	if t.IsZero() || wait <= 0 {
		return now, nil
	}
	timer := time.NewTimer(min(wait, maxIssueWait))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return now, fmt.Errorf("idp: token request: %w", ctx.Err())
	case <-timer.C:
	}
	now = p.cfg.now()
	if now.Before(t) {
		now = t
	}
	return now, nil
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
