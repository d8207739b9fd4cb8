package jwks_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"go.uber.org/goleak"

	"github.com/caekit/caekit/internal/jwks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ecJWK is the public JWK of a fresh P-256 key with kid, as an object.
func ecJWK(t testing.TB, kid string, extra map[string]any) map[string]any {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	j, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}, Marshal: jwkset.JWKMarshalOptions{Private: true}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	b, _ := json.Marshal(j.Marshal())
	_ = json.Unmarshal(b, &m)
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func fetcher(s *httptest.Server) *jwks.Fetcher {
	return &jwks.Fetcher{Client: s.Client(), MaxBody: 64 << 10, InsecureOption: "WithInsecureHTTP"}
}

// TestKeysRules guards the kit's one JWK Set rule set (moved from the
// access-token validator so that SETs get it too): encryption keys,
// symmetric keys, unparsable keys and keys CheckKey refuses are skipped,
// not fatal; private members are dropped; a set without a usable key is an
// error.
func TestKeysRules(t *testing.T) {
	var body atomic.Value
	s := serve(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body.Load().([]byte)) })
	set := func(keys ...map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	f := fetcher(s)
	f.CheckKey = func(k crypto.PublicKey) error {
		if _, ok := k.(*ecdsa.PublicKey); !ok {
			return errors.New("not EC")
		}
		return nil
	}
	body.Store(set(ecJWK(t, "good", nil), ecJWK(t, "enc", map[string]any{"use": "enc"}),
		map[string]any{"kty": "oct", "kid": "sym", "k": "c2VjcmV0"}, map[string]any{"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"},
		map[string]any{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}))
	keys, err := f.Keys(t.Context(), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Marshal().KID != "good" {
		t.Fatalf("keys = %d, want only kid good", len(keys))
	}
	if m := keys[0].Marshal(); m.D != "" {
		t.Fatal("the private member d was kept")
	}
	if _, ok := keys[0].Key().(*ecdsa.PublicKey); !ok {
		t.Fatalf("key is %T, want the public key", keys[0].Key())
	}

	body.Store(set(ecJWK(t, "enc", map[string]any{"use": "enc"})))
	if _, err := f.Keys(t.Context(), s.URL); err == nil || !strings.Contains(err.Error(), "no usable signing key") {
		t.Fatalf("set without usable key: %v", err)
	}
	many := make([]map[string]any, jwks.MaxKeys+1)
	for i := range many {
		many[i] = map[string]any{"kty": "oct", "kid": fmt.Sprint(i), "k": "AA"}
	}
	body.Store(set(many...))
	if _, err := f.Keys(t.Context(), s.URL); err == nil || !strings.Contains(err.Error(), "at most 100") {
		t.Fatalf("oversized set: %v", err)
	}
}

// TestGetBounds guards the response rules: status 200 only, and MaxBody
// both on Content-Length and on a body that does not announce its size.
func TestGetBounds(t *testing.T) {
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			w.WriteHeader(http.StatusInternalServerError)
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 200)))
		case "/chunked":
			for range 4 {
				_, _ = w.Write([]byte(strings.Repeat("x", 60)))
				w.(http.Flusher).Flush()
			}
		}
	})
	f := fetcher(s)
	f.MaxBody = 100
	for path, want := range map[string]string{"/500": "status 500", "/big": "exceeds the 100-byte limit", "/chunked": "exceeds the 100-byte limit"} {
		if _, err := f.Get(t.Context(), s.URL+path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", path, err, want)
		}
	}
}

// TestDiscoverURLRule guards that a discovered jwks_uri is held to the URL
// rule: plain http beyond loopback is refused unless Insecure.
func TestDiscoverURLRule(t *testing.T) {
	uri := "http://idp.example/keys"
	s := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": "https://idp.example", "jwks_uri": uri})
	})
	f := fetcher(s)
	if _, err := f.Discover(t.Context(), s.URL); err == nil || !strings.Contains(err.Error(), "WithInsecureHTTP") {
		t.Fatalf("plain-http jwks_uri: %v", err)
	}
	f.Insecure = true
	if d, err := f.Discover(t.Context(), s.URL+"/"); err != nil || d.JWKSURI != uri || d.Issuer != "https://idp.example" {
		t.Fatalf("Discover = %+v, %v", d, err)
	}
}

// TestRefresher guards the one refresher's loop: Trigger causes a refresh,
// a failure is reported with its count, Delay backs off from one second up
// to the interval, and Run returns when its context ends (goleak).
func TestRefresher(t *testing.T) {
	calls := make(chan struct{}, 8)
	var fail atomic.Bool
	failures := make(chan int, 8)
	r := jwks.NewRefresher(time.Hour, func(context.Context) error {
		calls <- struct{}{}
		if fail.Load() {
			return errors.New("down")
		}
		return nil
	}, func(_ context.Context, _ error, n int) { failures <- n })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, false) }()
	r.Trigger()
	<-calls
	fail.Store(true)
	r.Trigger()
	<-calls
	if n := <-failures; n != 1 {
		t.Fatalf("failures = %d, want 1", n)
	}
	cancel()
	<-done
	for n, want := range map[int]time.Duration{0: time.Hour, 1: time.Second, 2: 2 * time.Second, 7: time.Minute, 50: time.Minute} {
		if got := r.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
	if got := jwks.NewRefresher(500*time.Millisecond, nil, nil).Delay(3); got != 500*time.Millisecond {
		t.Errorf("Delay past a short interval = %v", got)
	}
}
