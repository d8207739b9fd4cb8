// Package scope holds the rule that an event source may revoke only for the
// token issuers, tenants and e-mail domains it is trusted for. The SSF
// receiver (revocation/ssf) and the logout receivers (revocation/logout)
// share it, so that a transmitter, or a leak of its signing key, cannot
// revoke the users of another issuer or tenant, whichever channel it uses.
package scope

import (
	"fmt"
	"slices"
	"strings"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/revocation"
)

// Scope is what one event source may revoke: the token issuers whose
// subjects, sessions, tokens, devices and clients it may name, the tenants
// whose objects it may name, and the e-mail domains whose addresses it may
// name. The zero value is not usable; call New.
type Scope struct {
	issuers map[string]bool
	tenants map[string]bool
	domains map[string]bool
}

// New returns an empty Scope.
func New() *Scope {
	return &Scope{issuers: map[string]bool{}, tenants: map[string]bool{}, domains: map[string]bool{}}
}

// AddIssuer allows the token issuer iss.
func (s *Scope) AddIssuer(iss string) error {
	if strings.TrimSpace(iss) == "" {
		return fmt.Errorf("empty issuer")
	}
	s.issuers[iss] = true
	return nil
}

// AddTenant allows the tenant tid (as revocation.ObjectKey scopes it).
func (s *Scope) AddTenant(tid string) error {
	if strings.TrimSpace(tid) == "" {
		return fmt.Errorf("empty tenant")
	}
	s.tenants[revocation.ObjectKey(tid, "x").Scope] = true
	return nil
}

// AddDomain allows the e-mail domain d (case-insensitive).
func (s *Scope) AddDomain(d string) error {
	d = strings.ToLower(strings.TrimSpace(d))
	if d == "" || strings.ContainsAny(d, "@ /") || strings.HasPrefix(d, ".") {
		return fmt.Errorf("%q is not a domain name (give e.g. \"example.com\")", d)
	}
	s.domains[d] = true
	return nil
}

// AddOptions adds the issuers, tenants and e-mail domains of the
// receivers' WithSubjectIssuers, WithSubjectTenants and WithEmailDomains
// options, and returns one error per bad entry, each naming its option.
func (s *Scope) AddOptions(issuers, tenants, domains []string) []error {
	var errs []error
	for _, iss := range issuers {
		if err := s.AddIssuer(iss); err != nil {
			errs = append(errs, fmt.Errorf("WithSubjectIssuers: %w", err))
		}
	}
	for _, tid := range tenants {
		if err := s.AddTenant(tid); err != nil {
			errs = append(errs, fmt.Errorf("WithSubjectTenants: %w", err))
		}
	}
	for _, d := range domains {
		if err := s.AddDomain(d); err != nil {
			errs = append(errs, fmt.Errorf("WithEmailDomains: %w", err))
		}
	}
	return errs
}

// Check returns an error naming the first of keys outside the scope, or
// nil. subject describes the event's subject and sender its source (an
// issuer), for the message; both are clipped by the caller. An event is
// refused as a whole, never stored in part.
func (s *Scope) Check(subject, sender string, keys []revocation.Key) error {
	for _, k := range keys {
		switch k.Kind {
		case revocation.KindIssuerSubject, revocation.KindSession, revocation.KindClient, revocation.KindToken, revocation.KindDevice:
			if !s.issuers[k.Scope] {
				return fmt.Errorf("subject %s names token issuer %q, which transmitter %q may not revoke for (allowed: %s; see WithSubjectIssuers)",
					subject, jose.Clip(k.Scope), sender, allowList(s.issuers))
			}
		case revocation.KindObject:
			if !s.tenants[k.Scope] {
				return fmt.Errorf("subject %s names tenant %q, which transmitter %q may not revoke for (allowed: %s; see WithSubjectTenants)",
					subject, jose.Clip(k.Scope), sender, allowList(s.tenants))
			}
		case revocation.KindEmail:
			at := strings.LastIndexByte(k.ID, '@')
			if at < 0 {
				return fmt.Errorf("subject %s: %q is not an e-mail address", subject, jose.Clip(k.ID))
			}
			if d := k.ID[at+1:]; !s.domains[d] {
				return fmt.Errorf("subject %s names e-mail domain %q, which transmitter %q may not revoke for (allowed: %s; see WithEmailDomains)",
					subject, jose.Clip(d), sender, allowList(s.domains))
			}
		default:
			return fmt.Errorf("subject %s maps onto key kind %s, which this receiver does not scope", subject, k.Kind)
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
