package jose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrJWS is wrapped by every error of SplitJWS, ParseJWS, (*JWS).Payload and
// VerifyJWS: the input is not an acceptable compact JWS.
var ErrJWS = errors.New("not an acceptable compact JWS")

// ErrAlg is wrapped, beside ErrJWS, by the errors of (*JWS).CheckAlg: the
// header's alg is "none" or not in the caller's allow-list. Callers that
// answer with distinct error classes (an access token's ErrAlgorithm, a
// SET's invalid_key) tell it apart from a malformed token with errors.Is.
var ErrAlg = errors.New("algorithm not allowed")

// JWS is a compact JWS split by SplitJWS: its header decoded and checked,
// its signature decoded, its payload still encoded (Payload decodes it). Its
// signature is not verified yet (VerifyJWS does that); nothing in it may be
// trusted before.
type JWS struct {
	// Alg, Kid and Typ are the header members of those names; HasKID tells
	// an absent kid from an empty one.
	Alg, Kid, Typ string
	HasKID        bool
	// Header is the header object, members undecoded.
	Header map[string]json.RawMessage
	// Claims is the payload object, members undecoded; ParseJWS fills it,
	// SplitJWS leaves it nil.
	Claims map[string]json.RawMessage

	signing string // header.payload, the signed input
	payload string // the payload, base64url
	sig     []byte
}

// SplitJWS splits raw, a compact JWS, and checks its structure with the
// rules every caekit token parser shares (access tokens, logout tokens,
// Security Event Tokens): at most maxSize bytes; three parts (a JWE's five
// are refused by name); canonical unpadded base64url (B64) for the header
// and the signature; the header a strict JSON object (CheckJSON); alg, kid
// and typ strings when present (null is not a string); alg present; no crit
// header. It does not look at the algorithm's acceptability (CheckAlg) nor
// decode the payload (Payload), so that a caller can verify the signature
// before it parses what the signature covers. Errors wrap ErrJWS and never
// contain raw.
func SplitJWS(raw string, maxSize int) (JWS, error) {
	if raw == "" {
		return JWS{}, fmt.Errorf("%w: empty", ErrJWS)
	}
	if len(raw) > maxSize {
		return JWS{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrJWS, len(raw), maxSize)
	}
	dot1 := strings.IndexByte(raw, '.')
	dot2 := strings.LastIndexByte(raw, '.')
	if dot1 < 0 || dot1 == dot2 || strings.IndexByte(raw[dot1+1:dot2], '.') >= 0 {
		switch n := strings.Count(raw, "."); n {
		case 4:
			return JWS{}, fmt.Errorf("%w: encrypted tokens (JWE) are not supported", ErrJWS)
		default:
			return JWS{}, fmt.Errorf("%w: not a compact JWS: %d dot-separated parts, want 3", ErrJWS, n+1)
		}
	}
	j := JWS{signing: raw[:dot2], payload: raw[dot1+1 : dot2]}
	hb, err := B64.DecodeString(raw[:dot1])
	if err != nil {
		return JWS{}, fmt.Errorf("%w: header is not canonical unpadded base64url: %v", ErrJWS, err)
	}
	if j.Header, err = object(hb, "header"); err != nil {
		return JWS{}, err
	}
	var hasAlg bool
	if j.Alg, hasAlg, err = j.headerString("alg"); err != nil {
		return JWS{}, err
	}
	if !hasAlg || j.Alg == "" {
		return JWS{}, fmt.Errorf("%w: header has no alg", ErrJWS)
	}
	if j.Kid, j.HasKID, err = j.headerString("kid"); err != nil {
		return JWS{}, err
	}
	if j.Typ, _, err = j.headerString("typ"); err != nil {
		return JWS{}, err
	}
	if _, crit := j.Header["crit"]; crit {
		return JWS{}, fmt.Errorf("%w: header has crit, and no critical extension is supported", ErrJWS)
	}
	if j.sig, err = B64.DecodeString(raw[dot2+1:]); err != nil {
		return JWS{}, fmt.Errorf("%w: signature is not canonical unpadded base64url: %v", ErrJWS, err)
	}
	return j, nil
}

