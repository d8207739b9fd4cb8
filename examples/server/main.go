// Command server runs caekit's example resource API, example.inbox.v1.InboxService,
// behind caekit's server interceptors, with an SSF push receiver for the
// identity provider's security events at POST /events, and OpenID Connect
// Back-Channel Logout (POST /backchannel-logout) and Global Token
// Revocation (POST /global-token-revocation) on the same listener, and an
// HTTP front door on -http-addr (default 127.0.0.1:8502) behind the same
// caekit: the Inbox service through connect-go (Connect, gRPC-Web, gRPC over
// h2c), GET /v1/messages/{id} (JSON), GET /v1/inbox/watch (Server-Sent
// Events, cut on revocation) and the RFC 9728 metadata at
// /.well-known/oauth-protected-resource.
//
//	go run ./examples/idp -push http://127.0.0.1:8501/events -push-auth 'Bearer s3cret' \
//	    -backchannel-logout http://127.0.0.1:8501/backchannel-logout \
//	    -global-token-revocation http://127.0.0.1:8501/global-token-revocation &
//	go run ./examples/server -events-auth 'Bearer s3cret'
//
// Every decision is logged, one line each; tokens never are.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caekit/caekit/examples/internal/server"
)

func main() {
	var cfg server.Config
	flag.StringVar(&cfg.Addr, "addr", server.DefaultAddr, "gRPC listen address")
	flag.StringVar(&cfg.Issuer, "issuer", server.DefaultIssuer, "token issuer; keys by OIDC discovery")
	flag.StringVar(&cfg.Audience, "audience", server.DefaultAudience, "token audience")
	flag.StringVar(&cfg.HTTPAddr, "http-addr", server.DefaultHTTPAddr, `HTTP front door: the Inbox service over Connect, gRPC-Web and gRPC (h2c), GET /v1/messages/{id}, GET /v1/inbox/watch (SSE) and /.well-known/oauth-protected-resource; "" for none`)
	flag.StringVar(&cfg.Resource, "resource", "", "protected resource identifier of the HTTP front door, for RFC 9728 (default http://<http-addr>)")
	flag.StringVar(&cfg.EventsAddr, "events-addr", server.DefaultEventsAddr, "listen address of the SSF push receiver (POST /events)")
	flag.StringVar(&cfg.EventsIssuer, "events-issuer", "", "SET issuer (default -issuer); keys from its ssf-configuration")
	flag.StringVar(&cfg.EventsJWKS, "events-jwks", "", "JWKS URL of the SET signing keys (overrides the ssf-configuration)")
	flag.StringVar(&cfg.EventsAudience, "events-audience", "", "aud SETs must carry (default -audience)")
	flag.StringVar(&cfg.EventsAuth, "events-auth", "", "exact Authorization header pushes must carry (recommended)")
	flag.StringVar(&cfg.LogoutAudience, "logout-audience", server.DefaultLogoutAudience, "client id that logout tokens (POST /backchannel-logout on -events-addr) must name")
	flag.StringVar(&cfg.GTRURL, "gtr-url", "", "public URL of POST /global-token-revocation, the aud its JWTs carry (default http://<events-addr>/global-token-revocation)")
	flag.StringVar(&cfg.Store, "store", "memory", `revocation store: "memory" or redis://host:port/db`)
	flag.StringVar(&cfg.PolicyFile, "policy", "", "policy file (YAML or JSON), reloaded on change")
	flag.StringVar(&cfg.AuthorizationURI, "authorization-uri", "", "authorization_uri of challenges (default <issuer>/authorize)")
	flag.BoolVar(&cfg.NoAuth, "no-auth", false, "serve without caekit (benchmark baseline)")
	flag.BoolVar(&cfg.Metrics, "metrics", true, "serve OpenTelemetry metrics in Prometheus format at GET /metrics on -events-addr")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	s, err := server.Start(startCtx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
	if cfg.NoAuth {
		fmt.Printf("inbox server on %s WITHOUT authentication (-no-auth; same decision log and metrics)\n", s.Addr())
		if u := s.HTTPURL(); u != "" {
			fmt.Printf("HTTP front door (Connect, gRPC-Web, gRPC, REST, SSE) at %s, WITHOUT authentication\n", u)
		}
		if u := s.MetricsURL(); u != "" {
			fmt.Printf("metrics at %s\n", u)
		}
	} else {
		fmt.Printf("inbox server on %s (issuer %s, store %s); SSF push receiver at %s\n", s.Addr(), cfg.Issuer, redact(cfg.Store), s.EventsURL())
		fmt.Printf("back-channel logout at %s, global token revocation at %s\n", s.BackChannelLogoutURL(), s.GTRURL())
		if u := s.HTTPURL(); u != "" {
			fmt.Printf("HTTP front door (Connect, gRPC-Web, gRPC, REST, SSE) at %s; RFC 9728 metadata at %s\n", u, s.ResourceMetadataURL())
		}
		if u := s.MetricsURL(); u != "" {
			fmt.Printf("metrics at %s\n", u)
		}
	}
	<-ctx.Done()
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func redact(s string) string {
	if len(s) > 8 && s[:5] == "redis" {
		return "redis"
	}
	return s
}
