// Package server is caekit's example resource API: the
// example.inbox.v1.InboxService behind caekit's server interceptors, with an
// SSF push receiver for the identity provider's security events, a revocation
// store (in memory or shared through Redis), a location and auth-context
// policy, gRPC health and reflection (both exempt from authentication), and a
// one-line log of every decision. The same listener serves OpenID Connect
// Back-Channel Logout (POST /backchannel-logout) and Global Token
// Revocation (POST /global-token-revocation) for the token issuer.
//
// With Config.HTTPAddr, an HTTP front door serves the same service behind
// the same interceptor.Server (validator, store, policy, metrics, decision
// log): through connect-go (Connect, gRPC-Web and gRPC, HTTP/1.1 and h2c),
// as REST (GET /v1/messages/{id}) and as Server-Sent Events
// (GET /v1/inbox/watch, cut by caekit when the token is revoked or
// expires), with the RFC 9728 protected resource metadata.
//
// cmd examples/server is a thin flag wrapper around Start; the demo and the
// integration tests start it in-process.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/caekit/caekit/examples/internal/inbox"
	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/caehttp"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/policy"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/logout"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
)

// Defaults of Config.
const (
	DefaultAddr       = "127.0.0.1:8500"
	DefaultEventsAddr = "127.0.0.1:8501"
	DefaultIssuer     = "http://127.0.0.1:8400"
	DefaultAudience   = "api://caekit-example"
	// EventsPath is where the SSF push receiver is served.
	EventsPath = "/events"
	// BackChannelLogoutPath is where OpenID Connect Back-Channel Logout is served.
	BackChannelLogoutPath = "/backchannel-logout"
	// GTRPath is where Global Token Revocation is served.
	GTRPath = "/global-token-revocation"
	// DefaultLogoutAudience is the client id logout tokens must name.
	DefaultLogoutAudience = "caekit-example-api"
)

