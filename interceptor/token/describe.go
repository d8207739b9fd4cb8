package token

import (
	"slices"
	"sort"
	"strings"
)

// Issuers returns, sorted, the issuers the Validator accepts by exact
// value: those of WithIssuer, and the concrete issuer of every tenant a
// WithTenantIssuer template accepts. It serves descriptions of the
// resource such as RFC 9728 metadata (authorization_servers).
func (v *Validator) Issuers() []string {
	out := make([]string, 0, len(v.issuers))
	for iss := range v.issuers {
		out = append(out, iss)
	}
	for _, t := range v.tenants {
		for tid := range t.tenants {
			out = append(out, t.prefix+strings.ToLower(tid)+t.suffix)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Algorithms returns, sorted, the JWS algorithms the Validator accepts
// (WithAlgorithms). It serves descriptions of the resource such as RFC 9728
// metadata (resource_signing_alg_values_supported).
func (v *Validator) Algorithms() []string {
	out := make([]string, 0, len(v.allowed))
	for alg, ok := range v.allowed {
		if ok {
			out = append(out, alg)
		}
	}
	sort.Strings(out)
	return out
}
