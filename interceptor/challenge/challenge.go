// Package challenge is the wire format of CAE claims challenges in gRPC and
// HTTP (Entra's insufficient_claims and RFC 9470's
// insufficient_user_authentication): the
// RFC 7235 www-authenticate value in Entra's exact form, the cae.v1.ClaimsChallenge
// and google.rpc.ErrorInfo status details, and the robust parsers a client
// needs to read them back. The same www-authenticate value is the HTTP
// WWW-Authenticate header of a 401.
//
// Beside Entra's insufficient_claims dialect it speaks RFC 9470's step-up
// dialect: error="insufficient_user_authentication" with acr_values and
// max_age (Challenge.ACRValues, Challenge.MaxAge, Challenge.StepUp), rendered
// in the RFC's §3 form and carried in the ErrorInfo metadata too.
package challenge

import (
	"time"

	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// OAuth error codes used in challenges.
const (
	// ErrorInsufficientClaims marks a claims challenge (cp1 clients only).
	ErrorInsufficientClaims = "insufficient_claims"
	// ErrorInvalidToken marks a missing, invalid or revoked token without claims.
	ErrorInvalidToken = "invalid_token"
	// ErrorInsufficientUserAuthentication marks an RFC 9470 step-up
	// challenge (RFC 9470 §3): the token's authentication event is not
	// strong enough (acr_values) or not recent enough (max_age).
	ErrorInsufficientUserAuthentication = "insufficient_user_authentication"
)

// MetadataKey is the response metadata key that carries the challenge string.
const MetadataKey = "www-authenticate"

// ErrorInfoDomain is the google.rpc.ErrorInfo domain caekit uses.
const ErrorInfoDomain = "caekit.dev"

// Param is one auth-param of a challenge beyond the standard ones.
type Param struct {
	Name, Value string // the auth-param's name and unquoted value
}

// Challenge is one claims challenge (or invalid_token rejection), decoded.
type Challenge struct {
	// Scheme is the auth scheme, "Bearer".
	Scheme string
	// Error is ErrorInsufficientClaims, ErrorInsufficientUserAuthentication
	// or ErrorInvalidToken.
	Error string
	// Claims is the decoded claims-request JSON; empty when there is none.
	Claims string
	// AuthorizationURI is where to get a new token.
	AuthorizationURI string
	// Realm is the realm; often "".
	Realm string
	// Reason is the machine-readable reason (REASON_UNSPECIFIED when only the
	// www-authenticate header was available).
	Reason caev1.Reason
	// EventTime is when the causing event happened, if known.
	EventTime time.Time
	// EventID is the causing event's id, if known.
	EventID string
	// Description is human-readable; never contains a token.
	Description string
	// Params are extra parameters in order, e.g. cc_type="authcontext".
	Params []Param
	// ACRValues are the authentication context class references of an RFC
	// 9470 step-up challenge (its acr_values parameter, RFC 9470 §3), in
	// order of preference: a token whose acr is any one of them satisfies
	// the resource. Empty when the challenge has none.
	ACRValues []string
	// MaxAge is the max_age parameter of an RFC 9470 step-up challenge
	// (RFC 9470 §3): how long ago, at most, the user may last have actively
	// authenticated. Zero means the challenge has no max_age; a negative
	// value stands for max_age="0" (authenticate now), the convention of
	// net/http.Cookie.MaxAge. It is always a whole number of seconds.
	MaxAge time.Duration
}
