package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/caekit/caekit/interceptor/challenge"
)

// maxDrain bounds how much of a challenged response's body is read before
// it is closed for the retry, so that its connection can be reused.
const maxDrain = 64 << 10

// Transport is an http.RoundTripper that does for plain HTTP APIs what the
// gRPC interceptors do: it sets Authorization: Bearer with a token from the
// Client's cache (the client capabilities, cp1 by default, declared in the
// claims request to the identity provider, proactive refresh included), and
// on a 401 whose WWW-Authenticate holds a claims challenge (Entra's
// insufficient_claims form, as the Azure SDKs read it) or an RFC 9470
// step-up challenge (insufficient_user_authentication with acr_values and
// max_age) fetches a token for it and sends the request once more.
//
// The retry needs the request body again: it is made only for requests
// without a body or with GetBody set (http.NewRequest sets it for
// bytes.Buffer, bytes.Reader and strings.Reader bodies). Otherwise the 401
// is returned to the caller, and the new token is fetched in the background
// for the next request. When no token can be obtained for the challenge,
// the 401 is returned too, and the failure is logged and observed.
//
// Create one with Client.Transport. It shares the Client's token cache,
// logger, observer and metrics with the gRPC interceptors: a gRPC call and
// an HTTP request for the same scopes use the same token, and a challenge
// answered on one is answered for both.
type Transport struct {
	c    *Client
	base http.RoundTripper
}

var _ http.RoundTripper = (*Transport)(nil)

// Transport returns an http.RoundTripper that authorizes requests with the
// Client's tokens and answers CAE and RFC 9470 challenges, sending
// requests through base (http.DefaultTransport when nil). Requests go out
// with the Client's scopes (WithScopes). Like the gRPC interceptors it
// refuses to send a token over plain http to a host that is not a
// loopback address unless the Client was created WithInsecure.
func (c *Client) Transport(base http.RoundTripper) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{c: c, base: base}
}

// NewTransport is New(src, opts...) followed by Transport(base), for a
// program that calls only HTTP APIs. Close the returned Client when done.
func NewTransport(base http.RoundTripper, src TokenSource, opts ...Option) (*Transport, *Client, error) {
	c, err := New(src, opts...)
	if err != nil {
		return nil, nil, err
	}
	return c.Transport(base), c, nil
}

// RoundTrip sends req with a bearer token and answers one challenge; see
// Transport.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	closeBody := func() {
		if req.Body != nil {
			_ = req.Body.Close()
		}
	}
	if req.URL == nil {
		closeBody()
		return nil, errors.New("caekit/client: http request without a URL")
	}
	if err := t.checkScheme(req); err != nil {
		closeBody()
		return nil, err
	}
	scopes := t.c.o.scopes
	tok, err := t.c.cache.get(ctx, scopes)
	if err != nil {
		closeBody()
		return nil, tokenError(err)
	}
	resp, err := t.base.RoundTrip(withToken(req, tok))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	method := req.Method + " " + req.URL.Host
	ch := t.challengeOf(ctx, method, resp)
	if ch == nil {
		return resp, nil
	}
	if !actionable(ch) {
		t.c.notRetried(ctx, method, ch, errHTTP401, "challenge without claims")
		return resp, nil
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// Fetch the token now, for the next request; this one cannot be
		// replayed.
		if _, _, ferr := t.c.cache.startReacquire(ctx, scopes, tok, answerOf(ch)); ferr != nil {
			t.c.notRetried(ctx, method, ch, ferr, "cannot obtain a token for the challenge")
			return resp, nil
		}
		t.c.notRetried(ctx, method, ch, errHTTP401, "the request body cannot be replayed (no GetBody); a new token is being fetched for the next request")
		return resp, nil
	}
	tok2, ferr := t.c.cache.reacquire(ctx, scopes, tok, answerOf(ch))
	if ferr != nil {
		t.c.notRetried(ctx, method, ch, ferr, "cannot obtain a token for the challenge")
		return resp, nil
	}
	retry := withToken(req, tok2)
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		body, berr := req.GetBody()
		if berr != nil {
			t.c.notRetried(ctx, method, ch, berr, "the request body cannot be replayed (GetBody failed)")
			return resp, nil
		}
		retry.Body = body
	}
	drain(resp)
	t.c.retrying(ctx, method, ch, tok2)
	resp2, err := t.base.RoundTrip(retry)
	if err == nil && resp2.StatusCode == http.StatusUnauthorized {
		if ch2, perr := challenge.Parse(resp2.Header.Values("WWW-Authenticate")...); perr == nil {
			t.c.notRetried(ctx, method, ch2, errHTTP401, "challenged again on the retry")
		}
	}
	return resp2, err
}

// errHTTP401 stands for a challenged response in events and logs.
var errHTTP401 = errors.New("HTTP 401 Unauthorized")

// challengeOf returns the challenge of a 401, or nil. Like the gRPC
// client's, it reports challenges and malformed ones.
func (t *Transport) challengeOf(ctx context.Context, method string, resp *http.Response) *challenge.Challenge {
	values := resp.Header.Values("WWW-Authenticate")
	if len(values) == 0 {
		return nil
	}
	ch, err := challenge.Parse(values...)
	if err != nil {
		if !errors.Is(err, challenge.ErrNoChallenge) {
			t.c.log.WarnContext(ctx, "caekit: malformed claims challenge; returning the response", "method", method, "error", err)
			t.c.observe(ctx, Event{Kind: EventMalformedChallenge, Method: method, Err: err})
		}
		return nil
	}
	t.c.log.InfoContext(ctx, "caekit: claims challenge", "method", method, "error", ch.Error, "claims", ch.Claims, "acr_values", ch.ACRValues, "max_age", ch.MaxAge)
	t.c.observe(ctx, Event{Kind: EventChallenge, Method: method, Challenge: ch})
	return ch
}

// checkScheme refuses to send a token in clear text to anything but a
// loopback host, unless the Client allows it (WithInsecure).
func (t *Transport) checkScheme(req *http.Request) error {
	if req.URL.Scheme == "https" || t.c.o.allowInsecure {
		return nil
	}
	if ip := net.ParseIP(req.URL.Hostname()); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("caekit/client: refusing to send an access token over %s to %s; use https, or client.WithInsecure for tests", req.URL.Scheme, req.URL.Host)
}

// withToken returns a shallow copy of req with its own header carrying the
// token; req itself is not modified (http.RoundTripper's contract).
func withToken(req *http.Request, tok *Token) *http.Request {
	r := req.Clone(req.Context())
	r.Body = req.Body
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return r
}

// drain reads a little of resp's body, so that its connection can be
// reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
}
