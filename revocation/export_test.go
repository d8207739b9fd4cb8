package revocation

// IssuedAt exposes issuedAt to the external tests (samesecond_test.go).
var IssuedAt = issuedAt
