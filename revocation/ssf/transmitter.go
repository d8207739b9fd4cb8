package ssf

import (
	"encoding/json"
	"errors"
	"fmt"
)

// TransmitterConfiguration is the transmitter's /.well-known/ssf-configuration.
// The fields are the transmitter metadata members of the SSF specification
// of the same JSON names.
type TransmitterConfiguration struct {
	SpecVersion              string            `json:"spec_version,omitempty"`               // SSF version implemented
	Issuer                   string            `json:"issuer"`                               // iss of the transmitter's SETs
	JWKSURI                  string            `json:"jwks_uri,omitempty"`                   // keys that sign the SETs
	DeliveryMethodsSupported []string          `json:"delivery_methods_supported,omitempty"` // DeliveryPush, DeliveryPoll
	ConfigurationEndpoint    string            `json:"configuration_endpoint,omitempty"`     // stream management
	StatusEndpoint           string            `json:"status_endpoint,omitempty"`            // stream status
	AddSubjectEndpoint       string            `json:"add_subject_endpoint,omitempty"`       // add a subject to a stream
	RemoveSubjectEndpoint    string            `json:"remove_subject_endpoint,omitempty"`    // remove a subject from a stream
	VerificationEndpoint     string            `json:"verification_endpoint,omitempty"`      // request a verification event
	CriticalSubjectMembers   []string          `json:"critical_subject_members,omitempty"`   // subject members a receiver must understand
	AuthorizationSchemes     []json.RawMessage `json:"authorization_schemes,omitempty"`      // how receivers authenticate, as sent
	DefaultSubjects          string            `json:"default_subjects,omitempty"`           // "ALL" or "NONE"
}

// HTTPError is a non-2xx answer from a transmitter.
type HTTPError struct {
	Method, URL string // the request that failed
	StatusCode  int    // the HTTP status of the answer
	// Body is the start of the response body (at most 512 bytes).
	Body string
}

// Error implements error.
func (e *HTTPError) Error() string {
	s := fmt.Sprintf("ssf: %s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// ErrTooLarge is returned when a fetched document or poll response exceeds its bound.
var ErrTooLarge = errors.New("ssf: response too large")
