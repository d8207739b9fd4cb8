package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/internal/jose"
)

// Client attaches CAE-capable access tokens to outgoing gRPC calls and
// answers claims challenges. Create one with New, install it with
// DialOptions, and Close it when the connections using it are closed. A
// Client is safe for concurrent use and may serve many connections.
type Client struct {
	o     options
	log   *slog.Logger
	cache *cache
}

// New returns a Client that obtains tokens from src. It reports every
// invalid argument at once, joined with errors.Join: a nil src, a nil
// option, and each option whose value is out of range.
func New(src TokenSource, opts ...Option) (*Client, error) {
	var errs []error
	if src == nil {
		errs = append(errs, errors.New("caekit/client: nil TokenSource"))
	}
	o := defaults()
	for i, opt := range opts {
		if opt == nil {
			errs = append(errs, fmt.Errorf("caekit/client: option %d is nil", i))
			continue
		}
		opt(&o)
	}
	if err := o.validate(); err != nil {
		errs = append(errs, err)
	} else if _, err := mergeClaims("", o.capabilities); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.meterProvider == nil {
		o.meterProvider = otel.GetMeterProvider()
	}
	met, err := newMetrics(o.meterProvider, o.observer)
	if err != nil {
		return nil, fmt.Errorf("caekit/client: metrics: %w", err)
	}
	o.observer = met
	log := o.logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{o: o, log: log}
	c.cache = newCache(src, &c.o, log)
	return c, nil
}

// Close stops background token refreshes and waits for them to end. Calls
// made after Close fail with ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	c.cache.close()
	return nil
}

// DialOptions returns the dial options that install the Client's unary and
// stream interceptors.
func (c *Client) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(c.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(c.StreamClientInterceptor()),
	}
}

// Token returns the token the Client would attach to a call with the given
// scopes (the configured ones when none are given), fetching it if needed.
func (c *Client) Token(ctx context.Context, scopes ...string) (*Token, error) {
	s := c.o.scopes
	if len(scopes) > 0 {
		s = normScopes(scopes)
	}
	return c.cache.get(ctx, s)
}

// CallScopes returns a call option that makes one call use a token for
// these scopes instead of the Client's configured scopes.
func CallScopes(scopes ...string) grpc.CallOption {
	return scopesOption{scopes: normScopes(scopes)}
}

type scopesOption struct {
	grpc.EmptyCallOption
	scopes []string
}

func (c *Client) scopesFor(opts []grpc.CallOption) []string {
	s := c.o.scopes
	for _, o := range opts {
		if so, ok := o.(scopesOption); ok {
			s = so.scopes
		}
	}
	return s
}

// IsChallenge reports whether err, returned by a call, is a CAE challenge
// (a claims challenge or an invalid_token rejection) and returns it.
//
// Deprecated: use challenge.Extract, the one way to get a challenge out of
// an error; it also reads the www-authenticate metadata when given the
// call's header and trailer, and says why there is no challenge.
// IsChallenge(err) is exactly c, e := challenge.Extract(err); ok := e == nil.
func IsChallenge(err error) (*challenge.Challenge, bool) {
	c, e := challenge.Extract(err)
	return c, e == nil
}

// TokenError is returned when no token could be obtained for a call. Its
// gRPC status is codes.Unauthenticated; it unwraps to the cause.
type TokenError struct {
	// Err is why no token could be obtained (e.g. the TokenSource's error).
	Err error
}

