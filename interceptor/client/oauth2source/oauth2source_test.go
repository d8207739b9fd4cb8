package oauth2source_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/oauth2source"
	"github.com/caekit/caekit/internal/testkit/testidp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClientCredentials(t *testing.T) {
	idp := testidp.New()
	defer idp.Close()
	cfg := clientcredentials.Config{ClientID: testidp.ClientID, ClientSecret: testidp.ClientSecret, TokenURL: idp.TokenURL(), Scopes: []string{testidp.Scope}}
	src := oauth2source.New(cfg.TokenSource(context.Background()))
	tok, err := src.Token(context.Background(), client.TokenRequest{Claims: `{"access_token":{"xms_cc":{"values":["cp1"]}}}`})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || time.Until(tok.ExpiresAt) < 59*time.Minute {
		t.Fatalf("token %+v", tok)
	}
	if r := idp.Requests(); len(r) != 1 || r[0].Claims != "" || r[0].Scope != testidp.Scope {
		t.Fatalf("requests %+v (capabilities cannot be sent)", r)
	}
	_, err = src.Token(context.Background(), client.TokenRequest{BypassCache: true, ChallengeClaims: `{"access_token":{"nbf":{"essential":true,"value":"1"}}}`})
	if !errors.Is(err, oauth2source.ErrClaimsUnsupported) {
		t.Fatalf("err = %v, want ErrClaimsUnsupported", err)
	}
	if len(idp.Requests()) != 1 {
		t.Fatal("a claims request reached the IdP")
	}
}

func TestNoExpiryAndErrors(t *testing.T) {
	src := oauth2source.New(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"}))
	if _, err := src.Token(context.Background(), client.TokenRequest{}); err == nil {
		t.Fatal("token without expiry accepted")
	}
	idp := testidp.New()
	defer idp.Close()
	cfg := clientcredentials.Config{ClientID: testidp.ClientID, ClientSecret: "wrong", TokenURL: idp.TokenURL()}
	if _, err := oauth2source.New(cfg.TokenSource(context.Background())).Token(context.Background(), client.TokenRequest{}); err == nil {
		t.Fatal("bad client accepted")
	}
}

// TestStepUpUnsupported: an oauth2.TokenSource cannot pass RFC 9470
// acr_values or max_age; such a request fails clearly and reaches no IdP.
func TestStepUpUnsupported(t *testing.T) {
	idp := testidp.New()
	defer idp.Close()
	cfg := clientcredentials.Config{ClientID: testidp.ClientID, ClientSecret: testidp.ClientSecret, TokenURL: idp.TokenURL(), Scopes: []string{testidp.Scope}}
	src := oauth2source.New(cfg.TokenSource(context.Background()))
	_, err := src.Token(context.Background(), client.TokenRequest{BypassCache: true, ACRValues: []string{"urn:example:mfa"}})
	if !errors.Is(err, oauth2source.ErrStepUpUnsupported) {
		t.Fatalf("err = %v, want ErrStepUpUnsupported", err)
	}
	if idp.Count() != 0 {
		t.Fatal("a step-up request reached the IdP")
	}
}

// TestNilTokenSourceFailsClosed guards that a Source made with a nil
// oauth2.TokenSource fails each Token call with ErrNilTokenSource instead of
// panicking in the client's fetch goroutine.
func TestNilTokenSourceFailsClosed(t *testing.T) {
	if _, err := oauth2source.New(nil).Token(context.Background(), client.TokenRequest{}); !errors.Is(err, oauth2source.ErrNilTokenSource) {
		t.Fatalf("Token = %v, want ErrNilTokenSource", err)
	}
}
