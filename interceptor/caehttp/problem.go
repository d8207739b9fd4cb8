package caehttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"google.golang.org/grpc/codes"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
)

// ProblemContentType is the media type of the denial body (RFC 9457 §3).
const ProblemContentType = "application/problem+json"

// ProblemTypePrefix prefixes the reason name in a denial's problem type,
// e.g. "urn:caekit:reason:USER_DISABLED" (RFC 9457 §3.1.1: a URI
// reference identifying the problem type).
const ProblemTypePrefix = "urn:caekit:reason:"

// Problem is the RFC 9457 problem document of a denial. It never contains
// a token: Detail is the denial's description, which the Server keeps free
// of tokens.
type Problem struct {
	// Type is ProblemTypePrefix + Reason (RFC 9457 §3.1.1).
	Type string `json:"type"`
	// Title is the HTTP status text (RFC 9457 §3.1.3).
	Title string `json:"title"`
	// Status is the HTTP status code (RFC 9457 §3.1.2).
	Status int `json:"status"`
	// Detail is the denial's description (RFC 9457 §3.1.4).
	Detail string `json:"detail,omitempty"`
	// Reason is the reason name without REASON_, as in google.rpc.ErrorInfo
	// (an extension member, RFC 9457 §3.2).
	Reason string `json:"reason"`
	// EventID is the id of the revocation event behind the denial, if any.
	EventID string `json:"event_id,omitempty"`
}

// StatusCode returns the HTTP status of a denial: 401 for a challenge (it
// carries WWW-Authenticate), 503 while the revocation state cannot be
// trusted or the Server is closed (codes.Unavailable), 403 for the other
// plain denials.
func StatusCode(d *interceptor.DenialError) int {
	switch {
	case d.Challenge() != "":
		return http.StatusUnauthorized
	case d.Code() == codes.Unavailable:
		return http.StatusServiceUnavailable
	case d.Code() == codes.Unauthenticated:
		return http.StatusUnauthorized
	default:
		return http.StatusForbidden
	}
}

// NewProblem returns the problem document of d.
func NewProblem(d *interceptor.DenialError) Problem {
	den := d.Denial()
	st := StatusCode(d)
	reason := challenge.ReasonName(den.Reason)
	detail := den.Description
	if detail == "" {
		detail = d.GRPCStatus().Message()
	}
	return Problem{
		Type:    ProblemTypePrefix + reason,
		Title:   http.StatusText(st),
		Status:  st,
		Detail:  detail,
		Reason:  reason,
		EventID: den.EventID,
	}
}

// WriteError writes the response for err: for an *interceptor.DenialError
// the status (StatusCode), WWW-Authenticate for a challenge (the exact
// string the gRPC interceptors send in their www-authenticate trailer) and
// the problem document (NewProblem); for any other error a 500 problem
// without detail. Responses are marked Cache-Control: no-store.
func WriteError(w http.ResponseWriter, err error) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", ProblemContentType)
	var d *interceptor.DenialError
	if !errors.As(err, &d) {
		p := Problem{Type: "about:blank", Title: http.StatusText(http.StatusInternalServerError), Status: http.StatusInternalServerError, Reason: "UNSPECIFIED"}
		writeProblem(w, p)
		return
	}
	if c := d.Challenge(); c != "" {
		h.Set("WWW-Authenticate", c)
	}
	writeProblem(w, NewProblem(d))
}

func writeProblem(w http.ResponseWriter, p Problem) {
	b, err := json.Marshal(p)
	if err != nil { // a Problem always marshals; keep the status anyway
		b = []byte(`{"status":` + strconv.Itoa(p.Status) + `}`)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}
