package ssf

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caekit/caekit/internal/jose"
)

// Delivery method URNs.
const (
	DeliveryPush = "urn:ietf:rfc:8935" // push delivery (RFC 8935)
	DeliveryPoll = "urn:ietf:rfc:8936" // poll delivery (RFC 8936)
)

// TransmitterConfiguration is the transmitter's /.well-known/ssf-configuration.
// The fields are the transmitter metadata members of the SSF specification
// of the same JSON names.
type TransmitterConfiguration struct {
	SpecVersion              string            `json:"spec_version,omitempty"`               // SSF version implemented
	Issuer                   string            `json:"issuer"`                               // iss of the transmitter's SETs
	JWKSURI                  string            `json:"jwks_uri,omitempty"`                   // keys that sign the SETs
	DeliveryMethodsSupported []string          `json:"delivery_methods_supported,omitempty"` // DeliveryPush, DeliveryPoll
	ConfigurationEndpoint    string            `json:"configuration_endpoint,omitempty"`     // stream management
	StatusEndpoint           string            `json:"status_endpoint,omitempty"`            // stream status
	AddSubjectEndpoint       string            `json:"add_subject_endpoint,omitempty"`       // add a subject to a stream
	RemoveSubjectEndpoint    string            `json:"remove_subject_endpoint,omitempty"`    // remove a subject from a stream
	VerificationEndpoint     string            `json:"verification_endpoint,omitempty"`      // request a verification event
	CriticalSubjectMembers   []string          `json:"critical_subject_members,omitempty"`   // subject members a receiver must understand
	AuthorizationSchemes     []json.RawMessage `json:"authorization_schemes,omitempty"`      // how receivers authenticate, as sent
	DefaultSubjects          string            `json:"default_subjects,omitempty"`           // "ALL" or "NONE"
}

// WellKnownURL returns the ssf-configuration URL of an issuer: the issuer's
// path, if any, is appended after /.well-known/ssf-configuration.
func WellKnownURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("ssf: issuer %q is not an http(s) URL", issuer)
	}
	path := strings.TrimSuffix(u.Path, "/")
	u.Path = "/.well-known/ssf-configuration" + path
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	return u.String(), nil
}

// FetchConfiguration reads an issuer's ssf-configuration and checks that its
// issuer member is the issuer asked for. The issuer, every redirect and
// every endpoint URL in the document must be https (plain http only on a
// loopback address); a document that names a plain-http endpoint elsewhere
// is refused.
func FetchConfiguration(ctx context.Context, hc *http.Client, issuer string) (*TransmitterConfiguration, error) {
	return fetchConfiguration(ctx, hc, issuer, false)
}

// fetchConfiguration is FetchConfiguration, with plain http allowed on any
// host when insecure is set.
func fetchConfiguration(ctx context.Context, hc *http.Client, issuer string, insecure bool) (*TransmitterConfiguration, error) {
	if err := jose.CheckURL(issuer, insecure, insecureOption); err != nil {
		return nil, fmt.Errorf("ssf: issuer: %w", err)
	}
	u, err := WellKnownURL(issuer)
	if err != nil {
		return nil, err
	}
	var tc TransmitterConfiguration
	if err := doJSON(ctx, guardedClient(hc, insecure, false), http.MethodGet, u, "", nil, &tc, DefaultMaxMetadataSize); err != nil {
		return nil, fmt.Errorf("ssf: transmitter configuration: %w", err)
	}
	if tc.Issuer != issuer {
		return nil, fmt.Errorf("ssf: transmitter configuration at %s names issuer %q, expected %q", u, tc.Issuer, issuer)
	}
	if err := tc.checkURLs(insecure); err != nil {
		return nil, fmt.Errorf("ssf: transmitter configuration at %s: %w", u, err)
	}
	return &tc, nil
}