// Config configures a Server. The zero value serves on the default addresses
// and trusts the development IdP at DefaultIssuer.
type Config struct {
	// Addr is the gRPC listen address. Default DefaultAddr; "127.0.0.1:0" picks a free port.
	Addr string
	// EventsAddr is the listen address of the SSF push receiver (POST /events).
	// Default DefaultEventsAddr.
	EventsAddr string
	// Issuer is the token issuer; its signing keys are found by OIDC discovery.
	// Default DefaultIssuer.
	Issuer string
	// Audience is the token audience. Default DefaultAudience.
	Audience string
	// EventsIssuer is the SET issuer (default Issuer); its keys come from its
	// /.well-known/ssf-configuration unless EventsJWKS is set.
	EventsIssuer string
	// EventsJWKS overrides the SET signing keys' JWKS URL.
	EventsJWKS string
	// EventsAudience is the aud SETs must carry. Default Audience.
	EventsAudience string
	// EventsAuth is the exact Authorization header pushes must carry. Empty
	// accepts pushes without one (SETs are still signature-checked); a
	// warning is logged.
	EventsAuth string
	// LogoutAudience is the client id that logout tokens must name (their
	// aud). Default DefaultLogoutAudience.
	LogoutAudience string
	// GTRURL is the public URL of the Global Token Revocation endpoint: the
	// aud its bearer JWTs must carry. Default http://<EventsAddr>/global-token-revocation.
	GTRURL string
	// Store is "memory" (default) or a redis:// URL shared by replicas.
	Store string
	// StorePrefix namespaces a Redis store's keys (default: redisstore's).
	StorePrefix string
	// PolicyFile is a policy file (YAML or JSON), reloaded when it changes.
	PolicyFile string
	// Policy is a policy given in code; ignored when PolicyFile is set.
	// Default: no restrictions (SetPolicy can change it at run time).
	Policy *policy.Policy
	// AuthorizationURI is sent in challenges. Default Issuer + "/authorize".
	AuthorizationURI string
	// NoAuth serves without caekit at all: a benchmark baseline. It keeps
	// the same observability as the CAE mode (the decision log line per
	// call, the gRPC server metrics and, with Metrics, the OpenTelemetry SDK
	// and Prometheus exporter at GET /metrics on EventsAddr), so that a
	// comparison of the two modes isolates caekit.
	NoAuth bool
	// HTTPAddr is the listen address of the HTTP front door: the Inbox
	// service through connect-go (Connect, gRPC-Web and gRPC over h2c),
	// GET /v1/messages/{id} (JSON), GET /v1/inbox/watch (Server-Sent Events)
	// and, with caekit, the RFC 9728 metadata at
	// /.well-known/oauth-protected-resource; all behind the same caekit
	// interceptor.Server as the gRPC listener. Empty: no HTTP front door
	// (cmd examples/server defaults it to DefaultHTTPAddr).
	HTTPAddr string
	// Resource is the HTTP front door's protected resource identifier
	// (RFC 9728): the resource of its metadata document, whose URL every
	// challenge then names in resource_metadata, on every surface.
	// Default http://<HTTPAddr>.
	Resource string
	// Metrics exports caekit's OpenTelemetry metrics (an SDK meter provider
	// with a Prometheus exporter) at GET /metrics on EventsAddr.
	Metrics bool
	// Logger receives the decision log and component logs. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) fill() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Addr, DefaultAddr)
	def(&c.EventsAddr, DefaultEventsAddr)
	def(&c.Issuer, DefaultIssuer)
	def(&c.Audience, DefaultAudience)
	def(&c.EventsIssuer, c.Issuer)
	def(&c.EventsAudience, c.Audience)
	def(&c.Store, "memory")
	def(&c.LogoutAudience, DefaultLogoutAudience)
	def(&c.AuthorizationURI, strings.TrimRight(c.Issuer, "/")+"/authorize")
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is a running example server. Close it when done.
type Server struct {
	cfg       Config
	log       *slog.Logger
	grpcLis   net.Listener
	eventsLis net.Listener
	grpc      *grpc.Server
	http      *http.Server
	health    *health.Server
	validator *token.Validator
	store     revocation.Store
	redis     *redisstore.Store
	receiver  *receiver.Receiver
	logout    *logout.Receiver
	engine    *policy.Engine
	watcher   *policy.Watcher
	caekit    *interceptor.Server
	meter     *sdkmetric.MeterProvider
	mp        metric.MeterProvider
	done      chan error
	httpDone  chan error
	apiLis    net.Listener // the HTTP front door (HTTPAddr)
	api       *http.Server
	apiCancel context.CancelFunc
	apiDone   chan error
}

// Start builds the server from cfg and serves until Close. ctx bounds the
// start-up (OIDC discovery, SSF configuration, Redis connection).
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	cfg.fill()
	s := &Server{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			s.cleanup()
		}
	}()
	if s.grpcLis, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("server: listen %s: %w", cfg.Addr, err)
	}
	if err = s.listenHTTP(); err != nil {
		return nil, err
	}
	var opts []grpc.ServerOption
	if cfg.NoAuth {
		opts, err = s.setupBaseline()
	} else {
		opts, err = s.setupCAE(ctx)
	}
	if err != nil {
		return nil, err
	}
	s.grpc = grpc.NewServer(opts...)
	inbox.New(subject).Register(s.grpc)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)

	s.done = make(chan error, 1)
	go func() { s.done <- s.grpc.Serve(s.grpcLis) }()
	if s.eventsLis != nil {
		s.httpDone = make(chan error, 1)
		go func() { s.httpDone <- s.http.Serve(s.eventsLis) }()
	}
	if s.api != nil {
		s.apiDone = make(chan error, 1)
		go func() { s.apiDone <- s.api.Serve(s.apiLis) }()
	}
	return s, nil
}

// setupMeter returns the meter provider: with Metrics an SDK provider with
// a Prometheus exporter served at GET /metrics on mux; else the global
// provider (a no-op unless installed). caekit's libraries depend on the
// OpenTelemetry API only; the application chooses the SDK and exporter.
func (s *Server) setupMeter(mux *http.ServeMux) (metric.MeterProvider, error) {
	if !s.cfg.Metrics {
		return otel.GetMeterProvider(), nil
	}
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("server: prometheus exporter: %w", err)
	}
	s.meter = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return s.meter, nil
}

