// Package app is the example client application: an InboxService client that
// signs in at the development IdP through caekit's client interceptors and
// reports every transparent recovery (challenge received, token re-acquired,
// call retried). cmd examples/client and the demo use it.
package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// Defaults.
const (
	// DefaultClientID is the public client the app signs in as with a password.
	DefaultClientID = "caekit-example-cli"
	// DefaultAudience is the API the app calls.
	DefaultAudience = "api://caekit-example"
	// maxEvents bounds the events a Client remembers.
	maxEvents = 256
)

// Config configures a Client.
type Config struct {
	// Server is the gRPC address of the inbox server.
	Server string
	// IdP is the issuer URL; the token endpoint is found by OIDC discovery.
	IdP string
	// User and Password sign in with the password grant.
	User, Password string
	// ClientID and ClientSecret: with User empty, the client_credentials
	// grant; with User set, the public client's id (default DefaultClientID).
	ClientID, ClientSecret string
	// Audience is the API; the token is requested for Audience + "/.default".
	// Default DefaultAudience.
	Audience string
	// NoCAE behaves as a client without the cp1 capability.
	NoCAE bool
	// OnEvent, if set, is called for every recovery event, synchronously, on
	// whichever goroutine the caekit client reports it from: it must be safe
	// for concurrent use.
	OnEvent func(Event)
	// Logger is for the caekit client. Default: discard.
	Logger *slog.Logger
	// HTTPClient talks to the IdP. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Kinds of Event.
const (
	KindChallenge   = "challenge"    // a call was answered with a claims challenge
	KindToken       = "token"        // a token was acquired (Detail says with which claims)
	KindTokenFailed = "token-failed" // the IdP refused or could not be reached
	KindRetry       = "retry"        // the call was retried with the new token
	KindNotRetried  = "not-retried"  // a challenge went to the application
)

// Event is one thing the caekit client did on the app's behalf.
type Event struct {
	// At is when it happened.
	At time.Time
	// Kind is one of the Kind constants.
	Kind string
	// Method is the gRPC method of the call concerned, if any.
	Method string
	// Reason is the challenge's reason, e.g. SESSION_REVOKED.
	Reason string
	// Claims is the claims request of a token request or a challenge.
	Claims string
	// Err is the failure, for token-failed and not-retried.
	Err error
}

// String renders e as one line.
func (e Event) String() string {
	switch e.Kind {
	case KindChallenge:
		return fmt.Sprintf("challenge received: %s (claims %s)", e.Reason, e.Claims)
	case KindToken:
		if e.Claims == "" {
			return "token acquired"
		}
		return "token acquired with claims " + e.Claims
	case KindTokenFailed:
		return fmt.Sprintf("token request failed: %v", e.Err)
	case KindRetry:
		return "retried " + shortMethod(e.Method) + " with the new token"
	case KindNotRetried:
		return fmt.Sprintf("not retried (%s): %v", e.Reason, e.Err)
	}
	return e.Kind
}

// Client is the example app's connection to the inbox server.
type Client struct {
	cfg Config
	cae *client.Client
	cc  *grpc.ClientConn
	// Inbox calls the inbox server through the caekit client interceptors.
	Inbox inboxv1.InboxServiceClient

	mu     sync.Mutex
	events []Event
}

// Dial signs in lazily (on the first call) and connects to the server.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Server == "" || cfg.IdP == "" {
		return nil, errors.New("app: Server and IdP are required")
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tokenURL, err := discoverTokenURL(ctx, cfg.HTTPClient, cfg.IdP)
	if err != nil {
		return nil, err
	}
	var grant httpsource.Option
	switch {
	case cfg.User != "":
		id := cfg.ClientID
		if id == "" {
			id = DefaultClientID
		}
		grant = httpsource.WithPassword(id, cfg.ClientSecret, cfg.User, cfg.Password)
	case cfg.ClientID != "":
		grant = httpsource.WithClientCredentials(cfg.ClientID, cfg.ClientSecret)
	default:
		return nil, errors.New("app: set User (password grant) or ClientID (client_credentials)")
	}
	src, err := httpsource.New(tokenURL, grant, httpsource.WithHTTPClient(cfg.HTTPClient))
	if err != nil {
		return nil, fmt.Errorf("app: token source: %w", err)
	}
	c := &Client{cfg: cfg}
	opts := []client.Option{
		client.WithScopes(strings.TrimRight(cfg.Audience, "/") + "/.default"),
		client.WithInsecure(), // the example runs plaintext on loopback
		client.WithLogger(cfg.Logger),
		client.WithObserver(client.ObserverFunc(c.observe)),
	}
	if cfg.NoCAE {
		opts = append(opts, client.WithCapabilities())
	}
	if c.cae, err = client.New(src, opts...); err != nil {
		return nil, fmt.Errorf("app: caekit client: %w", err)
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, c.cae.DialOptions()...)
	if c.cc, err = grpc.NewClient(cfg.Server, dial...); err != nil {
		_ = c.cae.Close()
		return nil, fmt.Errorf("app: connect %s: %w", cfg.Server, err)
	}
	c.Inbox = inboxv1.NewInboxServiceClient(c.cc)
	return c, nil
}

