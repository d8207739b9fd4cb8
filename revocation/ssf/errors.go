package ssf

import (
	"errors"
	"fmt"
)

// The RFC 8935 §2.3 error codes, plus SSF's invalid_state.
const (
	// CodeInvalidRequest: the body is not a SET, or the event does not conform.
	CodeInvalidRequest = "invalid_request"
	// CodeInvalidKey: the signing key is unknown, unacceptable or the signature is bad.
	CodeInvalidKey = "invalid_key"
	// CodeInvalidIssuer: iss is not the configured transmitter.
	CodeInvalidIssuer = "invalid_issuer"
	// CodeInvalidAudience: aud does not name this receiver.
	CodeInvalidAudience = "invalid_audience"
	// CodeAuthenticationFailed: the caller's own credential (Authorization header) is missing or wrong.
	CodeAuthenticationFailed = "authentication_failed"
	// CodeAccessDenied: the caller is authenticated but not allowed.
	CodeAccessDenied = "access_denied"
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

// CodeOf returns the RFC 8935 code of err, or "" if err is not a rejection
// (nil, or a store failure).
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
