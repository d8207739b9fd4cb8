package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/caekit/caekit/interceptor/challenge"
)

// MaxFileSize bounds a policy file, in bytes.
const MaxFileSize = 4 << 20

// LoadFile reads and validates the policy file at path (YAML, or JSON, which
// is parsed as YAML). Errors name the file and, where they can, the line,
// column and field; see Parse.
func LoadFile(path string) (*Policy, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: reading %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("policy: %s is larger than %d bytes", path, MaxFileSize)
	}
	return data, nil
}

// Parse parses and validates a policy document. name is used in errors
// (usually the file name). Every problem found is reported, up to 25, each as
// a *FieldError with file, line, column, field path and message, joined with
// errors.Join; errors.As finds the first. Parse never panics on bad input.
func Parse(name string, data []byte) (*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("policy: %s is larger than %d bytes", name, MaxFileSize)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		// JSON: tabs are plain whitespace there (a raw tab inside a JSON
		// string is invalid anyway), but YAML forbids them in indentation.
		data = bytes.ReplaceAll(data, []byte{'\t'}, []byte{' '})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{File: name, Msg: "the file is empty"}
		}
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FieldError{File: name, Line: extra.Line, Column: extra.Column, Msg: "more than one YAML document; a policy file holds exactly one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	w := &walker{file: name, pos: make(map[string]*yaml.Node)}
	p := w.policy(&doc)
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}
	if err := p.Validate(); err != nil {
		return nil, w.locate(err)
	}
	return p, nil
}

// walker turns a YAML node tree into a Policy, recording where each field is.
type walker struct {
	file string
	errs []error
	pos  map[string]*yaml.Node
}

func (w *walker) fail(n *yaml.Node, field, format string, args ...any) {
	if len(w.errs) > maxErrors {
		return
	}
	e := &FieldError{File: w.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if len(w.errs) == maxErrors {
		e = &FieldError{File: w.file, Msg: "too many problems; fix these first"}
	} else if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	w.errs = append(w.errs, e)
}

// locate adds file positions to the FieldErrors from Validate.
func (w *walker) locate(err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		var fe *FieldError
		if !errors.As(e, &fe) {
			out = append(out, fmt.Errorf("%s: %w", w.file, e))
			continue
		}
		c := *fe
		c.File = w.file
		for f := c.Field; f != ""; f = parent(f) {
			if n := w.pos[f]; n != nil {
				c.Line, c.Column = n.Line, n.Column
				break
			}
		}
		out = append(out, &c)
	}
	return errors.Join(out...)
}

// parent strips the last path element: "a[1].b" -> "a[1]" -> "a" -> "".
func parent(f string) string {
	i := strings.LastIndexAny(f, ".[")
	if i < 0 {
		return ""
	}
	return f[:i]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		}
		return fmt.Sprintf("%s %s", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "something else"
}

func (w *walker) ok(n *yaml.Node, field string) bool {
	if n.Kind == yaml.AliasNode {
		w.fail(n, field, "YAML aliases are not supported in policy files")
		return false
	}
	w.pos[field] = n
	return true
}

// mapping walks a mapping node, calling set for each known key and reporting
// unknown and duplicate keys.
func (w *walker) mapping(n *yaml.Node, field string, known []string, set func(key string, v *yaml.Node, path string)) {
	if !w.ok(n, field) {
		return
	}
	if n.Kind != yaml.MappingNode {
		w.fail(n, field, "expected a mapping with fields %s, got %s", strings.Join(known, ", "), kindName(n))
		return
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := k.Value
		if field != "" {
			path = field + "." + k.Value
		}
		if k.Kind != yaml.ScalarNode {
			w.fail(k, field, "expected a field name, got %s", kindName(k))
			continue
		}
		isKnown := false
		for _, kn := range known {
			if kn == k.Value {
				isKnown = true
				break
			}
		}
		switch {
		case !isKnown:
			w.fail(k, path, "unknown field %q (known fields: %s)", k.Value, strings.Join(known, ", "))
		case seen[k.Value]:
			w.fail(k, path, "field %q given twice", k.Value)
		default:
			seen[k.Value] = true
			if w.ok(v, path) {
				set(k.Value, v, path)
			}
		}
	}
}

func (w *walker) list(n *yaml.Node, field string, each func(i int, v *yaml.Node, path string)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		w.fail(n, field, "expected a list, got %s", kindName(n))
		return
	}
	for i, v := range n.Content {
		path := fmt.Sprintf("%s[%d]", field, i)
		if w.ok(v, path) {
			each(i, v, path)
		}
	}
}

func (w *walker) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		w.fail(n, field, "expected a string, got %s (quote it if it is meant as text)", kindName(n))
		return ""
	}
	return n.Value
}

func (w *walker) strs(n *yaml.Node, field string) []string {
	var out []string
	w.list(n, field, func(_ int, v *yaml.Node, path string) { out = append(out, w.str(v, path)) })
	return out
}

