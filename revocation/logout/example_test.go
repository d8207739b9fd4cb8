package logout_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/logout"
)

// A Back-Channel Logout endpoint sharing the access-token validator's keys:
// a logout token naming a session revokes that session's access tokens.
func Example() {
	const issuer = "https://idp.example"
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v, err := token.NewValidator(context.Background(), token.WithIssuer(issuer), token.WithAudience("my-api"),
		token.WithStaticKey("k1", &key.PublicKey))
	if err != nil {
		panic(err)
	}
	defer v.Close()
	store, err := revocation.NewMemory()
	if err != nil {
		panic(err)
	}
	r, err := logout.New(context.Background(), logout.WithStore(store), logout.WithKeys(v), logout.WithAudience("my-api"))
	if err != nil {
		panic(err)
	}
	defer r.Close()
	srv := httptest.NewServer(r.BackChannelHandler())
	defer srv.Close()

	// What the IdP sends.
	lt := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": issuer, "aud": "my-api", "iat": time.Now().Unix(), "jti": "lt-1", "sid": "session-1",
		"events": map[string]any{logout.EventBackChannelLogout: map[string]any{}},
	})
	lt.Header["kid"], lt.Header["typ"] = "k1", "logout+jwt"
	raw, _ := lt.SignedString(key)
	resp, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader(url.Values{"logout_token": {raw}}.Encode()))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Cache-Control"))
	ev, ok := store.Lookup(revocation.SessionKey(issuer, "session-1"))
	fmt.Println(ok, ev.Type)
	// Output:
	// 200 no-store
	// true session_revoked
}
