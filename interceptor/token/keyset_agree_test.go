package token_test

import (
	"slices"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/keyset"
)

// TestKeysetDefaultsAgree guards the defaults the validator documents
// against the ones internal/keyset applies for the logout receivers' own
// key set (revocation/logout without WithKeys): the two must not drift.
func TestKeysetDefaultsAgree(t *testing.T) {
	d := keyset.Defaults()
	if !slices.Equal(d.Algorithms, token.DefaultAlgorithms()) {
		t.Errorf("algorithms %v, token %v", d.Algorithms, token.DefaultAlgorithms())
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"MaxTokenSize", int64(d.MaxTokenSize), token.DefaultMaxTokenSize},
		{"RefreshInterval", int64(d.RefreshInterval), int64(token.DefaultRefreshInterval)},
		{"UnknownKIDLimit", int64(d.UnknownKIDLimit), int64(token.DefaultUnknownKIDRefreshLimit)},
		{"RotationGrace", int64(d.RotationGrace), int64(token.DefaultKeyRotationGrace)},
		{"MaxJWKSSize", d.MaxJWKSSize, token.DefaultMaxJWKSSize},
		{"HTTPTimeout", int64(keyset.HTTPTimeout), int64(token.DefaultHTTPTimeout)},
	} {
		if c.got != c.want {
			t.Errorf("%s: keyset %d, token %d", c.name, c.got, c.want)
		}
	}
	if keyset.TenantPlaceholder != token.TenantPlaceholder || keyset.DiscoveryTenantPlaceholder != token.DiscoveryTenantPlaceholder {
		t.Errorf("placeholders: keyset %q %q, token %q %q", keyset.TenantPlaceholder, keyset.DiscoveryTenantPlaceholder, token.TenantPlaceholder, token.DiscoveryTenantPlaceholder)
	}
}
