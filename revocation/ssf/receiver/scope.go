package receiver

import (
	"errors"
	"github.com/caekit/caekit/revocation/ssf"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/internal/scope"
)

// newScope builds what one transmitter may revoke (see
// revocation/internal/scope, shared with revocation/logout): the token
// issuers whose subjects, sessions, tokens, devices and clients it may name,
// the tenants whose objects it may name, and the e-mail domains whose
// addresses it may name. It is checked on the Keys a SET maps onto, whatever
// the mapper, so that a transmitter (or a leak of its signing key) cannot
// revoke the users of another issuer or tenant.
func newScope(cfg *config) (*subjectScope, error) {
	s := scope.New()
	_ = s.AddIssuer(cfg.issuer)
	var dm *ssf.DefaultMapper
	switch m := cfg.mapper.(type) {
	case ssf.DefaultMapper:
		dm = &m
	case *ssf.DefaultMapper:
		dm = m
	}
	if dm != nil {
		if dm.TokenIssuer != "" {
			_ = s.AddIssuer(dm.TokenIssuer)
		}
		if dm.OpaqueTenant != "" {
			_ = s.AddTenant(dm.OpaqueTenant)
		}
	}
	if err := errors.Join(s.AddOptions(cfg.subjectIssuers, cfg.subjectTenants, cfg.emailDomains)...); err != nil {
		return nil, err
	}
	return &subjectScope{s}, nil
}

// subjectScope is the shared scope with the SSF receiver's error shape.
type subjectScope struct{ s *scope.Scope }

// check refuses the SET when any of its keys is outside the scope, with an
// invalid_request naming the offending value. A SET is refused as a whole,
// never stored in part.
func (s *subjectScope) check(set *ssf.SET, keys []revocation.Key) error {
	if err := s.s.Check(jose.Clip(set.Subject.String()), set.Issuer, keys); err != nil {
		return reject(CodeInvalidRequest, "%s", err.Error())
	}
	return nil
}
