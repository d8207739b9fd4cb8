package caeconnect_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/caeconnect"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/testcae"
	"github.com/caekit/caekit/internal/testkit/teststore"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/proto/example/inbox/v1/inboxv1connect"
	"github.com/caekit/caekit/revocation"
)

// mint signs a cp1-capable access token for sub, issued 10 s ago.
func mint(t testing.TB, sub string) string {
	t.Helper()
	return testcae.Mint(t, sub, nil)
}

// inbox is the connect implementation of the example Inbox service.
type inbox struct {
	inboxv1connect.UnimplementedInboxServiceHandler
	causes chan error // WatchInbox reports its context's cause here
}

func (inbox) GetMessage(ctx context.Context, r *connect.Request[inboxv1.GetMessageRequest]) (*connect.Response[inboxv1.GetMessageResponse], error) {
	c, ok := interceptor.ClaimsFromContext(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeInternal, errors.New("no claims"))
	}
	return connect.NewResponse(&inboxv1.GetMessageResponse{Id: r.Msg.GetId(), Body: "hello " + c.Subject, Subject: c.Subject}), nil
}

func (in inbox) WatchInbox(ctx context.Context, _ *connect.Request[inboxv1.WatchInboxRequest], st *connect.ServerStream[inboxv1.WatchInboxResponse]) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for seq := int64(1); ; seq++ {
		if err := st.Send(&inboxv1.WatchInboxResponse{Seq: seq, Body: "m"}); err != nil {
			in.causes <- context.Cause(ctx)
			return err
		}
		select {
		case <-ctx.Done():
			in.causes <- context.Cause(ctx)
			return ctx.Err()
		case <-t.C:
		}
	}
}

type env struct {
	srv    *interceptor.Server
	store  *revocation.Memory
	in     inbox
	url    string
	client *http.Client
	grpc   inboxv1.InboxServiceClient // the same Server behind grpc-go
}

func newEnv(t *testing.T, opts ...interceptor.Option) *env {
	t.Helper()
	e := &env{store: teststore.Memory(t), in: inbox{causes: make(chan error, 4)}}
	e.srv = testcae.Server(t, testcae.Validator(t), e.store, opts...)
	ic, err := caeconnect.NewServerInterceptor(e.srv)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(inboxv1connect.NewInboxServiceHandler(e.in, connect.WithInterceptors(ic)))
	ts := httptest.NewUnstartedServer(mux)
	ts.EnableHTTP2 = true // gRPC needs HTTP/2; Connect and gRPC-Web use it too
	ts.StartTLS()
	t.Cleanup(ts.Close)
	e.url, e.client = ts.URL, ts.Client()
	t.Cleanup(e.client.CloseIdleConnections)

	gs := grpc.NewServer(e.srv.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(gs, testkit.NewInbox())
	e.grpc = inboxv1.NewInboxServiceClient(testkit.ServeBufconn(t, gs))
	return e
}

func (e *env) revoke(t testing.TB, sub string) {
	t.Helper()
	testcae.Revoke(t, e.store, sub)
}

// grpcTrailer returns the www-authenticate trailer grpc-go's interceptor
// sends for tok's GetMessage.
func (e *env) grpcTrailer(t *testing.T, tok string) string {
	t.Helper()
	var tr metadata.MD
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	_, err := e.grpc.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}, grpc.Trailer(&tr))
	if status.Code(err) != codes.Unauthenticated || len(tr.Get(challenge.MetadataKey)) != 1 {
		t.Fatalf("gRPC: %v, trailer %v", err, tr)
	}
	return tr.Get(challenge.MetadataKey)[0]
}

// serverProtocols are Connect's three serverProtocols. trailerChallenge is false for
// gRPC: served by net/http, a www-authenticate trailer is dropped (Go's
// HTTP server refuses authentication fields as trailers, as RFC 9110
// §6.5.1 asks), so gRPC clients read the challenge from the
// cae.v1.ClaimsChallenge detail's www_authenticate, which carries the same
// string.
var serverProtocols = []struct {
	name             string
	opts             []connect.ClientOption
	trailerChallenge bool
}{
	{"connect", nil, true},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}, false},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}, true},
}

