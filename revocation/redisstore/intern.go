package redisstore

import (
	"strings"
	"sync"
)

// maxInterned bounds the scopes (tenant ids, issuer URLs) kept by intern.
// A deployment trusts a handful of issuers and tenants; past the bound a
// scope is copied instead of shared, so a flood of distinct scopes costs
// memory per entry again but never grows the table.
const maxInterned = 4096

// scopes is the intern table of decoded scopes. It lives for the process:
// at most maxInterned strings of at most MaxScopeLen bytes (about 2 MB).
var scopes struct {
	mu sync.RWMutex
	m  map[string]string
}

// intern returns a copy of s shared with every other scope equal to it, so
// that a million mirrored events of one tenant hold its id once. The copy
// does not keep the value s was sliced from alive.
func intern(s string) string {
	scopes.mu.RLock()
	v, ok := scopes.m[s]
	scopes.mu.RUnlock()
	if ok {
		return v
	}
	c := strings.Clone(s)
	scopes.mu.Lock()
	defer scopes.mu.Unlock()
	if v, ok := scopes.m[s]; ok {
		return v
	}
	if scopes.m == nil {
		scopes.m = make(map[string]string)
	}
	if len(scopes.m) < maxInterned {
		scopes.m[c] = c
	}
	return c
}
