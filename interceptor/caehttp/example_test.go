package caehttp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/caehttp"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/revocation"
)

var exampleKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

func exampleValidator() *token.Validator {
	v, err := token.NewValidator(context.Background(),
		token.WithIssuer("https://login.example/tenant-1/v2.0"),
		token.WithAudience("api://inbox"),
		token.WithStaticKey("k1", &exampleKey.PublicKey),
		token.WithLogger(nil),
	)
	if err != nil {
		panic(err)
	}
	return v
}

// exampleToken is what an identity provider would issue to a CAE-capable
// client (xms_cc cp1).
func exampleToken(sub string) string {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://login.example/tenant-1/v2.0", "aud": "api://inbox", "sub": sub,
		"oid": "oid-" + sub, "tid": "tenant-1", "xms_cc": []string{"cp1"},
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	t.Header["kid"] = "k1"
	s, err := t.SignedString(exampleKey)
	if err != nil {
		panic(err)
	}
	return s
}

// The middleware in front of a REST route: the same Server can be handed
// to the gRPC interceptors and the Connect interceptors too.
func ExampleMiddleware() {
	v := exampleValidator()
	defer v.Close()
	store, err := revocation.NewMemory()
	if err != nil {
		panic(err)
	}
	srv, err := interceptor.New(v, interceptor.WithStore(store),
		interceptor.WithAuthorizationURI("https://login.example/authorize"))
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	cae, err := caehttp.Middleware(srv)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/messages/{id}", cae(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := interceptor.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "message %s for %s", r.PathValue("id"), c.Subject)
	})))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	call := func() {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/messages/42", nil)
		req.Header.Set("Authorization", "Bearer "+exampleToken("alice"))
		resp, err := ts.Client().Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate") != "")
		if resp.StatusCode == http.StatusOK {
			fmt.Println(string(b))
		}
	}
	call()
	// The user is disabled: the next call is challenged.
	_ = store.Put(context.Background(), revocation.Event{
		Type: revocation.TypeUserDisabled, Subject: revocation.ObjectKey("tenant-1", "oid-alice"), Time: time.Now(),
	})
	call()
	// Output:
	// 200 false
	// message 42 for alice
	// 401 true
}
