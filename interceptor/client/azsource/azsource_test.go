package azsource_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.uber.org/goleak"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/azsource"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/internal/testkit/testidp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// idpCredential is an azcore.TokenCredential backed by the loopback test
// IdP; it records the options it was given and, like azidentity with
// EnableCAE, declares cp1 itself.
type idpCredential struct {
	src  *httpsource.Source
	mu   sync.Mutex
	seen []policy.TokenRequestOptions
}

func (c *idpCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	c.seen = append(c.seen, o)
	c.mu.Unlock()
	claims := `{"access_token":{"xms_cc":{"values":["cp1"]}}}`
	if o.Claims != "" {
		claims = o.Claims // a real credential would merge; the test IdP reads acrs/nbf
	}
	t, err := c.src.Token(ctx, client.TokenRequest{Scopes: o.Scopes, Claims: claims})
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: t.AccessToken, ExpiresOn: t.ExpiresAt, RefreshOn: t.RefreshAt}, nil
}

func TestOptionsPassedThrough(t *testing.T) {
	idp := testidp.New()
	defer idp.Close()
	idp.RefreshIn = 10 * time.Minute
	hs, err := httpsource.New(idp.TokenURL(), httpsource.WithClientCredentials(testidp.ClientID, testidp.ClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	cred := &idpCredential{src: hs}
	src, err := azsource.New(cred, azsource.WithTenantID("tenant-1"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token(context.Background(), client.TokenRequest{Scopes: []string{testidp.Scope}, Claims: `{"access_token":{"xms_cc":{"values":["cp1"]}}}`})
	if err != nil || tok.RefreshAt.IsZero() {
		t.Fatalf("%+v %v", tok, err)
	}
	challenge := `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	if _, err := src.Token(context.Background(), client.TokenRequest{Scopes: []string{testidp.Scope}, BypassCache: true,
		Claims: `{"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c1"}}}`, ChallengeClaims: challenge}); err != nil {
		t.Fatal(err)
	}
	if len(cred.seen) != 2 {
		t.Fatalf("calls %d", len(cred.seen))
	}
	for i, o := range cred.seen {
		if !o.EnableCAE || o.TenantID != "tenant-1" || len(o.Scopes) != 1 || o.Scopes[0] != testidp.Scope {
			t.Fatalf("call %d options %+v", i, o)
		}
	}
	if cred.seen[0].Claims != "" || cred.seen[1].Claims != challenge {
		t.Fatalf("claims passed: %q, %q", cred.seen[0].Claims, cred.seen[1].Claims)
	}
}

func TestErrors(t *testing.T) {
	if _, err := azsource.New(nil); err == nil {
		t.Fatal("nil credential accepted")
	}
	boom := errors.New("boom")
	src, _ := azsource.New(credFunc(func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, boom
	}))
	if _, err := src.Token(context.Background(), client.TokenRequest{Scopes: []string{"s"}}); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, err := src.Token(context.Background(), client.TokenRequest{}); err == nil {
		t.Fatal("no scopes accepted")
	}
}

type credFunc func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error)

func (f credFunc) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return f(ctx, o)
}

// TestStepUpUnsupported: azcore's TokenRequestOptions cannot carry RFC 9470
// acr_values or max_age, so such a request fails clearly, without calling
// the credential (which would return a token that ignores them).
func TestStepUpUnsupported(t *testing.T) {
	called := false
	src, _ := azsource.New(credFunc(func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		called = true
		return azcore.AccessToken{}, nil
	}))
	for _, req := range []client.TokenRequest{
		{Scopes: []string{"s"}, ACRValues: []string{"urn:example:mfa"}, BypassCache: true},
		{Scopes: []string{"s"}, MaxAge: time.Minute, BypassCache: true},
	} {
		if _, err := src.Token(context.Background(), req); !errors.Is(err, azsource.ErrStepUpUnsupported) {
			t.Fatalf("err = %v, want ErrStepUpUnsupported", err)
		}
	}
	if called {
		t.Fatal("the credential was asked for a token that would ignore the step-up")
	}
}

// TestNewReportsAllBadArguments guards issue 17 step 5's rule for
// constructors: a nil credential and a nil option are both reported, in one
// error (errors.Join), instead of the first only or a panic.
func TestNewReportsAllBadArguments(t *testing.T) {
	_, err := azsource.New(nil, azsource.WithTenantID("t"), nil)
	if err == nil {
		t.Fatal("New accepted a nil credential and a nil option")
	}
	for _, want := range []string{"nil TokenCredential", "option 1 is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
