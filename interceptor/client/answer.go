package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/caekit/caekit/interceptor/challenge"
)

// ErrNotAnswerable is returned by Client.Answer for a challenge that no new
// token can satisfy: an invalid_token rejection, or a challenge that asks
// for neither claims nor an RFC 9470 step-up.
var ErrNotAnswerable = errors.New("caekit/client: the challenge asks for nothing a new token can give")

// Answer is the challenge handling of the gRPC interceptors, for other
// transports (package caeconnect uses it): it reports ch, received by a call
// (method names it in logs, events and metrics) made with the token
// rejected, and when ch is a claims challenge or an RFC 9470 step-up
// fetches a token that answers it, through the Client's cache (concurrent
// callers share one fetch; the limits of WithChallengeFetchLimit apply),
// and returns it for the call's single retry.
//
// It returns an error wrapping ErrNotAnswerable when ch asks for nothing a
// token can give, and the fetch's error when none could be obtained (a
// *TokenError unless the context ended); both are reported.
func (c *Client) Answer(ctx context.Context, method string, rejected *Token, ch *challenge.Challenge, scopes ...string) (*Token, error) {
	c.reportChallenge(ctx, method, ch)
	if !actionable(ch) {
		c.notRetried(ctx, method, ch, ErrNotAnswerable, "challenge without claims")
		return nil, fmt.Errorf("%w (error %q)", ErrNotAnswerable, ch.Error)
	}
	tok, err := c.cache.reacquire(ctx, c.scopesOr(scopes), rejected, answerOf(ch))
	if err != nil {
		c.notRetried(ctx, method, ch, err, "cannot obtain a token for the challenge")
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		var te *TokenError
		if !errors.As(err, &te) {
			te = &TokenError{Err: err}
		}
		return nil, te
	}
	c.retrying(ctx, method, ch, tok)
	return tok, nil
}

// AnswerLater is Answer for a call that cannot be retried (why says
// because of what): it reports ch and, when a token can answer it, starts
// fetching one in the background for the next call, without waiting.
func (c *Client) AnswerLater(ctx context.Context, method string, rejected *Token, ch *challenge.Challenge, why string, scopes ...string) {
	c.reportChallenge(ctx, method, ch)
	if !actionable(ch) {
		c.notRetried(ctx, method, ch, ErrNotAnswerable, "challenge without claims")
		return
	}
	if _, _, err := c.cache.startReacquire(ctx, c.scopesOr(scopes), rejected, answerOf(ch)); err != nil {
		c.notRetried(ctx, method, ch, err, "cannot obtain a token for the challenge")
		return
	}
	c.notRetried(ctx, method, ch, errors.New(why), why)
}

// ChallengedAgain reports that the retry Answer made possible was
// challenged too (ch); the call's error goes to the caller, as the
// interceptors never retry twice.
func (c *Client) ChallengedAgain(ctx context.Context, method string, ch *challenge.Challenge, err error) {
	c.reportChallenge(ctx, method, ch)
	c.notRetried(ctx, method, ch, err, "challenged again on the retry")
}

// ReportMalformed reports a challenge that could not be decoded (err says
// why); the call's error goes to the caller.
func (c *Client) ReportMalformed(ctx context.Context, method string, err error) {
	c.log.WarnContext(ctx, "caekit: malformed claims challenge; returning the error", "method", method, "error", err)
	c.observe(ctx, Event{Kind: EventMalformedChallenge, Method: method, Err: err})
}

func (c *Client) reportChallenge(ctx context.Context, method string, ch *challenge.Challenge) {
	c.log.InfoContext(ctx, "caekit: claims challenge", "method", method, "error", ch.Error, "reason", ch.Reason.String(), "claims", ch.Claims, "acr_values", ch.ACRValues, "max_age", ch.MaxAge)
	c.observe(ctx, Event{Kind: EventChallenge, Method: method, Challenge: ch})
}

func (c *Client) scopesOr(scopes []string) []string {
	if len(scopes) > 0 {
		return normScopes(scopes)
	}
	return c.o.scopes
}
