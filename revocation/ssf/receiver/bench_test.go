package receiver_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// BenchmarkReceive measures validating (RS256), mapping and storing one
// fresh SET, and answering a redelivered one.
func BenchmarkReceive(b *testing.B) {
	tr := ssftest.New()
	defer tr.Close()
	kid, priv := tr.PrivateKey()
	r, err := receiver.New(context.Background(), receiver.WithIssuer(tr.Issuer), receiver.WithAudience(ssftest.Audience),
		receiver.WithStore(teststore.Memory(b)), receiver.WithPublicKey(kid, &priv.PublicKey))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	sets := make([][]byte, 1024)
	for i := range sets {
		s, _ := tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{"format": "opaque", "id": fmt.Sprint("sid-", i)})
		sets[i] = []byte(s)
	}
	b.Run("fresh", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i > 0 && i%len(sets) == 0 {
				b.StopTimer()
				for j := range sets {
					s, _ := tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{"format": "opaque", "id": fmt.Sprint("sid-", i, "-", j)})
					sets[j] = []byte(s)
				}
				b.StartTimer()
			}
			if _, err := r.Receive(context.Background(), sets[i%len(sets)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("duplicate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if res, err := r.Receive(context.Background(), sets[0]); err != nil || !res.Duplicate {
				b.Fatal(res, err)
			}
		}
	})
}
