// Package httpsource is a client.TokenSource that talks to a plain OAuth 2.0
// token endpoint (RFC 6749 §4.3 password and §4.4 client_credentials
// grants) and sends the CAE claims request in the "claims" parameter, as
// Microsoft Entra expects. It parses access_token, expires_in and Entra's
// refresh_in, and turns OAuth error responses into *Error values. The RFC
// 9470 step-up parameters of a request (acr_values, max_age) are sent as
// such; see Source.Token.
//
// It keeps no cache of access tokens: the caekit client caches them and
// decides when to fetch. It does keep the refresh token of the last token
// response, in memory only (see "Refresh tokens" below).
//
// # Refresh tokens
//
// When a token response carries a refresh_token, the Source keeps it and
// uses grant_type=refresh_token (RFC 6749 §6) for its next fetches, with
// the request's scopes and claims: a challenge re-acquisition sends the
// claims request with the refresh grant, as MSAL does for a claims
// challenge (@azure/msal-common src/request/CommonSilentFlowRequest.ts: a
// claims request on a silent request skips the cache and refreshes the
// token). This keeps the identity provider's session (the sid claim),
// as real clients (MSAL, azidentity, golang.org/x/oauth2) do; only a new
// password sign-in starts a new session. A rotated refresh token (a new
// refresh_token in the answer) replaces the kept one (RFC 6749 §6, RFC 9700
// §4.14.2); an answer without one keeps the old one.
//
// If the refresh grant is refused with invalid_grant (the session ended,
// the refresh token expired or was revoked, the user is disabled), the
// Source drops the refresh token and runs the configured grant
// (WithPassword or WithClientCredentials) once; the error of that grant,
// e.g. the IdP's invalid_grant for a disabled user, is what Token returns.
// Any other failure of the refresh grant (network, 5xx, invalid_client) is
// returned as is and the refresh token is kept for the next call.
//
// The refresh token is never logged or put in an error, is bounded by
// MaxRefreshTokenSize, and must be printable ASCII (RFC 6749 Appendix
// A.17). While refresh tokens are in use, Token calls on one Source are
// serialized (each waits for the previous, or for its context), so that a
// refresh token is never presented twice: an IdP that rotates refresh
// tokens and detects reuse (RFC 9700 §4.14.2) would otherwise revoke the
// whole session. WithoutRefreshTokens turns all of this off: every fetch
// then runs the configured grant and calls are not serialized.
//
// A Source never follows a redirect from the token endpoint, whatever the
// HTTP client's CheckRedirect says: a 307 or 308 would re-send the form with
// the client secret and password to the redirect target, possibly another
// host or plain http (RFC 9700 §4.12). A redirect fails the request with an
// error wrapping ErrRedirect; configure the final token URL instead.
//
// # Why the exchange is not golang.org/x/oauth2's
//
// x/oauth2 (already a dependency, through oauth2source) sends token
// requests too, and was checked, at v0.38.0, for each thing this package
// does. What it does the same way is shared: a Source's *Error is also an
// *oauth2.RetrieveError for errors.As (see Error.As), so one error check
// serves httpsource, oauth2source and plain x/oauth2 code; its HTTP client
// could be passed in the context (oauth2.HTTPClient), so refusing redirects
// would survive a move. The exchange itself stays here because x/oauth2
// differs in behaviour this package guarantees and tests:
//   - claims: only clientcredentials.Config sends extra parameters
//     (EndpointParams). Config.PasswordCredentialsToken and the refresh
//     grant of Config.TokenSource take none, so a claims challenge could
//     not be answered with the password or refresh grant. (EndpointParams
//     may override grant_type, but only per a code comment in
//     clientcredentials.go, not a documented contract.)
//   - refresh tokens: internal.RetrieveToken copies the request's
//     refresh_token into a response that has none, so an absent, empty or
//     rotated refresh_token cannot be told apart (see "Refresh tokens").
//   - response parsing: a body labelled text/plain or form-encoded is
//     parsed as a query string, so a JSON answer without an
//     application/json Content-Type fails; the body is cut at 1 MiB
//     without an error (WithMaxResponseSize fails clearly instead); a
//     malformed expires_in fails the whole parse with a generic JSON
//     error instead of naming the field; expiry is computed on the wall
//     clock, not the Source's.
//   - errors: *oauth2.RetrieveError holds the raw *http.Response (whose
//     Request can replay the form with the client secret and password)
//     and the whole body, which Error() prints when there is no error
//     code; an endpoint that echoes the request would put secrets in
//     logs. Error carries only scrubbed, clipped fields.
//
// Entra's refresh_in, which x/oauth2 leaves in Token.Extra, is read here
// from the same JSON field.
package httpsource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
)

