package redisstore

import (
	"time"

	"github.com/caekit/caekit/revocation"
)

// Retention returns the configured retention (WithRetention): how long after
// its time an event is kept, in Redis (as the key's TTL) and in the mirror.
// interceptor.New compares it with the validator's maximum token lifetime.
func (s *Store) Retention() time.Duration { return s.cfg.retention }

var _ revocation.Retainer = (*Store)(nil)
