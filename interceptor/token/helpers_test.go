package token_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
)

const testAudience = "api://inbox"

// Keys are generated once per test binary: RSA generation is slow.
var (
	rsaKey  = sync.OnceValue(func() *rsa.PrivateKey { return loadRSA("testdata/rsa1.pem") })
	rsaKey2 = sync.OnceValue(func() *rsa.PrivateKey { return loadRSA("testdata/rsa2.pem") })
	ecKey   = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
	edKey = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

// loadRSA reads a PKCS#8 test key. RSA keys are pre-generated (with
// openssl genpkey) because generating them under the race detector takes
// seconds; they are test-only keys.
func loadRSA(path string) *rsa.PrivateKey {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		panic("no PEM block in " + path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		panic(err)
	}
	return k.(*rsa.PrivateKey)
}

// signer is a private key with the alg it signs and the kid it is published under.
type signer struct {
	alg string
	kid string
	key crypto.Signer
	// pinAlg publishes the JWK with an "alg" member.
	pinAlg bool
}

func rsaSigner(alg, kid string) signer { return signer{alg: alg, kid: kid, key: rsaKey()} }
func ecSigner(kid string) signer       { return signer{alg: "ES256", kid: kid, key: ecKey()} }
func edSigner(kid string) signer       { return signer{alg: "EdDSA", kid: kid, key: edKey()} }

// sign makes a compact JWS of claims with extra header fields.
func (s signer) sign(t testing.TB, claims map[string]any, hdr map[string]any) string {
	t.Helper()
	return testkit.Minter{Alg: s.alg, KID: s.kid, Key: s.key}.MintHeader(t, claims, hdr)
}

// claimsFor returns typical Entra-like claims for issuer, valid now.
func claimsFor(issuer string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":      issuer,
		"aud":      testAudience,
		"sub":      "sub-1",
		"oid":      "oid-1",
		"tid":      "tid-1",
		"sid":      "sid-1",
		"azp":      "client-1",
		"jti":      "jti-1",
		"upn":      "alice@example.com",
		"deviceid": "dev-1",
		"idtyp":    "user",
		"xms_cc":   "cp1",
		"acrs":     []string{"c1", "c2"},
		"ipaddr":   "192.0.2.7",
		"iat":      now.Add(-time.Minute).Unix(),
		"nbf":      now.Add(-time.Minute).Unix(),
		"exp":      now.Add(time.Hour).Unix(),
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

// rawToken assembles a token from a header and payload JSON and a signature.
func rawToken(header, payload string, sig []byte) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(header)) + "." + e.EncodeToString([]byte(payload)) + "." + e.EncodeToString(sig)
}

// idp is a real HTTP OpenID Provider on loopback serving discovery and a
// JWK Set that tests can rotate, break and block; it counts every request.
type idp struct {
	srv *httptest.Server

	mu     sync.Mutex
	keys   []jwkset.JWKMarshal
	status int           // JWKS status; 0 means 200
	block  chan struct{} // when non-nil, JWKS requests wait for it to close
	delay  time.Duration // JWKS requests wait this long before answering
	body   []byte        // when non-nil, served verbatim as the JWKS

	discoveryHits atomic.Int64
	jwksHits      atomic.Int64
	otherHits     atomic.Int64
}

func newIDP(t testing.TB, signers ...signer) *idp {
	t.Helper()
	p := &idp{}
	p.setKeys(t, signers...)
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		p.discoveryHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.issuer(), "jwks_uri": p.issuer() + "/keys"})
	case "/keys":
		p.jwksHits.Add(1)
		p.mu.Lock()
		block, status, body, delay := p.block, p.status, p.body, p.delay
		set := jwkset.JWKSMarshal{Keys: append([]jwkset.JWKMarshal(nil), p.keys...)}
		p.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		if status != 0 {
			http.Error(w, "unavailable", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if body != nil {
			_, _ = w.Write(body)
			return
		}
		_ = json.NewEncoder(w).Encode(set)
	default:
		p.otherHits.Add(1)
		http.NotFound(w, r)
	}
}

func (p *idp) issuer() string { return p.srv.URL }

func (p *idp) setKeys(t testing.TB, signers ...signer) {
	t.Helper()
	var keys []jwkset.JWKMarshal
	for _, s := range signers {
		md := jwkset.JWKMetadataOptions{KID: s.kid, USE: jwkset.UseSig}
		if s.pinAlg {
			md.ALG = jwkset.ALG(s.alg)
		}
		jwk, err := jwkset.NewJWKFromKey(s.key.Public(), jwkset.JWKOptions{Metadata: md})
		if err != nil {
			t.Fatalf("jwk: %v", err)
		}
		keys = append(keys, jwk.Marshal())
	}
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

func (p *idp) setStatus(code int) {
	p.mu.Lock()
	p.status = code
	p.mu.Unlock()
}

// blockJWKS makes JWKS requests hang until the returned func is called.
func (p *idp) blockJWKS() (release func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	p.block = ch
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.block = nil
			p.mu.Unlock()
			close(ch)
		})
	}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// newValidator builds a validator with test defaults plus opts and closes it
// at the end of the test.
func newValidator(t testing.TB, opts ...token.Option) *token.Validator {
	t.Helper()
	base := []token.Option{token.WithAudience(testAudience), token.WithLogger(discard)}
	v, err := token.NewValidator(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// wantErr fails unless err wraps target.
func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// noToken fails if s contains the token or any of its parts.
func noToken(t testing.TB, s, raw string) {
	t.Helper()
	for _, part := range strings.Split(raw, ".") {
		if len(part) > 8 && strings.Contains(s, part) {
			t.Fatalf("error message contains part of the token: %q", s)
		}
	}
}

func stdB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func mustP384() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustRSA1024() *rsa.PrivateKey { return loadRSA("testdata/rsa1024.pem") }
