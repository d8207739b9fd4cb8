package challenge

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// Keys of the google.rpc.ErrorInfo metadata map that ErrorInfo fills.
const (
	// ErrorInfoKeyError holds the OAuth error, e.g. "insufficient_claims".
	ErrorInfoKeyError = "error"
	// ErrorInfoKeyClaims holds the claims request as padded standard base64,
	// exactly as in the www-authenticate claims parameter. Absent without claims.
	ErrorInfoKeyClaims = "claims"
	// ErrorInfoKeyAuthorizationURI holds where to obtain a new token.
	ErrorInfoKeyAuthorizationURI = "authorization_uri"
	// ErrorInfoKeyRealm holds the realm. Absent when the realm is empty.
	ErrorInfoKeyRealm = "realm"
	// ErrorInfoKeyEventTime holds the causing event's time as Unix seconds
	// (a revocation claims challenge asks for nbf one second later). Absent
	// when unknown.
	ErrorInfoKeyEventTime = "event_time"
	// ErrorInfoKeyEventID holds the causing event's id. Absent when unknown.
	ErrorInfoKeyEventID = "event_id"
	// ErrorInfoKeyACRValues holds an RFC 9470 challenge's acr_values, space
	// separated, exactly as in www-authenticate. Absent without.
	ErrorInfoKeyACRValues = "acr_values"
	// ErrorInfoKeyMaxAge holds an RFC 9470 challenge's max_age in seconds.
	// Absent without.
	ErrorInfoKeyMaxAge = "max_age"
)

// reasonNames holds ReasonName for every known reason, computed once.
var reasonNames = func() map[caev1.Reason]string {
	m := make(map[caev1.Reason]string, len(caev1.Reason_name))
	for v, n := range caev1.Reason_name {
		m[caev1.Reason(v)] = strings.TrimPrefix(n, "REASON_")
	}
	return m
}()

// ReasonName returns the google.rpc.ErrorInfo reason for r: the enum value's
// name without the REASON_ prefix, e.g. "PASSWORD_CHANGED". An unknown value
// yields "UNSPECIFIED".
func ReasonName(r caev1.Reason) string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return reasonNames[caev1.Reason_REASON_UNSPECIFIED]
}

// Proto returns c as the cae.v1.ClaimsChallenge status detail, including the
// exact www-authenticate string that Header renders.
func (c *Challenge) Proto() *caev1.ClaimsChallenge {
	p := &caev1.ClaimsChallenge{
		Claims:           c.Claims,
		Error:            c.emitErrorCode(),
		AuthorizationUri: c.AuthorizationURI,
		Realm:            c.Realm,
		Reason:           c.Reason,
		WwwAuthenticate:  c.Header(),
		ErrorDescription: c.Description,
		EventId:          c.EventID,
	}
	if !c.EventTime.IsZero() {
		p.EventTime = timestamppb.New(c.EventTime)
	}
	return p
}

// ErrorInfo returns c as a google.rpc.ErrorInfo (AIP-193): Reason is
// ReasonName(c.Reason), Domain is ErrorInfoDomain, and Metadata carries the
// ErrorInfoKey* entries that apply, so that clients without caekit's protos
// can still act on the challenge.
func (c *Challenge) ErrorInfo() *errdetails.ErrorInfo {
	md := make(map[string]string, 6)
	md[ErrorInfoKeyError] = c.emitErrorCode()
	md[ErrorInfoKeyAuthorizationURI] = c.AuthorizationURI
	if c.Claims != "" {
		md[ErrorInfoKeyClaims] = c.EncodedClaims()
	}
	if c.Realm != "" {
		md[ErrorInfoKeyRealm] = c.Realm
	}
	if !c.EventTime.IsZero() {
		md[ErrorInfoKeyEventTime] = strconv.FormatInt(c.EventTime.Unix(), 10)
	}
	if c.EventID != "" {
		md[ErrorInfoKeyEventID] = c.EventID
	}
	if v := acrValuesParam(c.ACRValues); v != "" {
		md[ErrorInfoKeyACRValues] = v
	}
	if v := MaxAgeParam(c.MaxAge); v != "" {
		md[ErrorInfoKeyMaxAge] = v
	}
	return &errdetails.ErrorInfo{
		Reason:   ReasonName(c.Reason),
		Domain:   ErrorInfoDomain,
		Metadata: md,
	}
}

// Status returns a gRPC status with code and msg that carries c twice: as a
// cae.v1.ClaimsChallenge and as a google.rpc.ErrorInfo detail. The
// www-authenticate metadata is not part of a status; servers send
// Header() separately under MetadataKey.
func (c *Challenge) Status(code codes.Code, msg string) *status.Status {
	st := status.New(code, msg)
	if withDetails, err := st.WithDetails(c.Proto(), c.ErrorInfo()); err == nil {
		return withDetails
	}
	// WithDetails fails only for code OK or an unmarshalable detail; neither
	// applies to a denial, but never lose the status itself.
	return st
}

// NotBeforeClaims returns the claims request of a revocation challenge in
// Entra's form, {"access_token":{"nbf":{"essential":true,"value":"<unix>"}}},
// asking for a token not valid before t. A revocation challenge passes the
// second after the event (revocation.Event.NotBefore), the earliest issue
// time the event does not revoke; RequestedNotBefore reads it back.
func NotBeforeClaims(t time.Time) string {
	return `{"access_token":{"nbf":{"essential":true,"value":"` + strconv.FormatInt(t.Unix(), 10) + `"}}}`
}

// AuthContextClaims returns the claims request of an auth-context step-up in
// Entra's form, {"access_token":{"acrs":{"essential":true,"value":"c1"}}}.
func AuthContextClaims(id string) string {
	v, err := json.Marshal(id) // a string always marshals
	if err != nil {
		v = []byte(`""`)
	}
	return `{"access_token":{"acrs":{"essential":true,"value":` + string(v) + `}}}`
}
