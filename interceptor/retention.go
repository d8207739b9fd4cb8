package interceptor

import (
	"fmt"
	"time"

	"github.com/caekit/caekit/revocation"
)

// retentionNeeder is implemented by validators that bound how long after its
// issue a token is accepted (*token.Validator: RetentionNeeded).
type retentionNeeder interface {
	RetentionNeeded() time.Duration
}

// checkRetention refuses a store that forgets events sooner than the
// validator may accept a token they revoke: such a token would become valid
// again once its event is forgotten (issue 12 item 6). A validator or store
// that does not say (no RetentionNeeded, no Retention) is not checked.
func checkRetention(v Validator, st revocation.Store) error {
	need, ok := v.(retentionNeeder)
	if !ok {
		return nil
	}
	r, ok := st.(revocation.Retainer)
	if !ok {
		return nil
	}
	if n, have := need.RetentionNeeded(), r.Retention(); have < n {
		return fmt.Errorf("interceptor: the revocation store forgets events after %v, but the validator accepts a token "+
			"for up to %v after its issue (maximum token lifetime plus leeway): a revoked token would be accepted again "+
			"once its event is forgotten; raise the store's retention (revocation.WithRetention, redisstore.WithRetention) "+
			"to at least %v or lower token.WithMaxTokenLifetime", have, n, n)
	}
	return nil
}

// defaultStore is the Server's own store when none is given: a Memory whose
// retention covers the validator's tokens.
func defaultStore(v Validator) (*revocation.Memory, error) {
	ret := revocation.DefaultRetention
	if need, ok := v.(retentionNeeder); ok {
		ret = max(ret, need.RetentionNeeded())
	}
	m, err := revocation.NewMemory(revocation.WithRetention(ret))
	if err != nil {
		return nil, fmt.Errorf("interceptor: default store: %w", err)
	}
	return m, nil
}
