package policy_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caekit/caekit/policy"
)

func TestLoadFileExample(t *testing.T) {
	p, err := policy.LoadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Locations) != 3 || p.Locations[0].Name != "hq" || !p.Locations[0].Trusted || len(p.Locations[0].Ranges) != 2 {
		t.Fatalf("locations = %+v", p.Locations)
	}
	if p.Locations[2].Ranges[1] != netip.MustParsePrefix("2001:db8:dead::/48") {
		t.Fatalf("ranges = %v", p.Locations[2].Ranges)
	}
	if len(p.Rules) != 3 || !p.Rules[1].Strict || !p.Rules[1].AllowTrusted || !slices.Equal(p.Rules[1].AuthContext, []string{"c1", "c2"}) {
		t.Fatalf("rules = %+v", p.Rules)
	}
	if p.ClientIP.Header != "x-forwarded-for" || p.ClientIP.MaxHops != 8 || len(p.ClientIP.TrustedProxies) != 2 {
		t.Fatalf("client_ip = %+v", p.ClientIP)
	}
	if _, err := policy.NewEngine(p); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFileJSON(t *testing.T) {
	p, err := policy.LoadFile("testdata/policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Locations) != 1 || p.Rules[0].AuthContext[0] != "c3" {
		t.Fatalf("policy = %+v", p)
	}
	// JSON errors carry lines too.
	_, err = policy.Parse("p.json", []byte("{\n\t\"locations\": [\n\t\t{\"name\": \"a\", \"ranges\": [\"10.0.0.0/33\"]}\n\t]\n}"))
	assertFieldError(t, err, "p.json", 3, "locations[0].ranges[0]", "invalid CIDR")
}

func TestLoadFileMissing(t *testing.T) {
	_, err := policy.LoadFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func assertFieldError(t *testing.T, err error, file string, line int, field, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s:%d %s: %s", file, line, field, msg)
	}
	var fe *policy.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err %q is not a *FieldError", err)
	}
	if fe.File != file || fe.Line != line || fe.Field != field || !strings.Contains(fe.Msg, msg) {
		t.Fatalf("err = %q (file %q line %d field %q)\nwant file %q line %d field %q msg containing %q", err, fe.File, fe.Line, fe.Field, file, line, field, msg)
	}
	if !strings.HasPrefix(err.Error(), file+":") || !strings.Contains(err.Error(), field) {
		t.Fatalf("message %q does not name the file and field", err)
	}
}

