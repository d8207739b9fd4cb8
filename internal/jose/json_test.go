package jose

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// refScan is the reference for CheckJSON on well-formed JSON: it walks the
// text with encoding/json's own tokenizer, which unescapes names exactly as
// json.Unmarshal does, and reports a duplicate name and the maximum depth.
func refScan(b []byte) (dup bool, depth int) {
	d := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object    bool
		names     map[string]bool
		expectKey bool
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return dup, depth
		}
		if err != nil {
			return dup, depth
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tk := tok.(type) {
		case json.Delim:
			switch tk {
			case '{', '[':
				if top != nil && top.object {
					top.expectKey = true // the value is done once it closes
				}
				stack = append(stack, &frame{object: tk == '{', names: map[string]bool{}, expectKey: true})
				depth = max(depth, len(stack))
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.object && top.expectKey {
				if top.names[tk] {
					dup = true
				}
				top.names[tk] = true
				top.expectKey = false
				continue
			}
		}
		if top != nil && top.object {
			top.expectKey = true
		}
	}
}

func TestCheckJSON(t *testing.T) {
	cases := map[string]string{
		`{}`:                                "",
		`{"a":1,"b":{"a":2},"c":[{"a":3}]}`: "",
		`{"a":1,"a":2}`:                     "duplicate",
		`{"a":{"b":1,"b":2}}`:               "duplicate",
		`[{"a":1,"a":1}]`:                   "duplicate",
		`{"a":1,"\u0061":2}`:                "duplicate",
		`{"\ud800":1,"\udc00":2}`:           "duplicate", // both decode to U+FFFD
		`{"\"":1,"\u0022":2}`:               "duplicate",
		`{"a\\":1,"a\\\\":2}`:               "",
		`{"x":"a","y":"a"}`:                 "",
		`{"A":1,"a":2}`:                     "",
		"{\"a\xff\":1}":                     "UTF-8",
		strings.Repeat("[", 33) + strings.Repeat("]", 33): "deeper",
		strings.Repeat("[", 32) + strings.Repeat("]", 32): "",
		`{"a":"}}}]]]"}`: "",
		`"unterminated`:  "well-formed",
		`}`:              "well-formed",
	}
	for in, want := range cases {
		err := CheckJSON([]byte(in))
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckJSON(%q) = %v, want %q", in, err, want)
		}
	}
	var b strings.Builder
	b.WriteString("{")
	for i := range 1000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `":0`)
	}
	b.WriteString("}")
	dup, _ := refScan([]byte(b.String()))
	if err := CheckJSON([]byte(b.String())); (err != nil) != dup {
		t.Errorf("1000 members: CheckJSON = %v, reference dup = %t", err, dup)
	}
}

// FuzzCheckJSON is a differential fuzz test of CheckJSON against refScan on
// every well-formed UTF-8 input: both must agree on duplicates and depth.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":{"b":[1,{"c":2,"c":3}]}}`, `{"\u0061":1,"a":2}`,
		`{"\ud800":1,"\udfff":2}`, `[[[[[[]]]]]]`, `{"a":"\"","b":"\\"}`, `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"ka":10,"kb":11,"kc":12,"kd":13,"ke":14,"kf":15,"kg":16,"k0":17}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckJSON(b) // must never panic, whatever b is
		if !utf8.Valid(b) || !json.Valid(b) {
			return
		}
		dup, depth := refScan(b)
		switch {
		case depth > MaxJSONDepth:
			if !errors.Is(err, ErrJSONDepth) {
				// A duplicate before the depth is exceeded is reported first.
				var de *DupKeyError
				if !errors.As(err, &de) {
					t.Fatalf("depth %d: CheckJSON = %v", depth, err)
				}
			}
		case dup:
			var de *DupKeyError
			if !errors.As(err, &de) {
				t.Fatalf("duplicate name: CheckJSON = %v", err)
			}
		case err != nil:
			t.Fatalf("valid JSON without duplicates, depth %d: CheckJSON = %v", depth, err)
		}
	})
}