// Error describes the failure.
func (e *TokenError) Error() string {
	return "caekit/client: cannot obtain an access token: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TokenError) Unwrap() error { return e.Err }

// GRPCStatus makes the error a codes.Unauthenticated status.
func (e *TokenError) GRPCStatus() *status.Status {
	return status.New(codes.Unauthenticated, e.Error())
}

// ReacquireError is returned when a call was answered with a claims
// challenge and fetching a token for that challenge failed, for example with
// invalid_grant because the user was disabled. Its gRPC status is the
// server's (so challenge.Extract and status.Code still see the challenge),
// and it unwraps to both the server's error and the *TokenError, so that
// errors.As finds the identity provider's refusal.
type ReacquireError struct {
	// Call is the challenged call's error, as the server sent it.
	Call error
	// Token is why no token could be obtained for the challenge.
	Token *TokenError
}

// Error describes both failures.
func (e *ReacquireError) Error() string {
	return e.Call.Error() + "; and re-acquiring a token for the challenge failed: " + e.Token.Err.Error()
}

// Unwrap returns the call's error and the token error.
func (e *ReacquireError) Unwrap() []error { return []error{e.Call, e.Token} }

// GRPCStatus returns the server's status, details included.
func (e *ReacquireError) GRPCStatus() *status.Status { return status.Convert(e.Call) }

// reacquireError combines a challenged call's error with the failure to
// fetch a token for it. Cancellation of the caller's context is returned as
// the call's error alone.
func reacquireError(callErr, fetchErr error) error {
	if errors.Is(fetchErr, context.Canceled) || errors.Is(fetchErr, context.DeadlineExceeded) {
		return callErr
	}
	var te *TokenError
	if !errors.As(fetchErr, &te) {
		te = &TokenError{Err: fetchErr}
	}
	return &ReacquireError{Call: callErr, Token: te}
}

func tokenError(err error) error {
	// A backoff is never the caller's cancellation, even when the fetch it
	// remembers timed out.
	if !errors.Is(err, ErrBackingOff) && errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return &TokenError{Err: err}
}

func mergeClaims(challengeClaims string, capabilities []string) (string, error) {
	s, err := challenge.MergeClaims(challengeClaims, capabilities...)
	if err != nil {
		return "", fmt.Errorf("caekit/client: %w", err)
	}
	return s, nil
}

// UnaryClientInterceptor returns the unary interceptor: it attaches the
// token, and on a claims challenge fetches a token with the challenge's
// claims and retries the call once.
func (c *Client) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		scopes := c.scopesFor(opts)
		tok, err := c.cache.get(ctx, scopes)
		if err != nil {
			return tokenError(err)
		}
		var hdr, trl metadata.MD
		err = invoker(ctx, method, req, reply, cc, c.callOpts(opts, tok, &hdr, &trl)...)
		if err == nil {
			return nil
		}
		ch := c.challengeOf(ctx, method, err, hdr, trl)
		if ch == nil {
			return err
		}
		if !actionable(ch) {
			c.notRetried(ctx, method, ch, err, "challenge without claims")
			return err
		}
		tok2, ferr := c.cache.reacquire(ctx, scopes, tok, answerOf(ch))
		if ferr != nil {
			c.notRetried(ctx, method, ch, ferr, "cannot obtain a token for the challenge")
			return reacquireError(err, ferr)
		}
		c.retrying(ctx, method, ch, tok2)
		hdr, trl = nil, nil
		err = invoker(ctx, method, req, reply, cc, c.callOpts(opts, tok2, &hdr, &trl)...)
		if err != nil {
			if ch2, cerr := challenge.Extract(err, hdr, trl); cerr == nil {
				c.notRetried(ctx, method, ch2, err, "challenged again on the retry")
			}
		}
		return err
	}
}

// callOpts returns opts plus the token's credentials and header/trailer
// capture, in a new slice.
func (c *Client) callOpts(opts []grpc.CallOption, tok *Token, hdr, trl *metadata.MD) []grpc.CallOption {
	out := make([]grpc.CallOption, 0, len(opts)+3)
	out = append(out, opts...)
	out = append(out, grpc.PerRPCCredentials(c.creds(tok)))
	if hdr != nil {
		out = append(out, grpc.Header(hdr), grpc.Trailer(trl))
	}
	return out
}

// challengeOf returns the challenge in err, or nil. It reports challenges
// and malformed challenges to the logger and observer.
func (c *Client) challengeOf(ctx context.Context, method string, err error, md ...metadata.MD) *challenge.Challenge {
	if status.Code(err) != codes.Unauthenticated {
		return nil
	}
	ch, perr := challenge.Extract(err, md...)
	if perr != nil {
		if !errors.Is(perr, challenge.ErrNoChallenge) {
			c.ReportMalformed(ctx, method, perr)
		}
		return nil
	}
	c.reportChallenge(ctx, method, ch)
	return ch
}

func (c *Client) notRetried(ctx context.Context, method string, ch *challenge.Challenge, err error, why string) {
	c.log.InfoContext(ctx, "caekit: challenge returned to the caller", "method", method, "why", why, "error", err)
	c.observe(ctx, Event{Kind: EventNotRetried, Method: method, Challenge: ch, Err: fmt.Errorf("%s: %w", why, err)})
}

func (c *Client) retrying(ctx context.Context, method string, ch *challenge.Challenge, tok *Token) {
	h := jose.Hash(tok.AccessToken)
	c.log.InfoContext(ctx, "caekit: retrying with a new token", "method", method, "token", h)
	c.observe(ctx, Event{Kind: EventRetry, Method: method, Challenge: ch, TokenHash: h})
}

func (c *Client) observe(ctx context.Context, e Event) {
	if c.o.observer != nil {
		c.o.observer.Observe(ctx, e)
	}
}

func (c *Client) creds(tok *Token) credentials.PerRPCCredentials {
	return bearer{token: tok.AccessToken, allowInsecure: c.o.allowInsecure}
}

// bearer is the per-call credentials that carry one token. It checks the
// connection's security level itself (rather than through
// RequireTransportSecurity) to give a clear error.
type bearer struct {
	token         string
	allowInsecure bool
}

// GetRequestMetadata returns the authorization header, after checking that
// the connection has privacy and integrity unless insecure is allowed.
func (b bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if !b.allowInsecure {
		ri, _ := credentials.RequestInfoFromContext(ctx)
		if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
			return nil, status.Errorf(codes.Unauthenticated,
				"caekit/client: refusing to send an access token over a connection without privacy and integrity (%v); use TLS, or client.WithInsecure for loopback tests", err)
		}
	}
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity reports false: GetRequestMetadata checks the
// security level itself, to give a clear error.
func (b bearer) RequireTransportSecurity() bool { return false }