// DefaultMaxResponseSize bounds a token endpoint response body.
const DefaultMaxResponseSize = 1 << 20

// MaxRefreshTokenSize bounds a refresh token the Source keeps. A token
// response with a longer refresh_token fails. Entra's refresh tokens are a
// few kilobytes.
const MaxRefreshTokenSize = 16 << 10

// ErrRedirect is wrapped by the error of a token request that the token
// endpoint answered with a redirect. Source does not follow redirects: the
// request carries the client's credentials.
var ErrRedirect = errors.New("httpsource: the token endpoint redirected; redirects are not followed because the request carries the client credentials (configure the final token URL)")

// Error is an OAuth 2.0 error response (RFC 6749 §5.2), e.g. invalid_grant.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the error field, e.g. "invalid_grant"; empty when the body
	// was not an OAuth error.
	Code string
	// Description is error_description, clipped.
	Description string
}

// Error describes the failure.
func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("httpsource: token endpoint answered HTTP %d without an OAuth error: %s", e.StatusCode, e.Description)
	}
	if e.Description == "" {
		return fmt.Sprintf("httpsource: token endpoint refused (HTTP %d): %s", e.StatusCode, e.Code)
	}
	return fmt.Sprintf("httpsource: token endpoint refused (HTTP %d): %s: %s", e.StatusCode, e.Code, e.Description)
}

// As makes errors.As(err, &r) with r an *oauth2.RetrieveError succeed for
// a Source's error, as it does for x/oauth2's own token sources (and for
// oauth2source, which wraps them). The RetrieveError is built from e alone:
// its Response carries only the status (no request: its form held the
// credentials, and no body), its Body and ErrorDescription are e's scrubbed
// and clipped Description, and ErrorCode is e.Code.
func (e *Error) As(target any) bool {
	t, ok := target.(**oauth2.RetrieveError)
	if !ok {
		return false
	}
	r := &oauth2.RetrieveError{
		Response:  &http.Response{StatusCode: e.StatusCode, Status: fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))},
		Body:      []byte(e.Description),
		ErrorCode: e.Code,
	}
	if e.Code != "" {
		r.ErrorDescription = e.Description
	}
	*t = r
	return true
}

// Option configures a Source.
type Option func(*config)

type config struct {
	grant        string
	clientID     string
	clientSecret string
	username     string
	password     string
	basicAuth    bool
	httpClient   *http.Client
	maxSize      int64
	insecureHTTP bool
	params       url.Values
	now          func() time.Time
	noRefresh    bool
}

// WithClientCredentials uses the client_credentials grant with this client.
func WithClientCredentials(clientID, clientSecret string) Option {
	return func(c *config) { c.grant, c.clientID, c.clientSecret = "client_credentials", clientID, clientSecret }
}

// WithPassword uses the resource owner password grant (for test and legacy
// identity providers only) with the given client and user.
func WithPassword(clientID, clientSecret, username, password string) Option {
	return func(c *config) {
		c.grant, c.clientID, c.clientSecret, c.username, c.password = "password", clientID, clientSecret, username, password
	}
}

// WithBasicAuth sends the client credentials in an HTTP Basic
// Authorization header instead of the form body.
func WithBasicAuth() Option { return func(c *config) { c.basicAuth = true } }

// WithHTTPClient sets the HTTP client, default one with a 30 s timeout. The
// Source uses a copy of it whose CheckRedirect refuses every redirect; h
// itself is not modified.
func WithHTTPClient(h *http.Client) Option { return func(c *config) { c.httpClient = h } }

// WithMaxResponseSize bounds the response body, default DefaultMaxResponseSize.
func WithMaxResponseSize(n int64) Option { return func(c *config) { c.maxSize = n } }

