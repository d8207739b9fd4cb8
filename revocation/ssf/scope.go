package ssf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/revocation"
)

// scope is what one transmitter may revoke: the token issuers whose
// subjects, sessions, tokens, devices and clients it may name, the tenants
// whose objects it may name, and the e-mail domains whose addresses it may
// name. It is checked on the Keys a SET maps onto, whatever the mapper, so
// that a transmitter (or a leak of its signing key) cannot revoke the users
// of another issuer or tenant.
type scope struct {
	issuers map[string]bool
	tenants map[string]bool
	domains map[string]bool
}

func newScope(cfg *config) (*scope, error) {
	s := &scope{issuers: map[string]bool{cfg.issuer: true}, tenants: map[string]bool{}, domains: map[string]bool{}}
	var dm *DefaultMapper
	switch m := cfg.mapper.(type) {
	case DefaultMapper:
		dm = &m
	case *DefaultMapper:
		dm = m
	}
	if dm != nil {
		if dm.TokenIssuer != "" {
			s.issuers[dm.TokenIssuer] = true
		}
		if dm.OpaqueTenant != "" {
			s.tenants[revocation.ObjectKey(dm.OpaqueTenant, "x").Scope] = true
		}
	}
	for _, iss := range cfg.subjectIssuers {
		if strings.TrimSpace(iss) == "" {
			return nil, fmt.Errorf("ssf: WithSubjectIssuers: empty issuer")
		}
		s.issuers[iss] = true
	}
	for _, tid := range cfg.subjectTenants {
		if strings.TrimSpace(tid) == "" {
			return nil, fmt.Errorf("ssf: WithSubjectTenants: empty tenant")
		}
		s.tenants[revocation.ObjectKey(tid, "x").Scope] = true
	}
	for _, d := range cfg.emailDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" || strings.ContainsAny(d, "@ /") || strings.HasPrefix(d, ".") {
			return nil, fmt.Errorf("ssf: WithEmailDomains: %q is not a domain name (give e.g. \"example.com\")", d)
		}
		s.domains[d] = true
	}
	return s, nil
}

// check refuses the SET when any of its keys is outside the scope, with an
// invalid_request naming the offending value. A SET is refused as a whole,
// never stored in part.
func (s *scope) check(set *SET, keys []revocation.Key) error {
	for _, k := range keys {
		switch k.Kind {
		case revocation.KindIssuerSubject, revocation.KindSession, revocation.KindClient, revocation.KindToken, revocation.KindDevice:
			if !s.issuers[k.Scope] {
				return reject(CodeInvalidRequest, "subject %s names token issuer %q, which transmitter %q may not revoke for (allowed: %s; see WithSubjectIssuers)",
					jose.Clip(set.Subject.String()), jose.Clip(k.Scope), set.Issuer, allowList(s.issuers))
			}
		case revocation.KindObject:
			if !s.tenants[k.Scope] {
				return reject(CodeInvalidRequest, "subject %s names tenant %q, which transmitter %q may not revoke for (allowed: %s; see WithSubjectTenants)",
					jose.Clip(set.Subject.String()), jose.Clip(k.Scope), set.Issuer, allowList(s.tenants))
			}
		case revocation.KindEmail:
			at := strings.LastIndexByte(k.ID, '@')
			if at < 0 {
				return reject(CodeInvalidRequest, "subject %s: %q is not an e-mail address", jose.Clip(set.Subject.String()), jose.Clip(k.ID))
			}
			if d := k.ID[at+1:]; !s.domains[d] {
				return reject(CodeInvalidRequest, "subject %s names e-mail domain %q, which transmitter %q may not revoke for (allowed: %s; see WithEmailDomains)",
					jose.Clip(set.Subject.String()), jose.Clip(d), set.Issuer, allowList(s.domains))
			}
		default:
			return reject(CodeInvalidRequest, "subject %s maps onto key kind %s, which this receiver does not scope", jose.Clip(set.Subject.String()), k.Kind)
		}
	}
	return nil
}

// allowList renders an allow-list for an error message.
func allowList(m map[string]bool) string {
	if len(m) == 0 {
		return "none"
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, fmt.Sprintf("%q", k))
	}
	slices.Sort(out)
	if len(out) > 8 {
		out = append(out[:8], "…")
	}
	return strings.Join(out, ", ")
}
