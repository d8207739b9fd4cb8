package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/policy/clientip"
	"github.com/caekit/caekit/policy/location"
)

// Location is a named set of IP ranges; see package location.
type Location = location.Location

// Policy is a complete location and auth-context policy: what a policy file
// says, or what code builds. Validate it with Validate; NewEngine and
// Engine.Update validate (and copy) it for you.
type Policy struct {
	// Locations are the named locations rules refer to.
	Locations []Location
	// Rules say, per method pattern, which locations and auth contexts a
	// call needs. For a call the allow lists, strict and auth_context of the
	// most specific matching rule apply (exact method, then "/pkg.Service/*",
	// then "*"), while block lists accumulate from every matching rule; a
	// method no rule matches is not restricted by the policy.
	Rules []Rule
	// ClientIP says which IP address counts as the caller's.
	ClientIP ClientIP
}

// Rule restricts the calls to the methods its patterns match.
type Rule struct {
	// Methods are method patterns: "/pkg.Service/Method", "/pkg.Service/*"
	// or "*". A pattern appears in at most one rule.
	Methods []string
	// AllowLocations, when non-empty (or AllowTrusted is set), admits only
	// callers inside one of these named locations.
	AllowLocations []string
	// AllowTrusted admits callers inside any location marked trusted.
	AllowTrusted bool
	// BlockLocations refuses callers inside any of these named locations,
	// whatever the allow list says. Blocks accumulate: a "/pkg.Service/*"
	// rule's blocks also apply to the service's methods that have a rule of
	// their own, and the "*" rule's blocks apply to every method.
	BlockLocations []string
	// Strict also requires the caller's IP to equal the token's ipaddr claim
	// (the address the identity provider saw), like Entra's strict location
	// enforcement.
	Strict bool
	// AuthContext, when non-empty, requires the token's acrs claim to hold
	// at least one of these authentication context ids (c1..c25); otherwise
	// the caller is challenged to step up to the first one.
	AuthContext []string
	// ACRValues, when non-empty, requires the token's acr claim (OIDC Core
	// §2) to equal one of these values, in order of preference; otherwise
	// the caller gets an RFC 9470 step-up challenge
	// (error="insufficient_user_authentication", acr_values="…"; RFC 9470
	// §3). This is the standard dialect every OIDC IdP speaks; AuthContext
	// is Entra's. A rule uses one dialect: ACRValues and MaxAge, or
	// AuthContext.
	ACRValues []string
	// MaxAge, when non-zero, requires the token's auth_time claim to be at
	// most MaxAge before the call (a token without auth_time fails);
	// otherwise the caller gets an RFC 9470 step-up challenge with
	// max_age="<seconds>". Whole seconds, 1s to challenge.MaxMaxAge.
	MaxAge time.Duration
}

// stepUp reports whether r requires an RFC 9470 step-up.
func (r *Rule) stepUp() bool { return len(r.ACRValues) > 0 || r.MaxAge != 0 }

// ClientIP configures how the caller's IP is found; see package clientip.
type ClientIP struct {
	// TrustedProxies are the proxies whose forwarding header is believed.
	// Empty: only the transport peer address counts.
	TrustedProxies []netip.Prefix
	// Header is the metadata key read behind trusted proxies (default
	// x-forwarded-for).
	Header string
	// MaxHops bounds how many header entries are examined (default 16).
	MaxHops int
}

// Limits enforced by Validate.
const (
	// MaxLocations is the most named locations a policy may define.
	MaxLocations = 1000
	// MaxRanges is the most ranges, over all locations, a policy may define.
	MaxRanges = 50000
	// MaxRules is the most rules a policy may define.
	MaxRules = 10000
	// MinIPv4Bits is the shortest IPv4 prefix accepted: nothing broader than a /8.
	MinIPv4Bits = 8
	// MinIPv6Bits is the shortest IPv6 prefix accepted: nothing broader than
	// a /32, the smallest allocation a regional registry makes to an ISP;
	// anything broader spans several networks and is almost surely a typo.
	MinIPv6Bits = 32
	// maxNameLen bounds a location name, in bytes.
	maxNameLen = 256
	// maxErrors bounds how many problems one validation reports.
	maxErrors = 25
)

