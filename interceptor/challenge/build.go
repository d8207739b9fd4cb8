package challenge

import (
	"encoding/base64"
	"strings"
)

// DefaultScheme is the auth scheme Header uses when Challenge.Scheme is empty.
const DefaultScheme = "Bearer"

// emitMaxQuoted bounds every quoted-string value Header writes (descriptions in
// particular), so that a challenge always fits comfortably in one header.
const emitMaxQuoted = 4096

// Header renders c as an RFC 7235 challenge in Microsoft Entra's exact form:
//
//	Bearer realm="", authorization_uri="https://login.example/authorize", error="insufficient_claims", claims="eyJ..."
//
// Parameters come in this order: realm, authorization_uri, error, claims
// (padded standard base64 of c.Claims, only when c.Claims is not empty),
// error_description (only when c.Error is not insufficient_claims and
// c.Description is not empty, so that claims challenges keep Entra's form),
// then c.Params in order. realm and authorization_uri are always present,
// possibly empty. An empty c.Error is rendered as insufficient_claims when
// c.Claims is set and as invalid_token otherwise.
//
// Values are written as RFC 7230 quoted-strings: '"' and '\' are escaped with
// a backslash, and bytes that may not appear in a gRPC metadata value
// (control characters and non-ASCII) are replaced with '?'. Params whose
// name is not an RFC 7230 token, or that repeat a standard parameter, are
// skipped: parameter names must be unique within a challenge.
//
// A step-up challenge (c.Error is ErrorInsufficientUserAuthentication, or
// empty with ACRValues or MaxAge set and no Claims) is rendered in RFC 9470
// §3's form instead:
//
//	Bearer error="insufficient_user_authentication", error_description="…", acr_values="myACR", max_age="300"
//
// error first, then error_description (when set), acr_values (space
// separated; values that are empty or hold whitespace or quotes are left
// out), max_age (seconds), realm and authorization_uri (each only when
// set), then c.Params.
func (c *Challenge) Header() string {
	if c.emitErrorCode() == ErrorInsufficientUserAuthentication {
		return c.stepUpHeader()
	}
	var b strings.Builder
	b.Grow(96 + len(c.AuthorizationURI) + len(c.Realm) + base64.StdEncoding.EncodedLen(len(c.Claims)) + len(c.Description))
	scheme := c.Scheme
	if scheme == "" || !emitIsToken(scheme) {
		scheme = DefaultScheme
	}
	b.WriteString(scheme)
	b.WriteString(` realm=`)
	emitQuoted(&b, c.Realm)
	b.WriteString(`, authorization_uri=`)
	emitQuoted(&b, c.AuthorizationURI)
	errCode := c.emitErrorCode()
	b.WriteString(`, error=`)
	emitQuoted(&b, errCode)
	if c.Claims != "" {
		b.WriteString(`, claims="`)
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(c.Claims)))
		b.WriteByte('"')
	}
	if c.Description != "" && errCode != ErrorInsufficientClaims {
		b.WriteString(`, error_description=`)
		emitQuoted(&b, c.Description)
	}
	emitParams(&b, c.Params)
	return b.String()
}

// EncodedClaims returns c.Claims as padded standard base64, the encoding of
// the claims parameter, or "" when there are no claims.
func (c *Challenge) EncodedClaims() string {
	if c.Claims == "" {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(c.Claims))
}

// errorCode returns c.Error, defaulted from whether claims are present.
func (c *Challenge) emitErrorCode() string {
	switch {
	case c.Error != "":
		return c.Error
	case c.Claims != "":
		return ErrorInsufficientClaims
	case len(c.ACRValues) > 0 || c.MaxAge != 0:
		return ErrorInsufficientUserAuthentication
	default:
		return ErrorInvalidToken
	}
}

// emitParams writes the extra parameters of a challenge (Build and
// BuildStepUp share it): each as `, name="value"`, skipping a name that is
// not a token or that would shadow a standard parameter.
func emitParams(b *strings.Builder, params []Param) {
	for _, p := range params {
		if !emitIsToken(p.Name) || emitIsStandardParam(p.Name) {
			continue
		}
		b.WriteString(", ")
		b.WriteString(p.Name)
		b.WriteByte('=')
		emitQuoted(b, p.Value)
	}
}

func emitIsStandardParam(name string) bool {
	switch strings.ToLower(name) {
	case "realm", "authorization_uri", "error", "claims", "error_description", "acr_values", "max_age":
		return true
	}
	return false
}

// emitIsToken reports whether s is a non-empty RFC 7230 token.
func emitIsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !emitIsTchar(s[i]) {
			return false
		}
	}
	return true
}

func emitIsTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// emitQuoted writes s as an RFC 7230 quoted-string, truncated to emitMaxQuoted
// bytes, escaping '"' and '\' and replacing bytes a gRPC metadata value cannot
// carry (controls other than tab, DEL, non-ASCII) with '?'.
func emitQuoted(b *strings.Builder, s string) {
	if len(s) > emitMaxQuoted {
		s = s[:emitMaxQuoted]
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteByte(' ')
		case c < 0x20 || c >= 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
