package challenge

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Bounds on what the parsers accept. Anything larger is rejected with an
// error rather than processed: a challenge is attacker-influenced input when
// a client talks to an untrusted or compromised server.
const (
	// MaxHeaderLen bounds one www-authenticate value, and the sum of all
	// values handed to ParseHeader or Parse at once.
	MaxHeaderLen = 32 << 10
	// MaxClaimsLen bounds a claims request, encoded or decoded.
	MaxClaimsLen = 16 << 10
	// MaxChallenges bounds how many challenges one parse accepts.
	MaxChallenges = 16
	// MaxParams bounds how many auth-params one challenge may have.
	MaxParams = 32
)

// AuthChallenge is one RFC 7235 challenge as it appeared on the wire: an
// auth-scheme with either a token68 or a list of auth-params.
type AuthChallenge struct {
	// Scheme is the auth-scheme as sent, e.g. "Bearer" or "PoP".
	Scheme string
	// Token68 is the token68 form of the credentials, when the challenge
	// used it instead of auth-params.
	Token68 string
	// Params are the auth-params in order, names as sent, quoted-string
	// values unescaped.
	Params []Param
}

// Param returns the value of the auth-param named name, compared
// case-insensitively as RFC 7235 requires.
func (a AuthChallenge) Param(name string) (string, bool) {
	for _, p := range a.Params {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// ParseHeader parses www-authenticate values into their challenges, in
// order. Each value may hold several comma-separated challenges, e.g.
//
//	PoP realm="x", nonce="y", Bearer realm="", error="insufficient_claims", claims="…"
//
// Scheme and parameter names are case-insensitive, parameters may come in
// any order, values are tokens or quoted-strings with backslash escapes, and a
// challenge may carry a token68 instead of parameters. A syntax error, a
// duplicate parameter name within one challenge, or input past the bounds
// above is an error that says where the value went wrong.
func ParseHeader(values ...string) ([]AuthChallenge, error) {
	total := 0
	var out []AuthChallenge
	for i, v := range values {
		total += len(v)
		if total > MaxHeaderLen {
			return nil, fmt.Errorf("challenge: www-authenticate is %d bytes or more, limit %d", total, MaxHeaderLen)
		}
		cs, err := parseHeaderValue(v)
		if err != nil {
			if len(values) > 1 {
				return nil, fmt.Errorf("challenge: www-authenticate value %d: %w", i+1, err)
			}
			return nil, fmt.Errorf("challenge: www-authenticate: %w", err)
		}
		out = append(out, cs...)
		if len(out) > MaxChallenges {
			return nil, fmt.Errorf("challenge: www-authenticate has more than %d challenges", MaxChallenges)
		}
	}
	return out, nil
}

// Parse reads the Bearer claims challenge from www-authenticate values. When
// several Bearer challenges are present it prefers one that has an error
// parameter. The claims parameter is decoded with DecodeClaims.
//
// Parse returns ErrNoChallenge (wrapped) when no value holds a Bearer
// challenge, and a descriptive error when a value cannot be parsed or its
// claims cannot be decoded.
func Parse(values ...string) (*Challenge, error) {
	all, err := ParseHeader(values...)
	if err != nil {
		return nil, err
	}
	var pick *AuthChallenge
	for i := range all {
		a := &all[i]
		if !strings.EqualFold(a.Scheme, "Bearer") {
			continue
		}
		if pick == nil {
			pick = a
		}
		if _, ok := a.Param("error"); ok {
			pick = a
			break
		}
	}
	if pick == nil {
		return nil, fmt.Errorf("challenge: www-authenticate has no Bearer challenge: %w", ErrNoChallenge)
	}
	return fromAuthChallenge(pick)
}

func fromAuthChallenge(a *AuthChallenge) (*Challenge, error) {
	c := &Challenge{Scheme: "Bearer"}
	for _, p := range a.Params {
		switch strings.ToLower(p.Name) {
		case "realm":
			c.Realm = p.Value
		case "authorization_uri":
			c.AuthorizationURI = p.Value
		case "error":
			c.Error = p.Value
		case "error_description", "errordescription":
			c.Description = p.Value
		case "claims":
			claims, err := DecodeClaims(p.Value)
			if err != nil {
				return nil, err
			}
			c.Claims = claims
		case "acr_values":
			vs, err := ParseACRValues(p.Value)
			if err != nil {
				return nil, err
			}
			c.ACRValues = vs
		case "max_age":
			d, err := ParseMaxAge(p.Value)
			if err != nil {
				return nil, err
			}
			c.MaxAge = d
		default:
			c.Params = append(c.Params, p)
		}
	}
	return c, nil
}

// DecodeClaims turns the claims parameter of a challenge into the JSON claims
// request. It accepts what real servers send: standard or URL-safe base64,
// with or without padding, and raw JSON (as MSAL.NET does). The result must
// be a JSON object; surrounding whitespace is removed. An empty input gives
// an empty result.
func DecodeClaims(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) > MaxClaimsLen*4/3+4 {
		return "", fmt.Errorf("challenge: claims are %d bytes, limit %d", len(s), MaxClaimsLen)
	}
	var raw []byte
	if s[0] == '{' {
		raw = []byte(s)
	} else {
		enc := base64.RawStdEncoding
		if strings.ContainsAny(s, "-_") {
			enc = base64.RawURLEncoding
		}
		b, err := enc.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return "", fmt.Errorf("challenge: claims are neither a JSON object nor base64: %w", err)
		}
		raw = bytes.TrimSpace(b)
	}
	if len(raw) > MaxClaimsLen {
		return "", fmt.Errorf("challenge: claims are %d bytes, limit %d", len(raw), MaxClaimsLen)
	}
	if err := checkJSONObject(raw); err != nil {
		return "", fmt.Errorf("challenge: claims are not a JSON object: %w", err)
	}
	return string(raw), nil
}