// FieldError is one problem in a policy. Loaded from a file it names the file,
// line and column; built in code it names only the field.
type FieldError struct {
	// File is the policy file's name, or "" for a policy built in code.
	File string
	// Line and Column locate the problem in File (1-based; 0 if unknown).
	Line, Column int
	// Field is the path of the offending field, e.g. "rules[1].auth_context[0]".
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error returns "file:line:col: field: msg" (or "policy: field: msg").
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	case e.File != "":
		b.WriteString(e.File + ": ")
	default:
		b.WriteString("policy: ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Clone returns a deep copy of p.
func (p *Policy) Clone() *Policy {
	if p == nil {
		return nil
	}
	c := &Policy{
		Locations: make([]Location, len(p.Locations)),
		Rules:     make([]Rule, len(p.Rules)),
		ClientIP: ClientIP{
			TrustedProxies: append([]netip.Prefix(nil), p.ClientIP.TrustedProxies...),
			Header:         p.ClientIP.Header,
			MaxHops:        p.ClientIP.MaxHops,
		},
	}
	for i, l := range p.Locations {
		c.Locations[i] = Location{Name: l.Name, Trusted: l.Trusted, Ranges: append([]netip.Prefix(nil), l.Ranges...)}
	}
	for i, r := range p.Rules {
		c.Rules[i] = Rule{
			Methods:        append([]string(nil), r.Methods...),
			AllowLocations: append([]string(nil), r.AllowLocations...),
			AllowTrusted:   r.AllowTrusted,
			BlockLocations: append([]string(nil), r.BlockLocations...),
			Strict:         r.Strict,
			AuthContext:    append([]string(nil), r.AuthContext...),
			ACRValues:      append([]string(nil), r.ACRValues...),
			MaxAge:         r.MaxAge,
		}
	}
	return c
}

type problems struct{ errs []error }

func (ps *problems) add(field, format string, args ...any) {
	if len(ps.errs) < maxErrors {
		ps.errs = append(ps.errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	} else if len(ps.errs) == maxErrors {
		ps.errs = append(ps.errs, &FieldError{Msg: "too many problems; fix these first"})
	}
}

func (ps *problems) err() error { return errors.Join(ps.errs...) }

// Validate checks p and reports every problem (up to 25), each a *FieldError
// naming the field; errors.As finds the first. It checks: location names
// (non-empty, printable, unique), ranges (valid CIDR, no host bits, not
// broader than /8 for IPv4 or /32 for IPv6), limits, method patterns (valid,
// unique across rules), location names in rules (defined, not both allowed
// and blocked), auth context ids (c1..c25), and the client IP settings.
func (p *Policy) Validate() error {
	if p == nil {
		return errors.New("policy: nil policy")
	}
	var ps problems
	if len(p.Locations) > MaxLocations {
		ps.add("locations", "%d locations, more than the limit of %d", len(p.Locations), MaxLocations)
	}
	names := make(map[string]int, len(p.Locations))
	total := 0
	for i, l := range p.Locations {
		path := fmt.Sprintf("locations[%d]", i)
		if msg := checkName(l.Name); msg != "" {
			ps.add(path+".name", "%s", msg)
		} else if j, dup := names[l.Name]; dup {
			ps.add(path+".name", "duplicate location name %q (also locations[%d])", l.Name, j)
		} else {
			names[l.Name] = i
		}
		if len(l.Ranges) == 0 {
			ps.add(path+".ranges", "location %q has no ranges", l.Name)
		}
		total += len(l.Ranges)
		for k, r := range l.Ranges {
			if msg := checkPrefix(r); msg != "" {
				ps.add(fmt.Sprintf("%s.ranges[%d]", path, k), "%s", msg)
			}
		}
	}
	if total > MaxRanges {
		ps.add("locations", "%d ranges in total, more than the limit of %d", total, MaxRanges)
	}

	if len(p.Rules) > MaxRules {
		ps.add("rules", "%d rules, more than the limit of %d", len(p.Rules), MaxRules)
	}
	patterns := make(map[string]string)
	for i, r := range p.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		if len(r.Methods) == 0 {
			ps.add(path+".methods", "rule has no method patterns")
		}
		for k, m := range r.Methods {
			f := fmt.Sprintf("%s.methods[%d]", path, k)
			if msg := checkPattern(m); msg != "" {
				ps.add(f, "%s", msg)
			} else if prev, dup := patterns[m]; dup {
				ps.add(f, "method pattern %q is already used by %s", m, prev)
			} else {
				patterns[m] = f
			}
		}
		allowed := make(map[string]bool, len(r.AllowLocations))
		for k, n := range r.AllowLocations {
			f := fmt.Sprintf("%s.allow_locations[%d]", path, k)
			switch _, ok := names[n]; {
			case !ok:
				ps.add(f, "unknown location %q%s", n, defined(p.Locations))
			case allowed[n]:
				ps.add(f, "location %q listed twice", n)
			}
			allowed[n] = true
		}
		blocked := make(map[string]bool, len(r.BlockLocations))
		for k, n := range r.BlockLocations {
			f := fmt.Sprintf("%s.block_locations[%d]", path, k)
			switch _, ok := names[n]; {
			case !ok:
				ps.add(f, "unknown location %q%s", n, defined(p.Locations))
			case blocked[n]:
				ps.add(f, "location %q listed twice", n)
			case allowed[n]:
				ps.add(f, "location %q is both allowed and blocked", n)
			}
			blocked[n] = true
		}
		acrs := make(map[string]bool, len(r.AuthContext))
		for k, a := range r.AuthContext {
			f := fmt.Sprintf("%s.auth_context[%d]", path, k)
			switch {
			case !ValidAuthContext(a):
				ps.add(f, "%q is not an authentication context id (c1..c25)", a)
			case acrs[a]:
				ps.add(f, "auth context %q listed twice", a)
			}
			acrs[a] = true
		}
		if len(r.ACRValues) > challenge.MaxACRValues {
			ps.add(path+".acr_values", "%d acr values, more than the limit of %d", len(r.ACRValues), challenge.MaxACRValues)
		}
		seenACR := make(map[string]bool, len(r.ACRValues))
		for k, a := range r.ACRValues {
			f := fmt.Sprintf("%s.acr_values[%d]", path, k)
			switch {
			case !challenge.ValidACRValue(a):
				ps.add(f, "%q is not a usable acr value (1 to 256 printable ASCII characters without spaces, quotes or backslashes)", a)
			case seenACR[a]:
				ps.add(f, "acr value %q listed twice", a)
			}
			seenACR[a] = true
		}
		switch {
		case r.MaxAge < 0:
			ps.add(path+".max_age", "max_age %v is negative", r.MaxAge)
		case r.MaxAge != 0 && r.MaxAge < time.Second:
			ps.add(path+".max_age", "max_age %v is shorter than one second; omit it for no limit", r.MaxAge)
		case r.MaxAge > challenge.MaxMaxAge:
			ps.add(path+".max_age", "max_age %v is longer than the limit of %v", r.MaxAge, challenge.MaxMaxAge)
		case r.MaxAge%time.Second != 0:
			ps.add(path+".max_age", "max_age %v is not a whole number of seconds (RFC 9470 max_age is in seconds)", r.MaxAge)
		}
		if r.stepUp() && len(r.AuthContext) > 0 {
			ps.add(path, "rule mixes two step-up dialects: auth_context (Entra's acrs, insufficient_claims) and acr_values/max_age (RFC 9470, insufficient_user_authentication); use one per rule")
		}
		if len(r.AllowLocations) == 0 && !r.AllowTrusted && len(r.BlockLocations) == 0 && !r.Strict && len(r.AuthContext) == 0 && !r.stepUp() {
			ps.add(path, "rule restricts nothing: set allow_locations, allow_trusted, block_locations, strict, auth_context, acr_values or max_age")
		}
	}

	for k, pr := range p.ClientIP.TrustedProxies {
		if msg := checkPrefix(pr); msg != "" {
			ps.add(fmt.Sprintf("client_ip.trusted_proxies[%d]", k), "%s", msg)
		}
	}
	if h := p.ClientIP.Header; h != "" {
		if !validHeader(h) {
			ps.add("client_ip.header", "%q is not a usable metadata key (lowercase letters, digits, '-', '_', '.'; not ending in -bin)", h)
		} else if len(p.ClientIP.TrustedProxies) == 0 {
			ps.add("client_ip.header", "header is set but trusted_proxies is empty, so it would never be read")
		}
	}
	if m := p.ClientIP.MaxHops; m != 0 && (m < 1 || m > 64) {
		ps.add("client_ip.max_hops", "%d is outside 1..64", m)
	}
	return ps.err()
}

func defined(locs []Location) string {
	if len(locs) == 0 {
		return " (no locations are defined)"
	}
	var b strings.Builder
	b.WriteString(" (defined: ")
	for i, l := range locs {
		if i == 8 {
			fmt.Fprintf(&b, ", … %d more", len(locs)-8)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(l.Name))
	}
	b.WriteString(")")
	return b.String()
}

func checkName(n string) string {
	switch {
	case strings.TrimSpace(n) == "":
		return "location name is empty"
	case len(n) > maxNameLen:
		return fmt.Sprintf("location name is %d bytes, limit %d", len(n), maxNameLen)
	case strings.IndexFunc(n, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar }) >= 0:
		return fmt.Sprintf("location name %q has a control or invalid character", n)
	}
	return ""
}

func checkPrefix(p netip.Prefix) string {
	np, err := location.Normalize(p)
	if err != nil {
		return err.Error()
	}
	if np.Addr().Is4() && np.Bits() < MinIPv4Bits {
		return fmt.Sprintf("prefix %s is broader than /%d; IPv4 ranges must be /%d or narrower", p, MinIPv4Bits, MinIPv4Bits)
	}
	if np.Addr().Is6() && np.Bits() < MinIPv6Bits {
		return fmt.Sprintf("prefix %s is broader than /%d; IPv6 ranges must be /%d or narrower", p, MinIPv6Bits, MinIPv6Bits)
	}
	return ""
}

var (
	servicePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	methodPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	headerPattern  = regexp.MustCompile(`^[a-z0-9_.-]+$`)
)

// checkPattern validates "*", "/svc/*" or "/svc/Method".
func checkPattern(m string) string {
	const want = `want "/pkg.Service/Method", "/pkg.Service/*" or "*"`
	if m == "*" {
		return ""
	}
	if len(m) > 1024 {
		return "method pattern too long"
	}
	if !strings.HasPrefix(m, "/") {
		return fmt.Sprintf("bad method pattern %q: must start with '/'; %s", m, want)
	}
	svc, meth, ok := strings.Cut(m[1:], "/")
	if !ok {
		return fmt.Sprintf("bad method pattern %q: no method part; %s", m, want)
	}
	if !servicePattern.MatchString(svc) {
		if strings.Contains(svc, "*") {
			return fmt.Sprintf("bad method pattern %q: a wildcard may only be the whole method or the whole pattern; %s", m, want)
		}
		return fmt.Sprintf("bad method pattern %q: %q is not a fully-qualified service name; %s", m, svc, want)
	}
	if meth == "*" {
		return ""
	}
	if !methodPattern.MatchString(meth) {
		if strings.Contains(meth, "*") {
			return fmt.Sprintf("bad method pattern %q: a wildcard may only be the whole method or the whole pattern; %s", m, want)
		}
		return fmt.Sprintf("bad method pattern %q: %q is not a method name; %s", m, meth, want)
	}
	return ""
}

func validHeader(h string) bool {
	return headerPattern.MatchString(h) && !strings.HasSuffix(h, "-bin") && !strings.HasPrefix(h, "grpc-")
}

// ValidAuthContext reports whether id is an authentication context id, c1..c25.
func ValidAuthContext(id string) bool {
	if len(id) < 2 || len(id) > 3 || id[0] != 'c' || id[1] == '0' {
		return false
	}
	n := 0
	for _, c := range id[1:] {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 25
}

// resolver builds the client IP resolver the policy describes.
func (c *ClientIP) resolver() (*clientip.Resolver, error) {
	var opts []clientip.Option
	if len(c.TrustedProxies) > 0 {
		opts = append(opts, clientip.WithTrustedProxies(c.TrustedProxies...))
	}
	if c.Header != "" {
		opts = append(opts, clientip.WithHeader(c.Header))
	}
	if c.MaxHops != 0 {
		opts = append(opts, clientip.WithMaxHops(c.MaxHops))
	}
	return clientip.New(opts...)
}
