package httpsource_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/caekit/caekit/interceptor/client"
	"github.com/caekit/caekit/interceptor/client/httpsource"
	"github.com/caekit/caekit/internal/testkit/testidp"
)

// TestNewReportsAllBadOptions guards issue 17 step 5's rule for
// constructors: New reports every bad argument in one error (errors.Join),
// where it used to stop at the first, and a nil option with its position
// instead of panicking.
func TestNewReportsAllBadOptions(t *testing.T) {
	_, err := httpsource.New("http://idp.example/token", nil, httpsource.WithMaxResponseSize(0))
	if err == nil {
		t.Fatal("New accepted an http URL, a nil option, no grant and a zero size")
	}
	for _, want := range []string{"must be https", "option 0 is nil", "no grant", "max response size must be positive, got 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestErrorIsARetrieveError guards the x/oauth2 interop of issue 17 step 5:
// code that checks errors.As(err, **oauth2.RetrieveError), as it would for
// x/oauth2's token sources (and oauth2source), sees the refusal of an
// httpsource.Source too, with the RFC 6749 §5.2 error code and the status,
// and without the request (its form held the credentials) or a secret the
// endpoint echoed.
func TestErrorIsARetrieveError(t *testing.T) {
	idp := newIdP(t)
	s, err := httpsource.New(idp.TokenURL(), httpsource.WithPassword(testidp.ClientID, testidp.ClientSecret, testidp.Username, "wrong-password"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Token(context.Background(), client.TokenRequest{})
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("errors.As(%v, *oauth2.RetrieveError) = false", err)
	}
	if re.ErrorCode != "invalid_grant" || re.Response == nil || re.Response.StatusCode != 400 || re.Response.Request != nil {
		t.Fatalf("RetrieveError = %+v (response %+v)", re, re.Response)
	}
	if strings.Contains(re.Error(), "wrong-password") || strings.Contains(string(re.Body), "wrong-password") {
		t.Fatalf("secret in the RetrieveError: %v", re)
	}
	var he *httpsource.Error
	if !errors.As(err, &he) || he.Code != re.ErrorCode {
		t.Fatalf("httpsource.Error = %+v", he)
	}
}