// Close closes the connection and stops token refreshes.
func (c *Client) Close() error {
	return errors.Join(c.cc.Close(), c.cae.Close())
}

func (c *Client) observe(_ context.Context, e client.Event) {
	ev := Event{At: time.Now(), Method: e.Method, Claims: e.Claims, Err: e.Err}
	switch e.Kind {
	case client.EventChallenge:
		ev.Kind = KindChallenge
		if e.Challenge != nil {
			ev.Reason = challenge.ReasonName(e.Challenge.Reason)
			ev.Claims = e.Challenge.Claims
		}
	case client.EventTokenFetched:
		ev.Kind = KindToken
	case client.EventTokenFetchFailed:
		ev.Kind = KindTokenFailed
	case client.EventRetry:
		ev.Kind = KindRetry
	case client.EventNotRetried, client.EventMalformedChallenge:
		ev.Kind = KindNotRetried
		if e.Challenge != nil {
			ev.Reason = challenge.ReasonName(e.Challenge.Reason)
		}
	default:
		return
	}
	c.mu.Lock()
	if len(c.events) == maxEvents {
		c.events = append(c.events[:0], c.events[1:]...)
	}
	c.events = append(c.events, ev)
	c.mu.Unlock()
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(ev)
	}
}

// SignInError is what Explain returns when a call was challenged and the
// identity provider then refused a new token: the user must sign in again.
type SignInError struct {
	// Reason is the challenge's reason, e.g. USER_DISABLED.
	Reason string
	// IdP is the identity provider's refusal (e.g. invalid_grant).
	IdP *httpsource.Error
	// Call is the call's error (the challenge).
	Call error
}

// Error says what happened and what to do.
func (e *SignInError) Error() string {
	return fmt.Sprintf("access was revoked (%s) and signing in again failed: %s: %s", e.Reason, e.IdP.Code, e.IdP.Description)
}

// Unwrap returns the IdP's refusal and the call's error.
func (e *SignInError) Unwrap() []error { return []error{e.IdP, e.Call} }

// Explain turns a call's error into the one the application should show:
// when the call was challenged and the IdP refused the new token (the caekit
// client returns a *client.ReacquireError that unwraps to the refusal), it
// returns a *SignInError that says so. Otherwise it returns err unchanged.
func (c *Client) Explain(err error) error {
	var re *client.ReacquireError
	var oe *httpsource.Error
	if !errors.As(err, &re) || !errors.As(re.Token, &oe) {
		return err
	}
	reason := "UNSPECIFIED"
	if ch, xerr := challenge.Extract(err); xerr == nil {
		reason = challenge.ReasonName(ch.Reason)
	}
	return &SignInError{Reason: reason, IdP: oe, Call: err}
}

// TakeEvents returns the events since the last call and forgets them.
func (c *Client) TakeEvents() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.events
	c.events = nil
	return out
}

// TokenInfo describes the app's current token, for display. It is read from
// the token's payload without verification: the app owns the token, and the
// server verifies it.
type TokenInfo struct {
	Lifetime     time.Duration // exp - iat
	RefreshIn    time.Duration // until the proactive refresh (refresh_in), 0 if unknown
	Capabilities []string      // xms_cc
	ACRS         []string      // acrs: the authentication contexts satisfied
	Hash         string        // safe to print
	IssuedAt     time.Time     // iat
	NotBefore    time.Time     // nbf; zero when absent
}

// Token returns what the app would send on its next call.
func (c *Client) Token(ctx context.Context) (TokenInfo, error) {
	t, err := c.cae.Token(ctx)
	if err != nil {
		return TokenInfo{}, err
	}
	info := TokenInfo{Hash: client.TokenHash(t.AccessToken)}
	if !t.RefreshAt.IsZero() {
		info.RefreshIn = time.Until(t.RefreshAt).Round(time.Second)
	}
	parts := strings.Split(t.AccessToken, ".")
	if len(parts) != 3 {
		return info, errors.New("app: token is not a JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return info, fmt.Errorf("app: token payload: %w", err)
	}
	var p struct {
		IAT, EXP, NBF int64
		XMSCC         []string `json:"xms_cc"`
		ACRS          []string `json:"acrs"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return info, fmt.Errorf("app: token payload: %w", err)
	}
	info.Lifetime = time.Duration(p.EXP-p.IAT) * time.Second
	info.Capabilities, info.ACRS = p.XMSCC, p.ACRS
	info.IssuedAt = time.Unix(p.IAT, 0)
	if p.NBF != 0 {
		info.NotBefore = time.Unix(p.NBF, 0)
	}
	return info, nil
}

func discoverTokenURL(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	u := strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("app: discovery: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("app: discovery at %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("app: discovery at %s: HTTP %d", u, resp.StatusCode)
	}
	var doc struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return "", fmt.Errorf("app: discovery at %s: %w", u, err)
	}
	if doc.TokenEndpoint == "" {
		return "", fmt.Errorf("app: discovery at %s: no token_endpoint", u)
	}
	return doc.TokenEndpoint, nil
}

func shortMethod(m string) string {
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return m[i+1:]
	}
	return m
}
