package client_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/internal/testkit/testidp"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

func TestUnaryRevocationRecoversWithOneRetry(t *testing.T) {
	e := newEnv(t, envConfig{})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	if n := e.idp.Count(); n != 1 {
		t.Fatalf("token requests after first call = %d, want 1", n)
	}
	e.revoke()
	sendsBefore := e.sends.Load()
	if err := e.get(); err != nil {
		t.Fatalf("call after revocation: %v", err)
	}
	if got := e.sends.Load() - sendsBefore; got != 2 {
		t.Fatalf("sends for the challenged call = %d, want 2", got)
	}
	reqs := e.idp.Requests()
	if len(reqs) != 2 {
		t.Fatalf("token requests = %d, want 2", len(reqs))
	}
	if want := `{"access_token":{"xms_cc":{"values":["cp1"]}}}`; reqs[0].Claims != want {
		t.Fatalf("first claims %s, want %s", reqs[0].Claims, want)
	}
	if !strings.HasPrefix(reqs[1].Claims, `{"access_token":{"xms_cc":{"values":["cp1"]},"nbf":{"essential":true,"value":"`) {
		t.Fatalf("challenge claims %s: want cp1 merged with the nbf challenge", reqs[1].Claims)
	}
	if reqs[1].Scope != testidp.Scope {
		t.Fatalf("scope %q", reqs[1].Scope)
	}
	if e.obs.count(client.EventChallenge) != 1 || e.obs.count(client.EventRetry) != 1 || e.obs.count(client.EventNotRetried) != 0 {
		t.Fatalf("events %+v", e.obs.events)
	}
	// The new token is cached: the next call needs no token request.
	if err := e.get(); err != nil || e.idp.Count() != 2 {
		t.Fatalf("next call: %v, token requests %d", err, e.idp.Count())
	}
}

// alwaysStepUp challenges every call for an auth context the IdP never adds.
func alwaysStepUp() interceptor.Option {
	return interceptor.WithChecks(interceptor.CheckFunc(func(context.Context, *interceptor.Request) *interceptor.Denial {
		return &interceptor.Denial{Reason: caev1.Reason_REASON_AUTH_CONTEXT, Claims: challenge.AuthContextClaims("c9"),
			Params: []interceptor.Param{{Name: "cc_type", Value: "authcontext"}}}
	}))
}

func TestUnarySecondChallengeReturnedNotRetried(t *testing.T) {
	e := newEnv(t, envConfig{serverOpts: []interceptor.Option{alwaysStepUp()}})
	const calls = 3
	for i := range calls {
		err := e.get()
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("call %d: err = %v, want Unauthenticated", i, err)
		}
		ch, xerr := challenge.Extract(err)
		ok := xerr == nil
		if !ok || !ch.InsufficientClaims() || ch.Claims != challenge.AuthContextClaims("c9") || ch.Reason != caev1.Reason_REASON_AUTH_CONTEXT {
			t.Fatalf("challenge.Extract = %+v %v", ch, ok)
		}
	}
	if got := e.sends.Load(); got != 2*calls {
		t.Fatalf("sends = %d, want exactly one retry per call (%d)", got, 2*calls)
	}
	if got := e.idp.Count(); got != 1+calls {
		t.Fatalf("token requests = %d, want %d", got, 1+calls)
	}
	if !strings.Contains(e.idp.Requests()[1].Claims, `"acrs":{"essential":true,"value":"c9"}`) {
		t.Fatalf("step-up claims not requested: %s", e.idp.Requests()[1].Claims)
	}
	if e.obs.count(client.EventNotRetried) != calls {
		t.Fatalf("not-retried events = %d, want %d", e.obs.count(client.EventNotRetried), calls)
	}
}

func TestUnaryAuthContextStepUpSucceeds(t *testing.T) {
	needC1 := interceptor.WithChecks(interceptor.CheckFunc(func(_ context.Context, r *interceptor.Request) *interceptor.Denial {
		if r.Claims.HasACR("c1") {
			return nil
		}
		return &interceptor.Denial{Reason: caev1.Reason_REASON_AUTH_CONTEXT, Claims: challenge.AuthContextClaims("c1")}
	}))
	e := newEnv(t, envConfig{serverOpts: []interceptor.Option{needC1}})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	if e.sends.Load() != 2 || e.idp.Count() != 2 {
		t.Fatalf("sends %d token requests %d, want 2 and 2", e.sends.Load(), e.idp.Count())
	}
	want := `{"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c1"}}}`
	if got := e.idp.Requests()[1].Claims; got != want {
		t.Fatalf("claims %s want %s", got, want)
	}
}

func TestUnaryNoCapabilityPlainRejectionNotRetried(t *testing.T) {
	// Without cp1 the server answers a revoked token with invalid_token and
	// no claims: nothing to ask the IdP for, so no retry.
	e := newEnv(t, envConfig{clientOpts: []client.Option{client.WithCapabilities()}})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	if c := e.idp.Requests()[0].Claims; c != "" {
		t.Fatalf("claims sent without capabilities: %q", c)
	}
	e.revoke()
	before := e.sends.Load()
	err := e.get()
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("err = %v", err)
	}
	if ch, xerr := challenge.Extract(err); xerr == nil && ch.InsufficientClaims() {
		t.Fatalf("plain rejection reported as claims challenge: %+v", ch)
	}
	if got := e.sends.Load() - before; got != 1 {
		t.Fatalf("sends = %d, want 1 (no retry)", got)
	}
	if e.idp.Count() != 1 {
		t.Fatalf("token requests = %d, want 1", e.idp.Count())
	}
}

