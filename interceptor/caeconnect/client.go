// Package caeconnect brings caekit to connect-go (connectrpc.com/connect).
//
// The client side, ClientInterceptor, gives connect clients the recovery
// of caekit's gRPC client interceptors, sharing their token cache
// (package interceptor/client): a bearer token on every call, the client
// capabilities (cp1) declared to the identity provider, proactive refresh,
// and on a CAE claims challenge or an RFC 9470 step-up challenge a new token
// and one retry. It works with every protocol a connect client speaks
// (Connect, gRPC, gRPC-Web): it reads the challenge from the
// connect.Error's cae.v1.ClaimsChallenge and google.rpc.ErrorInfo details
// and its www-authenticate metadata.
package caeconnect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// ClientInterceptor is a connect.Interceptor for connect clients; install
// it with connect.WithInterceptors. It does nothing on the handler side.
//
// Unary calls are retried once after a challenge a new token answers.
// Streams follow the gRPC client's phase rules: a stream challenged before
// any response arrived is re-opened with the new token and its sent
// messages replayed (at most the replay limits, WithReplayLimits) when the
// challenge says the handler never ran (PHASE_OPEN) or the procedure is
// declared idempotent (WithIdempotentStreams); otherwise the error goes to
// the caller and the new token is fetched for the next stream.
//
// The interceptor cannot see the URL scheme: use https base URLs (or
// client.WithInsecure-style judgement of your own for loopback tests); the
// token goes wherever the connect client's http.Client sends it.
type ClientInterceptor struct {
	c              *client.Client
	replayMessages int
	replayBytes    int
	idempotent     map[string]bool
}

var _ connect.Interceptor = (*ClientInterceptor)(nil)

// ClientOption configures a ClientInterceptor.
type ClientOption func(*ClientInterceptor)

// WithIdempotentStreams declares streaming procedures
// ("/pkg.Service/Method") whose streams may be replayed even when the
// handler already ran (a challenge in PHASE_MID_STREAM), like
// client.WithIdempotentStreams.
func WithIdempotentStreams(procedures ...string) ClientOption {
	return func(i *ClientInterceptor) {
		for _, p := range procedures {
			i.idempotent[p] = true
		}
	}
}

// WithReplayLimits bounds the messages a stream keeps for a replay
// (default client.DefaultReplayMessages and client.DefaultReplayBytes of
// proto.Size); past either, the stream stops buffering and is not replayed.
func WithReplayLimits(messages, bytes int) ClientOption {
	return func(i *ClientInterceptor) { i.replayMessages, i.replayBytes = messages, bytes }
}

// NewClientInterceptor returns the interceptor that takes tokens from c.
// Use one Client for the gRPC, HTTP (client.Transport) and connect clients
// of a program, so that they share tokens and answer each challenge once.
func NewClientInterceptor(c *client.Client, opts ...ClientOption) (*ClientInterceptor, error) {
	if c == nil {
		return nil, errors.New("caeconnect: nil client.Client")
	}
	i := &ClientInterceptor{c: c, replayMessages: client.DefaultReplayMessages, replayBytes: client.DefaultReplayBytes, idempotent: map[string]bool{}}
	for _, o := range opts {
		o(i)
	}
	if i.replayMessages < 0 || i.replayBytes < 0 {
		return nil, errors.New("caeconnect: negative replay limit")
	}
	return i, nil
}

// WrapUnary attaches the token to client calls and retries once after a
// challenge a new token answers.
func (i *ClientInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !req.Spec().IsClient {
			return next(ctx, req)
		}
		proc := req.Spec().Procedure
		tok, err := i.c.Token(ctx)
		if err != nil {
			return nil, tokenError(err)
		}
		setBearer(req.Header(), tok)
		resp, err := next(ctx, req)
		if err == nil {
			return resp, nil
		}
		ch := i.challengeOf(ctx, proc, err)
		if ch == nil {
			return nil, err
		}
		tok2, aerr := i.c.Answer(ctx, proc, tok, ch)
		if aerr != nil {
			return nil, combine(err, aerr)
		}
		setBearer(req.Header(), tok2)
		resp, err = next(ctx, req)
		if err != nil {
			if ch2, _ := ChallengeFromError(err); ch2 != nil {
				i.c.ChallengedAgain(ctx, proc, ch2, err)
			}
		}
		return resp, err
	}
}

