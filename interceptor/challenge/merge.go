package challenge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MergeClaims builds the claims request a CAE client sends to its identity
// provider: the client capabilities (normally "cp1") declared under
// access_token.xms_cc, combined with the claims a challenge asked for, the
// way MSAL does. For example, capabilities ["cp1"] and the challenge claims
// {"access_token":{"acrs":{"essential":true,"value":"c25"}}} merge into
//
//	{"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c25"}}}
//
// Keys keep the challenge's order, after xms_cc. challengeClaims may be
// empty (capabilities only) and capabilities may be empty (challenge only);
// with neither the result is "". Empty and repeated capabilities are
// dropped.
//
// It is an error, naming the key, when the challenge claims are not a JSON
// object, repeat a key, have a non-object access_token, or already set
// access_token.xms_cc to something other than the capabilities.
func MergeClaims(challengeClaims string, capabilities ...string) (string, error) {
	merged, err := mergeClaims(challengeClaims, capabilities)
	if err == nil && len(merged) > MaxClaimsLen {
		// The result must itself be a valid claims request (and merge
		// again to itself): refuse what would exceed the bound.
		return "", fmt.Errorf("challenge: merged claims are %d bytes, limit %d", len(merged), MaxClaimsLen)
	}
	return merged, err
}

func mergeClaims(challengeClaims string, capabilities []string) (string, error) {
	caps := make([]string, 0, len(capabilities))
	for _, c := range capabilities {
		c = strings.TrimSpace(c)
		if c == "" || containsFold(caps, c) {
			continue
		}
		if !utf8.ValidString(c) {
			// JSON encoding would silently replace the bad bytes, sending
			// the IdP a capability nobody declared.
			return "", fmt.Errorf("challenge: merge claims: client capability %q is not valid UTF-8", c)
		}
		caps = append(caps, c)
	}
	challengeClaims = strings.TrimSpace(challengeClaims)
	if len(challengeClaims) > MaxClaimsLen {
		return "", fmt.Errorf("challenge: claims are %d bytes, limit %d", len(challengeClaims), MaxClaimsLen)
	}
	var top []member
	if challengeClaims != "" {
		var err error
		top, err = parseObject([]byte(challengeClaims), "")
		if err != nil {
			return "", fmt.Errorf("challenge: merge claims: %w", err)
		}
	}
	if len(caps) == 0 {
		if challengeClaims == "" {
			return "", nil
		}
		return encodeObject(top), nil
	}
	ccValue, err := marshalNoEscape(map[string][]string{"values": caps})
	if err != nil {
		return "", fmt.Errorf("challenge: merge claims: %w", err)
	}
	cc := member{key: "xms_cc", value: ccValue}

	at := -1
	for i, m := range top {
		if m.key == "access_token" {
			at = i
			break
		}
	}
	if at < 0 {
		// access_token first, as MSAL writes it.
		top = append([]member{{key: "access_token", value: encodeObjectBytes([]member{cc})}}, top...)
		return encodeObject(top), nil
	}
	inner, err := parseObject(top[at].value, "access_token")
	if err != nil {
		return "", fmt.Errorf("challenge: merge claims: %w", err)
	}
	for _, m := range inner {
		if m.key != "xms_cc" {
			continue
		}
		if sameCapabilities(m.value, caps) {
			top[at].value = encodeObjectBytes(inner)
			return encodeObject(top), nil
		}
		return "", fmt.Errorf("challenge: merge claims: key %q conflicts with the client capabilities %q", "access_token.xms_cc", caps)
	}
	top[at].value = encodeObjectBytes(append([]member{cc}, inner...))
	return encodeObject(top), nil
}

// member is one key of a JSON object, its value kept compact and raw so that
// order and content pass through unchanged.
type member struct {
	key   string
	value json.RawMessage
}

// parseObject reads a JSON object's members in order, rejecting duplicates.
func parseObject(b []byte, path string) ([]member, error) {
	name := "claims"
	if path != "" {
		name = "key " + quote(path)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%s: not JSON: %w", name, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%s: not a JSON object", name)
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: not JSON: %w", name, err)
		}
		k, _ := tok.(string)
		full := k
		if path != "" {
			full = path + "." + k
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("key %s: not JSON: %w", quote(full), err)
		}
		for _, m := range out {
			if m.key == k {
				return nil, fmt.Errorf("key %s appears twice", quote(full))
			}
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, fmt.Errorf("key %s: %w", quote(full), err)
		}
		out = append(out, member{key: k, value: compact.Bytes()})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%s: not JSON: %w", name, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: data after the JSON object", name)
	}
	return out, nil
}

func encodeObject(ms []member) string { return string(encodeObjectBytes(ms)) }

func encodeObjectBytes(ms []member) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := marshalNoEscape(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// sameCapabilities reports whether an xms_cc value requests exactly caps
// (case-insensitive, any order).
func sameCapabilities(raw json.RawMessage, caps []string) bool {
	var v struct {
		Values []string `json:"values"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || len(v.Values) != len(caps) {
		return false
	}
	for _, c := range v.Values {
		if !containsFold(caps, c) {
			return false
		}
	}
	return true
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
