// Package httpsource is a client.TokenSource that talks to a plain OAuth 2.0
// token endpoint (RFC 6749 §4.3 password and §4.4 client_credentials
// grants) and sends the CAE claims request in the "claims" parameter, as
// Microsoft Entra expects. It parses access_token, expires_in and Entra's
// refresh_in, and turns OAuth error responses into *Error values.
//
// It keeps no cache of its own: the caekit client caches and refreshes.
//
// A Source never follows a redirect from the token endpoint, whatever the
// HTTP client's CheckRedirect says: a 307 or 308 would re-send the form with
// the client secret and password to the redirect target, possibly another
// host or plain http (RFC 9700 §4.12). A redirect fails the request with an
// error wrapping ErrRedirect; configure the final token URL instead.
package httpsource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caekit/caekit/interceptor/client"
)

// DefaultMaxResponseSize bounds a token endpoint response body.
const DefaultMaxResponseSize = 1 << 20

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

// Source obtains tokens from a token endpoint. It is safe for concurrent use.
type Source struct {
	endpoint string
	c        config
}

var _ client.TokenSource = (*Source)(nil)

// New returns a Source for the token endpoint tokenURL. A grant option
// (WithClientCredentials or WithPassword) is required.
func New(tokenURL string, opts ...Option) (*Source, error) {
	c := config{maxSize: DefaultMaxResponseSize, params: url.Values{}, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	u, err := url.Parse(tokenURL)
	if err != nil {
		return nil, fmt.Errorf("httpsource: token URL: %w", err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (c.insecureHTTP || isLoopback(u.Hostname())):
	default:
		return nil, fmt.Errorf("httpsource: token URL %q must be https (http only on loopback or with WithInsecureHTTP)", tokenURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("httpsource: token URL %q has no host", tokenURL)
	}
	if c.grant == "" || c.clientID == "" {
		return nil, errors.New("httpsource: no grant: use WithClientCredentials or WithPassword with a client id")
	}
	if c.maxSize <= 0 {
		return nil, fmt.Errorf("httpsource: max response size must be positive, got %d", c.maxSize)
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{Timeout: 30 * time.Second}
	} else {
		h := *c.httpClient // a copy: the caller's client keeps its own policy
		c.httpClient = &h
	}
	c.httpClient.CheckRedirect = refuseRedirect
	return &Source{endpoint: u.String(), c: c}, nil
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
// parameter. BypassCache has no effect: Source keeps no cache.
func (s *Source) Token(ctx context.Context, req client.TokenRequest) (*client.Token, error) {
	form := url.Values{}
	for k, v := range s.c.params {
		form[k] = append([]string(nil), v...)
	}
	form.Set("grant_type", s.c.grant)
	if !s.c.basicAuth {
		form.Set("client_id", s.c.clientID)
		if s.c.clientSecret != "" {
			form.Set("client_secret", s.c.clientSecret)
		}
	}
	if s.c.grant == "password" {
		form.Set("username", s.c.username)
		form.Set("password", s.c.password)
	}
	if len(req.Scopes) > 0 {
		form.Set("scope", strings.Join(req.Scopes, " "))
	}
	if req.Claims != "" {
		form.Set("claims", req.Claims)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("httpsource: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("Accept", "application/json")
	if s.c.basicAuth {
		hreq.SetBasicAuth(url.QueryEscape(s.c.clientID), url.QueryEscape(s.c.clientSecret))
	}
	start := s.c.now()
	resp, err := s.c.httpClient.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("httpsource: POST %s: %w", s.endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.c.maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("httpsource: reading token response: %w", err)
	}
	if int64(len(body)) > s.c.maxSize {
		return nil, fmt.Errorf("httpsource: token response exceeds %d bytes", s.c.maxSize)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, parseError(resp.StatusCode, body)
	}
	return parseToken(body, start)
}

type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	RefreshIn   json.RawMessage `json:"refresh_in"`
	Error       string          `json:"error"`
}

func parseToken(body []byte, start time.Time) (*client.Token, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("httpsource: token response is not JSON: %w", err)
	}
	if tr.Error != "" {
		return nil, parseError(http.StatusOK, body)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("httpsource: token response has no access_token")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return nil, fmt.Errorf("httpsource: token_type %q is not Bearer", clip(tr.TokenType))
	}
	exp, ok, err := seconds(tr.ExpiresIn)
	if err != nil {
		return nil, fmt.Errorf("httpsource: expires_in: %w", err)
	}
	if !ok || exp <= 0 {
		return nil, errors.New("httpsource: token response has no positive expires_in")
	}
	t := &client.Token{AccessToken: tr.AccessToken, ExpiresAt: start.Add(exp)}
	ref, ok, err := seconds(tr.RefreshIn)
	if err != nil {
		return nil, fmt.Errorf("httpsource: refresh_in: %w", err)
	}
	if ok && ref > 0 && ref < exp {
		t.RefreshAt = start.Add(ref)
	}
	return t, nil
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
