package stream

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/internal/ssfhttp"
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

// Audience is a JSON string-or-array of strings.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	// A stream configuration's aud may be null (not configured); otherwise
	// it is read by the kit's one claim reader, as a SET's aud is.
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*a = nil
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
// DeliveryPush and DeliveryPoll); a Client with WithLegacyRISCAPI writes
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
// with WithLegacyRISCAPI.
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

// Config is an SSF event stream. The fields are the stream
// configuration members of the SSF specification of the same JSON names.
type Config struct {
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

// Status is a stream's status.
type Status struct {
	// StreamID is the stream the status is about.
	StreamID string `json:"stream_id,omitempty"`
	// Status is "enabled", "paused" or "disabled".
	Status string `json:"status"`
	// Reason optionally explains the status.
	Reason string `json:"reason,omitempty"`
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client. Default: 30 s timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		c.hc = hc
		if hc == nil {
			c.bad = append(c.bad, errors.New("WithHTTPClient: nil client"))
		}
	}
}

// WithBearerToken authenticates management calls with "Bearer token".
func WithBearerToken(token string) Option {
	return func(c *Client) {
		c.auth = "Bearer " + token
		if token == "" || strings.ContainsAny(token, " \t\r\n") {
			c.bad = append(c.bad, errors.New("WithBearerToken: the token is empty or contains white space"))
		}
	}
}

// WithConfiguration uses tc instead of fetching the ssf-configuration.
// Its endpoints are trusted as the caller wrote them: the bearer token
// (WithBearerToken) is sent to them even when they are not on the
// issuer's origin (Google's RISC API, for one, serves its stream
// management on another host than its issuer). They must still be https.
func WithConfiguration(tc *ssf.TransmitterConfiguration) Option {
	return func(c *Client) {
		c.tc, c.supplied = tc, tc != nil
		if tc == nil {
			c.bad = append(c.bad, errors.New("WithConfiguration: nil configuration"))
		}
	}
}

// WithLegacyRISCAPI writes stream configurations in the legacy RISC form
// that Google's Cross-Account Protection API expects: delivery as
// {"delivery_method": "https://schemas.openid.net/secevent/risc/delivery-method/push",
// "url": ...} (see https://developers.google.com/identity/protocols/risc,
// "Register your receiver"). Answers are read in either form regardless.
// Give Google's endpoints with WithConfiguration (its stream update
// endpoint as ConfigurationEndpoint).
func WithLegacyRISCAPI() Option { return func(c *Client) { c.legacy = true } }

// WithInsecureHTTP allows plain-http issuer and endpoint URLs on
// non-loopback hosts. By default they must be https (plain http only on a
// loopback address). Use it only in closed test networks.
func WithInsecureHTTP() Option { return func(c *Client) { c.insecure = true } }

// Client manages event streams at one transmitter (SSF §8). It is safe for
// concurrent use.
//
// Every URL it fetches, and every redirect it follows, must be https (plain
// http only on loopback, or with WithInsecureHTTP). The bearer token
// goes only to endpoints on the issuer's own origin (scheme, host and
// port), unless the configuration was supplied with
// WithConfiguration, and never follows a redirect to another origin:
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
	tc       *ssf.TransmitterConfiguration
	bad      []error // bad options, reported by New
}

// New returns a stream management client for the transmitter issuer. It
// makes no request; the transmitter's configuration is fetched on first
// use (Configuration). Every bad option, and a bad issuer, is reported,
// joined with errors.Join.
func New(issuer string, opts ...Option) (*Client, error) {
	c := &Client{issuer: issuer, hc: &http.Client{Timeout: 30 * time.Second}}
	for i, o := range opts {
		if o == nil {
			c.bad = append(c.bad, fmt.Errorf("option %d is nil", i))
			continue
		}
		o(c)
	}
	if err := jose.CheckURL(issuer, c.insecure, ssfhttp.InsecureOption); err != nil {
		c.bad = append(c.bad, fmt.Errorf("issuer: %w", err))
	}
	if err := errors.Join(c.bad...); err != nil {
		return nil, fmt.Errorf("ssf stream client: %w", err)
	}
	c.bad = nil
	c.hc = ssfhttp.Guard(c.hc, c.insecure, c.auth != "")
	return c, nil
}

// Configuration returns the transmitter configuration, fetching it on first use.
func (c *Client) Configuration(ctx context.Context) (*ssf.TransmitterConfiguration, error) {
	c.mu.Lock()
	tc := c.tc
	c.mu.Unlock()
	if tc != nil {
		return tc, nil
	}
	tc, err := ssfhttp.FetchConfiguration(ctx, c.hc, c.issuer, c.insecure)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tc = tc
	c.mu.Unlock()
	return tc, nil
}