func (w *walker) boolean(n *yaml.Node, field string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		w.fail(n, field, "expected true or false, got %s", kindName(n))
		return false
	}
	b, err := strconv.ParseBool(strings.ToLower(n.Value))
	if err != nil {
		w.fail(n, field, "expected true or false, got %q", n.Value)
	}
	return b
}

func (w *walker) integer(n *yaml.Node, field string) int {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		w.fail(n, field, "expected an integer, got %s", kindName(n))
		return 0
	}
	i, err := strconv.ParseInt(n.Value, 0, 32)
	if err != nil {
		w.fail(n, field, "expected a small integer, got %q", n.Value)
	}
	return int(i)
}

// maxAge reads a rule's max_age: an integer number of seconds, as RFC 9470
// writes it (300), or a Go duration string ("5m"). Range and whole seconds
// are checked by Validate.
func (w *walker) maxAge(n *yaml.Node, field string) time.Duration {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil || i < 0 || i > int64(challenge.MaxMaxAge/time.Second) {
			w.fail(n, field, "max_age %s is not a number of seconds between 1 and %d", n.Value, int64(challenge.MaxMaxAge/time.Second))
			return 0
		}
		if i == 0 {
			w.fail(n, field, "max_age 0 would refuse every token; omit it for no limit")
		}
		return time.Duration(i) * time.Second
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		w.fail(n, field, "expected a number of seconds or a duration such as \"15m\", got %s", kindName(n))
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		w.fail(n, field, "expected a number of seconds or a duration such as \"15m\", got %q", n.Value)
		return 0
	}
	if d == 0 {
		w.fail(n, field, "max_age 0 would refuse every token; omit it for no limit")
	}
	return d
}

func (w *walker) prefixes(n *yaml.Node, field string) []netip.Prefix {
	var out []netip.Prefix
	w.list(n, field, func(_ int, v *yaml.Node, path string) {
		s := w.str(v, path)
		if s == "" {
			if v.Tag == "!!str" {
				w.fail(v, path, "empty CIDR range")
			}
			return
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if ip, ierr := netip.ParseAddr(s); ierr == nil {
				w.fail(v, path, "%q is an address, not a CIDR range (write %s/%d)", s, s, ip.BitLen())
			} else {
				w.fail(v, path, "invalid CIDR range %q: %v", s, strings.TrimPrefix(err.Error(), "netip.ParsePrefix("+strconv.Quote(s)+"): "))
			}
			return
		}
		out = append(out, p)
	})
	return out
}

func (w *walker) policy(doc *yaml.Node) *Policy {
	p := &Policy{}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		w.fail(doc, "", "expected one YAML document")
		return p
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		w.fail(root, "", "the file is empty")
		return p
	}
	w.mapping(root, "", []string{"version", "client_ip", "locations", "rules"}, func(k string, v *yaml.Node, path string) {
		switch k {
		case "version":
			n0 := len(w.errs)
			if ver := w.integer(v, path); ver != 1 && len(w.errs) == n0 {
				w.fail(v, path, "unsupported version %d; this caekit reads version 1", ver)
			}
		case "client_ip":
			w.mapping(v, path, []string{"trusted_proxies", "header", "max_hops"}, func(k string, v *yaml.Node, path string) {
				switch k {
				case "trusted_proxies":
					p.ClientIP.TrustedProxies = w.prefixes(v, path)
				case "header":
					p.ClientIP.Header = w.str(v, path)
				case "max_hops":
					p.ClientIP.MaxHops = w.integer(v, path)
					if p.ClientIP.MaxHops == 0 {
						w.fail(v, path, "max_hops must be 1..64 (omit it for the default)")
					}
				}
			})
		case "locations":
			w.list(v, path, func(_ int, v *yaml.Node, path string) {
				var l Location
				w.mapping(v, path, []string{"name", "trusted", "ranges"}, func(k string, v *yaml.Node, path string) {
					switch k {
					case "name":
						l.Name = w.str(v, path)
					case "trusted":
						l.Trusted = w.boolean(v, path)
					case "ranges":
						l.Ranges = w.prefixes(v, path)
					}
				})
				p.Locations = append(p.Locations, l)
			})
		case "rules":
			w.list(v, path, func(_ int, v *yaml.Node, path string) {
				var r Rule
				w.mapping(v, path, []string{"methods", "allow_locations", "allow_trusted", "block_locations", "strict", "auth_context", "acr_values", "max_age"}, func(k string, v *yaml.Node, path string) {
					switch k {
					case "methods":
						r.Methods = w.strs(v, path)
					case "allow_locations":
						r.AllowLocations = w.strs(v, path)
					case "allow_trusted":
						r.AllowTrusted = w.boolean(v, path)
					case "block_locations":
						r.BlockLocations = w.strs(v, path)
					case "strict":
						r.Strict = w.boolean(v, path)
					case "auth_context":
						r.AuthContext = w.strs(v, path)
					case "acr_values":
						r.ACRValues = w.strs(v, path)
					case "max_age":
						r.MaxAge = w.maxAge(v, path)
					}
				})
				p.Rules = append(p.Rules, r)
			})
		}
	})
	return p
}