const okLocations = `locations:
  - name: hq
    ranges: [203.0.113.0/24]
`

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		line  int
		field string
		msg   string
	}{
		{"invalid CIDR", "locations:\n  - name: a\n    ranges: [10.0.0.0/33]\n", 3, "locations[0].ranges[0]", `invalid CIDR range "10.0.0.0/33"`},
		{"garbage CIDR", "locations:\n  - name: a\n    ranges:\n      - not-a-range\n", 4, "locations[0].ranges[0]", `invalid CIDR range "not-a-range"`},
		{"bare address", "locations:\n  - name: a\n    ranges: [192.0.2.1]\n", 3, "locations[0].ranges[0]", "write 192.0.2.1/32"},
		{"host bits", "locations:\n  - name: a\n    ranges:\n      - 10.1.2.3/16\n", 4, "locations[0].ranges[0]", "did you mean 10.1.0.0/16"},
		{"v4 too broad", "locations:\n  - name: a\n    ranges: [10.0.0.0/7]\n", 3, "locations[0].ranges[0]", "broader than /8"},
		{"v6 too broad", "locations:\n  - name: a\n    ranges: [\"2001:d00::/24\"]\n", 3, "locations[0].ranges[0]", "broader than /32"},
		{"v6 over mapped space", "locations:\n  - name: a\n    ranges: [\"::/48\"]\n", 3, "locations[0].ranges[0]", "IPv4-mapped"},
		{"duplicate location", okLocations + "  - name: hq\n    ranges: [192.0.2.0/24]\n", 4, "locations[1].name", `duplicate location name "hq"`},
		{"empty name", "locations:\n  - name: \"\"\n    ranges: [192.0.2.0/24]\n", 2, "locations[0].name", "name is empty"},
		{"no ranges", "locations:\n  - name: a\n", 2, "locations[0].ranges", "has no ranges"},
		{"unquoted number name", "locations:\n  - name: 42\n    ranges: [192.0.2.0/24]\n", 2, "locations[0].name", "expected a string, got int 42"},
		{"unknown field", "locations:\n  - name: a\n    rnges: [192.0.2.0/24]\n", 3, "locations[0].rnges", `unknown field "rnges"`},
		{"unknown top field", "locaitons: []\n", 1, "locaitons", `unknown field "locaitons"`},
		{"field twice", "locations:\n  - name: a\n    name: b\n    ranges: [192.0.2.0/24]\n", 3, "locations[0].name", "given twice"},
		{"wrong type list", okLocations + "rules:\n  - methods: \"*\"\n    allow_locations: [hq]\n", 5, "rules[0].methods", "expected a list"},
		{"wrong type bool", okLocations + "rules:\n  - methods: [\"*\"]\n    strict: yes please\n", 6, "rules[0].strict", "expected true or false"},
		{"unknown location in allow", okLocations + "rules:\n  - methods: [\"*\"]\n    allow_locations: [hq2]\n", 6, "rules[0].allow_locations[0]", `unknown location "hq2" (defined: "hq")`},
		{"unknown location in block", okLocations + "rules:\n  - methods: [\"*\"]\n    block_locations:\n      - hq\n      - nowhere\n", 8, "rules[0].block_locations[1]", `unknown location "nowhere"`},
		{"allowed and blocked", okLocations + "rules:\n  - methods: [\"*\"]\n    allow_locations: [hq]\n    block_locations: [hq]\n", 7, "rules[0].block_locations[0]", "both allowed and blocked"},
		{"bad acrs", okLocations + "rules:\n  - methods: [\"*\"]\n    auth_context: [c1, c26]\n", 6, "rules[0].auth_context[1]", `"c26" is not an authentication context id (c1..c25)`},
		{"bad acrs c0", okLocations + "rules:\n  - methods: [\"*\"]\n    auth_context: [c01]\n", 6, "rules[0].auth_context[0]", "c1..c25"},
		{"bad acrs sign", okLocations + "rules:\n  - methods: [\"*\"]\n    auth_context: [\"c+1\"]\n", 6, "rules[0].auth_context[0]", "c1..c25"},
		{"duplicate acrs", okLocations + "rules:\n  - methods: [\"*\"]\n    auth_context: [c2, c2]\n", 6, "rules[0].auth_context[1]", "listed twice"},
		{"pattern no slash", okLocations + "rules:\n  - methods: [pkg.Service/M]\n    allow_locations: [hq]\n", 5, "rules[0].methods[0]", "must start with '/'"},
		{"pattern partial wildcard", okLocations + "rules:\n  - methods: [\"/pkg.Service/Get*\"]\n    allow_locations: [hq]\n", 5, "rules[0].methods[0]", "wildcard may only be"},
		{"pattern service wildcard", okLocations + "rules:\n  - methods: [\"/pkg.*/Get\"]\n    allow_locations: [hq]\n", 5, "rules[0].methods[0]", "wildcard may only be"},
		{"pattern no method", okLocations + "rules:\n  - methods: [\"/pkg.Service\"]\n    allow_locations: [hq]\n", 5, "rules[0].methods[0]", "no method part"},
		{"pattern bad service", okLocations + "rules:\n  - methods: [\"/pkg..Service/M\"]\n    allow_locations: [hq]\n", 5, "rules[0].methods[0]", "not a fully-qualified service name"},
		{"duplicate pattern", okLocations + "rules:\n  - methods: [\"*\"]\n    allow_locations: [hq]\n  - methods: [\"*\"]\n    auth_context: [c1]\n", 7, "rules[1].methods[0]", `already used by rules[0].methods[0]`},
		{"no methods", okLocations + "rules:\n  - allow_locations: [hq]\n", 5, "rules[0].methods", "no method patterns"},
		{"restricts nothing", okLocations + "rules:\n  - methods: [\"*\"]\n", 5, "rules[0]", "restricts nothing"},
		{"bad proxy", "client_ip:\n  trusted_proxies: [0.0.0.0/0]\n", 2, "client_ip.trusted_proxies[0]", "broader than /8"},
		{"bad header", "client_ip:\n  trusted_proxies: [10.0.0.0/8]\n  header: X-Forwarded-For\n", 3, "client_ip.header", "not a usable metadata key"},
		{"header without proxies", "client_ip:\n  header: x-real-ip\n", 2, "client_ip.header", "trusted_proxies is empty"},
		{"hops out of range", "client_ip:\n  trusted_proxies: [10.0.0.0/8]\n  max_hops: 100\n", 3, "client_ip.max_hops", "outside 1..64"},
		{"hops zero", "client_ip:\n  trusted_proxies: [10.0.0.0/8]\n  max_hops: 0\n", 3, "client_ip.max_hops", "must be 1..64"},
		{"bad version", "version: 2\n", 1, "version", "unsupported version 2"},
		{"version string", "version: \"1\"\n", 1, "version", "expected an integer"},
		{"alias", "locations:\n  - &x\n    name: a\n    ranges: [192.0.2.0/24]\n  - *x\n", 5, "locations[1]", "aliases are not supported"},
		{"empty", "", 0, "", "the file is empty"},
		{"only comment", "# nothing\n", 0, "", "the file is empty"},
		{"top-level list", "- a\n", 1, "", "expected a mapping"},
		{"two documents", okLocations + "---\nrules: []\n", 4, "", "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse("test.yaml", []byte(tt.doc))
			assertFieldError(t, err, "test.yaml", tt.line, tt.field, tt.msg)
		})
	}
}

