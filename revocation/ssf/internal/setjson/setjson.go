// Package setjson reads the members of a SET's JSON objects with the bounds
// that the vocabulary package and the receiver share.
package setjson

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MaxLen bounds a string member of a SET or subject.
const MaxLen = 2048

// String reads an optional string member; absent or null gives "".
func String(m map[string]json.RawMessage, name string) (string, error) {
	raw, ok := m[name]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("member %q must be a string", name)
	}
	if len(v) > MaxLen {
		return "", fmt.Errorf("member %q is longer than %d bytes", name, MaxLen)
	}
	return v, nil
}
