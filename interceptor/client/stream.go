package client

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// StreamClientInterceptor returns the stream interceptor. It attaches the
// token when the stream opens. When a claims challenge ends the stream
// before the first response message arrives, it fetches a token with the
// challenge's claims, re-opens the stream and replays the messages sent so
// far (within the replay buffer, see WithStreamReplayBuffer), once, but only
// when a replay cannot repeat side effects:
//
//   - the server says it refused the stream when it opened
//     (cae.v1.ClaimsChallenge phase PHASE_OPEN: the handler never ran), or
//   - the method was declared idempotent with WithIdempotentStreams.
//
// A stream cut mid-stream (PHASE_MID_STREAM), or by a server that does not
// say (PHASE_UNSPECIFIED, or a challenge only in www-authenticate), may have
// been partly processed: it is not replayed. After a response message, past
// the buffer, on a second challenge, or when a replay is not safe, the error
// goes to the application; the token is refreshed in every case (in the
// background, on a goroutine bounded by the fetch timeout and Close) so that
// the application's next call or reconnect succeeds.
//
// Header and Trailer report the current underlying stream. Header is not
// retried: call it after the first RecvMsg if the stream may be re-opened.
func (c *Client) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		scopes := c.scopesFor(opts)
		tok, err := c.cache.get(ctx, scopes)
		if err != nil {
			return nil, tokenError(err)
		}
		cs, err := streamer(ctx, desc, cc, method, c.callOpts(opts, tok, nil, nil)...)
		if err != nil {
			return nil, err
		}
		return &stream{
			c: c, ctx: ctx, desc: desc, cc: cc, method: method, streamer: streamer, opts: opts, scopes: scopes,
			cur: cs, tok: tok, buffering: c.o.replayMessages > 0 && c.o.replayBytes > 0,
		}, nil
	}
}

// stream wraps the application's view of a stream so that it can be
// re-opened under it.
type stream struct {
	c        *Client
	ctx      context.Context
	desc     *grpc.StreamDesc
	cc       *grpc.ClientConn
	method   string
	streamer grpc.Streamer
	opts     []grpc.CallOption
	scopes   []string

	mu         sync.Mutex
	cur        grpc.ClientStream
	tok        *Token
	buffering  bool // still able to replay: no response, no overflow, no retry yet
	buf        []proto.Message
	bufBytes   int
	closedSend bool
	sendFailed bool // cur refused a message (io.EOF); later messages only go to buf
	retried    bool
}

// Header returns the header of the current underlying stream.
func (s *stream) Header() (metadata.MD, error) { return s.current().Header() }

// Trailer returns the trailer of the current underlying stream.
func (s *stream) Trailer() metadata.MD { return s.current().Trailer() }

// Context returns the context of the current underlying stream.
func (s *stream) Context() context.Context { return s.current().Context() }

func (s *stream) current() grpc.ClientStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// stopBufferingLocked ends replay: the buffer is released.
func (s *stream) stopBufferingLocked() {
	s.buffering = false
	s.buf = nil
	s.bufBytes = 0
}