func TestSyntaxErrorNamesFileAndLine(t *testing.T) {
	_, err := policy.Parse("bad.yaml", []byte("locations:\n  - name: a\n   ranges: [\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "bad.yaml: ") || !strings.Contains(err.Error(), "line") {
		t.Fatalf("err = %v", err)
	}
}

func TestManyErrorsReported(t *testing.T) {
	doc := okLocations + "rules:\n  - methods: [\"*\"]\n    allow_locations: [x1]\n    auth_context: [c99]\n"
	_, err := policy.Parse("m.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "m.yaml:6:") || !strings.Contains(err.Error(), "m.yaml:7:") {
		t.Fatalf("want both problems with lines, got %v", err)
	}
	// The number of problems is bounded.
	var b strings.Builder
	b.WriteString("locations:\n")
	for range 100 {
		b.WriteString("  - name: a\n    ranges: [bad]\n")
	}
	_, err = policy.Parse("many.yaml", []byte(b.String()))
	if n := strings.Count(err.Error(), "\n"); n > 30 {
		t.Fatalf("%d lines of errors", n)
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := policy.Parse("big.yaml", make([]byte, policy.MaxFileSize+1))
	if err == nil || !strings.Contains(err.Error(), "big.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateInCode(t *testing.T) {
	p := &policy.Policy{
		Locations: []policy.Location{{Name: "hq", Ranges: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")}}},
		Rules:     []policy.Rule{{Methods: []string{"/a.B/C"}, AllowLocations: []string{"hq"}, AuthContext: []string{"c30"}}},
	}
	err := p.Validate()
	if err == nil || !strings.Contains(err.Error(), "policy: locations[0].ranges[0]: prefix 10.0.0.1/8 has host bits set") ||
		!strings.Contains(err.Error(), "rules[0].auth_context[0]") {
		t.Fatalf("err = %v", err)
	}
	if _, err := policy.NewEngine(p); err == nil {
		t.Fatal("NewEngine accepted an invalid policy")
	}
}

func TestValidAuthContext(t *testing.T) {
	for _, ok := range []string{"c1", "c9", "c10", "c25"} {
		if !policy.ValidAuthContext(ok) {
			t.Errorf("%s rejected", ok)
		}
	}
	for _, bad := range []string{"", "c", "c0", "c01", "c26", "c100", "C1", "c-1", "c+1", "d1", "c1 "} {
		if policy.ValidAuthContext(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
