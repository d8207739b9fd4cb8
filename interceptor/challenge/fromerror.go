package challenge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// ErrNoChallenge reports that an error or metadata carries no CAE challenge.
var ErrNoChallenge = errors.New("no CAE challenge")

// InsufficientClaims reports whether c is an actionable claims challenge:
// error="insufficient_claims" with a non-empty claims request. Only such a
// challenge is worth a new token and a retry; an invalid_token rejection or
// a challenge without claims is not.
func (c *Challenge) InsufficientClaims() bool {
	return c != nil && strings.EqualFold(c.Error, ErrorInsufficientClaims) && c.Claims != ""
}

// FromError is Extract without the reason for a failure.
//
// Deprecated: use Extract, the one way to get a challenge out of an error:
// it says why there is none (an error wrapping ErrNoChallenge) or why the
// one present is malformed. FromError(err, md...) is exactly
// c, e := Extract(err, md...); ok := e == nil.
func FromError(err error, md ...metadata.MD) (*Challenge, bool) {
	c, e := Extract(err, md...)
	return c, e == nil
}

// Extract returns the CAE challenge that a gRPC error carries, looking in
// this order of preference: the cae.v1.ClaimsChallenge status detail, the
// google.rpc.ErrorInfo detail of domain caekit.dev, and the www-authenticate
// values of md (pass the call's header and trailer metadata, collected with
// grpc.Header and grpc.Trailer). Only codes.Unauthenticated errors carry
// challenges. Use c.InsufficientClaims() to tell whether the challenge asks
// for claims (worth a new token) or is a plain invalid_token rejection.
//
// It returns an error wrapping ErrNoChallenge when err is not a challenge
// at all, and a descriptive error when a challenge is present but malformed
// (undecodable claims, claims that are not a JSON object, an unparsable
// www-authenticate). When the preferred source is malformed the next one is
// tried; the first source's error is returned if none succeeds.
func Extract(err error, md ...metadata.MD) (*Challenge, error) {
	if err == nil {
		return nil, fmt.Errorf("challenge: nil error: %w", ErrNoChallenge)
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unauthenticated {
		return nil, fmt.Errorf("challenge: not an Unauthenticated status: %w", ErrNoChallenge)
	}
	var firstErr error
	keep := func(e error) {
		if firstErr == nil {
			firstErr = e
		}
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *caev1.ClaimsChallenge:
			c, e := fromProto(d)
			if e == nil {
				return c, nil
			}
			keep(e)
		case *errdetails.ErrorInfo:
			if info == nil && d.GetDomain() == ErrorInfoDomain {
				info = d
			}
		}
	}
	if info != nil {
		c, e := fromErrorInfo(info)
		if e == nil {
			return c, nil
		}
		keep(e)
	}
	var values []string
	for _, m := range md {
		values = append(values, m.Get(MetadataKey)...)
	}
	if len(values) > 0 {
		c, e := Parse(values...)
		if e == nil {
			if c.Reason == caev1.Reason_REASON_UNSPECIFIED && info != nil {
				c.Reason = reasonFromInfo(info.GetReason())
			}
			return c, nil
		}
		keep(e)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("challenge: Unauthenticated status without a challenge: %w", ErrNoChallenge)
}

func fromProto(p *caev1.ClaimsChallenge) (*Challenge, error) {
	c := &Challenge{
		Scheme:           "Bearer",
		Error:            p.GetError(),
		AuthorizationURI: p.GetAuthorizationUri(),
		Realm:            p.GetRealm(),
		Reason:           p.GetReason(),
		EventID:          p.GetEventId(),
		Description:      p.GetErrorDescription(),
	}
	if ts := p.GetEventTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nil, fmt.Errorf("challenge: ClaimsChallenge detail: event_time: %w", err)
		}
		c.EventTime = ts.AsTime()
	}
	if p.GetClaims() != "" {
		claims, err := DecodeClaims(p.GetClaims())
		if err != nil {
			return nil, fmt.Errorf("challenge: ClaimsChallenge detail: %w", err)
		}
		c.Claims = claims
	}
	// Extra parameters (cc_type, client_id, ...) live only in the
	// www-authenticate copy; take them from there when it parses.
	if h := p.GetWwwAuthenticate(); h != "" {
		if hc, err := Parse(h); err == nil {
			c.Params = hc.Params
			c.ACRValues, c.MaxAge = hc.ACRValues, hc.MaxAge
		}
	}
	if c.Error == "" {
		c.Error = defaultError(c.Claims)
	}
	return c, nil
}

func fromErrorInfo(info *errdetails.ErrorInfo) (*Challenge, error) {
	md := info.GetMetadata()
	c := &Challenge{
		Scheme:           "Bearer",
		Error:            md["error"],
		AuthorizationURI: md["authorization_uri"],
		Realm:            md["realm"],
		EventID:          md["event_id"],
		Reason:           reasonFromInfo(info.GetReason()),
	}
	if v := md["event_time"]; v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("challenge: ErrorInfo detail: event_time %q is not Unix seconds", v)
		}
		c.EventTime = time.Unix(sec, 0).UTC()
	}
	if v := md["claims"]; v != "" {
		claims, err := DecodeClaims(v)
		if err != nil {
			return nil, fmt.Errorf("challenge: ErrorInfo detail: %w", err)
		}
		c.Claims = claims
	}
	if v := md[ErrorInfoKeyACRValues]; v != "" {
		vs, err := ParseACRValues(v)
		if err != nil {
			return nil, fmt.Errorf("challenge: ErrorInfo detail: %w", err)
		}
		c.ACRValues = vs
	}
	if v := md[ErrorInfoKeyMaxAge]; v != "" {
		d, err := ParseMaxAge(v)
		if err != nil {
			return nil, fmt.Errorf("challenge: ErrorInfo detail: %w", err)
		}
		c.MaxAge = d
	}
	if c.Error == "" {
		c.Error = defaultError(c.Claims)
	}
	return c, nil
}

func defaultError(claims string) string {
	if claims != "" {
		return ErrorInsufficientClaims
	}
	return ErrorInvalidToken
}

// reasonFromInfo maps an ErrorInfo reason ("SESSION_REVOKED") to the enum.
func reasonFromInfo(r string) caev1.Reason {
	if v, ok := caev1.Reason_value["REASON_"+r]; ok {
		return caev1.Reason(v)
	}
	return caev1.Reason_REASON_UNSPECIFIED
}