func withToken[T any](tok string, m *T) *connect.Request[T] {
	r := connect.NewRequest(m)
	r.Header().Set("Authorization", "Bearer "+tok)
	return r
}

// details returns the ClaimsChallenge and ErrorInfo details of err.
func details(t *testing.T, err error) (*caev1.ClaimsChallenge, *errdetails.ErrorInfo) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%v is not a *connect.Error", err)
	}
	var (
		cc   *caev1.ClaimsChallenge
		info *errdetails.ErrorInfo
	)
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			t.Fatalf("detail %s: %v", d.Type(), err)
		}
		switch m := v.(type) {
		case *caev1.ClaimsChallenge:
			cc = m
		case *errdetails.ErrorInfo:
			info = m
		}
	}
	return cc, info
}

func TestUnaryAllowedEveryProtocol(t *testing.T) {
	e := newEnv(t)
	for _, p := range serverProtocols {
		t.Run(p.name, func(t *testing.T) {
			c := inboxv1connect.NewInboxServiceClient(e.client, e.url, p.opts...)
			resp, err := c.GetMessage(context.Background(), withToken(mint(t, "alice"), &inboxv1.GetMessageRequest{Id: "1"}))
			if err != nil || resp.Msg.GetBody() != "hello alice" {
				t.Fatalf("%v, %v", resp, err)
			}
		})
	}
}

// TestUnaryChallengeEveryProtocol guards the Connect rendering of a
// challenge: CodeUnauthenticated, the ClaimsChallenge and ErrorInfo
// details, and www-authenticate in the error's metadata, byte-identical to
// the trailer grpc-go's interceptor sends for the same token and event.
func TestUnaryChallengeEveryProtocol(t *testing.T) {
	e := newEnv(t)
	tok := mint(t, "bob")
	e.revoke(t, "bob")
	want := e.grpcTrailer(t, tok)
	for _, p := range serverProtocols {
		t.Run(p.name, func(t *testing.T) {
			c := inboxv1connect.NewInboxServiceClient(e.client, e.url, p.opts...)
			_, err := c.GetMessage(context.Background(), withToken(tok, &inboxv1.GetMessageRequest{Id: "1"}))
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Fatalf("%v, want unauthenticated", err)
			}
			var ce *connect.Error
			errors.As(err, &ce)
			if got := ce.Meta().Values(challenge.MetadataKey); p.trailerChallenge && (len(got) != 1 || got[0] != want) {
				t.Fatalf("www-authenticate %q, want the gRPC trailer %q", got, want)
			}
			// What caekit's gRPC client reads (metadata, else the detail).
			if ch, ok := challenge.FromError(status.ErrorProto(grpcStatusOf(t, err)), metadata.MD{challenge.MetadataKey: ce.Meta().Values(challenge.MetadataKey)}); !ok || ch.Header() != want {
				t.Fatalf("challenge.FromError: %v %v", ch, ok)
			}
			cc, info := details(t, err)
			if cc == nil || cc.GetWwwAuthenticate() != want || cc.GetReason() != caev1.Reason_REASON_USER_DISABLED || cc.GetPhase() != caev1.Phase_PHASE_OPEN {
				t.Fatalf("ClaimsChallenge %v", cc)
			}
			if info == nil || info.GetReason() != "USER_DISABLED" || info.GetDomain() != challenge.ErrorInfoDomain {
				t.Fatalf("ErrorInfo %v", info)
			}
		})
	}
}

