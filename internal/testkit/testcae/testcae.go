// Package testcae is the access-token setup that the interceptor tests
// (interceptor, interceptor/caehttp, interceptor/caeconnect) share: one
// issuer, audience, tenant and ES256 signing key; a minter of cp1-capable
// tokens for them; a token.Validator that trusts the key; an
// interceptor.Server over a store; and the user-disabled event that revokes
// a test user.
//
// It is test support only, like its parent testkit, and lives apart from it
// because it imports interceptor, token and revocation, which testkit must
// not (see testkit's package doc): only external (package x_test) tests may
// import it, never the in-package tests of the packages it imports.
package testcae

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/revocation"
)

// The test identity provider's and API's parameters.
const (
	// Issuer is the tokens' iss, which Validator accepts.
	Issuer = "https://login.example/tenant-1/v2.0"
	// Audience is the tokens' aud, which Validator requires.
	Audience = "api://inbox"
	// Tenant is the tokens' tid.
	Tenant = "tenant-1"
	// AuthorizationURI is the authorization_uri of Server's challenges.
	AuthorizationURI = "https://login.example/authorize"
	// KID is the signing key's key id.
	KID = "k1"
)

var (
	keyOnce sync.Once
	key     *ecdsa.PrivateKey
)

// Key returns the P-256 key that signs the test tokens: one per test
// binary, made on first use.
func Key() *ecdsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		key = k
	})
	return key
}

// Claims returns the claims of a cp1-capable access token for sub, issued
// at iat and valid for an hour: iss, aud, sub, oid ("oid-" + sub, as
// Revoke names it), tid, iat, exp and xms_cc ["cp1"].
func Claims(sub string, iat time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": Issuer, "aud": Audience, "sub": sub, "oid": "oid-" + sub, "tid": Tenant,
		"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(), "xms_cc": []string{"cp1"},
	}
}

// Sign signs c as an ES256 token under KID with Key.
func Sign(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	return testkit.Minter{Alg: "ES256", KID: KID, Key: Key()}.Mint(t, c)
}

// Mint signs the Claims of sub issued 10 s ago by the wall clock (which
// Validator also reads), with extra set over them: a nil value in extra
// removes that claim (JSON null would be a wrong-type claim).
func Mint(t testing.TB, sub string, extra jwt.MapClaims) string {
	t.Helper()
	c := Claims(sub, time.Now().Add(-10*time.Second))
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return Sign(t, c)
}

// Validator returns a token.Validator for Issuer and Audience that trusts
// Key under KID and does not log, with opts applied after those. It is
// closed when the test ends.
func Validator(t testing.TB, opts ...token.Option) *token.Validator {
	t.Helper()
	base := []token.Option{
		token.WithIssuer(Issuer),
		token.WithAudience(Audience),
		token.WithStaticKey(KID, &Key().PublicKey),
		token.WithLogger(nil),
	}
	v, err := token.NewValidator(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// Server returns an interceptor.Server over v and store whose challenges
// name AuthorizationURI, with opts applied after those. It is closed when
// the test ends (register it before the servers that use it, so that it
// closes after them).
func Server(t testing.TB, v interceptor.Validator, store revocation.Store, opts ...interceptor.Option) *interceptor.Server {
	t.Helper()
	s, err := interceptor.New(v, append([]interceptor.Option{
		interceptor.WithStore(store),
		interceptor.WithAuthorizationURI(AuthorizationURI),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Revoke stores, now by the wall clock, the user-disabled event of sub's
// object id in Tenant (ID "ev-" + sub), which revokes the tokens Mint
// issued for sub, and returns it.
func Revoke(t testing.TB, store revocation.Store, sub string) revocation.Event {
	t.Helper()
	ev := revocation.Event{
		ID:      "ev-" + sub,
		Type:    revocation.TypeUserDisabled,
		Subject: revocation.ObjectKey(Tenant, "oid-"+sub),
		Time:    time.Now(),
	}
	if err := store.Put(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}
