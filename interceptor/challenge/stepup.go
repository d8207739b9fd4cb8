package challenge

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounds on the RFC 9470 parameters a parser accepts.
const (
	// MaxACRValues bounds how many values one acr_values parameter may hold.
	MaxACRValues = 16
	// MaxMaxAge bounds the max_age parameter: one year, in seconds.
	MaxMaxAge = 366 * 24 * time.Hour
)

// StepUp reports whether c is an actionable RFC 9470 step-up challenge:
// error="insufficient_user_authentication" with acr_values or max_age
// (RFC 9470 §3). Such a challenge asks for a token from a new authorization
// request carrying those acr_values and max_age (RFC 9470 §4); a client
// answers it by passing them to its token source.
func (c *Challenge) StepUp() bool {
	return c != nil && strings.EqualFold(c.Error, ErrorInsufficientUserAuthentication) && (len(c.ACRValues) > 0 || c.MaxAge != 0)
}

// MaxAgeParam returns the max_age parameter value for d: whole seconds,
// "0" for a negative d (see Challenge.MaxAge), "" for zero (no max_age).
func MaxAgeParam(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d < 0:
		return "0"
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// ParseMaxAge reads a max_age parameter (RFC 9470 §3: a non-negative
// number of seconds) into a Challenge.MaxAge: "0" becomes a negative
// duration, so that it is told apart from an absent max_age. Anything but
// decimal digits, or more than MaxMaxAge, is an error.
func ParseMaxAge(s string) (time.Duration, error) {
	if s == "" || len(s) > 12 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("challenge: max_age %q is not a number of seconds", clip(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || time.Duration(n) > MaxMaxAge/time.Second {
		return 0, fmt.Errorf("challenge: max_age %q is more than %d seconds", clip(s), int64(MaxMaxAge/time.Second))
	}
	if n == 0 {
		return -1, nil
	}
	return time.Duration(n) * time.Second, nil
}

// ParseACRValues splits an acr_values parameter (RFC 9470 §3: space
// separated, in order of preference) into its values, dropping repeats. More
// than MaxACRValues values, or none, is an error.
func ParseACRValues(s string) ([]string, error) {
	fs := strings.Fields(s)
	if len(fs) == 0 {
		return nil, fmt.Errorf("challenge: acr_values is empty")
	}
	if len(fs) > MaxACRValues {
		return nil, fmt.Errorf("challenge: acr_values has %d values, limit %d", len(fs), MaxACRValues)
	}
	out := fs[:0]
	for _, f := range fs {
		dup := false
		for _, o := range out {
			dup = dup || o == f
		}
		if !dup {
			out = append(out, f)
		}
	}
	return out, nil
}

// ValidACRValue reports whether v can travel in an acr_values parameter:
// non-empty printable ASCII without spaces, quotes or backslashes.
func ValidACRValue(v string) bool {
	if v == "" || len(v) > 256 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// acrValuesParam joins the valid values of vs with single spaces.
func acrValuesParam(vs []string) string {
	var b strings.Builder
	for _, v := range vs {
		if !ValidACRValue(v) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(v)
	}
	return b.String()
}

// stepUpHeader renders an RFC 9470 §3 challenge; see Header.
func (c *Challenge) stepUpHeader() string {
	var b strings.Builder
	scheme := c.Scheme
	if scheme == "" || !emitIsToken(scheme) {
		scheme = DefaultScheme
	}
	b.WriteString(scheme)
	b.WriteString(` error="` + ErrorInsufficientUserAuthentication + `"`)
	if c.Description != "" {
		b.WriteString(`, error_description=`)
		emitQuoted(&b, c.Description)
	}
	if v := acrValuesParam(c.ACRValues); v != "" {
		b.WriteString(`, acr_values=`)
		emitQuoted(&b, v)
	}
	if v := MaxAgeParam(c.MaxAge); v != "" {
		b.WriteString(`, max_age="` + v + `"`)
	}
	if c.Realm != "" {
		b.WriteString(`, realm=`)
		emitQuoted(&b, c.Realm)
	}
	if c.AuthorizationURI != "" {
		b.WriteString(`, authorization_uri=`)
		emitQuoted(&b, c.AuthorizationURI)
	}
	emitParams(&b, c.Params)
	return b.String()
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