// setupObservability installs what both modes share: the OpenTelemetry SDK
// with its /metrics handler on mux, and the gRPC server metrics.
func (s *Server) setupObservability(mux *http.ServeMux) (metric.MeterProvider, *rpcMetrics, error) {
	mp, err := s.setupMeter(mux)
	if err != nil {
		return nil, nil, err
	}
	s.mp = mp
	rm, err := newRPCMetrics(mp)
	if err != nil {
		return nil, nil, fmt.Errorf("server: rpc metrics: %w", err)
	}
	return mp, rm, nil
}

// setupBaseline is the NoAuth mode: no caekit, the same observability.
func (s *Server) setupBaseline() ([]grpc.ServerOption, error) {
	mux := http.NewServeMux()
	_, rm, err := s.setupObservability(mux)
	if err != nil {
		return nil, err
	}
	if s.cfg.Metrics {
		if s.eventsLis, err = net.Listen("tcp", s.cfg.EventsAddr); err != nil {
			return nil, fmt.Errorf("server: listen %s: %w", s.cfg.EventsAddr, err)
		}
		s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
	}
	dl := &decisionLog{log: s.log}
	if err := s.setupHTTPAPIWith(dl, rm); err != nil {
		return nil, err
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(dl.unary, rm.unary, tapUnary),
		grpc.ChainStreamInterceptor(dl.stream, rm.stream, tapStream),
	}, nil
}