// WrapStreamingClient attaches the token to client streams and re-opens a
// challenged stream when its phase rules allow; see ClientInterceptor.
func (i *ClientInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		tok, err := i.c.Token(ctx)
		if err != nil {
			return &failedConn{spec: spec, err: tokenError(err), hdr: http.Header{}}
		}
		conn := next(ctx, spec)
		setBearer(conn.RequestHeader(), tok)
		return &stream{i: i, ctx: ctx, spec: spec, next: next, cur: conn, tok: tok, buffering: true}
	}
}

// WrapStreamingHandler returns next: the interceptor is for clients.
func (i *ClientInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// challengeOf returns err's challenge, reporting a malformed one, or nil.
func (i *ClientInterceptor) challengeOf(ctx context.Context, proc string, err error) *challenge.Challenge {
	ch, perr := ChallengeFromError(err)
	if perr != nil && !errors.Is(perr, challenge.ErrNoChallenge) {
		i.c.ReportMalformed(ctx, proc, perr)
	}
	return ch
}

// ChallengeFromError extracts the CAE or RFC 9470 challenge from an error
// a connect client returned: only a connect.Error with
// CodeUnauthenticated carries one, in its cae.v1.ClaimsChallenge or
// google.rpc.ErrorInfo details or its www-authenticate metadata, preferred
// in that order as challenge.Extract does for gRPC. The error wraps
// challenge.ErrNoChallenge when there is none, and says what is wrong with
// a malformed one.
func ChallengeFromError(err error) (*challenge.Challenge, error) {
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnauthenticated {
		return nil, fmt.Errorf("caeconnect: not an Unauthenticated connect error: %w", challenge.ErrNoChallenge)
	}
	st := status.New(codes.Unauthenticated, ce.Message())
	var details []protoadapt.MessageV1
	for _, d := range ce.Details() {
		if v, verr := d.Value(); verr == nil {
			details = append(details, protoadapt.MessageV1Of(v))
		}
	}
	if len(details) > 0 {
		if withDetails, werr := st.WithDetails(details...); werr == nil {
			st = withDetails
		}
	}
	md := metadata.MD{challenge.MetadataKey: ce.Meta().Values(challenge.MetadataKey)}
	return challenge.Extract(st.Err(), md)
}

// phaseOf returns the phase of a challenge error: PHASE_UNSPECIFIED when
// the server did not say.
func phaseOf(err error) caev1.Phase {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return caev1.Phase_PHASE_UNSPECIFIED
	}
	for _, d := range ce.Details() {
		if v, verr := d.Value(); verr == nil {
			if cc, ok := v.(*caev1.ClaimsChallenge); ok {
				return cc.GetPhase()
			}
		}
	}
	return caev1.Phase_PHASE_UNSPECIFIED
}

func setBearer(h http.Header, tok *client.Token) { h.Set("Authorization", "Bearer "+tok.AccessToken) }

// tokenError turns a failure to obtain a token into a connect error:
// CodeUnauthenticated wrapping it, or the context's code.
func tokenError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, client.ErrBackingOff):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	return connect.NewError(connect.CodeUnauthenticated, err)
}

// combine returns the challenged call's error, joined with the failure to
// obtain a token for it when that is the identity provider's (a
// *client.TokenError), as client.ReacquireError does for gRPC: errors.As
// still finds the call's *connect.Error (and connect.CodeOf its code) and
// the *client.TokenError.
func combine(callErr, answerErr error) error {
	var te *client.TokenError
	if errors.As(answerErr, &te) {
		return &client.ReacquireError{Call: callErr, Token: te}
	}
	return callErr
}

// stream is a client stream that can be re-opened once after a challenge.
type stream struct {
	i    *ClientInterceptor
	ctx  context.Context
	spec connect.Spec
	next connect.StreamingClientFunc

	// sendMu serializes the write side (Send, CloseRequest) with the
	// re-open, so that no message goes to the old stream after its buffer
	// was replayed to the new one.
	sendMu     sync.Mutex
	mu         sync.Mutex // guards the fields below
	cur        connect.StreamingClientConn
	tok        *client.Token
	buf        []any
	bufBytes   int
	buffering  bool // false once a response arrived or the buffer overflowed
	closedSend bool
	retried    bool
}

func (s *stream) conn() connect.StreamingClientConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Spec returns the stream's Spec.
func (s *stream) Spec() connect.Spec { return s.spec }

// Peer returns the current underlying stream's Peer.
func (s *stream) Peer() connect.Peer { return s.conn().Peer() }

// RequestHeader returns the current underlying stream's request header.
func (s *stream) RequestHeader() http.Header { return s.conn().RequestHeader() }