func checkJSONObject(b []byte) error {
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("top level is not an object")
	}
	return nil
}

// headerParser is a cursor over one www-authenticate value.
type headerParser struct {
	s string
	i int
}

func parseHeaderValue(v string) ([]AuthChallenge, error) {
	p := &headerParser{s: v}
	var out []AuthChallenge
	for {
		p.skipListSeparators()
		if p.done() {
			break
		}
		start := p.i
		scheme := p.token()
		if scheme == "" {
			return nil, p.errorf("expected an auth-scheme, found %q", p.s[start:start+1])
		}
		c := AuthChallenge{Scheme: scheme}
		p.skipSpace()
		if p.done() || p.peek() == ',' {
			out = append(out, c)
			continue
		}
		if p.i == start+len(scheme) {
			return nil, p.errorf("expected a space after auth-scheme %q", scheme)
		}
		// token68 or the first auth-param?
		if t68, ok := p.tryToken68(); ok {
			c.Token68 = t68
			out = append(out, c)
			continue
		}
		for {
			name, value, err := p.param()
			if err != nil {
				return nil, err
			}
			if _, dup := c.Param(name); dup {
				return nil, p.errorf("duplicate parameter %q in %s challenge", name, scheme)
			}
			if len(c.Params) == MaxParams {
				return nil, p.errorf("%s challenge has more than %d parameters", scheme, MaxParams)
			}
			c.Params = append(c.Params, Param{Name: name, Value: value})
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() != ',' {
				return nil, p.errorf("expected ',' after parameter %q", name)
			}
			// After the comma comes another param of this challenge or a
			// new challenge: a param is a token followed by '='.
			p.skipListSeparators()
			if p.done() || !p.nextIsParam() {
				break
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func (p *headerParser) done() bool { return p.i >= len(p.s) }
func (p *headerParser) peek() byte { return p.s[p.i] }

func (p *headerParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *headerParser) skipSpace() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *headerParser) skipListSeparators() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *headerParser) token() string {
	start := p.i
	for !p.done() && isTChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// nextIsParam reports, without moving, whether a "token BWS =" follows.
func (p *headerParser) nextIsParam() bool {
	save := p.i
	defer func() { p.i = save }()
	if p.token() == "" {
		return false
	}
	p.skipSpace()
	return !p.done() && p.peek() == '='
}

// tryToken68 consumes a token68 when one (and nothing else) stands before
// the next comma or the end.
func (p *headerParser) tryToken68() (string, bool) {
	start := p.i
	j := p.i
	for j < len(p.s) && isToken68Char(p.s[j]) {
		j++
	}
	if j == start {
		return "", false
	}
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	k := j
	for k < len(p.s) && (p.s[k] == ' ' || p.s[k] == '\t') {
		k++
	}
	if k < len(p.s) && p.s[k] != ',' {
		return "", false
	}
	// "name=" with nothing after is an empty param value, not a token68,
	// unless the name is not a token (token68 allows '/' and '+').
	p.i = j
	return p.s[start:j], true
}

func (p *headerParser) param() (name, value string, err error) {
	name = p.token()
	if name == "" {
		if p.done() {
			return "", "", p.errorf("expected a parameter name, found the end")
		}
		return "", "", p.errorf("expected a parameter name, found %q", p.s[p.i:p.i+1])
	}
	p.skipSpace()
	if p.done() || p.peek() != '=' {
		return "", "", p.errorf("expected '=' after parameter name %q", name)
	}
	p.i++
	p.skipSpace()
	if p.done() {
		return name, "", nil
	}
	if p.peek() == '"' {
		v, err := p.quoted()
		if err != nil {
			return "", "", fmt.Errorf("parameter %q: %w", name, err)
		}
		return name, v, nil
	}
	// A token value; be lenient and also accept base64 characters ('/',
	// '+', '=') that servers put unquoted in claims.
	start := p.i
	for !p.done() && (isTChar(p.s[p.i]) || p.s[p.i] == '/' || p.s[p.i] == '=') {
		p.i++
	}
	return name, p.s[start:p.i], nil
}

func (p *headerParser) quoted() (string, error) {
	start := p.i
	p.i++ // opening quote
	var b strings.Builder
	for !p.done() {
		ch := p.s[p.i]
		switch {
		case ch == '"':
			p.i++
			return b.String(), nil
		case ch == '\\':
			p.i++
			if p.done() {
				return "", fmt.Errorf("quoted-string starting at byte %d ends in a lone backslash", start)
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case ch < 0x20 && ch != '\t' || ch == 0x7f:
			return "", fmt.Errorf("quoted-string starting at byte %d has control character 0x%02x", start, ch)
		default:
			b.WriteByte(ch)
			p.i++
		}
	}
	return "", fmt.Errorf("quoted-string starting at byte %d is not terminated", start)
}

func isTChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}
