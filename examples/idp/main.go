// Command idp runs caekit's development identity provider: OIDC discovery,
// a JWKS, a password and client_credentials token endpoint that issues CAE
// tokens, and admin endpoints that push CAEP/RISC Security Event Tokens to SSF
// receivers, OpenID Connect Back-Channel Logout tokens to -backchannel-logout
// endpoints and Global Token Revocation requests to -global-token-revocation
// endpoints.
//
// FOR DEVELOPMENT ONLY: keys live in memory, the seeded accounts have
// well-known passwords and the admin API is unauthenticated.
//
//	go run ./examples/idp -push http://127.0.0.1:8501/events \
//	    -backchannel-logout http://127.0.0.1:8501/backchannel-logout \
//	    -global-token-revocation http://127.0.0.1:8501/global-token-revocation
//	go run ./examples/idp -nbf-mode honor   # or ignore (the default), wait
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/caekit/caekit/examples/internal/idp"
)

type multi []string

// String joins the values with commas (flag.Value).
func (m *multi) String() string { return strings.Join(*m, ",") }

// Set appends s (flag.Value).
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	var push, bcl, gtr multi
	addr := flag.String("addr", idp.DefaultAddr, "listen address")
	issuer := flag.String("issuer", "", "issuer URL (default http://<addr>)")
	audience := flag.String("audience", idp.DefaultAudience, "aud of tokens and SETs")
	flag.Var(&push, "push", "SSF push receiver URL to deliver SETs to (repeatable)")
	flag.Var(&bcl, "backchannel-logout", "OpenID Connect Back-Channel Logout endpoint to post logout tokens to (POST /admin/users/{name}/logout; repeatable)")
	flag.Var(&gtr, "global-token-revocation", "Global Token Revocation endpoint to post to (POST /admin/users/{name}/universal-logout; repeatable)")
	logoutAud := flag.String("logout-audience", idp.DefaultLogoutAudience, "aud of logout tokens: the relying party's client id")
	pushAuth := flag.String("push-auth", "", "Authorization header value sent with pushes")
	caeLife := flag.Duration("cae-lifetime", idp.DefaultCAELifetime, "lifetime of CAE (cp1) tokens")
	life := flag.Duration("lifetime", idp.DefaultLifetime, "lifetime of other tokens")
	nbfMode := flag.String("nbf-mode", idp.NotBeforeIgnore.String(),
		"how a requested nbf (a revocation challenge) is answered: ignore (b: issue at once, like Okta, Keycloak, Auth0), "+
			"honor (a: put it in the token's nbf, issue at once) or wait (c: issue once the clock reaches it)")
	flag.Parse()
	mode, err := idp.ParseNotBeforeMode(*nbfMode)
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // already prefixed "idp:"
		os.Exit(2)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if host, _, err := net.SplitHostPort(*addr); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			log.Warn("the development IdP's admin API is unauthenticated: do not expose it beyond loopback", "addr", *addr)
		}
	}
	opts := []idp.Option{
		idp.WithAudience(*audience), idp.WithPushAuth(*pushAuth),
		idp.WithCAELifetime(*caeLife), idp.WithLifetime(*life), idp.WithLogger(log),
		idp.WithNotBeforeMode(mode), idp.WithLogoutAudience(*logoutAud),
	}
	for _, u := range bcl {
		opts = append(opts, idp.WithBackChannelLogoutTarget(u))
	}
	for _, u := range gtr {
		opts = append(opts, idp.WithGTRTarget(u))
	}
	if *issuer != "" {
		opts = append(opts, idp.WithIssuer(*issuer))
	}
	for _, p := range push {
		opts = append(opts, idp.WithPushTarget(p))
	}
	p, err := idp.Listen(*addr, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idp:", err)
		os.Exit(1)
	}
	fmt.Println(p.Banner())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	if err := p.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "idp:", err)
		os.Exit(1)
	}
}