// Send sends msg, keeping a copy for a replay while buffering.
func (s *stream) Send(msg any) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	if s.buffering {
		s.keepLocked(msg)
	}
	cur := s.cur
	s.mu.Unlock()
	return cur.Send(msg)
}

func (s *stream) keepLocked(msg any) {
	m, ok := msg.(proto.Message)
	if !ok || len(s.buf) >= s.i.replayMessages {
		s.stopBufferingLocked()
		return
	}
	n := proto.Size(m)
	if s.bufBytes+n > s.i.replayBytes {
		s.stopBufferingLocked()
		return
	}
	s.buf = append(s.buf, proto.Clone(m)) // the caller may reuse msg
	s.bufBytes += n
}

func (s *stream) stopBufferingLocked() {
	s.buffering, s.buf, s.bufBytes = false, nil, 0
}

// CloseRequest closes the write side.
func (s *stream) CloseRequest() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	s.closedSend = true
	cur := s.cur
	s.mu.Unlock()
	return cur.CloseRequest()
}

// Receive receives into msg; a challenge re-opens the stream when allowed.
func (s *stream) Receive(msg any) error {
	cur := s.conn()
	err := cur.Receive(msg)
	if err == nil {
		s.mu.Lock()
		s.stopBufferingLocked()
		s.mu.Unlock()
		return nil
	}
	if errors.Is(err, io.EOF) {
		return err
	}
	ok, rerr := s.reopen(cur, err)
	if !ok {
		return rerr
	}
	return s.Receive(msg)
}

// reopen answers a challenge err of cur; it reports whether the stream was
// re-opened, else the error to return.
func (s *stream) reopen(cur connect.StreamingClientConn, err error) (bool, error) {
	proc := s.spec.Procedure
	ch := s.i.challengeOf(s.ctx, proc, err)
	if ch == nil {
		return false, err
	}
	s.mu.Lock()
	retried, buffered, oldTok := s.retried, s.buffering, s.tok
	s.retried = true
	s.mu.Unlock()
	if retried {
		s.i.c.ChallengedAgain(s.ctx, proc, ch, err)
		return false, err
	}
	phase := phaseOf(err)
	if !buffered || !(phase == caev1.Phase_PHASE_OPEN || s.i.idempotent[proc]) {
		why := "a response already arrived or the replay buffer overflowed; a new token is being fetched for the next stream"
		if buffered {
			why = "the server may have processed the stream's messages (challenge phase " + phase.String() +
				") and the procedure is not declared idempotent (WithIdempotentStreams); a new token is being fetched for the next stream"
		}
		s.i.c.AnswerLater(s.ctx, proc, oldTok, ch, why)
		return false, err
	}
	tok, aerr := s.i.c.Answer(s.ctx, proc, oldTok, ch)
	if aerr != nil {
		return false, combine(err, aerr)
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	hdr := cur.RequestHeader().Clone()
	ns := s.next(s.ctx, s.spec)
	for k, v := range hdr {
		ns.RequestHeader()[k] = v
	}
	setBearer(ns.RequestHeader(), tok)
	s.mu.Lock()
	buf, closed := s.buf, s.closedSend
	s.cur, s.tok = ns, tok
	s.mu.Unlock()
	_ = cur.CloseResponse()
	for _, m := range buf {
		if serr := ns.Send(m); serr != nil {
			break // the new stream ended too; its Receive says why
		}
	}
	if closed {
		_ = ns.CloseRequest()
	}
	return true, nil
}

// ResponseHeader returns the current underlying stream's response header.
func (s *stream) ResponseHeader() http.Header { return s.conn().ResponseHeader() }

// ResponseTrailer returns the current underlying stream's response trailer.
func (s *stream) ResponseTrailer() http.Header { return s.conn().ResponseTrailer() }

// CloseResponse closes the read side.
func (s *stream) CloseResponse() error { return s.conn().CloseResponse() }

// failedConn is a stream that could not be opened for want of a token.
type failedConn struct {
	spec connect.Spec
	err  error
	hdr  http.Header
}

func (f *failedConn) Spec() connect.Spec           { return f.spec }
func (f *failedConn) Peer() connect.Peer           { return connect.Peer{} }
func (f *failedConn) Send(any) error               { return f.err }
func (f *failedConn) RequestHeader() http.Header   { return f.hdr }
func (f *failedConn) CloseRequest() error          { return nil }
func (f *failedConn) Receive(any) error            { return f.err }
func (f *failedConn) ResponseHeader() http.Header  { return http.Header{} }
func (f *failedConn) ResponseTrailer() http.Header { return http.Header{} }
func (f *failedConn) CloseResponse() error         { return nil }
