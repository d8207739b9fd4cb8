package redisstore

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
	mirrorhook "github.com/caekit/caekit/revocation/internal/mirror"
)

// BenchmarkMirrorBytes measures the heap one mirrored entry takes, as the
// store holds it (decoded from Redis: one string backs scope, id and event
// id), for typical Entra identifiers: a tenant GUID, an object GUID and a
// 22-character jti. It mirrors b.N distinct subjects and reports
// bytes/entry; ns/op is the cost of decoding and applying one event.
//
//	go test -run '^$' -bench MirrorBytes -benchtime 100000x ./revocation/redisstore/
func BenchmarkMirrorBytes(b *testing.B) {
	now := time.Now()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	encoded := make([]string, b.N)
	for j := range encoded {
		encoded[j] = encode(revocation.Event{
			ID:      fmt.Sprintf("jti-%018d", j),
			Type:    revocation.TypeUserDisabled,
			Subject: revocation.ObjectKey("72f988bf-86f1-41af-91ab-2d7cd011db47", fmt.Sprintf("4a6e1b2c-1d2e-4f5a-8b9c-%012d", j)),
			Time:    now,
		})
	}
	m := teststore.Memory(b)
	b.ResetTimer()
	for _, v := range encoded {
		ev, err := decode(v)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mirrorhook.Of[*revocation.Memory, revocation.Event](m).Apply(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	encoded = nil // what remains is the mirror
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "bytes/entry")
	runtime.KeepAlive(m)
}