// TestConnectUnaryChallengeIsHTTPHeader guards what plain HTTP clients of
// the Connect protocol see: status 401 and the challenge in the
// WWW-Authenticate response header.
func TestConnectUnaryChallengeIsHTTPHeader(t *testing.T) {
	e := newEnv(t)
	tok := mint(t, "carol")
	e.revoke(t, "carol")
	want := e.grpcTrailer(t, tok)
	req, _ := http.NewRequest(http.MethodPost, e.url+inboxv1connect.InboxServiceGetMessageProcedure, strings.NewReader(`{"id":"1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("%d, WWW-Authenticate %q, want 401 and %q; body %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want, body)
	}
	if strings.Contains(string(body), tok) {
		t.Fatal("the token was echoed")
	}
}

// TestPlainDenialIsPermissionDenied guards the non-challenge rendering.
func TestPlainDenialIsPermissionDenied(t *testing.T) {
	deny := check.CheckFunc(func(context.Context, *check.Request) *check.Denial {
		return &check.Denial{Code: codes.PermissionDenied, Reason: caev1.Reason_REASON_POLICY, Description: "not allowed"}
	})
	e := newEnv(t, interceptor.WithChecks(deny))
	for _, p := range serverProtocols {
		t.Run(p.name, func(t *testing.T) {
			c := inboxv1connect.NewInboxServiceClient(e.client, e.url, p.opts...)
			_, err := c.GetMessage(context.Background(), withToken(mint(t, "dave"), &inboxv1.GetMessageRequest{Id: "1"}))
			if connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Fatalf("%v, want permission_denied", err)
			}
			var ce *connect.Error
			errors.As(err, &ce)
			if ce.Meta().Get(challenge.MetadataKey) != "" {
				t.Fatalf("plain denial carries a challenge: %v", ce.Meta())
			}
			if cc, info := details(t, err); cc != nil || info == nil || info.GetReason() != "POLICY" {
				t.Fatalf("details %v %v", cc, info)
			}
		})
	}
}

// TestStreamCutByStoredEvent guards the stream cut on every protocol: a
// server stream is ended by a stored event with CodeUnauthenticated and a
// PHASE_MID_STREAM ClaimsChallenge, and the handler's context cause is the
// *interceptor.DenialError.
func TestStreamCutByStoredEvent(t *testing.T) {
	e := newEnv(t)
	for _, p := range serverProtocols {
		t.Run(p.name, func(t *testing.T) {
			sub := "erin-" + p.name
			c := inboxv1connect.NewInboxServiceClient(e.client, e.url, p.opts...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := c.WatchInbox(ctx, withToken(mint(t, sub), &inboxv1.WatchInboxRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if !st.Receive() {
				t.Fatalf("first message: %v", st.Err())
			}
			e.revoke(t, sub)
			for st.Receive() { // messages already in flight
			}
			if connect.CodeOf(st.Err()) != connect.CodeUnauthenticated {
				t.Fatalf("stream ended with %v, want unauthenticated", st.Err())
			}
			if cc, _ := details(t, st.Err()); cc == nil || cc.GetPhase() != caev1.Phase_PHASE_MID_STREAM || cc.GetReason() != caev1.Reason_REASON_USER_DISABLED {
				t.Fatalf("ClaimsChallenge %v", cc)
			}
			if p.trailerChallenge && st.ResponseTrailer().Get(challenge.MetadataKey) == "" {
				t.Fatalf("no www-authenticate trailer: %v", st.ResponseTrailer())
			}
			cause := <-e.in.causes
			var d *interceptor.DenialError
			if !errors.As(cause, &d) || !d.MidStream() {
				t.Fatalf("handler's cause %v, want a mid-stream *interceptor.DenialError", cause)
			}
		})
	}
}

func TestNewServerInterceptorOptions(t *testing.T) {
	if _, err := caeconnect.NewServerInterceptor(nil); err == nil {
		t.Fatal("nil server accepted")
	}
	e := newEnv(t)
	if _, err := caeconnect.NewServerInterceptor(e.srv, caeconnect.WithExempt(nil), nil); err == nil ||
		!strings.Contains(err.Error(), "WithExempt") || !strings.Contains(err.Error(), "option 1") {
		t.Fatalf("err = %v", err)
	}
	if err := caeconnect.NewError(io.EOF); err != io.EOF {
		t.Fatalf("NewError(EOF) = %v", err)
	}
}

// grpcStatusOf rebuilds the google.rpc.Status of a *connect.Error.
func grpcStatusOf(t *testing.T, err error) *spb.Status {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%v is not a *connect.Error", err)
	}
	st := &spb.Status{Code: int32(ce.Code()), Message: ce.Message()}
	for _, d := range ce.Details() {
		st.Details = append(st.Details, &anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type(), Value: d.Bytes()})
	}
	return st
}