// WithParam adds a form parameter to every request (e.g. "resource").
func WithParam(name, value string) Option {
	return func(c *config) { c.params.Add(name, value) }
}

// WithInsecureHTTP allows an http:// token endpoint that is not on
// loopback. Risk: the client secret, password and tokens travel in clear.
func WithInsecureHTTP() Option { return func(c *config) { c.insecureHTTP = true } }

// WithoutRefreshTokens makes the Source ignore refresh_token in token
// responses: every fetch runs the configured grant (a password grant then
// signs in again, a new session at most IdPs), and concurrent Token calls
// are not serialized.
func WithoutRefreshTokens() Option { return func(c *config) { c.noRefresh = true } }

// Source obtains tokens from a token endpoint. It is safe for concurrent use.
type Source struct {
	endpoint string
	c        config
	// rs holds the refresh token. It is a pointer so that printing a
	// Source with fmt's %+v (or %#v) never prints the token; Source also
	// implements fmt.Stringer, fmt.GoStringer and slog.LogValuer.
	rs *refreshState
}

// refreshState is the kept refresh token. sem (capacity 1) serializes Token
// calls while refresh tokens are in use; token is read and written only by
// the holder of sem.
type refreshState struct {
	sem   chan struct{}
	mu    sync.Mutex // guards token for HasRefreshToken
	token string
}

var _ client.TokenSource = (*Source)(nil)

// New returns a Source for the token endpoint tokenURL. A grant option
// (WithClientCredentials or WithPassword) is required. Every invalid
// argument is reported at once, joined with errors.Join.
func New(tokenURL string, opts ...Option) (*Source, error) {
	c := config{maxSize: DefaultMaxResponseSize, params: url.Values{}, now: time.Now}
	var errs []error
	for i, o := range opts {
		if o == nil {
			errs = append(errs, fmt.Errorf("httpsource: option %d is nil", i))
			continue
		}
		o(&c)
	}
	u, err := url.Parse(tokenURL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("httpsource: token URL: %w", err))
	case u.Scheme != "https" && (u.Scheme != "http" || !c.insecureHTTP && !isLoopback(u.Hostname())):
		errs = append(errs, fmt.Errorf("httpsource: token URL %q must be https (http only on loopback or with WithInsecureHTTP)", tokenURL))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("httpsource: token URL %q has no host", tokenURL))
	}
	if c.grant == "" || c.clientID == "" {
		errs = append(errs, errors.New("httpsource: no grant: use WithClientCredentials or WithPassword with a client id"))
	}
	if c.maxSize <= 0 {
		errs = append(errs, fmt.Errorf("httpsource: max response size must be positive, got %d", c.maxSize))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{Timeout: 30 * time.Second}
	} else {
		h := *c.httpClient // a copy: the caller's client keeps its own policy
		c.httpClient = &h
	}
	c.httpClient.CheckRedirect = refuseRedirect
	return &Source{endpoint: u.String(), c: c, rs: &refreshState{sem: make(chan struct{}, 1)}}, nil
}

// String describes the Source without its secrets: the token endpoint and
// the grant.
func (s *Source) String() string {
	return fmt.Sprintf("httpsource.Source{%s, grant %s, client %s}", s.endpoint, s.c.grant, clip(s.c.clientID))
}

// GoString is String, so that %#v prints no secret either.
func (s *Source) GoString() string { return s.String() }

// LogValue is String, so that slog prints no secret.
func (s *Source) LogValue() slog.Value { return slog.StringValue(s.String()) }

// HasRefreshToken reports whether the Source holds a refresh token, i.e.
// whether its next Token call starts with the refresh grant.
func (s *Source) HasRefreshToken() bool {
	s.rs.mu.Lock()
	defer s.rs.mu.Unlock()
	return s.rs.token != ""
}

func (s *Source) setRefresh(rt string) {
	s.rs.mu.Lock()
	s.rs.token = rt
	s.rs.mu.Unlock()
}

// refuseRedirect is the CheckRedirect of a Source's HTTP client: it refuses
// every redirect, so that the client secret, password and claims are never
// re-sent to another URL (issue 13 item 4).
func refuseRedirect(req *http.Request, via []*http.Request) error {
	from := "the token endpoint"
	if len(via) > 0 {
		from = origin(via[len(via)-1].URL)
	}
	return fmt.Errorf("%w: %s redirected to %s", ErrRedirect, from, origin(req.URL))
}

