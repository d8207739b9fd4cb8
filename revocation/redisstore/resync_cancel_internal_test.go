package redisstore

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

// TestResyncCutShortFails guards resync against reporting success when its
// context ends before every key was read: the SCAN reader goroutine then
// stopped on ctx.Done without handing over an error (its select picks at
// random between that and sending the failed batch), and resync returned
// nil with part of Redis mirrored, so New and the reconnect path took a
// partial mirror for a complete one (found at a million entries, when New's
// 30 s bound expired mid-resync). Each round fails the unfixed code with
// probability one half, so 20 rounds miss the defect once in a million.
func TestResyncCutShortFails(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	s, err := New(context.Background(), client, WithPrefix("cut:"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 20 {
		if err := s.resync(ctx, true); !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: resync with a cancelled context returned %v, want context.Canceled", i, err)
		}
	}
}
