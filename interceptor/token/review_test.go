package token_test

// Security review tests: each pins down a defect the review found (and that
// is now fixed) or a behaviour the review verified.

import (
	"context"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
)

// TestReviewKeysAreBoundToTheirIssuer (finding TOK-2).
//
// With two identity providers configured (two WithIssuer values and a
// WithDiscovery or WithJWKSURL for each), every key verifies tokens of every
// accepted issuer: key look-up uses only kid and alg. Whoever controls IdP
// B's signing key (IdP B's operator, a tenant of a less trusted IdP, or an
// attacker who compromised it) can mint a token with iss = IdP A and any
// sub/oid/tid/roles of A, and it validates. A key fetched through
// WithDiscovery(X) must only verify tokens whose iss is X (or matches the
// tenant template the discovery document publishes); keys of a plain
// WithJWKSURL or WithStaticKey need an explicit issuer binding when more
// than one issuer is configured.
func TestReviewKeysAreBoundToTheirIssuer(t *testing.T) {
	a := rsaSigner("RS256", "a1")
	b := signer{alg: "RS256", kid: "b1", key: rsaKey2()}
	idpA, idpB := newIDP(t, a), newIDP(t, b)
	v := newValidator(t,
		token.WithIssuer(idpA.issuer(), idpB.issuer()),
		token.WithDiscovery(idpA.issuer()), token.WithDiscovery(idpB.issuer()))
	ctx := context.Background()
	// Sanity: each IdP's own tokens validate.
	if _, err := v.Validate(ctx, a.sign(t, claimsFor(idpA.issuer()), nil)); err != nil {
		t.Fatalf("A's own token: %v", err)
	}
	if _, err := v.Validate(ctx, b.sign(t, claimsFor(idpB.issuer()), nil)); err != nil {
		t.Fatalf("B's own token: %v", err)
	}
	forged := b.sign(t, with(claimsFor(idpA.issuer()), "sub", "admin-of-A", "oid", "oid-admin"), nil)
	if c, err := v.Validate(ctx, forged); err == nil {
		t.Fatalf("a token signed with IdP B's key and iss %s validated: sub %q", c.Issuer, c.Subject)
	}
}
