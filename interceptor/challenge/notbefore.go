package challenge

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caekit/caekit/internal/jose"
)

// maxNotBefore bounds a requested nbf (year 2242, as interceptor/token bounds
// NumericDates), so that it stays representable in Unix nanoseconds.
const maxNotBefore = 1 << 33

// RequestedNotBefore returns the nbf that a claims request asks for, as in a
// revocation challenge {"access_token":{"nbf":{"essential":true,"value":"<unix>"}}}:
// the earliest "not before" time a new token must have. It returns the zero
// time and no error when the claims ask for no nbf (empty claims, no
// access_token, no nbf, or a null one).
//
// The value may be a JSON string (Entra's form) or a number holding a
// positive integer NumericDate. Anything else is an error naming what was
// wrong: claims that are not a JSON object, a repeated key, an nbf request
// that is not an object, has no value, or has a value that is not a positive
// integer no later than the year 2242.
func RequestedNotBefore(claims string) (time.Time, error) {
	claims = strings.TrimSpace(claims)
	if claims == "" {
		return time.Time{}, nil
	}
	if len(claims) > MaxClaimsLen {
		return time.Time{}, fmt.Errorf("challenge: claims are %d bytes, limit %d", len(claims), MaxClaimsLen)
	}
	top, err := parseObject([]byte(claims), "")
	if err != nil {
		return time.Time{}, fmt.Errorf("challenge: requested nbf: %w", err)
	}
	at := lookupMember(top, "access_token")
	if at == nil || string(at) == "null" {
		return time.Time{}, nil
	}
	inner, err := parseObject(at, "access_token")
	if err != nil {
		return time.Time{}, fmt.Errorf("challenge: requested nbf: %w", err)
	}
	raw := lookupMember(inner, "nbf")
	if raw == nil || string(raw) == "null" {
		return time.Time{}, nil
	}
	spec, err := parseObject(raw, "access_token.nbf")
	if err != nil {
		return time.Time{}, fmt.Errorf("challenge: requested nbf: %w", err)
	}
	v := lookupMember(spec, "value")
	if v == nil {
		return time.Time{}, fmt.Errorf("challenge: requested nbf: key %q has no value", "access_token.nbf")
	}
	var digits string
	if err := json.Unmarshal(v, &digits); err != nil {
		digits = string(v) // a JSON number, as written
	}
	secs, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || secs <= 0 || secs > maxNotBefore {
		return time.Time{}, fmt.Errorf("challenge: requested nbf: key %q value %s is not a positive integer NumericDate up to %d",
			"access_token.nbf.value", jose.Clip(string(v)), int64(maxNotBefore))
	}
	return time.Unix(secs, 0), nil
}

func lookupMember(ms []member, key string) json.RawMessage {
	for _, m := range ms {
		if m.key == key {
			return m.value
		}
	}
	return nil
}

// StepUpClaims returns the auth-context part of a claims request,
// {"access_token":{"acrs":…}} with the acrs request as it was sent, or ""
// when the claims ask for no auth context or are not a well-formed claims
// request (the strict parser MergeClaims uses: one JSON object, no repeated
// keys). A client keeps it on later refreshes so that a stepped-up token
// does not lose its auth context; other members (an nbf, which only asks for
// a token newer than an event) are answered once and not kept.
func StepUpClaims(claims string) string {
	claims = strings.TrimSpace(claims)
	if claims == "" || len(claims) > MaxClaimsLen {
		return ""
	}
	top, err := parseObject([]byte(claims), "")
	if err != nil {
		return ""
	}
	at := lookupMember(top, "access_token")
	if at == nil || string(at) == "null" {
		return ""
	}
	inner, err := parseObject(at, "access_token")
	if err != nil {
		return ""
	}
	acrs := lookupMember(inner, "acrs")
	if acrs == nil {
		return ""
	}
	return encodeObject([]member{{key: "access_token", value: encodeObjectBytes([]member{{key: "acrs", value: acrs}})}})
}
