package caeconnect

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/internal/httpcall"
)

// ServerOption configures NewServerInterceptor.
type ServerOption func(*serverConfig)

type serverConfig struct {
	exempt func(connect.Spec) bool
	errs   []error
}

// WithExempt lets the procedures for which exempt returns true through
// without a token (health checks, reflection). They are not counted in
// the metrics.
func WithExempt(exempt func(spec connect.Spec) bool) ServerOption {
	return func(c *serverConfig) {
		if exempt == nil {
			c.errs = append(c.errs, errors.New("caeconnect: WithExempt: exempt is nil"))
			return
		}
		c.exempt = exempt
	}
}

// NewServerInterceptor returns the handler-side connect.Interceptor of
// srv; install it with connect.WithInterceptors on every handler. It
// leaves client-side calls alone.
//
// Every call that is not exempt must carry exactly one
// "Authorization: Bearer <token>" header and is decided by srv exactly as
// a gRPC call is; the handler's context carries the claims
// (interceptor.ClaimsFromContext). A refused call gets the error of
// NewError.
//
// A stream is watched until its handler returns, as a gRPC stream is: a
// revocation event about its token, a failing re-check, the token's expiry
// or srv.Close cancels the handler's context (context.Cause is the
// *interceptor.DenialError), every later Send and Receive fails with the
// denial's *connect.Error, and the stream ends with it whatever the
// handler returns. Unlike the gRPC interceptor, the handler runs on
// Connect's own goroutine: one blocked in Receive sees the cut when the
// client's next message (or its end) arrives, so handlers of client and
// bidirectional streams should also watch their context.
func NewServerInterceptor(srv *interceptor.Server, opts ...ServerOption) (connect.Interceptor, error) {
	if srv == nil {
		return nil, errors.New("caeconnect: NewServerInterceptor: server is nil")
	}
	var c serverConfig
	for i, o := range opts {
		if o == nil {
			c.errs = append(c.errs, fmt.Errorf("caeconnect: option %d is nil", i))
			continue
		}
		o(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	return &serverInterceptor{srv: srv, cfg: c}, nil
}

type serverInterceptor struct {
	srv *interceptor.Server
	cfg serverConfig
}

func (si *serverInterceptor) call(spec connect.Spec, peer connect.Peer, h http.Header, watch bool) interceptor.Call {
	return interceptor.Call{
		Method:        spec.Procedure,
		Registered:    true, // Connect routes registered procedures only
		Authorization: h.Values("Authorization"),
		Credentials:   "Authorization header",
		Peer:          httpcall.Peer(peer.Addr),
		Metadata:      func() metadata.MD { return httpcall.Metadata(h) },
		Stream:        spec.StreamType != connect.StreamTypeUnary,
		Watch:         watch,
	}
}

// WrapUnary decides a unary call before next runs.
func (si *serverInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		spec := req.Spec()
		if spec.IsClient || (si.cfg.exempt != nil && si.cfg.exempt(spec)) {
			return next(ctx, req)
		}
		a, err := si.srv.Admit(ctx, si.call(spec, req.Peer(), req.Header(), false))
		if err != nil {
			return nil, newError(err, req.Peer().Protocol)
		}
		return next(a.Context(), req)
	}
}

// WrapStreamingClient leaves client streams alone.
func (si *serverInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler decides a stream when it opens and watches it until
// its handler returns.
func (si *serverInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) (err error) {
		spec := conn.Spec()
		if si.cfg.exempt != nil && si.cfg.exempt(spec) {
			return next(ctx, conn)
		}
		proto := conn.Peer().Protocol
		a, aerr := si.srv.Admit(ctx, si.call(spec, conn.Peer(), conn.RequestHeader(), true))
		if aerr != nil {
			return newError(aerr, proto)
		}
		defer func() {
			// Deferred so that a panicking handler is unwatched too.
			if cut := a.End(); cut != nil {
				err = newError(cut, proto)
			}
		}()
		return next(a.Context(), &watchedConn{StreamingHandlerConn: conn, a: a, proto: proto})
	}
}

// watchedConn is the stream the handler sees: Send and Receive re-run the
// checks that may have changed, as a gRPC stream's messages do, and fail
// once the stream is cut.
type watchedConn struct {
	connect.StreamingHandlerConn
	a     *interceptor.Admission
	proto string
}

// Receive receives, then re-runs the checks.
func (c *watchedConn) Receive(m any) error {
	if err := c.a.Cut(); err != nil {
		return newError(err, c.proto)
	}
	if err := c.StreamingHandlerConn.Receive(m); err != nil {
		if cut := c.a.Cut(); cut != nil {
			return newError(cut, c.proto)
		}
		return err
	}
	if err := c.a.Recheck(); err != nil {
		return newError(err, c.proto)
	}
	return nil
}

// Send re-runs the checks, then sends: nothing leaves after a denial.
func (c *watchedConn) Send(m any) error {
	if err := c.a.Recheck(); err != nil {
		return newError(err, c.proto)
	}
	return c.StreamingHandlerConn.Send(m)
}

// NewError renders err for Connect. An *interceptor.DenialError becomes a
// *connect.Error with the denial's code (CodeUnauthenticated for a
// challenge), its message, its status details (cae.v1.ClaimsChallenge and
// google.rpc.ErrorInfo, or ErrorInfo alone) and, for a challenge,
// www-authenticate in its metadata: the exact string the gRPC interceptors
// send in their trailer. Other errors are returned unchanged.
//
// Over the gRPC protocol Connect sends error metadata as HTTP trailers,
// and net/http drops a WWW-Authenticate trailer (authentication fields are
// not allowed in trailers, RFC 9110 §6.5.1): the interceptor leaves it out
// there, and gRPC clients read the challenge from the
// cae.v1.ClaimsChallenge detail (its www_authenticate field holds the same
// string), as challenge.FromError does.
func NewError(err error) error { return newError(err, "") }

func newError(err error, protocol string) error {
	var d *interceptor.DenialError
	if !errors.As(err, &d) {
		return err
	}
	st := d.GRPCStatus()
	// gRPC and Connect codes share their numbers (connect.Code's doc).
	ce := connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
	for _, det := range st.Details() {
		m, ok := det.(proto.Message)
		if !ok {
			continue
		}
		if ed, err := connect.NewErrorDetail(m); err == nil {
			ce.AddDetail(ed)
		}
	}
	if h := d.Challenge(); h != "" && protocol != connect.ProtocolGRPC {
		ce.Meta().Set(challenge.MetadataKey, h)
	}
	return ce
}
