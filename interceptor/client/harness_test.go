package client_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/testidp"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
)

// env is a real gRPC server protected by caekit's server interceptors, a
// test IdP on loopback, and a client connection using the caekit client.
type env struct {
	t     *testing.T
	idp   *testidp.IdP
	srv   *interceptor.Server
	store revocation.Store
	cli   *client.Client
	conn  *grpc.ClientConn
	api   inboxv1.InboxServiceClient
	obs   *recorder
	sends atomic.Int64 // calls and streams that reached the server (before auth)
	// applied counts upload messages the Upload handler applied, over all
	// its streams: a replay into a handler that already ran shows here.
	applied *atomic.Int64
}

type envConfig struct {
	serverOpts []interceptor.Option
	clientOpts []client.Option
	tls        bool
	noInsecure bool
	src        func(*testidp.IdP) client.TokenSource
	setupIdP   func(*testidp.IdP)
	// wrap, when set, wraps every unary call on the server outside caekit's
	// interceptor, to reshape or replace its answer.
	wrap func(ctx context.Context, call func() error) error
	// streamErr, when set, rewrites every stream's final error on the server,
	// outside caekit's interceptor (e.g. to play a server that predates a
	// status detail field).
	streamErr func(error) error
}

func newEnv(t *testing.T, cfg envConfig) *env {
	t.Helper()
	e := &env{t: t, idp: testidp.New(), obs: &recorder{}}
	t.Cleanup(e.idp.Close)
	if cfg.setupIdP != nil {
		cfg.setupIdP(e.idp)
	}
	v, err := token.NewValidator(context.Background(),
		token.WithIssuer(testidp.Issuer), token.WithAudience(testidp.Audience),
		token.WithStaticKey(testidp.KID, e.idp.PublicKey()), token.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	e.srv, err = interceptor.New(v, append([]interceptor.Option{
		interceptor.WithAuthorizationURI(e.idp.URL() + "/authorize"),
		interceptor.WithStreamRecheckInterval(20 * time.Millisecond),
	}, cfg.serverOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.srv.Close() })
	e.store = e.srv.Store()

	sopts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			e.sends.Add(1)
			if cfg.wrap == nil {
				return h(ctx, req)
			}
			var resp any
			err := cfg.wrap(ctx, func() (err error) { resp, err = h(ctx, req); return err })
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			e.sends.Add(1)
			err := h(srv, ss)
			if cfg.streamErr != nil && err != nil {
				err = cfg.streamErr(err)
			}
			return err
		}),
	}
	sopts = append(sopts, e.srv.ServerOptions()...)
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	var ccreds credentials.TransportCredentials = insecure.NewCredentials()
	if cfg.tls {
		st, ct := tlsCreds(t)
		creds, ccreds = credentials.NewTLS(st), credentials.NewTLS(ct)
	}
	sopts = append(sopts, grpc.Creds(creds))
	gs := grpc.NewServer(sopts...)
	in := &testkit.Inbox{WatchEvery: 5 * time.Millisecond, Subject: testkit.ClaimsSubject(interceptor.ClaimsFromContext, func(c *interceptor.Claims) string { return c.Subject })}
	e.applied = &in.Uploaded
	inboxv1.RegisterInboxServiceServer(gs, in)

	src := client.TokenSource(nil)
	if cfg.src != nil {
		src = cfg.src(e.idp)
	} else {
		src = mustSource(e.idp)
	}
	copts := []client.Option{client.WithScopes(testidp.Scope), client.WithObserver(e.obs), client.WithLogger(discard()),
		client.WithRefreshBackoff(20*time.Millisecond, 200*time.Millisecond)}
	if !cfg.noInsecure && !cfg.tls {
		copts = append(copts, client.WithInsecure())
	}
	e.cli, err = client.New(src, append(copts, cfg.clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.cli.Close() }) // after the connection is closed and the server stopped
	e.conn = testkit.ServeBufconn(t, gs, append(e.cli.DialOptions(), grpc.WithTransportCredentials(ccreds))...)
	e.api = inboxv1.NewInboxServiceClient(e.conn)
	return e
}

// mustSource is an httpsource.Source for alice at the test IdP.
func mustSource(idp *testidp.IdP) client.TokenSource {
	s, err := httpsource.New(idp.TokenURL(), httpsource.WithPassword(testidp.ClientID, testidp.ClientSecret, testidp.Username, testidp.Password))
	if err != nil {
		panic(err) // a loopback http URL and a grant: cannot fail
	}
	return s
}

// revoke puts a session revocation event for alice into the server's store.
func (e *env) revoke() {
	e.t.Helper()
	err := e.store.Put(context.Background(), revocation.Event{
		ID: "evt-" + time.Now().String(), Type: revocation.TypeSessionRevoked,
		Subject: revocation.SessionKey(testidp.Issuer, testidp.SessionID), Time: time.Now(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

func (e *env) get() error {
	_, err := e.api.GetMessage(e.ctx(), &inboxv1.GetMessageRequest{Id: "1"})
	return err
}

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []client.Event
}

func (r *recorder) Observe(_ context.Context, e client.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) count(k client.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func metadataValue(ctx context.Context, key string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