// SendMsg sends m on the current stream, keeping a copy for a replay while
// the replay buffer's bounds allow.
func (s *stream) SendMsg(m any) error {
	s.mu.Lock()
	if s.buffering {
		pm, ok := m.(proto.Message)
		if ok {
			size := proto.Size(pm)
			if len(s.buf)+1 > s.c.o.replayMessages || s.bufBytes+size > s.c.o.replayBytes {
				ok = false
			} else {
				s.buf = append(s.buf, proto.Clone(pm))
				s.bufBytes += size
			}
		}
		if !ok {
			s.stopBufferingLocked()
		}
	}
	cur, buffered, failed := s.cur, s.buffering, s.sendFailed
	s.mu.Unlock()
	if failed {
		// The stream already ended; the message waits in the buffer for a
		// replay, or, with no replay possible, the application learns the
		// outcome from RecvMsg.
		if buffered {
			return nil
		}
		return io.EOF
	}
	err := cur.SendMsg(m)
	if !errors.Is(err, io.EOF) {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != cur {
		return nil // re-opened meanwhile; the message was in the replayed buffer
	}
	if s.buffering {
		// The stream ended, perhaps with a challenge that RecvMsg will
		// answer by a replay: keep accepting messages into the buffer.
		s.sendFailed = true
		return nil
	}
	return io.EOF
}

// CloseSend half-closes the current stream and remembers it for a replay.
func (s *stream) CloseSend() error {
	s.mu.Lock()
	s.closedSend = true
	cur, failed := s.cur, s.sendFailed
	s.mu.Unlock()
	if failed {
		return nil
	}
	return cur.CloseSend()
}

// RecvMsg receives from the current stream; on a claims challenge it
// re-opens the stream with a new token and replays the buffered messages
// when it can, else it returns the challenge.
func (s *stream) RecvMsg(m any) error {
	for {
		s.mu.Lock()
		cur := s.cur
		s.mu.Unlock()
		err := cur.RecvMsg(m)
		if err == nil {
			s.mu.Lock()
			if s.buffering {
				s.stopBufferingLocked()
			}
			s.mu.Unlock()
			return nil
		}
		if errors.Is(err, io.EOF) {
			return err
		}
		reopened, rerr := s.reopen(cur, err)
		if !reopened {
			return rerr
		}
	}
}

// reopen handles an error that ended cur. It reports whether the stream
// was re-opened, in which case RecvMsg continues on the new stream, and
// otherwise the error to return: err, or err combined with the failure to
// obtain a token for its challenge.
func (s *stream) reopen(cur grpc.ClientStream, err error) (bool, error) {
	s.mu.Lock()
	retried := s.retried
	s.mu.Unlock()
	hdr, _ := cur.Header()
	ch := s.c.challengeOf(s.ctx, s.method, err, hdr, cur.Trailer())
	if ch == nil {
		return false, err
	}
	if retried {
		s.c.notRetried(s.ctx, s.method, ch, err, "challenged again on the re-opened stream")
		return false, err
	}
	if !actionable(ch) {
		s.c.notRetried(s.ctx, s.method, ch, err, "challenge without claims")
		return false, err
	}
	phase := phaseOf(err)
	safe := phase == caev1.Phase_PHASE_OPEN || s.c.o.idempotent[s.method]
	s.mu.Lock()
	s.retried = true
	buffered := s.buffering
	canReplay := buffered && safe
	oldTok := s.tok
	s.mu.Unlock()

	// Refresh in every case, so that the next call or reconnect succeeds.
	if !canReplay {
		why := "a response already arrived or the replay buffer overflowed; a new token is being fetched for the next stream"
		if buffered {
			why = "the server may have processed the stream's messages (challenge phase " + phase.String() +
				") and the method is not declared idempotent (WithIdempotentStreams); a new token is being fetched for the next stream"
		}
		// The stream cannot be re-opened transparently: hand the error to
		// the application now and let the fetch finish on its own goroutine;
		// the application's next call or reconnect waits for it (one fetch).
		if _, _, ferr := s.c.cache.startReacquire(s.ctx, s.scopes, oldTok, answerOf(ch)); ferr != nil {
			s.c.notRetried(s.ctx, s.method, ch, ferr, "cannot obtain a token for the challenge")
			return false, reacquireError(err, ferr)
		}
		s.c.notRetried(s.ctx, s.method, ch, err, why)
		s.mu.Lock()
		s.stopBufferingLocked()
		s.mu.Unlock()
		return false, err
	}
	tok, ferr := s.c.cache.reacquire(s.ctx, s.scopes, oldTok, answerOf(ch))
	if ferr != nil {
		s.c.notRetried(s.ctx, s.method, ch, ferr, "cannot obtain a token for the challenge")
		return false, reacquireError(err, ferr)
	}
	s.c.retrying(s.ctx, s.method, ch, tok)
	ns, oerr := s.streamer(s.ctx, s.desc, s.cc, s.method, s.c.callOpts(s.opts, tok, nil, nil)...)
	if oerr != nil {
		s.c.log.WarnContext(s.ctx, "caekit: cannot re-open stream", "method", s.method, "error", oerr)
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur, s.tok = ns, tok
	for _, msg := range s.buf {
		if err := ns.SendMsg(msg); err != nil {
			break // the new stream ended too; its RecvMsg tells why
		}
	}
	if s.closedSend {
		_ = ns.CloseSend()
	}
	s.sendFailed = false
	s.stopBufferingLocked()
	return true, nil
}

// ChallengePhase returns the phase of the cae.v1.ClaimsChallenge detail in
// err, a call's error: PHASE_OPEN when the server refused the call before its
// handler ran (nothing was processed; resending is safe), PHASE_MID_STREAM
// when it cut an open stream whose handler may have processed messages, and
// PHASE_UNSPECIFIED when err carries no such detail or the server did not
// say, which must be treated as "may have been processed". Applications use
// it to decide whether to resend a stream's messages.
func ChallengePhase(err error) caev1.Phase { return phaseOf(err) }

// phaseOf implements ChallengePhase.
func phaseOf(err error) caev1.Phase {
	st, ok := status.FromError(err)
	if !ok {
		return caev1.Phase_PHASE_UNSPECIFIED
	}
	for _, d := range st.Details() {
		if cc, ok := d.(*caev1.ClaimsChallenge); ok {
			return cc.GetPhase()
		}
	}
	return caev1.Phase_PHASE_UNSPECIFIED
}
