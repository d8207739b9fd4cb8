package token_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
)

// TestCustomClientRedirectsGuarded (issue 17 step 1, one redirect guard:
// jose.GuardRedirects, shared with the SET receiver) guards that a JWKS
// fetch through a WithHTTPClient client may not be redirected to plain
// http on a non-loopback host. Before, only the validator's default client
// had the rule, so a caller's client followed the redirect (here it would
// then have failed to resolve the host, with another error).
func TestCustomClientRedirectsGuarded(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://jwks.example.test/keys", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	own := srv.Client()
	_, err := token.NewValidator(context.Background(), token.WithAudience(testAudience), token.WithLogger(discard),
		token.WithIssuer("iss"), token.WithJWKSURL(srv.URL+"/keys"), token.WithHTTPClient(own))
	if err == nil || !strings.Contains(err.Error(), "redirect refused") || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("NewValidator = %v, want the redirect to plain http refused", err)
	}
	if own.CheckRedirect != nil {
		t.Fatal("WithHTTPClient's client was modified")
	}
}
