package jose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrJWS is wrapped by every error of ParseJWS and VerifyJWS: the input is
// not an acceptable compact JWS.
var ErrJWS = errors.New("not an acceptable compact JWS")

// JWS is a compact JWS split and decoded by ParseJWS. Its signature is not
// verified yet (VerifyJWS does that); nothing in it may be trusted before.
type JWS struct {
	// Alg, Kid and Typ are the header members of those names; HasKID tells
	// an absent kid from an empty one.
	Alg, Kid, Typ string
	HasKID        bool
	// Header is the header object, members undecoded.
	Header map[string]json.RawMessage
	// Claims is the payload object, members undecoded.
	Claims map[string]json.RawMessage

	signing string // header.payload, the signed input
	sig     []byte
}

// ParseJWS splits raw, a compact JWS, and decodes its header and payload
// with the rules every caekit token parser shares: at most maxSize bytes;
// three parts (a JWE's five are refused by name); canonical unpadded
// base64url (B64); header and payload strict JSON objects (CheckJSON); alg,
// kid and typ strings when present; alg present, never "none", and allowed
// by allowed; no crit header. Errors wrap ErrJWS and never contain raw.
func ParseJWS(raw string, maxSize int, allowed func(alg string) bool) (*JWS, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrJWS)
	}
	if len(raw) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrJWS, len(raw), maxSize)
	}
	switch n := strings.Count(raw, "."); n {
	case 2:
	case 4:
		return nil, fmt.Errorf("%w: encrypted tokens (JWE) are not supported", ErrJWS)
	default:
		return nil, fmt.Errorf("%w: %d dot-separated parts, want 3", ErrJWS, n+1)
	}
	dot1 := strings.IndexByte(raw, '.')
	dot2 := strings.LastIndexByte(raw, '.')
	j := &JWS{signing: raw[:dot2]}

	hb, err := B64.DecodeString(raw[:dot1])
	if err != nil {
		return nil, fmt.Errorf("%w: header is not canonical unpadded base64url: %v", ErrJWS, err)
	}
	if j.Header, err = object(hb, "header"); err != nil {
		return nil, err
	}
	var hasAlg bool
	if j.Alg, hasAlg, err = j.headerString("alg"); err != nil {
		return nil, err
	}
	if !hasAlg || j.Alg == "" {
		return nil, fmt.Errorf("%w: header has no alg", ErrJWS)
	}
	if strings.EqualFold(j.Alg, "none") {
		return nil, fmt.Errorf("%w: alg %q is never accepted", ErrJWS, Clip(j.Alg))
	}
	if Methods[j.Alg] == nil || allowed == nil || !allowed(j.Alg) {
		return nil, fmt.Errorf("%w: alg %q is not in the allow-list", ErrJWS, Clip(j.Alg))
	}
	if j.Kid, j.HasKID, err = j.headerString("kid"); err != nil {
		return nil, err
	}
	if j.Typ, _, err = j.headerString("typ"); err != nil {
		return nil, err
	}
	if _, crit := j.Header["crit"]; crit {
		return nil, fmt.Errorf("%w: header has crit, and no critical extension is supported", ErrJWS)
	}
	if j.sig, err = B64.DecodeString(raw[dot2+1:]); err != nil {
		return nil, fmt.Errorf("%w: signature is not canonical unpadded base64url: %v", ErrJWS, err)
	}
	pb, err := B64.DecodeString(raw[dot1+1 : dot2])
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not canonical unpadded base64url: %v", ErrJWS, err)
	}
	if j.Claims, err = object(pb, "payload"); err != nil {
		return nil, err
	}
	return j, nil
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
	var s string
	if bytes.Equal(v, []byte("null")) || json.Unmarshal(v, &s) != nil {
		return "", false, fmt.Errorf("%w: header member %s must be a string", ErrJWS, name)
	}
	return s, true, nil
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

// ClaimString reads a string member of a JSON object. Absent gives "",
// false; present but not a string (null included) is an error.
func ClaimString(m map[string]json.RawMessage, name string) (string, bool, error) {
	v, ok := m[name]
	if !ok {
		return "", false, nil
	}
	var s string
	if bytes.Equal(v, []byte("null")) || json.Unmarshal(v, &s) != nil {
		return "", false, fmt.Errorf("claim %s must be a string", name)
	}
	return s, true, nil
}