// CheckAlg refuses j's alg when it is "none" (in any case), not one caekit
// supports (Methods), or not allowed by allowed. Errors wrap ErrAlg and
// ErrJWS.
func (j *JWS) CheckAlg(allowed func(alg string) bool) error {
	if strings.EqualFold(j.Alg, "none") {
		return fmt.Errorf("%w: %w: alg %q is never accepted", ErrJWS, ErrAlg, Clip(j.Alg))
	}
	if Methods[j.Alg] == nil || allowed == nil || !allowed(j.Alg) {
		return fmt.Errorf("%w: %w: alg %q is not in the allow-list", ErrJWS, ErrAlg, Clip(j.Alg))
	}
	return nil
}

// PayloadJSON decodes j's payload (canonical unpadded base64url) and checks
// that it is strict JSON (CheckJSON); the caller decodes the object. Errors
// wrap ErrJWS.
func (j *JWS) PayloadJSON() ([]byte, error) {
	pb, err := B64.DecodeString(j.payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not canonical unpadded base64url: %v", ErrJWS, err)
	}
	if err := CheckJSON(pb); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrJWS, err)
	}
	return pb, nil
}

// Payload decodes j's payload into a strict JSON object, members undecoded,
// and keeps it in j.Claims. Errors wrap ErrJWS.
func (j *JWS) Payload() (map[string]json.RawMessage, error) {
	pb, err := B64.DecodeString(j.payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not canonical unpadded base64url: %v", ErrJWS, err)
	}
	if j.Claims, err = object(pb, "payload"); err != nil {
		return nil, err
	}
	return j.Claims, nil
}

// ParseJWS is SplitJWS, CheckAlg with allowed, and Payload in one call, for
// callers that read the payload before they pick a key (the issuer names
// the key source). Errors wrap ErrJWS (and ErrAlg from CheckAlg) and never
// contain raw.
func ParseJWS(raw string, maxSize int, allowed func(alg string) bool) (*JWS, error) {
	j, err := SplitJWS(raw, maxSize)
	if err != nil {
		return nil, err
	}
	if err := j.CheckAlg(allowed); err != nil {
		return nil, err
	}
	if _, err := j.Payload(); err != nil {
		return nil, err
	}
	return &j, nil
}

// object decodes a strict JSON object.
func object(b []byte, what string) (map[string]json.RawMessage, error) {
	if err := CheckJSON(b); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrJWS, what, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: %s is not a JSON object", ErrJWS, what)
	}
	return m, nil
}

func (j *JWS) headerString(name string) (string, bool, error) {
	v, ok := j.Header[name]
	if !ok {
		return "", false, nil
	}
	// Fast path: a plain string without escapes (CheckJSON has checked the
	// header, so the quotes delimit one string).
	if n := len(v); n >= 2 && v[0] == '"' && v[n-1] == '"' && bytes.IndexByte(v[1:n-1], '\\') < 0 && bytes.IndexByte(v[1:n-1], '"') < 0 {
		return string(v[1 : n-1]), true, nil
	}
	var s string
	if bytes.Equal(v, []byte("null")) || json.Unmarshal(v, &s) != nil {
		return "", false, fmt.Errorf("%w: header member %s must be a string", ErrJWS, name)
	}
	return s, true, nil
}

// Verify reports whether key verifies j's signature under j.Alg. The caller
// has chosen a key that fits the algorithm (KeyFits).
func (j *JWS) Verify(key any) bool {
	m := Methods[j.Alg]
	return m != nil && m.Verify(j.signing, j.sig, key) == nil
}

// VerifyJWS reports the index of the first of keys that verifies j's
// signature under j.Alg, or an error wrapping ErrJWS when none does. The
// caller has chosen keys that fit the algorithm (KeyFits).
func VerifyJWS(j *JWS, keys []any) (int, error) {
	m := Methods[j.Alg]
	if m == nil {
		return -1, fmt.Errorf("%w: alg %q is not supported", ErrJWS, Clip(j.Alg))
	}
	for i, k := range keys {
		if m.Verify(j.signing, j.sig, k) == nil {
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w: %s signature verifies with none of %d keys", ErrJWS, j.Alg, len(keys))
}