func (s *Server) setupCAE(ctx context.Context) ([]grpc.ServerOption, error) {
	cfg := s.cfg
	mux := http.NewServeMux()
	mp, rm, err := s.setupObservability(mux)
	if err != nil {
		return nil, err
	}
	s.validator, err = token.NewValidator(ctx,
		token.WithIssuer(cfg.Issuer),
		token.WithAudience(cfg.Audience),
		token.WithDiscovery(cfg.Issuer),
		token.WithLogger(s.log.With("component", "token")),
	)
	if err != nil {
		return nil, fmt.Errorf("server: token validator for %s: %w", cfg.Issuer, err)
	}

	switch {
	case cfg.Store == "memory":
		if s.store, err = revocation.NewMemory(); err != nil {
			return nil, fmt.Errorf("server: store: %w", err)
		}
	case strings.HasPrefix(cfg.Store, "redis://") || strings.HasPrefix(cfg.Store, "rediss://"):
		ropts := []redisstore.Option{redisstore.WithLogger(s.log.With("component", "redisstore"))}
		if cfg.StorePrefix != "" {
			ropts = append(ropts, redisstore.WithPrefix(cfg.StorePrefix))
		}
		if s.redis, err = redisstore.NewFromURL(ctx, cfg.Store, ropts...); err != nil {
			return nil, fmt.Errorf("server: store %s: %w", redactURL(cfg.Store), err)
		}
		s.store = s.redis
	default:
		return nil, fmt.Errorf("server: store %q: want \"memory\" or a redis:// URL", redactURL(cfg.Store))
	}

	pol := cfg.Policy
	if pol == nil {
		pol = &policy.Policy{}
	}
	if s.engine, err = policy.NewEngine(pol, policy.WithLogger(s.log.With("component", "policy")), policy.WithClientID(cfg.Audience)); err != nil {
		return nil, fmt.Errorf("server: policy: %w", err)
	}
	if cfg.PolicyFile != "" {
		if s.watcher, err = policy.Watch(context.Background(), cfg.PolicyFile, s.engine, policy.WithWatchLogger(s.log.With("component", "policy"))); err != nil {
			return nil, fmt.Errorf("server: policy file: %w", err)
		}
	}

	// caekit logs its own denials; the decision log below says the same in
	// one line per call, so keep caekit's to warnings.
	quiet := slog.New(levelFilter{slog.LevelWarn, s.log.Handler()})
	iopts := []interceptor.Option{
		interceptor.WithStore(s.store),
		interceptor.WithChecks(s.engine.Checks()...),
		interceptor.WithAuthorizationURI(cfg.AuthorizationURI),
		interceptor.WithExempt(interceptor.HealthAndReflection()),
		interceptor.WithLogger(quiet.With("component", "caekit")),
		interceptor.WithMeterProvider(mp),
	}
	if s.apiLis != nil {
		// RFC 9728 §5.1: every challenge, on every surface, names the
		// metadata document the HTTP front door serves.
		iopts = append(iopts, interceptor.WithResourceMetadata(caehttp.MetadataURL(s.resource())))
	}
	if s.caekit, err = interceptor.New(s.validator, iopts...); err != nil {
		return nil, fmt.Errorf("server: interceptor: %w", err)
	}

	ropts := []receiver.Option{
		receiver.WithIssuer(cfg.EventsIssuer),
		receiver.WithAudience(cfg.EventsAudience),
		receiver.WithStore(s.store),
		receiver.WithLogger(s.log.With("component", "ssf")),
		receiver.WithMeterProvider(mp),
		// Session, device and client ids in SETs are those of cfg.Issuer's tokens.
		receiver.WithSubjectMapper(ssf.DefaultMapper{TokenIssuer: cfg.Issuer}),
	}
	if cfg.EventsJWKS != "" {
		ropts = append(ropts, receiver.WithJWKSURL(cfg.EventsJWKS))
	}
	if cfg.EventsAuth != "" {
		ropts = append(ropts, receiver.WithPushAuthorization(cfg.EventsAuth))
	} else {
		s.log.Warn("server: -events-auth is not set: pushes are accepted without an Authorization header (SETs are still signature-checked)")
		ropts = append(ropts, receiver.WithInsecurePushWithoutAuthorization())
	}
	if s.receiver, err = receiver.New(ctx, ropts...); err != nil {
		return nil, fmt.Errorf("server: SSF receiver for %s: %w", cfg.EventsIssuer, err)
	}
	if s.eventsLis, err = net.Listen("tcp", cfg.EventsAddr); err != nil {
		return nil, fmt.Errorf("server: listen %s: %w", cfg.EventsAddr, err)
	}
	mux.Handle("POST "+EventsPath, s.receiver)
	// Logout tokens and GTR JWTs are verified with the validator's keys:
	// the issuer's discovery jwks_uri, refreshed in the background.
	gtrURL := cfg.GTRURL
	if gtrURL == "" {
		gtrURL = "http://" + s.eventsLis.Addr().String() + GTRPath
	}
	if s.logout, err = logout.New(ctx,
		logout.WithStore(s.store),
		logout.WithKeys(s.validator),
		logout.WithIssuer(cfg.Issuer),
		logout.WithAudience(cfg.LogoutAudience),
		logout.WithGTREndpoint(gtrURL),
		logout.WithLogger(s.log.With("component", "logout")),
		logout.WithMeterProvider(mp),
	); err != nil {
		return nil, fmt.Errorf("server: logout receiver: %w", err)
	}
	mux.Handle(BackChannelLogoutPath, s.logout.BackChannelHandler())
	mux.Handle(GTRPath, s.logout.GTRHandler())
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}

	dl := &decisionLog{log: s.log, validator: s.validator}
	if err := s.setupHTTPAPIWith(dl, rm); err != nil {
		return nil, err
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(dl.unary, rm.unary),
		grpc.ChainStreamInterceptor(dl.stream, rm.stream),
	}
	opts = append(opts, s.caekit.ServerOptions()...)
	opts = append(opts, grpc.ChainUnaryInterceptor(tapUnary), grpc.ChainStreamInterceptor(tapStream))
	return opts, nil
}

// Addr is the gRPC address.
func (s *Server) Addr() string { return s.grpcLis.Addr().String() }

// MetricsURL is the Prometheus metrics endpoint, or "" without Metrics.
func (s *Server) MetricsURL() string {
	if s.eventsLis == nil || s.meter == nil {
		return ""
	}
	return "http://" + s.eventsLis.Addr().String() + "/metrics"
}

// EventsURL is the SSF push endpoint, or "" with NoAuth.
func (s *Server) EventsURL() string {
	if s.eventsLis == nil || s.receiver == nil {
		return ""
	}
	return "http://" + s.eventsLis.Addr().String() + EventsPath
}

