package jose

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// MaxNumericDate bounds a NumericDate claim (2^33 seconds, the year 2242),
// so that every time stays representable in Unix nanoseconds.
const MaxNumericDate = 1 << 33

// The claim readers below are the one set of rules for the claims that
// access tokens, logout tokens and Security Event Tokens share. They read a
// payload decoded into map[string]any (access tokens, whose Claims.Raw is
// that map) or left as map[string]json.RawMessage (logout tokens, SETs),
// with the same rule for both: an absent claim is absent; a present claim of
// the wrong type is an error, and JSON null is the wrong type for every one
// of them (RFC 7519 section 2 defines StringOrURI and NumericDate values,
// neither of which is null). Errors name the claim and what it held, never
// its value.

// ClaimString reads a string claim. Absent gives "", false.
func ClaimString[V any](m map[string]V, name string) (string, bool, error) {
	v, ok := m[name]
	if !ok {
		return "", false, nil
	}
	if r, raw := any(v).(json.RawMessage); raw {
		// Fast path: a plain string without escapes (the payload passed
		// CheckJSON, so the quotes delimit one string).
		if n := len(r); n >= 2 && r[0] == '"' && r[n-1] == '"' && !hasEscapeOrQuote(r[1:n-1]) {
			return string(r[1 : n-1]), true, nil
		}
	}
	x, err := decoded(v)
	if err != nil {
		return "", false, fmt.Errorf("claim %s: %w", name, err)
	}
	s, isStr := x.(string)
	if !isStr {
		return "", false, fmt.Errorf("claim %s must be a string, not %s", name, jsonKind(x))
	}
	return s, true, nil
}

// ClaimStrings reads a claim that is a string or an array of strings (aud,
// RFC 7519 section 4.1.3). Absent gives nil, false; an empty array gives an
// empty, non-nil slice.
func ClaimStrings[V any](m map[string]V, name string) ([]string, bool, error) {
	v, ok := m[name]
	if !ok {
		return nil, false, nil
	}
	x, err := decoded(v)
	if err != nil {
		return nil, false, fmt.Errorf("claim %s: %w", name, err)
	}
	switch x := x.(type) {
	case string:
		return []string{x}, true, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false, fmt.Errorf("claim %s must hold strings, not %s", name, jsonKind(e))
			}
			out = append(out, s)
		}
		return out, true, nil
	default:
		return nil, false, fmt.Errorf("claim %s must be a string or an array of strings, not %s", name, jsonKind(x))
	}
}

// ClaimTime reads a NumericDate claim (RFC 7519 section 2: seconds since the
// epoch, possibly fractional), in UTC. It must lie in [0, MaxNumericDate].
// Absent gives the zero time, false.
func ClaimTime[V any](m map[string]V, name string) (time.Time, bool, error) {
	v, ok := m[name]
	if !ok {
		return time.Time{}, false, nil
	}
	x, err := decoded(v)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("claim %s is out of range: %w", name, err)
	}
	f, isNum := x.(float64)
	if !isNum {
		return time.Time{}, false, fmt.Errorf("claim %s must be a number (NumericDate), not %s", name, jsonKind(x))
	}
	if f < 0 || f > MaxNumericDate || math.IsNaN(f) {
		return time.Time{}, false, fmt.Errorf("claim %s is out of range (0 to %d)", name, int64(MaxNumericDate))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// decoded returns v as encoding/json decodes into any: v itself, or a
// json.RawMessage decoded.
func decoded[V any](v V) (any, error) {
	r, raw := any(v).(json.RawMessage)
	if !raw {
		return v, nil
	}
	var x any
	if err := json.Unmarshal(r, &x); err != nil {
		return nil, fmt.Errorf("not a JSON value this reader can hold: %v", err)
	}
	return x, nil
}

func hasEscapeOrQuote(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c == '"' {
			return true
		}
	}
	return false
}

// jsonKind names the JSON type of a value decoded into any, for an error.
func jsonKind(x any) string {
	switch x.(type) {
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%T", x)
	}
}

// Hash returns the short hash of a raw token that caekit logs in place of
// the token: the first 12 hex digits of its SHA-256. It is not reversible,
// and the same for the same token everywhere in the kit (access tokens,
// SETs, logout tokens, the client's cached tokens), so that log lines of
// different components can be correlated.
func Hash[T string | []byte](raw T) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:6])
}
