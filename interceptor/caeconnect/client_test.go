package caeconnect_test

// Tests of the connect-go client interceptor against plain connect
// handlers on a real HTTP/2 (TLS) server on loopback that return the
// challenge the way issue 15 specifies the caekit connect server does: a
// connect.Error with CodeUnauthenticated, the cae.v1.ClaimsChallenge and
// google.rpc.ErrorInfo details, and www-authenticate in its metadata.
// Tokens come from the test IdP over HTTP and are validated for real.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/caekit/caekit/interceptor/caeconnect"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/testidp"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

const (
	getMessage = "/example.inbox.v1.InboxService/GetMessage"
	chat       = "/example.inbox.v1.InboxService/Chat"
	upload     = "/example.inbox.v1.InboxService/Upload"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// challengeError renders ch as the caekit connect server does (issue 15).
func challengeError(t testing.TB, ch *challenge.Challenge, phase caev1.Phase) error {
	e := connect.NewError(connect.CodeUnauthenticated, errors.New("access denied: step-up required"))
	p := ch.Proto()
	p.Phase = phase
	d1, err := connect.NewErrorDetail(p)
	if err != nil {
		t.Error(err)
	}
	d2, err := connect.NewErrorDetail(ch.ErrorInfo())
	if err != nil {
		t.Error(err)
	}
	e.AddDetail(d1)
	e.AddDetail(d2)
	e.Meta().Set(challenge.MetadataKey, ch.Header())
	return e
}

// server is an Inbox served by plain connect handlers that validate the
// bearer token and ask decide, per token, for a challenge (nil: serve).
type server struct {
	t      *testing.T
	idp    *testidp.IdP
	v      *token.Validator
	srv    *httptest.Server
	decide func(proc string, cl *token.Claims) *challenge.Challenge
	phase  caev1.Phase // phase of stream challenges

	mu       sync.Mutex
	calls    map[string]int
	uploaded int
}

func (s *server) check(ctx context.Context, proc string, h http.Header) error {
	raw, _ := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	cl, err := s.v.Validate(ctx, raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[proc]++
	if err != nil {
		return connect.NewError(connect.CodeUnauthenticated, err)
	}
	if ch := s.decide(proc, cl); ch != nil {
		return challengeError(s.t, ch, caev1.Phase_PHASE_OPEN)
	}
	return nil
}

func (s *server) count(proc string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[proc]
}

func newServer(t *testing.T, decide func(string, *token.Claims) *challenge.Challenge) *server {
	t.Helper()
	s := &server{t: t, idp: testidp.New(), decide: decide, calls: map[string]int{}}
	t.Cleanup(s.idp.Close)
	v, err := token.NewValidator(context.Background(), token.WithIssuer(testidp.Issuer), token.WithAudience(testidp.Audience),
		token.WithStaticKey(testidp.KID, s.idp.PublicKey()), token.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	s.v = v
	mux := http.NewServeMux()
	mux.Handle(getMessage, connect.NewUnaryHandler(getMessage, func(ctx context.Context, req *connect.Request[inboxv1.GetMessageRequest]) (*connect.Response[inboxv1.GetMessageResponse], error) {
		if err := s.check(ctx, getMessage, req.Header()); err != nil {
			return nil, err
		}
		return connect.NewResponse(&inboxv1.GetMessageResponse{Id: req.Msg.GetId(), Body: "hello"}), nil
	}))
	mux.Handle(chat, connect.NewBidiStreamHandler(chat, func(ctx context.Context, st *connect.BidiStream[inboxv1.ChatRequest, inboxv1.ChatResponse]) error {
		if err := s.check(ctx, chat, st.RequestHeader()); err != nil {
			return err
		}
		return testkit.EchoChat(st.Receive, st.Send)
	}))
	mux.Handle(upload, connect.NewClientStreamHandler(upload, func(ctx context.Context, st *connect.ClientStream[inboxv1.UploadRequest]) (*connect.Response[inboxv1.UploadResponse], error) {
		err := s.check(ctx, upload, st.RequestHeader())
		if err == nil {
			n := 0
			for st.Receive() {
				n++
			}
			return connect.NewResponse(&inboxv1.UploadResponse{Count: int64(n)}), st.Err()
		}
		if s.phase == caev1.Phase_PHASE_MID_STREAM {
			// The handler applies the first message, then is cut.
			if st.Receive() {
				s.mu.Lock()
				s.uploaded++
				s.mu.Unlock()
			}
			var ce *connect.Error
			errors.As(err, &ce)
			if ch, cerr := caeconnect.ChallengeFromError(ce); cerr == nil {
				return nil, challengeError(s.t, ch, caev1.Phase_PHASE_MID_STREAM)
			}
		}
		return nil, err
	}))
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.EnableHTTP2 = true
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

// newClient returns a caekit Client on the test IdP and its interceptor.
func newClient(t *testing.T, s *server, opts ...caeconnect.ClientOption) *caeconnect.ClientInterceptor {
	t.Helper()
	src, err := httpsource.New(s.idp.TokenURL(), httpsource.WithClientCredentials(testidp.ClientID, testidp.ClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(src, client.WithScopes(testidp.Scope), client.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ic, err := caeconnect.NewClientInterceptor(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ic
}

// challengeFirst challenges the first token seen per procedure with ch.
func challengeFirst(ch *challenge.Challenge) func(string, *token.Claims) *challenge.Challenge {
	first := map[string]string{}
	return func(proc string, cl *token.Claims) *challenge.Challenge {
		if f, ok := first[proc]; !ok || f == cl.TokenID {
			first[proc] = cl.TokenID
			return ch
		}
		return nil
	}
}

var protocols = map[string][]connect.ClientOption{
	"connect":  nil,
	"grpc":     {connect.WithGRPC()},
	"grpc-web": {connect.WithGRPCWeb()},
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestUnaryRecoversOnEveryProtocol: a claims challenge (Entra's revocation
// form) and an RFC 9470 step-up are each answered with a new token and one
// retry, over the Connect, gRPC and gRPC-Web protocols; the IdP sees the
// challenge's claims merged with cp1, or acr_values and max_age.
func TestUnaryRecoversOnEveryProtocol(t *testing.T) {
	for _, tc := range []struct {
		name string
		ch   *challenge.Challenge
		ok   func(testidp.Request) bool
	}{
		{"claims", &challenge.Challenge{Claims: challenge.NotBeforeClaims(time.Unix(1604106651, 0)) /*datelint:ok Entra's documented challenge value, as data*/, Reason: caev1.Reason_REASON_SESSION_REVOKED},
			func(r testidp.Request) bool {
				return r.Claims == `{"access_token":{"xms_cc":{"values":["cp1"]},"nbf":{"essential":true,"value":"1604106651"}}}`
			}},
		{"rfc9470", &challenge.Challenge{ACRValues: []string{"urn:example:mfa"}, MaxAge: 5 * time.Minute},
			func(r testidp.Request) bool { return r.ACRValues == "urn:example:mfa" && r.MaxAge == "300" }},
	} {
		for proto, popts := range protocols {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				s := newServer(t, challengeFirst(tc.ch))
				ic := newClient(t, s)
				cl := connect.NewClient[inboxv1.GetMessageRequest, inboxv1.GetMessageResponse](s.srv.Client(), s.srv.URL+getMessage,
					append([]connect.ClientOption{connect.WithInterceptors(ic)}, popts...)...)
				resp, err := cl.CallUnary(ctx(t), connect.NewRequest(&inboxv1.GetMessageRequest{Id: "m1"}))
				if err != nil || resp.Msg.GetBody() != "hello" {
					t.Fatalf("call: %v %v; want success after one retry", resp, err)
				}
				if n := s.count(getMessage); n != 2 {
					t.Fatalf("server saw %d calls, want 2", n)
				}
				reqs := s.idp.Requests()
				if len(reqs) != 2 || !tc.ok(reqs[1]) {
					t.Fatalf("IdP requests %+v", reqs)
				}
			})
		}
	}
}

// TestUnaryRetriesOnce: a server that challenges every token sees two
// calls; the caller gets the challenge, code and details intact.
func TestUnaryRetriesOnce(t *testing.T) {
	s := newServer(t, func(string, *token.Claims) *challenge.Challenge {
		return &challenge.Challenge{ACRValues: []string{"urn:example:mfa"}}
	})
	ic := newClient(t, s)
	cl := connect.NewClient[inboxv1.GetMessageRequest, inboxv1.GetMessageResponse](s.srv.Client(), s.srv.URL+getMessage, connect.WithInterceptors(ic))
	_, err := cl.CallUnary(ctx(t), connect.NewRequest(&inboxv1.GetMessageRequest{Id: "m1"}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("err = %v", err)
	}
	if ch, cerr := caeconnect.ChallengeFromError(err); cerr != nil || !ch.StepUp() {
		t.Fatalf("challenge lost: %v %v", ch, cerr)
	}
	if n := s.count(getMessage); n != 2 {
		t.Fatalf("server saw %d calls, want 2", n)
	}
}

// TestUnaryIdPRefusal: when the IdP refuses the step-up token, the caller
// gets the server's error joined with the *client.TokenError.
func TestUnaryIdPRefusal(t *testing.T) {
	s := newServer(t, challengeFirst(&challenge.Challenge{ACRValues: []string{"urn:example:mfa"}}))
	ic := newClient(t, s)
	cl := connect.NewClient[inboxv1.GetMessageRequest, inboxv1.GetMessageResponse](s.srv.Client(), s.srv.URL+getMessage, connect.WithInterceptors(ic))
	// Warm the cache, then take the IdP down.
	if _, err := cl.CallUnary(ctx(t), connect.NewRequest(&inboxv1.GetMessageRequest{})); err != nil {
		t.Fatal(err)
	}
	s.idp.SetDown(true)
	s.mu.Lock()
	s.decide = func(string, *token.Claims) *challenge.Challenge {
		return &challenge.Challenge{ACRValues: []string{"urn:example:hwk"}}
	}
	s.mu.Unlock()
	_, err := cl.CallUnary(ctx(t), connect.NewRequest(&inboxv1.GetMessageRequest{}))
	var te *client.TokenError
	if connect.CodeOf(err) != connect.CodeUnauthenticated || !errors.As(err, &te) {
		t.Fatalf("err = %v, want the challenge joined with a TokenError", err)
	}
}

// TestBidiReopensAtOpen: a bidi stream challenged at open (PHASE_OPEN,
// before any response) is re-opened with the new token and its sent
// messages replayed; the caller sees only the echoes.
func TestBidiReopensAtOpen(t *testing.T) {
	s := newServer(t, challengeFirst(&challenge.Challenge{ACRValues: []string{"urn:example:mfa"}}))
	ic := newClient(t, s)
	cl := connect.NewClient[inboxv1.ChatRequest, inboxv1.ChatResponse](s.srv.Client(), s.srv.URL+chat, connect.WithInterceptors(ic), connect.WithGRPC())
	st := cl.CallBidiStream(ctx(t))
	for _, txt := range []string{"a", "b"} {
		if err := st.Send(&inboxv1.ChatRequest{Text: txt}); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}
	if err := st.CloseRequest(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m, err := st.Receive()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		got = append(got, m.GetText())
	}
	_ = st.CloseResponse()
	if strings.Join(got, ",") != "a,b" || s.count(chat) != 2 {
		t.Fatalf("echoes %v, server streams %d; want a,b over 2 streams", got, s.count(chat))
	}
}

// TestClientStreamMidStreamNotReplayed: a challenge in PHASE_MID_STREAM
// (the handler already applied a message) is not replayed: the caller gets
// it, and the next stream uses the new token; declared idempotent, the same
// stream is replayed.
func TestClientStreamMidStreamNotReplayed(t *testing.T) {
	for _, idem := range []bool{false, true} {
		t.Run(map[bool]string{false: "not-idempotent", true: "idempotent"}[idem], func(t *testing.T) {
			s := newServer(t, challengeFirst(&challenge.Challenge{ACRValues: []string{"urn:example:mfa"}}))
			s.phase = caev1.Phase_PHASE_MID_STREAM
			var opts []caeconnect.ClientOption
			if idem {
				opts = append(opts, caeconnect.WithIdempotentStreams(upload))
			}
			ic := newClient(t, s, opts...)
			cl := connect.NewClient[inboxv1.UploadRequest, inboxv1.UploadResponse](s.srv.Client(), s.srv.URL+upload, connect.WithInterceptors(ic), connect.WithGRPC())
			run := func() (*connect.Response[inboxv1.UploadResponse], error) {
				st := cl.CallClientStream(ctx(t))
				for range 3 {
					if err := st.Send(&inboxv1.UploadRequest{Data: []byte("x")}); err != nil {
						break
					}
				}
				return st.CloseAndReceive()
			}
			resp, err := run()
			if idem {
				if err != nil || resp.Msg.GetCount() != 3 {
					t.Fatalf("idempotent: %v %v, want the replayed stream's 3 messages", resp, err)
				}
				return
			}
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Fatalf("first stream: %v, want the challenge returned", err)
			}
			if resp, err = run(); err != nil || resp.Msg.GetCount() != 3 {
				t.Fatalf("next stream: %v %v", resp, err)
			}
			if n := s.idp.Count(); n != 2 {
				t.Fatalf("IdP requests %d, want 2", n)
			}
		})
	}
}