// BackChannelLogoutURL is the Back-Channel Logout endpoint, or "" with NoAuth.
func (s *Server) BackChannelLogoutURL() string {
	if s.eventsLis == nil {
		return ""
	}
	return "http://" + s.eventsLis.Addr().String() + BackChannelLogoutPath
}

// GTRURL is the Global Token Revocation endpoint, or "" with NoAuth.
func (s *Server) GTRURL() string {
	if s.eventsLis == nil {
		return ""
	}
	if s.cfg.GTRURL != "" {
		return s.cfg.GTRURL
	}
	return "http://" + s.eventsLis.Addr().String() + GTRPath
}

// Store is the revocation store (nil with NoAuth).
func (s *Server) Store() revocation.Store { return s.store }

// SetPolicy replaces the policy in force (not with NoAuth).
func (s *Server) SetPolicy(p *policy.Policy) error {
	if s.engine == nil {
		return errors.New("server: no policy engine (NoAuth)")
	}
	if p == nil {
		p = &policy.Policy{}
	}
	return s.engine.Update(p)
}

// Close stops serving: open streams are ended, then everything is released.
func (s *Server) Close() error {
	var errs []error
	if s.grpc != nil {
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		if s.caekit != nil {
			s.caekit.Close() // ends watched streams so GracefulStop can finish
		}
		select {
		case <-stopped:
		case <-time.After(3 * time.Second):
			s.grpc.Stop()
			<-stopped
		}
		if err := <-s.done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errs = append(errs, err)
		}
		s.grpc = nil
	}
	errs = append(errs, s.closeHTTPAPI())
	if s.http != nil && s.httpDone != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		errs = append(errs, s.http.Shutdown(ctx))
		cancel()
		if err := <-s.httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		s.http = nil
	}
	s.cleanup()
	return errors.Join(errs...)
}

// cleanup releases everything but the servers; safe on a partial start.
func (s *Server) cleanup() {
	if s.health != nil {
		s.health.Shutdown()
	}
	if s.watcher != nil {
		_ = s.watcher.Close()
		s.watcher = nil
	}
	if s.caekit != nil {
		s.caekit.Close()
	}
	if s.receiver != nil {
		_ = s.receiver.Close()
		s.receiver = nil
	}
	if s.logout != nil {
		_ = s.logout.Close()
		s.logout = nil
	}
	if s.validator != nil {
		_ = s.validator.Close()
		s.validator = nil
	}
	if s.meter != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = s.meter.Shutdown(ctx)
		cancel()
		s.meter = nil
	}
	if s.redis != nil {
		_ = s.redis.Close()
		s.redis = nil
	}
	if s.http != nil && s.httpDone == nil { // built but never served
		_ = s.http.Close()
	}
	if s.eventsLis != nil && s.httpDone == nil {
		_ = s.eventsLis.Close()
	}
	if s.apiLis != nil && s.apiDone == nil {
		_ = s.apiLis.Close()
	}
	if s.apiCancel != nil {
		s.apiCancel()
	}
	if s.grpcLis != nil && s.done == nil {
		_ = s.grpcLis.Close()
	}
}

func subject(ctx context.Context) string {
	if c, ok := interceptor.ClaimsFromContext(ctx); ok {
		if n, ok := c.Raw["name"].(string); ok && n != "" {
			return n
		}
		return c.Subject
	}
	return ""
}

// redactURL drops the password of a redis URL for errors and logs.
func redactURL(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "***" + s[i:]
		}
	}
	return s
}

type levelFilter struct {
	min slog.Level
	h   slog.Handler
}

// Enabled reports whether l reaches the filter's minimum and the wrapped
// handler's.
func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.h.Enabled(ctx, l)
}

// Handle passes r to the wrapped handler.
func (f levelFilter) Handle(ctx context.Context, r slog.Record) error { return f.h.Handle(ctx, r) }

// WithAttrs returns the filter over the wrapped handler with a.
func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{f.min, f.h.WithAttrs(a)}
}

// WithGroup returns the filter over the wrapped handler with group n.
func (f levelFilter) WithGroup(n string) slog.Handler { return levelFilter{f.min, f.h.WithGroup(n)} }
