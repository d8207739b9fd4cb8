package token_test

import (
	"context"
	"testing"

	"github.com/caekit/caekit/interceptor/token"
)

// BenchmarkValidateCacheHit measures the hot path: a token seen before.
func BenchmarkValidateCacheHit(b *testing.B) {
	s := rsaSigner("RS256", "rs")
	v := newValidator(b, token.WithStaticKey("rs", s.key.Public()), token.WithIssuer("iss"))
	raw := s.sign(b, claimsFor("iss"), nil)
	ctx := context.Background()
	if _, err := v.Validate(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Validate(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Validate(ctx, raw); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkValidateCacheMiss measures full verification per algorithm.
func BenchmarkValidateCacheMiss(b *testing.B) {
	for _, s := range []signer{rsaSigner("RS256", "k"), ecSigner("k"), edSigner("k")} {
		b.Run(s.alg, func(b *testing.B) {
			v := newValidator(b, token.WithStaticKey("k", s.key.Public()), token.WithIssuer("iss"), token.WithCacheSize(0))
			raw := s.sign(b, claimsFor("iss"), nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