func (c *Client) endpoint(ctx context.Context, pick func(*ssf.TransmitterConfiguration) string, name string) (string, error) {
	tc, err := c.Configuration(ctx)
	if err != nil {
		return "", err
	}
	e := pick(tc)
	if e == "" {
		return "", fmt.Errorf("ssf: transmitter %s has no %s", c.issuer, name)
	}
	if err := jose.CheckURL(e, c.insecure, ssfhttp.InsecureOption); err != nil {
		return "", fmt.Errorf("ssf: %s: %w", name, err)
	}
	if c.auth != "" && !c.supplied && !jose.SameOrigin(e, c.issuer) {
		return "", fmt.Errorf("ssf: %s %s is not on the origin of issuer %s; the bearer token is sent only there (supply the configuration with WithConfiguration to trust other origins)", name, e, c.issuer)
	}
	return e, nil
}

func (c *Client) config(ctx context.Context) (string, error) {
	return c.endpoint(ctx, func(tc *ssf.TransmitterConfiguration) string { return tc.ConfigurationEndpoint }, "configuration_endpoint")
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
func (c *Client) CreateStream(ctx context.Context, s *Config) (*Config, error) {
	e, err := c.config(ctx)
	if err != nil {
		return nil, err
	}
	var out Config
	if err := ssfhttp.DoJSON(ctx, c.hc, http.MethodPost, e, c.auth, c.outgoing(s), &out, ssfhttp.MaxDocument); err != nil {
		return nil, err
	}
	return &out, nil
}

// outgoing returns s as it is sent: a copy in the legacy RISC form with
// WithLegacyRISCAPI.
func (c *Client) outgoing(s *Config) *Config {
	if !c.legacy || s == nil || s.Delivery == nil {
		return s
	}
	cp, d := *s, *s.Delivery
	d.legacy = true
	cp.Delivery = &d
	return &cp
}

// GetStream reads a stream's configuration.
func (c *Client) GetStream(ctx context.Context, streamID string) (*Config, error) {
	e, err := c.config(ctx)
	if err != nil {
		return nil, err
	}
	if e, err = withStreamID(e, streamID); err != nil {
		return nil, err
	}
	var out Config
	if err := ssfhttp.DoJSON(ctx, c.hc, http.MethodGet, e, c.auth, nil, &out, ssfhttp.MaxDocument); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateStream changes the members of s that are set (PATCH); s.StreamID is required.
func (c *Client) UpdateStream(ctx context.Context, s *Config) (*Config, error) {
	return c.write(ctx, http.MethodPatch, s)
}

// ReplaceStream replaces a stream's configuration (PUT); s.StreamID is required.
func (c *Client) ReplaceStream(ctx context.Context, s *Config) (*Config, error) {
	return c.write(ctx, http.MethodPut, s)
}

func (c *Client) write(ctx context.Context, method string, s *Config) (*Config, error) {
	if s == nil || s.StreamID == "" {
		return nil, errors.New("ssf: stream_id is required")
	}
	e, err := c.config(ctx)
	if err != nil {
		return nil, err
	}
	var out Config
	if err := ssfhttp.DoJSON(ctx, c.hc, method, e, c.auth, c.outgoing(s), &out, ssfhttp.MaxDocument); err != nil {
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
	return ssfhttp.DoJSON(ctx, c.hc, http.MethodDelete, e, c.auth, nil, nil, ssfhttp.MaxDocument)
}

// Status reads a stream's status.
func (c *Client) Status(ctx context.Context, streamID string) (*Status, error) {
	e, err := c.endpoint(ctx, func(tc *ssf.TransmitterConfiguration) string { return tc.StatusEndpoint }, "status_endpoint")
	if err != nil {
		return nil, err
	}
	if e, err = withStreamID(e, streamID); err != nil {
		return nil, err
	}
	var out Status
	if err := ssfhttp.DoJSON(ctx, c.hc, http.MethodGet, e, c.auth, nil, &out, ssfhttp.MaxDocument); err != nil {
		return nil, err
	}
	return &out, nil
}

// RequestVerification asks the transmitter to send a verification event with
// state (POST verification_endpoint).
func (c *Client) RequestVerification(ctx context.Context, streamID, state string) error {
	e, err := c.endpoint(ctx, func(tc *ssf.TransmitterConfiguration) string { return tc.VerificationEndpoint }, "verification_endpoint")
	if err != nil {
		return err
	}
	body := map[string]string{"stream_id": streamID}
	if state != "" {
		body["state"] = state
	}
	return ssfhttp.DoJSON(ctx, c.hc, http.MethodPost, e, c.auth, body, nil, ssfhttp.MaxDocument)
}

// Verify generates a random state, registers it with r (a
// *receiver.Receiver, or anything with its ExpectState method) so that the
// answering verification event is accepted, and requests verification. It
// returns the state.
func (c *Client) Verify(ctx context.Context, streamID string, r interface{ ExpectState(state string) }) (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("ssf: state: %w", err)
	}
	state := base64.RawURLEncoding.EncodeToString(b[:])
	r.ExpectState(state)
	return state, c.RequestVerification(ctx, streamID, state)
}
