package idp

import (
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testclock"
)

// TestRefreshTableBounded guards the bound on the refresh token table:
// it never holds more than MaxRefreshTokens; expired entries go first,
// then the one that expires first.
func TestRefreshTableBounded(t *testing.T) {
	now := testclock.Unix(1_800_000_000, 0)
	p, err := New(WithIssuer("http://127.0.0.1:1"), func(c *config) { c.keyBits = 1024 }, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	expired := p.newRefreshTokenLocked(refreshGrant{user: "old", expires: now.Add(-time.Second)})
	soonest := p.newRefreshTokenLocked(refreshGrant{user: "soon", expires: now.Add(time.Minute)})
	for i := range MaxRefreshTokens - 2 {
		p.newRefreshTokenLocked(refreshGrant{user: "u", expires: now.Add(time.Hour + time.Duration(i))})
	}
	if len(p.refresh) != MaxRefreshTokens {
		t.Fatalf("%d entries, want %d", len(p.refresh), MaxRefreshTokens)
	}
	p.newRefreshTokenLocked(refreshGrant{user: "new", expires: now.Add(2 * time.Hour)})
	if _, ok := p.refresh[refreshKey(expired)]; ok || len(p.refresh) != MaxRefreshTokens {
		t.Fatalf("the expired entry was not pruned first (%d entries)", len(p.refresh))
	}
	p.newRefreshTokenLocked(refreshGrant{user: "new", expires: now.Add(2 * time.Hour)})
	if _, ok := p.refresh[refreshKey(soonest)]; ok || len(p.refresh) != MaxRefreshTokens {
		t.Fatalf("the entry that expires first was not evicted (%d entries)", len(p.refresh))
	}
}
