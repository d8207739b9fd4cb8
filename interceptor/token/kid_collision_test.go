package token_test

import (
	"context"
	"strings"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
)

// TestKIDCollisionAcrossSources guards issue 12 item 8: two key sources
// that publish the same kid must not break each other's tokens. Before the
// fix the validator took the first source's key with that kid, so every
// token of the second identity provider failed with ErrSignature. Both
// providers are real OpenID Providers on loopback, each serving its own
// discovery document and JWK Set; many IdPs' default key ids are not
// globally unique (a per-realm "rsa-generated" style kid, or a kid derived
// from the key's creation date), so collisions happen in practice.
func TestKIDCollisionAcrossSources(t *testing.T) {
	a := rsaSigner("RS256", "shared")
	b := signer{alg: "RS256", kid: "shared", key: rsaKey2()}
	idpA, idpB := newIDP(t, a), newIDP(t, b)
	v := newValidator(t,
		token.WithIssuer(idpA.issuer(), idpB.issuer()),
		token.WithDiscovery(idpA.issuer()), token.WithDiscovery(idpB.issuer()))
	ctx := context.Background()
	for name, raw := range map[string]string{
		"A's token": a.sign(t, claimsFor(idpA.issuer()), nil),
		"B's token": b.sign(t, claimsFor(idpB.issuer()), nil),
	} {
		if _, err := v.Validate(ctx, raw); err != nil {
			t.Errorf("%s with a kid both sources publish: %v", name, err)
		}
	}
	// The issuer binding still holds: B's key cannot sign for A, although it
	// is one of the keys named "shared".
	_, err := v.Validate(ctx, b.sign(t, with(claimsFor(idpA.issuer()), "sub", "admin-of-A"), nil))
	wantErr(t, err, token.ErrKeyIssuer)
	// A signature that neither key verifies is refused after trying both:
	// A's header and signature over another payload.
	ta := strings.Split(a.sign(t, claimsFor(idpA.issuer()), nil), ".")
	tb := strings.Split(b.sign(t, with(claimsFor(idpA.issuer()), "sub", "admin-of-A"), nil), ".")
	_, err = v.Validate(ctx, ta[0]+"."+tb[1]+"."+ta[2])
	wantErr(t, err, token.ErrSignature)
}

// TestKIDCollisionSameKeyTwoSources: one key published under one kid by two
// sources bound to different issuers verifies tokens of both issuers; the
// key record bound to the token's issuer is the one that is used.
func TestKIDCollisionSameKeyTwoSources(t *testing.T) {
	s := rsaSigner("RS256", "same")
	idpA, idpB := newIDP(t, s), newIDP(t, s)
	v := newValidator(t,
		token.WithIssuer(idpA.issuer(), idpB.issuer()),
		token.WithDiscovery(idpA.issuer()), token.WithDiscovery(idpB.issuer()))
	for _, iss := range []string{idpA.issuer(), idpB.issuer()} {
		if _, err := v.Validate(context.Background(), s.sign(t, claimsFor(iss), nil)); err != nil {
			t.Errorf("token of %s: %v", iss, err)
		}
	}
}

// TestKIDCollisionStaticAndRemote: a static key and a fetched key of another
// type under the same kid both keep working (before the fix, the static key
// shadowed the fetched one and its tokens failed with ErrAlgorithm).
func TestKIDCollisionStaticAndRemote(t *testing.T) {
	rs := rsaSigner("RS256", "k")
	ec := ecSigner("k")
	p := newIDP(t, rs)
	v := newValidator(t, token.WithIssuer(p.issuer()), token.WithJWKSURL(p.issuer()+"/keys"),
		token.WithStaticKey("k", ec.key.Public()))
	for name, raw := range map[string]string{
		"static EC key": ec.sign(t, claimsFor(p.issuer()), nil),
		"fetched RSA":   rs.sign(t, claimsFor(p.issuer()), nil),
	} {
		if _, err := v.Validate(context.Background(), raw); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
