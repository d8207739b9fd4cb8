package token

// Issuers returns, sorted, the issuers the Validator accepts by exact
// value: those of WithIssuer, and the concrete issuer of every tenant a
// WithTenantIssuer template accepts. It serves descriptions of the
// resource such as RFC 9728 metadata (authorization_servers).
func (v *Validator) Issuers() []string { return v.keys.Issuers() }

// Algorithms returns, sorted, the JWS algorithms the Validator accepts
// (WithAlgorithms). It serves descriptions of the resource such as RFC 9728
// metadata (resource_signing_alg_values_supported).
func (v *Validator) Algorithms() []string { return v.keys.Algorithms() }
