package jwks_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/MicahParks/jwkset"
)

// BenchmarkLookup measures one reason the kit keeps its own refresher's key
// snapshot instead of jwkset's MemoryJWKSet behind keyfunc: finding a key by
// kid in a set of 10 (a typical Entra or Okta JWKS holds 3 to 10 keys).
// MemoryJWKSet scans every key under a read lock, copying each JWK's
// marshal form to compare kids; the validator looks its immutable snapshot
// up in a map without a lock.
func BenchmarkLookup(b *testing.B) {
	mem := jwkset.NewMemoryStorage()
	snap := map[string]jwkset.JWK{}
	for i := range 10 {
		j, err := jwkset.NewJWKFromMarshal(ecJWKMarshal(b, fmt.Sprint("kid-", i)), jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		_ = mem.KeyWrite(context.Background(), j)
		snap[j.Marshal().KID] = j
	}
	ctx := context.Background()
	b.Run("jwkset.MemoryJWKSet", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := mem.KeyRead(ctx, "kid-9"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("snapshot-map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := snap["kid-9"]; !ok {
				b.Fatal("missing")
			}
		}
	})
}

func ecJWKMarshal(b testing.TB, kid string) jwkset.JWKMarshal {
	m := ecJWK(b, kid, nil)
	return jwkset.JWKMarshal{KTY: jwkset.KtyEC, CRV: jwkset.CrvP256, KID: kid, X: m["x"].(string), Y: m["y"].(string)}
}