// origin renders u without userinfo, query or fragment, clipped, for errors.
func origin(u *url.URL) string {
	return clip(u.Scheme + "://" + u.Host + u.EscapedPath())
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Token requests a token for req.Scopes with req.Claims in the claims
// parameter: with the refresh grant while the Source holds a refresh token,
// else (or after the refresh grant's invalid_grant) with the configured
// grant. BypassCache has no effect: Source keeps no cache of access tokens.
//
// The RFC 9470 step-up parameters go in acr_values (space separated) and
// max_age (seconds), the names of RFC 9470 §4 and OIDC Core §3.1.2.1,
// sent to the token endpoint as extension parameters (an identity provider
// that does not know them ignores them, and the server's challenge memory
// then refuses the token plainly). A request with MaxAge asks for a fresh
// authentication, which a refresh grant cannot give: it runs the configured
// grant (a new sign-in) instead, keeping the refresh token it returns.
func (s *Source) Token(ctx context.Context, req client.TokenRequest) (*client.Token, error) {
	if s.c.noRefresh {
		tok, _, err := s.request(ctx, req, "")
		return tok, err
	}
	select {
	case s.rs.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("httpsource: waiting for another token request: %w", ctx.Err())
	}
	defer func() { <-s.rs.sem }()
	if rt := s.rs.token; rt != "" && req.MaxAge == 0 {
		tok, next, err := s.request(ctx, req, rt)
		if err == nil {
			if next != "" {
				s.setRefresh(next) // rotated: the old one must not be used again
			}
			return tok, nil
		}
		var oe *Error
		if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
			return nil, err // transient or not about the grant: keep the refresh token
		}
		// The refresh token is dead: drop it and sign in again, once.
		s.setRefresh("")
	}
	tok, next, err := s.request(ctx, req, "")
	if err != nil {
		return nil, err
	}
	if next != "" {
		s.setRefresh(next)
	}
	return tok, nil
}

