package receiver

import (
	"errors"
	"fmt"
)

// The RFC 8935 §2.3 error codes, plus SSF's invalid_state.
const (
	// CodeInvalidRequest: the body is not a SET, or the event does not conform.
	CodeInvalidRequest = "invalid_request"
	// CodeInvalidKey: the signing key is unacceptable (a disallowed alg, a
	// symmetric or too small key, a JWK whose alg differs) or the signature
	// does not verify with it, or its kid is absent from static keys or from
	// the transmitter's JWKS right after a successful refresh. A kid that
	// could not be looked up (the refresh was rate-limited or failed) is not
	// a rejection but ErrKeysUnavailable.
	CodeInvalidKey = "invalid_key"
	// CodeInvalidIssuer: iss is not the configured transmitter.
	CodeInvalidIssuer = "invalid_issuer"
	// CodeInvalidAudience: aud does not name this receiver.
	CodeInvalidAudience = "invalid_audience"
	// CodeAuthenticationFailed: the caller's own credential (Authorization header) is missing or wrong.
	CodeAuthenticationFailed = "authentication_failed"
	// codeAccessDenied: the caller is authenticated but not allowed.
	codeAccessDenied = "access_denied"
	// CodeInvalidState: an SSF verification event carries a state we did not ask for.
	CodeInvalidState = "invalid_state"
)

// Error is a SET rejection: an RFC 8935 error code and a description that says
// what was wrong. It never contains the SET.
type Error struct {
	// Code is one of the Code constants.
	Code string
	// Description is human-readable.
	Description string
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	return "ssf: " + e.Code + ": " + e.Description
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func reject(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

func rejectErr(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...), Err: err}
}

// ErrStore is wrapped by Receive when the revocation store failed to record an
// event. The SET is not acknowledged and not remembered: the transmitter must
// deliver it again. Push answers 503, gRPC answers Unavailable, the poller
// neither acknowledges nor reports it.
var ErrStore = errors.New("ssf: event not stored")

// ErrKeysUnavailable is wrapped by Receive when no key to check the SET's
// signature could be obtained because the transmitter's JWKS could not be
// read: it could not be fetched, or the refresh of the JWKS for an unknown
// kid is rate-limited (see Limits.UnknownKIDRefresh). A kid still absent after a
// successful refresh is a CodeInvalidKey rejection instead. Nothing is known to be wrong with the
// SET, so like ErrStore it is temporary: the SET is neither acknowledged nor
// remembered, and the transmitter must deliver it again. Push answers 503
// with Retry-After, gRPC answers Unavailable, the poller neither
// acknowledges nor reports it (so that it is offered again), and the
// Observer sees OutcomeKeysUnavailable. A known key with a bad signature,
// or an unacceptable key, is a rejection with CodeInvalidKey.
var ErrKeysUnavailable = errors.New("ssf: signing key unavailable")

// keysUnavailable is an error wrapping ErrKeysUnavailable whose description
// says why, for the transmitter; it never contains the SET, and sender-chosen
// values in it are clipped.
type keysUnavailable struct {
	desc  string
	cause error
}

func (e *keysUnavailable) Error() string { return ErrKeysUnavailable.Error() + ": " + e.desc }

// Is reports whether target is ErrKeysUnavailable.
func (e *keysUnavailable) Is(target error) bool { return target == ErrKeysUnavailable }

// Unwrap returns the cause, if any.
func (e *keysUnavailable) Unwrap() error { return e.cause }

func errKeysUnavailable(cause error, format string, args ...any) error {
	return &keysUnavailable{desc: fmt.Sprintf(format, args...), cause: cause}
}

// codeOf returns the RFC 8935 code of err, or "" if err is not a rejection
// (nil, a store failure or ErrKeysUnavailable).
func codeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
