package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
)

// TestIssuersAndAlgorithms guards the accessors RFC 9728 metadata reads
// (caehttp.ProtectedResourceMetadata's authorization_servers): exact
// issuers plus every tenant's concrete issuer of a template, sorted and
// without duplicates; the accepted algorithms, sorted.
func TestIssuersAndAlgorithms(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewValidator(context.Background(),
		token.WithIssuer("https://b.example", "https://a.example"),
		token.WithTenantIssuer("https://login.microsoftonline.com/{tid}/v2.0", "T2", "t1"),
		token.WithAudience("api://x"),
		token.WithStaticKeyFor("k", &k.PublicKey, "https://a.example", "https://b.example", "https://login.microsoftonline.com/{tid}/v2.0"),
		token.WithAlgorithms("PS256", "ES256"),
		token.WithLogger(nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	want := []string{"https://a.example", "https://b.example",
		"https://login.microsoftonline.com/t1/v2.0", "https://login.microsoftonline.com/t2/v2.0"}
	if got := v.Issuers(); !slices.Equal(got, want) {
		t.Fatalf("Issuers() = %q, want %q", got, want)
	}
	if got := v.Algorithms(); !slices.Equal(got, []string{"ES256", "PS256"}) {
		t.Fatalf("Algorithms() = %q", got)
	}
}
