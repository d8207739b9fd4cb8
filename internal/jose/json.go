package jose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxJSONDepth bounds the nesting of a JOSE header or payload.
const MaxJSONDepth = 32

// linearKeys is the member count up to which an object's names are compared
// pairwise; larger objects get a map, so a token crafted with thousands of
// members costs linear, not quadratic, time.
const linearKeys = 40

// Errors of CheckJSON.
var (
	// ErrJSONDepth: nesting deeper than MaxJSONDepth.
	ErrJSONDepth = fmt.Errorf("JSON nests deeper than %d", MaxJSONDepth)
	// ErrJSONUTF8: text that is not UTF-8.
	ErrJSONUTF8 = errors.New("JSON text is not valid UTF-8")
	// ErrJSONSyntax: unbalanced brackets or an unterminated string.
	ErrJSONSyntax = errors.New("JSON text is not well-formed")
)

// DupKeyError names a member that occurs twice in one object.
type DupKeyError struct{ name string }

func (e *DupKeyError) Error() string {
	return fmt.Sprintf("duplicate member %q in a JSON object", Clip(e.name))
}

// keyRef is one member name seen in the object being scanned: its raw bytes
// between the quotes, and its decoded form when it holds escapes.
type keyRef struct {
	raw     []byte
	decoded string
	escaped bool
}

func (k *keyRef) equal(o *keyRef) bool {
	if !k.escaped && !o.escaped {
		return bytes.Equal(k.raw, o.raw)
	}
	return k.str() == o.str()
}

func (k *keyRef) str() string {
	if k.escaped {
		return k.decoded
	}
	return string(k.raw)
}

type jsonFrame struct {
	object    bool
	expectKey bool
	first     int // index of the frame's first name in keys
	set       map[string]struct{}
}

// CheckJSON refuses JSON text that a JWT library could read differently from
// encoding/json: text that is not UTF-8 (encoding/json silently replaces bad
// bytes, which can make two distinct names equal), objects with a duplicate
// member name (encoding/json keeps the last, other libraries the first),
// compared after unescaping exactly as encoding/json decodes them, and
// nesting deeper than MaxJSONDepth. It does not check the rest of the
// grammar: json.Unmarshal does that afterwards. It never panics.
func CheckJSON(b []byte) error {
	if !utf8.Valid(b) {
		return ErrJSONUTF8
	}
	var stackBuf [MaxJSONDepth]jsonFrame
	var keyBuf [linearKeys]keyRef
	stack, keys := stackBuf[:0], keyBuf[:0]
	for i := 0; i < len(b); {
		switch c := b[i]; c {
		case '{', '[':
			if len(stack) == MaxJSONDepth {
				return ErrJSONDepth
			}
			stack = append(stack, jsonFrame{object: c == '{', expectKey: c == '{', first: len(keys)})
			i++
		case '}', ']':
			if len(stack) == 0 {
				return ErrJSONSyntax
			}
			keys = keys[:stack[len(stack)-1].first]
			stack = stack[:len(stack)-1]
			i++
		case ',':
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].expectKey = true
			}
			i++
		case '"':
			end, escaped := scanString(b, i)
			if end < 0 {
				return ErrJSONSyntax
			}
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
				f := &stack[n-1]
				f.expectKey = false
				k := keyRef{raw: b[i+1 : end-1], escaped: escaped}
				if escaped {
					var dec string // on the heap only for escaped names
					if err := json.Unmarshal(b[i:end], &dec); err != nil {
						return ErrJSONSyntax
					}
					k.decoded = dec
				}
				var err error
				if keys, err = addKey(f, keys, k); err != nil {
					return err
				}
			}
			i = end
		default:
			i++
		}
	}
	return nil
}

// addKey records k as a member name of frame f, whose names are
// keys[f.first:], and reports a duplicate.
func addKey(f *jsonFrame, keys []keyRef, k keyRef) ([]keyRef, error) {
	seen := keys[f.first:]
	if f.set == nil && len(seen) < linearKeys {
		for j := range seen {
			if seen[j].equal(&k) {
				return keys, &DupKeyError{name: k.str()}
			}
		}
		return append(keys, k), nil
	}
	if f.set == nil {
		f.set = make(map[string]struct{}, 2*linearKeys)
		for j := range seen {
			f.set[seen[j].str()] = struct{}{}
		}
	}
	name := k.str()
	if _, dup := f.set[name]; dup {
		return keys, &DupKeyError{name: name}
	}
	f.set[name] = struct{}{}
	return append(keys, k), nil
}

// scanString returns the index just past the string starting at b[i] == '"'
// and whether it holds a backslash escape, or -1 when it is not terminated.
func scanString(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++ // skip the escaped byte; \uXXXX digits are plain bytes
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}
