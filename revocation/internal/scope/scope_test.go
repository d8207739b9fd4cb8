package scope_test

import (
	"strings"
	"testing"

	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/internal/scope"
)

// TestScope guards the shared scope rule (moved here from revocation/ssf
// for the logout receivers): issuer-scoped keys need their issuer, object
// keys their tenant, e-mail keys their domain; anything else is refused.
func TestScope(t *testing.T) {
	s := scope.New()
	for _, err := range []error{s.AddIssuer("https://idp"), s.AddTenant("T1"), s.AddDomain("Example.com")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []error{s.AddIssuer(" "), s.AddTenant(""), s.AddDomain("a@b"), s.AddDomain(".x.com")} {
		if bad == nil {
			t.Fatal("a bad scope entry was accepted")
		}
	}
	ok := []revocation.Key{
		revocation.SessionKey("https://idp", "s"), revocation.IssuerSubjectKey("https://idp", "u"),
		revocation.ObjectKey("T1", "o"), revocation.EmailKey("A@EXAMPLE.COM"),
	}
	if err := s.Check("subj", "https://idp", ok); err != nil {
		t.Fatalf("in scope: %v", err)
	}
	for _, c := range []struct {
		k    revocation.Key
		want string
	}{
		{revocation.SessionKey("https://other", "s"), "token issuer"},
		{revocation.ObjectKey("t2", "o"), "tenant"},
		{revocation.EmailKey("a@evil.example"), "e-mail domain"},
		{revocation.Key{Kind: revocation.KindEmail, ID: "no-at"}, "not an e-mail address"},
	} {
		err := s.Check("subj", "https://idp", append(ok, c.k))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.k, err, c.want)
		}
	}
}

// TestAddOptionsNamesEachBadEntry guards the option check both receivers
// share: every bad entry is reported (not only the first), each under the
// name of the option it came from, and the good entries are added.
func TestAddOptionsNamesEachBadEntry(t *testing.T) {
	s := scope.New()
	errs := s.AddOptions([]string{"https://idp.example", ""}, []string{""}, []string{""})
	if len(errs) != 3 {
		t.Fatalf("AddOptions: %d errors %v, want 3", len(errs), errs)
	}
	for i, want := range []string{"WithSubjectIssuers", "WithSubjectTenants", "WithEmailDomains"} {
		if !strings.Contains(errs[i].Error(), want) {
			t.Errorf("error %d %q does not name %s", i, errs[i], want)
		}
	}
	if errs := s.AddOptions(nil, nil, nil); errs != nil {
		t.Fatalf("AddOptions with nothing: %v", errs)
	}
}