// request runs one token request: the refresh grant with refreshToken, or
// the configured grant if refreshToken is "". It returns the token and the
// response's refresh_token ("" if none, or if refresh tokens are off).
func (s *Source) request(ctx context.Context, req client.TokenRequest, refreshToken string) (*client.Token, string, error) {
	form := url.Values{}
	for k, v := range s.c.params {
		form[k] = append([]string(nil), v...)
	}
	if !s.c.basicAuth {
		form.Set("client_id", s.c.clientID)
		if s.c.clientSecret != "" {
			form.Set("client_secret", s.c.clientSecret)
		}
	}
	switch {
	case refreshToken != "":
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", refreshToken)
	case s.c.grant == "password":
		form.Set("grant_type", s.c.grant)
		form.Set("username", s.c.username)
		form.Set("password", s.c.password)
	default:
		form.Set("grant_type", s.c.grant)
	}
	if len(req.Scopes) > 0 {
		form.Set("scope", strings.Join(req.Scopes, " "))
	}
	if req.Claims != "" {
		form.Set("claims", req.Claims)
	}
	if len(req.ACRValues) > 0 {
		form.Set("acr_values", strings.Join(req.ACRValues, " "))
	}
	if v := challenge.MaxAgeParam(req.MaxAge); v != "" {
		form.Set("max_age", v)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", fmt.Errorf("httpsource: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("Accept", "application/json")
	if s.c.basicAuth {
		hreq.SetBasicAuth(url.QueryEscape(s.c.clientID), url.QueryEscape(s.c.clientSecret))
	}
	start := s.c.now()
	resp, err := s.c.httpClient.Do(hreq)
	if err != nil {
		return nil, "", fmt.Errorf("httpsource: POST %s (%s grant): %w", s.endpoint, form.Get("grant_type"), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.c.maxSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("httpsource: reading token response: %w", err)
	}
	if int64(len(body)) > s.c.maxSize {
		return nil, "", fmt.Errorf("httpsource: token response exceeds %d bytes", s.c.maxSize)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, "", parseError(resp.StatusCode, s.scrub(body, refreshToken))
	}
	tok, rt, err := parseToken(body, start, !s.c.noRefresh)
	var oe *Error
	if errors.As(err, &oe) { // an OAuth error in a 2xx answer
		return nil, "", parseError(resp.StatusCode, s.scrub(body, refreshToken))
	}
	return tok, rt, err
}

type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	RefreshIn   json.RawMessage `json:"refresh_in"`
	Refresh     *string         `json:"refresh_token"`
	Error       string          `json:"error"`
}

// scrub replaces, in a response body, the secrets the request sent (the
// refresh token, the password, the client secret) with "[redacted]", so
// that an endpoint that echoes them in error_description cannot put them
// in an error. It is applied to error responses only: a successful one may
// legitimately carry the same refresh token again.
func (s *Source) scrub(body []byte, refreshToken string) []byte {
	for _, secret := range []string{refreshToken, s.c.password, s.c.clientSecret} {
		if len(secret) >= 4 {
			body = bytes.ReplaceAll(body, []byte(secret), []byte("[redacted]"))
		}
	}
	return body
}

// parseToken parses a successful token response: the token, and the
// refresh_token ("" if absent, or if keepRefresh is false: then it is
// ignored, unchecked).
func parseToken(body []byte, start time.Time, keepRefresh bool) (*client.Token, string, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, "", fmt.Errorf("httpsource: token response is not JSON: %w", err)
	}
	if tr.Error != "" {
		return nil, "", parseError(http.StatusOK, body)
	}
	if tr.AccessToken == "" {
		return nil, "", errors.New("httpsource: token response has no access_token")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return nil, "", fmt.Errorf("httpsource: token_type %q is not Bearer", clip(tr.TokenType))
	}
	exp, ok, err := seconds(tr.ExpiresIn)
	if err != nil {
		return nil, "", fmt.Errorf("httpsource: expires_in: %w", err)
	}
	if !ok || exp <= 0 {
		return nil, "", errors.New("httpsource: token response has no positive expires_in")
	}
	t := &client.Token{AccessToken: tr.AccessToken, ExpiresAt: start.Add(exp)}
	ref, ok, err := seconds(tr.RefreshIn)
	if err != nil {
		return nil, "", fmt.Errorf("httpsource: refresh_in: %w", err)
	}
	if ok && ref > 0 && ref < exp {
		t.RefreshAt = start.Add(ref)
	}
	rt := ""
	if tr.Refresh != nil && keepRefresh {
		if err := checkRefreshToken(*tr.Refresh); err != nil {
			return nil, "", err
		}
		rt = *tr.Refresh
	}
	return t, rt, nil
}

// checkRefreshToken refuses a refresh_token the Source will not keep. The
// error never quotes the token.
func checkRefreshToken(rt string) error {
	if rt == "" {
		return errors.New("httpsource: token response has an empty refresh_token")
	}
	if len(rt) > MaxRefreshTokenSize {
		return fmt.Errorf("httpsource: token response has a refresh_token of %d bytes, more than %d (MaxRefreshTokenSize; WithoutRefreshTokens ignores refresh tokens)", len(rt), MaxRefreshTokenSize)
	}
	for i := 0; i < len(rt); i++ {
		if c := rt[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("httpsource: token response's refresh_token has a byte 0x%02x at offset %d; RFC 6749 Appendix A.17 allows printable ASCII only", c, i)
		}
	}
	return nil
}

// seconds reads a JSON number or numeric string of seconds (Entra's v1
// endpoint sends strings).
func seconds(raw json.RawMessage) (time.Duration, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, err
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s is not a whole number of seconds", clip(s))
	}
	const maxSec = int64(10 * 365 * 24 * 3600)
	if n < 0 || n > maxSec {
		return 0, false, fmt.Errorf("%d seconds is out of range", n)
	}
	return time.Duration(n) * time.Second, true, nil
}

func parseError(code int, body []byte) error {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err == nil && e.Error != "" {
		return &Error{StatusCode: code, Code: clip(e.Error), Description: clip(e.Description)}
	}
	return &Error{StatusCode: code, Description: clip(string(bytes.TrimSpace(body)))}
}

// clip shortens s to a printable, bounded string for errors.
func clip(s string) string {
	const limit = 256
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}
