package quickstart_test

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/caeconnect"
	"github.com/caekit/caekit/interceptor/caehttp"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/policy"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/proto/example/inbox/v1/inboxv1connect"
)

// Each Example holds one README quick start between the lines the README
// leaves out (the variables it assumes, uses that keep the compiler quiet).
// They compile, and are not run: they need an identity provider.

var (
	secret  = "client-secret"
	svc     inboxv1connect.InboxServiceHandler
	message http.Handler
)

// newServer is what the gRPC server quick start builds, for the others.
func newServer(ctx context.Context) (*interceptor.Server, error) {
	v, err := token.NewValidator(ctx, token.WithIssuer("https://login.example.com/tenant/v2.0"))
	if err != nil {
		return nil, err
	}
	return interceptor.New(v)
}

func newClient() (*client.Client, error) {
	src, err := httpsource.New("https://login.example.com/tenant/oauth2/v2.0/token")
	if err != nil {
		return nil, err
	}
	return client.New(src)
}

// The gRPC server quick start.
func Example_grpcServer() {
	_ = func(ctx context.Context) error {
		v, err := token.NewValidator(ctx,
			token.WithDiscovery("https://login.example.com/tenant/v2.0"), // keys via OIDC discovery
			token.WithIssuer("https://login.example.com/tenant/v2.0"),
			token.WithAudience("api://inbox"))
		if err != nil {
			return err
		}
		defer v.Close()
		cae, err := interceptor.New(v,
			interceptor.WithAuthorizationURI("https://login.example.com/tenant/oauth2/v2.0/authorize"),
			interceptor.WithExempt(interceptor.HealthAndReflection()))
		if err != nil {
			return err
		}
		defer cae.Close()
		srv := grpc.NewServer(cae.ServerOptions()...)
		// In handlers: claims, _ := interceptor.ClaimsFromContext(ctx)
		// Events: http.Handle("/events", rcv) with rcv from receiver.New(ctx, receiver.WithStore(cae.Store()), …)
		_ = srv
		return nil
	}
}

// The gRPC client quick start.
func Example_grpcClient() {
	_ = func() error {
		src, err := httpsource.New("https://login.example.com/tenant/oauth2/v2.0/token",
			httpsource.WithClientCredentials("my-app", secret)) // or azsource / oauth2source
		if err != nil {
			return err
		}
		cc, err := client.New(src, client.WithScopes("api://inbox/.default"))
		if err != nil {
			return err
		}
		defer cc.Close()
		conn, err := grpc.NewClient("inbox.example.com:443", append(cc.DialOptions(),
			grpc.WithTransportCredentials(credentials.NewTLS(nil)))...)
		// Every call now carries a cached token that declares cp1, refreshed at refresh_in;
		// a claims challenge is answered with a new token and the call retried once.
		// challenge.Extract(err) tells the app what a returned challenge asked for.
		_ = conn
		return err
	}
}

// The net/http middleware quick start.
func Example_httpMiddleware() {
	_ = func(ctx context.Context) error {
		cae, err := newServer(ctx)
		if err != nil {
			return err
		}
		mw, err := caehttp.Middleware(cae) // the same *interceptor.Server as the gRPC server
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /v1/messages/{id}", mw(message)) // the route pattern names the call for checks and metrics
		// Refused: 401 + WWW-Authenticate (the gRPC trailer's exact string) or 403, with an RFC 9457 problem body.
		// Let in: r.Context() carries the claims and is cancelled (context.Cause: *interceptor.DenialError)
		// when an event revokes the token or it expires, which ends an SSE or chunked response.
		return http.ListenAndServe("127.0.0.1:8502", mux)
	}
}

// The HTTP RoundTripper quick start.
func Example_httpRoundTripper() {
	_ = func(ctx context.Context) error {
		cc, err := newClient()
		if err != nil {
			return err
		}
		hc := &http.Client{Transport: cc.Transport(nil)} // shares cc's token cache with its gRPC and Connect clients
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://inbox.example.com/v1/messages/1", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req) // Bearer token with cp1; a 401 claims or step-up challenge → new token, sent once more
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
}

// The Connect server quick start.
func Example_connectServer() {
	_ = func(ctx context.Context) error {
		cae, err := newServer(ctx)
		if err != nil {
			return err
		}
		ic, err := caeconnect.NewServerInterceptor(cae)
		if err != nil {
			return err
		}
		path, h := inboxv1connect.NewInboxServiceHandler(svc, connect.WithInterceptors(ic))
		mux := http.NewServeMux()
		mux.Handle(path, h) // Connect, gRPC and gRPC-Web; a challenge is CodeUnauthenticated with the
		// cae.v1.ClaimsChallenge detail and www-authenticate in the error's metadata
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true) // h2c, for gRPC clients without TLS (loopback)
		return (&http.Server{Addr: "127.0.0.1:8502", Handler: mux, Protocols: p}).ListenAndServe()
	}
}

// The Connect client quick start.
func Example_connectClient() {
	_ = func(ctx context.Context) error {
		cc, err := newClient()
		if err != nil {
			return err
		}
		ci, err := caeconnect.NewClientInterceptor(cc) // the same token cache as cc's gRPC and HTTP clients
		if err != nil {
			return err
		}
		inbox := inboxv1connect.NewInboxServiceClient(http.DefaultClient, "https://inbox.example.com",
			connect.WithInterceptors(ci)) // or connect.WithGRPC(), connect.WithGRPCWeb()
		resp, err := inbox.GetMessage(ctx, connect.NewRequest(&inboxv1.GetMessageRequest{Id: "1"}))
		// A challenge is answered with a new token and the call retried once;
		// caeconnect.ChallengeFromError(err) tells the app what a returned one asked for.
		_ = resp
		return err
	}
}

// The RFC 9728 protected resource metadata quick start.
func Example_resourceMetadata() {
	_ = func(ctx context.Context, v *token.Validator) error {
		const resource = "https://inbox.example.com"
		cae, err := interceptor.New(v,
			interceptor.WithResourceMetadata(caehttp.MetadataURL(resource))) // resource_metadata="…" in every challenge
		if err != nil {
			return err
		}
		_, meta, err := caehttp.ProtectedResourceMetadata(cae, caehttp.WithResource(resource),
			caehttp.WithScopes("api://inbox/.default")) // authorization_servers: the validator's issuers
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET "+caehttp.WellKnownPath, meta) // outside the middleware: clients fetch it without a token
		return nil
	}
}

// The RFC 9470 step-up policy rule quick start.
func Example_stepUpPolicy() {
	_ = func(v *token.Validator) error {
		eng, err := policy.NewEngine(&policy.Policy{Rules: []policy.Rule{{
			Methods:   []string{"/example.inbox.v1.InboxService/*"},
			ACRValues: []string{"urn:example:mfa"}, // the token's acr must be one of these (OIDC Core §2)...
			MaxAge:    5 * time.Minute,             // ...and its auth_time at most 5 minutes old
		}}})
		if err != nil {
			return err
		}
		cae, err := interceptor.New(v, interceptor.WithChecks(eng.Checks()...))
		// A token that falls short: Unauthenticated / HTTP 401 with
		// error="insufficient_user_authentication", acr_values="urn:example:mfa", max_age="300" (RFC 9470 §3);
		// caekit's clients pass acr_values and max_age to their token source and retry once.
		_ = cae
		return err
	}
}