func TestUnaryConcurrentChallengedCallersShareOneFetch(t *testing.T) {
	e := newEnv(t, envConfig{})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	e.idp.SetDelay(50 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() { errs <- e.get() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.idp.Count(); got != 2 {
		t.Fatalf("token requests = %d, want 2 (one initial, one shared challenge fetch)", got)
	}
}

func TestConcurrentFirstCallersShareOneFetch(t *testing.T) {
	e := newEnv(t, envConfig{setupIdP: func(i *testidp.IdP) { i.SetDelay(100 * time.Millisecond) }})
	var wg sync.WaitGroup
	var failed sync.Map
	for i := range 20 {
		wg.Go(func() {
			if err := e.get(); err != nil {
				failed.Store(i, err)
			}
		})
	}
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("caller %v: %v", k, v); return true })
	if got := e.idp.Count(); got != 1 {
		t.Fatalf("token requests = %d, want 1", got)
	}
}

func TestRefusesInsecureTransport(t *testing.T) {
	e := newEnv(t, envConfig{noInsecure: true})
	err := e.get()
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "refusing to send an access token") {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if e.sends.Load() != 0 {
		t.Fatalf("the call reached the server")
	}
}

func TestTLSWorksWithoutInsecureOption(t *testing.T) {
	e := newEnv(t, envConfig{tls: true})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	if err := e.get(); err != nil {
		t.Fatalf("after revocation over TLS: %v", err)
	}
}

func TestBadTokensFromSource(t *testing.T) {
	sentinel := errors.New("idp says no")
	tests := []struct {
		name string
		tok  *client.Token
		err  error
		want string
	}{
		{"empty", &client.Token{ExpiresAt: time.Now().Add(time.Hour)}, nil, "empty access token"},
		{"expired", &client.Token{AccessToken: "abc", ExpiresAt: time.Now().Add(-time.Minute)}, nil, "already expired"},
		{"no expiry", &client.Token{AccessToken: "abc"}, nil, "without an expiry"},
		{"nil", nil, nil, "no token and no error"},
		{"bad bytes", &client.Token{AccessToken: "sekr1t tok", ExpiresAt: time.Now().Add(time.Hour)}, nil, "not allowed in a bearer token"},
		{"error", nil, sentinel, "idp says no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := client.TokenSourceFunc(func(context.Context, client.TokenRequest) (*client.Token, error) { return tt.tok, tt.err })
			e := newEnv(t, envConfig{src: func(*testidp.IdP) client.TokenSource { return src }})
			err := e.get()
			if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want Unauthenticated containing %q", err, tt.want)
			}
			var te *client.TokenError
			if !errors.As(err, &te) {
				t.Fatalf("not a *TokenError: %T", err)
			}
			if tt.err != nil && !errors.Is(err, sentinel) {
				t.Fatalf("cause lost: %v", err)
			}
			if strings.Contains(err.Error(), "sekr1t") {
				t.Fatalf("token leaked into error: %v", err)
			}
			if e.sends.Load() != 0 {
				t.Fatal("call sent without a token")
			}
		})
	}
}

func TestCallScopesUseSeparateTokens(t *testing.T) {
	e := newEnv(t, envConfig{})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	// Another scope set: a separate token (the test IdP ignores the scope).
	if _, err := e.api.GetMessage(e.ctx(), nil, client.CallScopes("api://other/.default")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.GetMessage(e.ctx(), nil, client.CallScopes("api://other/.default")); err != nil {
		t.Fatal(err)
	}
	reqs := e.idp.Requests()
	if len(reqs) != 2 || reqs[1].Scope != "api://other/.default" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestClosedClient(t *testing.T) {
	e := newEnv(t, envConfig{})
	_ = e.cli.Close()
	err := e.get()
	if !errors.Is(err, client.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

// When the IdP refuses the token the challenge asks for, the call returns an
// error that is still the server's challenge and also unwraps to the IdP's
// refusal, so the application can tell "sign in again" from other failures.
func TestUnaryReacquireFailureUnwrapsToBoth(t *testing.T) {
	e := newEnv(t, envConfig{})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.revoke()
	e.idp.SetDown(true)
	err := e.get()
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("err = %v, want Unauthenticated", err)
	}
	var re *client.ReacquireError
	if !errors.As(err, &re) {
		t.Fatalf("err %T %v is not a *client.ReacquireError", err, err)
	}
	var te *client.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("err does not unwrap to *client.TokenError: %v", err)
	}
	ch, xerr := challenge.Extract(err)
	ok := xerr == nil
	if !ok || !ch.InsufficientClaims() || ch.Reason != caev1.Reason_REASON_SESSION_REVOKED {
		t.Fatalf("challenge.Extract = %+v, %v; want the server's SESSION_REVOKED challenge", ch, ok)
	}
	if !strings.Contains(err.Error(), "re-acquiring a token for the challenge failed") {
		t.Fatalf("message does not say the re-acquisition failed: %v", err)
	}
	if got := e.sends.Load(); got != 2 {
		t.Fatalf("sends = %d, want 2 (no retry without a token)", got)
	}
}