// checkURLs applies the URL rule to every endpoint tc names.
func (tc *TransmitterConfiguration) checkURLs(insecure bool) error {
	for _, e := range []struct{ name, url string }{
		{"jwks_uri", tc.JWKSURI}, {"configuration_endpoint", tc.ConfigurationEndpoint}, {"status_endpoint", tc.StatusEndpoint},
		{"add_subject_endpoint", tc.AddSubjectEndpoint}, {"remove_subject_endpoint", tc.RemoveSubjectEndpoint},
		{"verification_endpoint", tc.VerificationEndpoint},
	} {
		if e.url == "" {
			continue
		}
		if err := jose.CheckURL(e.url, insecure, insecureOption); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return nil
}

// Audience is a JSON string-or-array of strings.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings (the claim rule
// of jose.ClaimStrings); null, by encoding/json's convention, leaves a
// unchanged.
func (a *Audience) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	v, _, err := jose.ClaimStrings(map[string]json.RawMessage{"aud": b}, "aud")
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// MarshalJSON writes a single audience as a string.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// The delivery methods of the legacy RISC stream API (Google's
// Cross-Account Protection, https://developers.google.com/identity/protocols/risc):
// {"delivery_method": <one of these>, "url": ...}.
const (
	legacyRISCPush = "https://schemas.openid.net/secevent/risc/delivery-method/push"
	legacyRISCPoll = "https://schemas.openid.net/secevent/risc/delivery-method/poll"
)

// Delivery is a stream's delivery method. It reads the SSF form
// ({"method", "endpoint_url"}) and the legacy RISC form
// ({"delivery_method", "url"}, with the RISC push and poll URIs read as
// DeliveryPush and DeliveryPoll); a Client with WithLegacyStreamAPI writes
// the legacy form.
type Delivery struct {
	// Method is DeliveryPush or DeliveryPoll.
	Method string `json:"method"`
	// EndpointURL is the receiver's push endpoint (push), or the
	// transmitter's poll endpoint (poll; set by the transmitter).
	EndpointURL string `json:"endpoint_url,omitempty"`
	// AuthorizationHeader is what the transmitter sends as Authorization on
	// push (push only).
	AuthorizationHeader string `json:"authorization_header,omitempty"`

	legacy bool // marshal in the legacy RISC form
}

type plainDelivery struct {
	Method              string `json:"method"`
	EndpointURL         string `json:"endpoint_url,omitempty"`
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

type legacyDelivery struct {
	DeliveryMethod string `json:"delivery_method"`
	URL            string `json:"url,omitempty"`
}

// MarshalJSON writes the SSF form, or the legacy RISC form for a Client
// with WithLegacyStreamAPI.
func (d Delivery) MarshalJSON() ([]byte, error) {
	if d.legacy {
		m := d.Method
		switch m {
		case DeliveryPush:
			m = legacyRISCPush
		case DeliveryPoll:
			m = legacyRISCPoll
		}
		return json.Marshal(legacyDelivery{DeliveryMethod: m, URL: d.EndpointURL})
	}
	return json.Marshal(plainDelivery{Method: d.Method, EndpointURL: d.EndpointURL, AuthorizationHeader: d.AuthorizationHeader})
}

// UnmarshalJSON reads the SSF form or the legacy RISC form.
func (d *Delivery) UnmarshalJSON(b []byte) error {
	var v struct {
		plainDelivery
		legacyDelivery
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = Delivery{Method: v.Method, EndpointURL: v.EndpointURL, AuthorizationHeader: v.AuthorizationHeader}
	if d.Method == "" && v.DeliveryMethod != "" {
		switch v.DeliveryMethod {
		case legacyRISCPush:
			d.Method = DeliveryPush
		case legacyRISCPoll:
			d.Method = DeliveryPoll
		default:
			d.Method = v.DeliveryMethod
		}
	}
	if d.EndpointURL == "" {
		d.EndpointURL = v.URL
	}
	return nil
}

// StreamConfiguration is an SSF event stream. The fields are the stream
// configuration members of the SSF specification of the same JSON names.
type StreamConfiguration struct {
	StreamID                string    `json:"stream_id,omitempty"`                 // set by the transmitter
	Issuer                  string    `json:"iss,omitempty"`                       // iss of the stream's SETs
	Audience                Audience  `json:"aud,omitempty"`                       // aud of the stream's SETs
	EventsSupported         []string  `json:"events_supported,omitempty"`          // event types the transmitter can send
	EventsRequested         []string  `json:"events_requested,omitempty"`          // event types the receiver asks for
	EventsDelivered         []string  `json:"events_delivered,omitempty"`          // event types actually sent
	Delivery                *Delivery `json:"delivery,omitempty"`                  // push or poll, and where
	MinVerificationInterval int       `json:"min_verification_interval,omitempty"` // seconds between verification requests
	InactivityTimeout       int       `json:"inactivity_timeout,omitempty"`        // seconds without receiver activity before the stream may pause
	Description             string    `json:"description,omitempty"`               // free text
}

// StreamStatus is a stream's status.
type StreamStatus struct {
	// StreamID is the stream the status is about.
	StreamID string `json:"stream_id,omitempty"`
	// Status is "enabled", "paused" or "disabled".
	Status string `json:"status"`
	// Reason optionally explains the status.
	Reason string `json:"reason,omitempty"`
}

// HTTPError is a non-2xx answer from a transmitter.
type HTTPError struct {
	Method, URL string // the request that failed
	StatusCode  int    // the HTTP status of the answer
	// Body is the start of the response body (at most 512 bytes).
	Body string
}

// Error implements error.
func (e *HTTPError) Error() string {
	s := fmt.Sprintf("ssf: %s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClientHTTPClient sets the HTTP client. Default: 30 s timeout.
func WithClientHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.hc = hc } }

// WithBearerToken authenticates management calls with "Bearer token".
func WithBearerToken(token string) ClientOption {
	return func(c *Client) { c.auth = "Bearer " + token }
}

// WithClientConfiguration uses tc instead of fetching the ssf-configuration.
// Its endpoints are trusted as the caller wrote them: the bearer token
// (WithBearerToken) is sent to them even when they are not on the
// issuer's origin (Google's RISC API, for one, serves its stream
// management on another host than its issuer). They must still be https.
func WithClientConfiguration(tc *TransmitterConfiguration) ClientOption {
	return func(c *Client) { c.tc, c.supplied = tc, tc != nil }
}

// WithLegacyStreamAPI writes stream configurations in the legacy RISC form
// that Google's Cross-Account Protection API expects: delivery as
// {"delivery_method": "https://schemas.openid.net/secevent/risc/delivery-method/push",
// "url": ...} (see https://developers.google.com/identity/protocols/risc,
// "Register your receiver"). Answers are read in either form regardless.
// Give Google's endpoints with WithClientConfiguration (its stream update
// endpoint as ConfigurationEndpoint).
func WithLegacyStreamAPI() ClientOption { return func(c *Client) { c.legacy = true } }

// WithClientInsecureHTTP allows plain-http issuer and endpoint URLs on
// non-loopback hosts. By default they must be https (plain http only on a
// loopback address). Use it only in closed test networks.
func WithClientInsecureHTTP() ClientOption { return func(c *Client) { c.insecure = true } }

// Client manages event streams at one transmitter (SSF §8). It is safe for
// concurrent use.
//
// Every URL it fetches, and every redirect it follows, must be https (plain
// http only on loopback, or with WithClientInsecureHTTP). The bearer token
// goes only to endpoints on the issuer's own origin (scheme, host and
// port), unless the configuration was supplied with
// WithClientConfiguration, and never follows a redirect to another origin:
// a configuration document that names an endpoint elsewhere cannot collect
// it.
type Client struct {
	issuer   string
	hc       *http.Client
	auth     string
	insecure bool
	supplied bool
	legacy   bool
	mu       sync.Mutex
	tc       *TransmitterConfiguration
}

// NewClient returns a stream management client for the transmitter issuer.
func NewClient(issuer string, opts ...ClientOption) *Client {
	c := &Client{issuer: issuer, hc: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	c.hc = guardedClient(c.hc, c.insecure, c.auth != "")
	return c
}

// Configuration returns the transmitter configuration, fetching it on first use.
func (c *Client) Configuration(ctx context.Context) (*TransmitterConfiguration, error) {
	c.mu.Lock()
	tc := c.tc
	c.mu.Unlock()
	if tc != nil {
		return tc, nil
	}
	tc, err := fetchConfiguration(ctx, c.hc, c.issuer, c.insecure)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tc = tc
	c.mu.Unlock()
	return tc, nil
}

func (c *Client) endpoint(ctx context.Context, pick func(*TransmitterConfiguration) string, name string) (string, error) {
	tc, err := c.Configuration(ctx)
	if err != nil {
		return "", err
	}
	e := pick(tc)
	if e == "" {
		return "", fmt.Errorf("ssf: transmitter %s has no %s", c.issuer, name)
	}
	if err := jose.CheckURL(e, c.insecure, "WithClientInsecureHTTP"); err != nil {
		return "", fmt.Errorf("ssf: %s: %w", name, err)
	}
	if c.auth != "" && !c.supplied && !jose.SameOrigin(e, c.issuer) {
		return "", fmt.Errorf("ssf: %s %s is not on the origin of issuer %s; the bearer token is sent only there (supply the configuration with WithClientConfiguration to trust other origins)", name, e, c.issuer)
	}
	return e, nil
}

func (c *Client) config(ctx context.Context) (string, error) {
	return c.endpoint(ctx, func(tc *TransmitterConfiguration) string { return tc.ConfigurationEndpoint }, "configuration_endpoint")
}

func withStreamID(endpoint, id string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("ssf: endpoint %q: %w", endpoint, err)
	}
	q := u.Query()
	q.Set("stream_id", id)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// CreateStream creates a stream (POST configuration_endpoint) and returns the
// transmitter's view of it, including its stream_id.
func (c *Client) CreateStream(ctx context.Context, s *StreamConfiguration) (*StreamConfiguration, error) {
	e, err := c.config(ctx)
	if err != nil {
		return nil, err
	}
	var out StreamConfiguration
	if err := doJSON(ctx, c.hc, http.MethodPost, e, c.auth, c.outgoing(s), &out, DefaultMaxMetadataSize); err != nil {
		return nil, err
	}
	return &out, nil
}

// outgoing returns s as it is sent: a copy in the legacy RISC form with
// WithLegacyStreamAPI.
func (c *Client) outgoing(s *StreamConfiguration) *StreamConfiguration {
	if !c.legacy || s == nil || s.Delivery == nil {
		return s
	}
	cp, d := *s, *s.Delivery
	d.legacy = true
	cp.Delivery = &d
	return &cp
}

// GetStream reads a stream's configuration.
func (c *Client) GetStream(ctx context.Context, streamID string) (*StreamConfiguration, error) {
	e, err := c.config(ctx)
	if err != nil {
		return nil, err
	}
	if e, err = withStreamID(e, streamID); err != nil {
		return nil, err
	}
	var out StreamConfiguration
	if err := doJSON(ctx, c.hc, http.MethodGet, e, c.auth, nil, &out, DefaultMaxMetadataSize); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateStream changes the members of s that are set (PATCH); s.StreamID is required.
func (c *Client) UpdateStream(ctx context.Context, s *StreamConfiguration) (*StreamConfiguration, error) {
	return c.write(ctx, http.MethodPatch, s)
}

// ReplaceStream replaces a stream's configuration (PUT); s.StreamID is required.
func (c *Client) ReplaceStream(ctx context.Context, s *StreamConfiguration) (*StreamConfiguration, error) {
	return c.write(ctx, http.MethodPut, s)
}

func (c *Client) write(ctx context.Context, method string, s *StreamConfiguration) (*StreamConfiguration, error) {
	if s == nil || s.StreamID == "" {
		return nil, errors.New("ssf: stream_id is required")
	}
	e, err := c.config(ctx)
	if err != nil {
		return nil, err
	}
	var out StreamConfiguration
	if err := doJSON(ctx, c.hc, method, e, c.auth, c.outgoing(s), &out, DefaultMaxMetadataSize); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteStream deletes a stream.
func (c *Client) DeleteStream(ctx context.Context, streamID string) error {
	e, err := c.config(ctx)
	if err != nil {
		return err
	}
	if e, err = withStreamID(e, streamID); err != nil {
		return err
	}
	return doJSON(ctx, c.hc, http.MethodDelete, e, c.auth, nil, nil, DefaultMaxMetadataSize)
}

// StreamStatus reads a stream's status.
func (c *Client) StreamStatus(ctx context.Context, streamID string) (*StreamStatus, error) {
	e, err := c.endpoint(ctx, func(tc *TransmitterConfiguration) string { return tc.StatusEndpoint }, "status_endpoint")
	if err != nil {
		return nil, err
	}
	if e, err = withStreamID(e, streamID); err != nil {
		return nil, err
	}
	var out StreamStatus
	if err := doJSON(ctx, c.hc, http.MethodGet, e, c.auth, nil, &out, DefaultMaxMetadataSize); err != nil {
		return nil, err
	}
	return &out, nil
}

// RequestVerification asks the transmitter to send a verification event with
// state (POST verification_endpoint).
func (c *Client) RequestVerification(ctx context.Context, streamID, state string) error {
	e, err := c.endpoint(ctx, func(tc *TransmitterConfiguration) string { return tc.VerificationEndpoint }, "verification_endpoint")
	if err != nil {
		return err
	}
	body := map[string]string{"stream_id": streamID}
	if state != "" {
		body["state"] = state
	}
	return doJSON(ctx, c.hc, http.MethodPost, e, c.auth, body, nil, DefaultMaxMetadataSize)
}

// StateExpecter is what Verify registers a state with; *Receiver is one.
type StateExpecter interface {
	// ExpectState makes a verification event carrying state acceptable.
	ExpectState(state string)
}

// Verify generates a random state, registers it with r so that the answering
// verification event is accepted, and requests verification. It returns the state.
func (c *Client) Verify(ctx context.Context, streamID string, r StateExpecter) (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("ssf: state: %w", err)
	}
	state := base64.RawURLEncoding.EncodeToString(b[:])
	r.ExpectState(state)
	return state, c.RequestVerification(ctx, streamID, state)
}

func doJSON(ctx context.Context, hc *http.Client, method, u, auth string, in, out any, max int64) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("ssf: %s %s: encode: %w", method, u, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("ssf: %s %s: %w", method, u, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ssf: %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return fmt.Errorf("ssf: %s %s: read: %w", method, u, err)
	}
	if int64(len(data)) > max {
		return fmt.Errorf("ssf: %s %s: %w (more than %d bytes)", method, u, ErrTooLarge, max)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet := string(data)
		if len(snippet) > 512 {
			snippet = snippet[:512]
		}
		return &HTTPError{Method: method, URL: u, StatusCode: resp.StatusCode, Body: strings.TrimSpace(snippet)}
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("ssf: %s %s: response is not the expected JSON: %w", method, u, err)
	}
	return nil
}
