package receiver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// contentTypeSET is the media type of a pushed SET.
const contentTypeSET = "application/secevent+jwt"

// ServeHTTP implements RFC 8935 push delivery.
//
// It checks the Authorization header (401 with authentication_failed when
// missing or wrong), requires POST (405) and Content-Type
// application/secevent+jwt, reads at most the configured body size, validates
// and stores the SET, and answers 202 Accepted with an empty body only once
// every Key's event is stored. A refused SET gets 400 with
// {"err": code, "description": text} (invalid_key for a kid absent from
// the keys even after a successful JWKS refresh). A store failure, or a SET
// whose signing key could not be looked up (ErrKeysUnavailable: the JWKS
// endpoint failing, or its refresh rate-limited), gets 503 with Retry-After and err
// "temporarily_unavailable", so that the transmitter delivers the SET again;
// it is not remembered as received.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !r.authorized(req) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ssf"`)
		r.rejected(req.Context(), "push", nil, "", reject(CodeAuthenticationFailed, "authorization"))
		writeError(w, http.StatusUnauthorized, CodeAuthenticationFailed, "the Authorization header is missing or does not match the stream's authorization_header")
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, CodeInvalidRequest, "SETs are delivered with POST")
		return
	}
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != contentTypeSET {
		err := reject(CodeInvalidRequest, "Content-Type is %q, expected %q", req.Header.Get("Content-Type"), contentTypeSET)
		r.rejected(req.Context(), "push", nil, "", err)
		writeError(w, http.StatusBadRequest, err.Code, err.Description)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		e := reject(CodeInvalidRequest, "could not read the body")
		if errors.As(err, &mbe) {
			e = reject(CodeInvalidRequest, "body exceeds %d bytes", r.cfg.maxBody)
		}
		r.rejected(req.Context(), "push", nil, "", e)
		writeError(w, http.StatusBadRequest, e.Code, e.Description)
		return
	}
	_, err = r.ReceiveVia(req.Context(), "push", body)
	var se *Error
	switch {
	case err == nil:
		w.WriteHeader(http.StatusAccepted)
	case errors.As(err, &se):
		writeError(w, http.StatusBadRequest, se.Code, se.Description)
	case errors.Is(err, ErrKeysUnavailable):
		// By then the unknown-kid limiter allows another refresh.
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(r.cfg.unknownKID)))
		desc := "the signing key of the SET could not be obtained; deliver it again"
		var ku *keysUnavailable
		if errors.As(err, &ku) {
			desc = "the signing key of the SET could not be obtained: " + ku.desc + "; deliver it again"
		}
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", desc)
	default:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the event could not be stored; deliver it again")
	}
}

// retryAfterSeconds is d in whole seconds, rounded up, within 1..300.
func retryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return min(max(s, 1), 300)
}

func (r *Receiver) authorized(req *http.Request) bool {
	if r.cfg.pushAuth == "" {
		return r.cfg.pushNoAuth
	}
	got := sha256.Sum256([]byte(req.Header.Get("Authorization")))
	want := sha256.Sum256([]byte(r.cfg.pushAuth))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// errorResponse is the RFC 8935 §2.3 error body.
type errorResponse struct {
	Err         string `json:"err"`         // the RFC 8935 error code, e.g. invalid_key
	Description string `json:"description"` // human-readable; never contains the SET
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorResponse{Err: code, Description: desc})
}
