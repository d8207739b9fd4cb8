package idp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// Refresh token bounds.
const (
	// DefaultRefreshTokenLifetime is how long a refresh token is valid
	// after it is issued (a rotated one starts again).
	DefaultRefreshTokenLifetime = 24 * time.Hour
	// MaxRefreshTokens bounds the IdP's refresh token table. When it is
	// full, expired entries are pruned, then the entry that expires first is
	// evicted (its client signs in again on its next refresh).
	MaxRefreshTokens = 10000
	// maxRefreshParam bounds the refresh_token parameter: the IdP's own are
	// 43 bytes.
	maxRefreshParam = 512
)

// refreshGrant is what a refresh token stands for: a session (sid) of a
// user, at one client.
type refreshGrant struct {
	user    string
	client  string
	sid     string
	expires time.Time
	// authTime and acr are the session's last active authentication and
	// its class (auth_time and acr of its access tokens).
	authTime time.Time
	acr      string
}

// refreshKey is the table key of a refresh token: its SHA-256, so that the
// table holds no usable token.
func refreshKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// newRefreshToken stores a new refresh token for g and returns it. p.mu
// must be held.
func (p *IdP) newRefreshTokenLocked(g refreshGrant) string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	if len(p.refresh) >= MaxRefreshTokens {
		now := p.cfg.now()
		var first string
		for k, v := range p.refresh {
			if !now.Before(v.expires) {
				delete(p.refresh, k)
				continue
			}
			if first == "" || v.expires.Before(p.refresh[first].expires) {
				first = k
			}
		}
		if len(p.refresh) >= MaxRefreshTokens && first != "" {
			delete(p.refresh, first)
		}
	}
	p.refresh[refreshKey(tok)] = &g
	return tok
}

// endSessionsLocked deletes the refresh tokens of user: all of them if sid
// is "", else those of that session. p.mu must be held. It returns how many
// it deleted.
func (p *IdP) endSessionsLocked(user, sid string) int {
	n := 0
	for k, g := range p.refresh {
		if g.user == user && (sid == "" || g.sid == sid) {
			delete(p.refresh, k)
			n++
		}
	}
	return n
}

// RefreshTokens returns how many refresh tokens the IdP holds for user
// (expired ones included until they are pruned).
func (p *IdP) RefreshTokens(user string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, g := range p.refresh {
		if g.user == user {
			n++
		}
	}
	return n
}
