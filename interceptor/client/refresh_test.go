package client_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/testidp"
)

// soonRefresh wraps the IdP source and moves RefreshAt close, as a short
// refresh_in would (refresh_in has one-second granularity).
func soonRefresh(after time.Duration) func(*testidp.IdP) client.TokenSource {
	return func(idp *testidp.IdP) client.TokenSource {
		return client.TokenSourceFunc(func(ctx context.Context, req client.TokenRequest) (*client.Token, error) {
			tok, err := mustSource(idp).Token(ctx, req)
			if err != nil {
				return nil, err
			}
			tok.RefreshAt = time.Now().Add(after)
			return tok, nil
		})
	}
}

func TestProactiveRefreshAtRefreshIn(t *testing.T) {
	e := newEnv(t, envConfig{src: soonRefresh(50 * time.Millisecond)})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	first, _ := e.cli.Token(e.ctx())
	time.Sleep(80 * time.Millisecond)
	// This call uses the still-valid token and starts the refresh.
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the proactive refresh", func() bool { return e.idp.Count() == 2 })
	testkit.Eventually(t, "the new token in the cache", func() bool {
		cur, _ := e.cli.Token(e.ctx())
		return cur.AccessToken != first.AccessToken
	})
	if e.idp.Requests()[1].Claims != `{"access_token":{"xms_cc":{"values":["cp1"]}}}` {
		t.Fatalf("refresh claims %s", e.idp.Requests()[1].Claims)
	}
}

func TestRefreshInFromTokenEndpoint(t *testing.T) {
	// The real refresh_in path: the IdP says refresh after 1 s.
	e := newEnv(t, envConfig{setupIdP: func(i *testidp.IdP) { i.RefreshIn = time.Second }})
	tok, err := e.cli.Token(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(tok.RefreshAt); d <= 0 || d > time.Second {
		t.Fatalf("RefreshAt in %v, want within 1s", d)
	}
}

func TestIdPOutageWhileTokenValidFailsNoCalls(t *testing.T) {
	var logs testkit.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e := newEnv(t, envConfig{src: soonRefresh(10 * time.Millisecond), clientOpts: []client.Option{client.WithLogger(log)}})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	e.idp.SetDown(true)
	time.Sleep(20 * time.Millisecond)
	deadline := time.Now().Add(400 * time.Millisecond)
	calls := 0
	for time.Now().Before(deadline) {
		if err := e.get(); err != nil {
			t.Fatalf("call %d failed during the IdP outage: %v", calls, err)
		}
		calls++
	}
	attempts := e.idp.Count() - 1
	if attempts < 1 {
		t.Fatal("no refresh was attempted")
	}
	// Backoff 20ms..200ms over ~400ms allows a handful of attempts, far fewer than calls.
	if attempts > 8 || attempts >= calls {
		t.Fatalf("%d refresh attempts for %d calls: backoff not applied", attempts, calls)
	}
	if n := strings.Count(logs.String(), "token refresh failed"); n != 1 {
		t.Fatalf("warned %d times, want once:\n%s", n, logs.String())
	}
	if e.obs.count(client.EventTokenFetchFailed) < 1 {
		t.Fatal("no failure event")
	}
	e.idp.SetDown(false)
	testkit.Eventually(t, "recovery", func() bool {
		_ = e.get()
		return e.obs.count(client.EventTokenFetched) >= 2
	})
}

func TestConcurrentCallersDuringRefreshOneRequest(t *testing.T) {
	e := newEnv(t, envConfig{src: soonRefresh(20 * time.Millisecond)})
	if err := e.get(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	e.idp.SetDelay(400 * time.Millisecond)
	var wg sync.WaitGroup
	start := time.Now()
	for range 20 {
		wg.Go(func() {
			if err := e.get(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("callers waited %v for the refresh; they should use the valid token", d)
	}
	testkit.Eventually(t, "refresh", func() bool { return e.obs.count(client.EventTokenFetched) == 2 })
	if got := e.idp.Count(); got != 2 {
		t.Fatalf("token requests = %d, want 2", got)
	}
}
