package policy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testclock"
	"github.com/caekit/caekit/policy"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, v := range s {
		out[i] = netip.MustParsePrefix(v)
	}
	return out
}

func testPolicy() *policy.Policy {
	return &policy.Policy{
		Locations: []policy.Location{
			{Name: "hq", Trusted: true, Ranges: prefixes("203.0.113.0/24", "2001:db8:1::/48")},
			{Name: "branch", Ranges: prefixes("192.0.2.0/24")},
			{Name: "home", Trusted: true, Ranges: prefixes("100.64.0.0/16")},
			{Name: "embargoed", Ranges: prefixes("198.51.100.0/24")},
		},
		Rules: []policy.Rule{
			{Methods: []string{"/pkg.Svc/*"}, AllowLocations: []string{"hq", "branch"}},
			{Methods: []string{"/pkg.Svc/Trusted"}, AllowTrusted: true},
			{Methods: []string{"/pkg.Svc/Strict"}, AllowLocations: []string{"hq"}, Strict: true},
			{Methods: []string{"/pkg.Svc/Admin"}, AllowLocations: []string{"hq"}, AuthContext: []string{"c1", "c2"}},
			{Methods: []string{"/pkg.Other/Open"}, AuthContext: []string{"c25"}},
			{Methods: []string{"*"}, BlockLocations: []string{"embargoed"}},
		},
	}
}

func newEngine(t testing.TB, p *policy.Policy, opts ...policy.Option) *policy.Engine {
	t.Helper()
	e, err := policy.NewEngine(p, append([]policy.Option{policy.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var t0 = testclock.Unix(1_700_000_000, 0)

func claimsAt(ipaddr string, iat time.Time, hash string, acrs ...string) *token.Claims {
	return &token.Claims{TenantID: "t", ObjectID: "user1", IPAddr: ipaddr, IssuedAt: iat, Hash: hash, ACRS: acrs}
}

func req(method, peerIP string, c *token.Claims, now time.Time) *interceptor.Request {
	var p net.Addr
	if peerIP != "" {
		p = net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(peerIP), 40000))
	}
	return &interceptor.Request{FullMethod: method, Claims: c, Peer: p, Now: now}
}

func TestLocationRules(t *testing.T) {
	e := newEngine(t, testPolicy())
	ctx := context.Background()
	tests := []struct {
		method, ip string
		deny       bool
	}{
		{"/pkg.Svc/Get", "203.0.113.0", false},   // first address of hq
		{"/pkg.Svc/Get", "203.0.113.255", false}, // last address of hq
		{"/pkg.Svc/Get", "203.0.112.255", true},  // just below
		{"/pkg.Svc/Get", "203.0.114.0", true},    // just above
		{"/pkg.Svc/Get", "::ffff:203.0.113.9", false},
		{"/pkg.Svc/Get", "2001:db8:1::1", false},
		{"/pkg.Svc/Get", "2001:db8:1:ffff:ffff:ffff:ffff:ffff", false},
		{"/pkg.Svc/Get", "2001:db8:2::1", true},
		{"/pkg.Svc/Get", "192.0.2.1", false},
		{"/pkg.Svc/Get", "100.64.0.1", true},      // trusted but not listed
		{"/pkg.Svc/Trusted", "100.64.0.1", false}, // any trusted
		{"/pkg.Svc/Trusted", "192.0.2.1", true},   // branch is not trusted
		{"/pkg.Svc/Trusted", "2001:db8:1::5", false},
		{"/other.Svc/Get", "8.8.8.8", false},            // "*" only blocks
		{"/other.Svc/Get", "198.51.100.200", true},      // blocked
		{"/other.Svc/Get", "::ffff:198.51.100.1", true}, // blocked, mapped
		{"/pkg.Other/Open", "198.51.100.1", true},       // exact rule without a location restriction still inherits the "*" block
		{"/pkg.Other/Open", "8.8.8.8", false},           // and the exact rule adds no allow list
	}
	for _, tt := range tests {
		d := e.LocationCheck().Check(ctx, req(tt.method, tt.ip, claimsAt("", t0, "h1"), t0))
		if (d != nil) != tt.deny {
			t.Errorf("%s from %s: denial = %+v, want deny=%v", tt.method, tt.ip, d, tt.deny)
			continue
		}
		if d != nil && d.Reason != caev1.Reason_REASON_LOCATION {
			t.Errorf("reason = %v", d.Reason)
		}
	}
}

func TestLocationChallengeThenPlainDenial(t *testing.T) {
	e := newEngine(t, testPolicy())
	ctx := context.Background()
	// The IdP saw the caller over IPv4 in hq; this service sees it over IPv6
	// outside every location: Entra's IPv4/IPv6 mismatch.
	old := claimsAt("203.0.113.7", t0.Add(-time.Hour), "tokA")
	d := e.LocationCheck().Check(ctx, req("/pkg.Svc/Get", "2001:db8:99::1", old, t0))
	if d == nil || d.Claims == "" || d.Code != 0 || d.Reason != caev1.Reason_REASON_LOCATION {
		t.Fatalf("first denial = %+v, want a claims challenge", d)
	}
	want := fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, t0.Unix())
	if d.Claims != want {
		t.Fatalf("claims = %s, want %s", d.Claims, want)
	}
	// The same token again (client has not been back to the IdP): same challenge.
	d = e.LocationCheck().Check(ctx, req("/pkg.Svc/Get", "2001:db8:99::1", old, t0.Add(30*time.Second)))
	if d == nil || d.Claims != want {
		t.Fatalf("repeat denial = %+v, want the same challenge", d)
	}
	// A new token issued in answer (Entra backdates iat by 5 minutes), still
	// seen from the IPv6 address: plain denial, no loop.
	fresh := claimsAt("203.0.113.7", t0.Add(-5*time.Minute+time.Second), "tokB")
	d = e.LocationCheck().Check(ctx, req("/pkg.Svc/Get", "2001:db8:99::1", fresh, t0.Add(time.Second)))
	if d == nil || d.Claims != "" || d.Code != codes.PermissionDenied {
		t.Fatalf("post-challenge denial = %+v, want plain PermissionDenied", d)
	}
	for _, s := range []string{"2001:db8:99::1", "203.0.113.7", "IPv6 ranges may be missing", "new token will not help"} {
		if !strings.Contains(d.Description, s) {
			t.Errorf("description %q lacks %q", d.Description, s)
		}
	}
	// Another caller at the same address is still challenged.
	other := &token.Claims{TenantID: "t", ObjectID: "user2", IssuedAt: t0, Hash: "tokC"}
	if d := e.LocationCheck().Check(ctx, req("/pkg.Svc/Get", "2001:db8:99::1", other, t0)); d == nil || d.Claims == "" {
		t.Fatalf("other caller: %+v, want a challenge", d)
	}
	// From an allowed address the fresh token works.
	if d := e.LocationCheck().Check(ctx, req("/pkg.Svc/Get", "2001:db8:1::1", fresh, t0)); d != nil {
		t.Fatalf("allowed address denied: %+v", d)
	}
}

func TestLocationPlainWhenIdPSawSameAddress(t *testing.T) {
	e := newEngine(t, testPolicy())
	c := claimsAt("8.8.4.4", t0.Add(-time.Hour), "tokA")
	d := e.LocationCheck().Check(context.Background(), req("/pkg.Svc/Get", "8.8.4.4", c, t0))
	if d == nil || d.Claims != "" || d.Code != codes.PermissionDenied || !strings.Contains(d.Description, "same address") {
		t.Fatalf("denial = %+v, want plain denial", d)
	}
}

func TestChallengeMemoryExpires(t *testing.T) {
	e := newEngine(t, testPolicy(), policy.WithChallengeMemory(10, time.Minute))
	ctx := context.Background()
	e.LocationCheck().Check(ctx, req("/pkg.Svc/Get", "8.8.8.8", claimsAt("", t0.Add(-time.Hour), "a"), t0))
	fresh := claimsAt("", t0, "b")
	if d := e.LocationCheck().Check(ctx, req("/pkg.Svc/Get", "8.8.8.8", fresh, t0.Add(time.Second))); d == nil || d.Claims != "" {
		t.Fatalf("want plain denial within ttl, got %+v", d)
	}
	if d := e.LocationCheck().Check(ctx, req("/pkg.Svc/Get", "8.8.8.8", fresh, t0.Add(2*time.Minute))); d == nil || d.Claims == "" {
		t.Fatalf("want a new challenge after ttl, got %+v", d)
	}
}

func TestChallengeMemoryBounded(t *testing.T) {
	e := newEngine(t, testPolicy(), policy.WithChallengeMemory(16, time.Hour))
	ctx := context.Background()
	for i := range 1000 {
		ip := netip.AddrFrom4([4]byte{8, 8, byte(i >> 8), byte(i)}).String()
		if d := e.LocationCheck().Check(ctx, req("/pkg.Svc/Get", ip, claimsAt("", t0, "x"), t0)); d == nil {
			t.Fatal("allowed")
		}
	}
	if n := e.MemoryLen(); n > 16 || n == 0 {
		t.Fatalf("memory holds %d entries, bound 16", n)
	}
}

func TestStrictMode(t *testing.T) {
	e := newEngine(t, testPolicy())
	ctx := context.Background()
	// Caller in hq, token ipaddr the same: allowed.
	if d := e.LocationCheck().Check(ctx, req("/pkg.Svc/Strict", "203.0.113.5", claimsAt("203.0.113.5", t0, "a"), t0)); d != nil {
		t.Fatalf("matching ipaddr denied: %+v", d)
	}
	// Mapped form of the same address: allowed.
	if d := e.LocationCheck().Check(ctx, req("/pkg.Svc/Strict", "::ffff:203.0.113.5", claimsAt("203.0.113.5", t0, "a"), t0)); d != nil {
		t.Fatalf("mapped ipaddr denied: %+v", d)
	}
	// Caller in hq but the IdP saw another address: challenge.
	d := e.LocationCheck().Check(ctx, req("/pkg.Svc/Strict", "203.0.113.5", claimsAt("203.0.113.6", t0.Add(-time.Hour), "a"), t0))
	if d == nil || d.Claims == "" || !strings.Contains(d.Description, "strict") {
		t.Fatalf("mismatch: %+v, want challenge", d)
	}
	// New token, IdP still sees the other address (split tunnel): plain.
	d = e.LocationCheck().Check(ctx, req("/pkg.Svc/Strict", "203.0.113.5", claimsAt("203.0.113.6", t0, "b"), t0.Add(time.Second)))
	if d == nil || d.Claims != "" || d.Code != codes.PermissionDenied {
		t.Fatalf("post-challenge mismatch: %+v, want plain denial", d)
	}
	// No ipaddr claim at all: a mismatch.
	if d := e.LocationCheck().Check(ctx, req("/pkg.Svc/Strict", "203.0.113.9", &token.Claims{Subject: "s", Hash: "z"}, t0)); d == nil {
		t.Fatal("missing ipaddr allowed in strict mode")
	}
}

func TestStrictIPv6Prefix(t *testing.T) {
	e := newEngine(t, testPolicy(), policy.WithStrictIPv6Prefix(64))
	c := claimsAt("2001:db8:1:0:aaaa::1", t0, "a")
	if d := e.LocationCheck().Check(context.Background(), req("/pkg.Svc/Strict", "2001:db8:1:0:bbbb::2", c, t0)); d != nil {
		t.Fatalf("same /64 denied: %+v", d)
	}
	if d := e.LocationCheck().Check(context.Background(), req("/pkg.Svc/Strict", "2001:db8:1:1::2", c, t0)); d == nil {
		t.Fatal("other /64 allowed")
	}
}

func TestNoPeerFailsClosed(t *testing.T) {
	e := newEngine(t, testPolicy())
	d := e.LocationCheck().Check(context.Background(), req("/pkg.Svc/Get", "", claimsAt("", t0, "a"), t0))
	if d == nil || d.Code != codes.PermissionDenied || d.Claims != "" {
		t.Fatalf("denial = %+v", d)
	}
}

func TestTrustedProxies(t *testing.T) {
	p := testPolicy()
	p.ClientIP.TrustedProxies = prefixes("10.0.0.0/8")
	e := newEngine(t, p)
	ctx := context.Background()
	withXFF := func(r *interceptor.Request, v string) *interceptor.Request {
		r.Metadata = metadata.MD{"x-forwarded-for": {v}}
		return r
	}
	c := claimsAt("", t0, "a")
	// Through the trusted proxy from hq: allowed.
	if d := e.LocationCheck().Check(ctx, withXFF(req("/pkg.Svc/Get", "10.1.1.1", c, t0), "203.0.113.4")); d != nil {
		t.Fatalf("proxied hq caller denied: %+v", d)
	}
	// Through the proxy from outside, with a forged hq entry on the left: denied.
	if d := e.LocationCheck().Check(ctx, withXFF(req("/pkg.Svc/Get", "10.1.1.1", c, t0), "203.0.113.4, 8.8.8.8")); d == nil {
		t.Fatal("forged left-most entry believed")
	}
	// Straight from outside with a forged header: the header is ignored.
	if d := e.LocationCheck().Check(ctx, withXFF(req("/pkg.Svc/Get", "8.8.8.8", c, t0), "203.0.113.4")); d == nil {
		t.Fatal("forged header from an untrusted peer believed")
	}
	// Garbage from the trusted proxy: fail closed with a plain denial.
	d := e.LocationCheck().Check(ctx, withXFF(req("/pkg.Svc/Get", "10.1.1.1", c, t0), "garbage"))
	if d == nil || d.Code != codes.PermissionDenied || d.Claims != "" {
		t.Fatalf("garbage header: %+v", d)
	}
}

func TestAuthContext(t *testing.T) {
	e := newEngine(t, testPolicy(), policy.WithClientID("api://inbox"))
	ctx := context.Background()
	ac := e.AuthContextCheck()
	if d := ac.Check(ctx, req("/pkg.Svc/Admin", "203.0.113.1", claimsAt("", t0, "a", "c2"), t0)); d != nil {
		t.Fatalf("c2 satisfies c1|c2, got %+v", d)
	}
	if d := ac.Check(ctx, req("/pkg.Svc/Get", "203.0.113.1", claimsAt("", t0, "a"), t0)); d != nil {
		t.Fatalf("no auth context needed, got %+v", d)
	}
	d := ac.Check(ctx, req("/pkg.Svc/Admin", "203.0.113.1", claimsAt("", t0.Add(-time.Hour), "a", "c3"), t0))
	if d == nil || d.Code != 0 || d.Reason != caev1.Reason_REASON_AUTH_CONTEXT ||
		d.Claims != `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}` {
		t.Fatalf("denial = %+v", d)
	}
	if len(d.Params) != 2 || d.Params[0] != (interceptor.Param{Name: "client_id", Value: "api://inbox"}) ||
		d.Params[1] != (interceptor.Param{Name: "cc_type", Value: "authcontext"}) {
		t.Fatalf("params = %+v", d.Params)
	}
	// A token issued after the step-up challenge still without c1/c2: plain.
	d = ac.Check(ctx, req("/pkg.Svc/Admin", "203.0.113.1", claimsAt("", t0, "b"), t0.Add(time.Second)))
	if d == nil || d.Claims != "" || d.Code != codes.PermissionDenied || !strings.Contains(d.Description, "still lacks") {
		t.Fatalf("post-challenge: %+v", d)
	}
	// Engine.Check runs location first.
	if d := e.Check(ctx, req("/pkg.Svc/Admin", "8.8.8.8", claimsAt("", t0, "c", "c1"), t0)); d == nil || d.Reason != caev1.Reason_REASON_LOCATION {
		t.Fatalf("Check = %+v, want location denial", d)
	}
	if n := len(e.Checks()); n != 3 {
		t.Fatalf("Checks() has %d", n)
	}
}

func TestUpdate(t *testing.T) {
	e := newEngine(t, testPolicy())
	ctx := context.Background()
	r := req("/pkg.Svc/Get", "8.8.8.8", claimsAt("", t0, "a"), t0)
	if e.LocationCheck().Check(ctx, r) == nil {
		t.Fatal("allowed before update")
	}
	p := testPolicy()
	p.Locations[1].Ranges = append(p.Locations[1].Ranges, netip.MustParsePrefix("8.8.8.0/24"))
	if err := e.Update(p); err != nil {
		t.Fatal(err)
	}
	p.Locations[1].Ranges = nil // the engine holds its own copy
	if d := e.LocationCheck().Check(ctx, r); d != nil {
		t.Fatalf("denied after update: %+v", d)
	}
	bad := testPolicy()
	bad.Rules[0].AllowLocations = []string{"nowhere"}
	if err := e.Update(bad); err == nil {
		t.Fatal("invalid update accepted")
	}
	if d := e.LocationCheck().Check(ctx, r); d != nil {
		t.Fatal("invalid update changed the policy")
	}
	if got := e.Policy(); len(got.Locations[1].Ranges) != 2 {
		t.Fatalf("Policy() = %+v", got.Locations[1])
	}
}

func TestEngineOptionsValidated(t *testing.T) {
	for _, o := range []policy.Option{
		policy.WithChallengeMemory(0, time.Hour),
		policy.WithChallengeMemory(1, 0),
		policy.WithIssuedAtSkew(-time.Second),
		policy.WithStrictIPv6Prefix(0),
	} {
		if _, err := policy.NewEngine(testPolicy(), o); err == nil {
			t.Error("bad option accepted")
		}
	}
}

func TestAllowPathDoesNotAllocate(t *testing.T) {
	e := newEngine(t, testPolicy())
	ctx := context.Background()
	r := req("/pkg.Svc/Strict", "203.0.113.5", claimsAt("203.0.113.5", t0, "a", "c1"), t0)
	r2 := req("/pkg.Svc/Admin", "203.0.113.5", claimsAt("", t0, "a", "c1"), t0)
	if n := testing.AllocsPerRun(200, func() {
		if e.Check(ctx, r) != nil || e.Check(ctx, r2) != nil {
			panic("denied")
		}
	}); n != 0 {
		t.Fatalf("allow path allocates %v times", n)
	}
}

func BenchmarkEngineCheck(b *testing.B) {
	e := newEngine(b, testPolicy())
	ctx := context.Background()
	r := req("/pkg.Svc/Admin", "2001:db8:1::5", claimsAt("", t0, "a", "c1"), t0)
	b.ReportAllocs()
	for b.Loop() {
		if e.Check(ctx, r) != nil {
			b.Fatal("denied")
		}
	}
}

func TestNilClaimsDoNotPanic(t *testing.T) {
	e := newEngine(t, testPolicy())
	for _, m := range []string{"/pkg.Svc/Strict", "/pkg.Svc/Admin", "/pkg.Svc/Get"} {
		if d := e.Check(context.Background(), req(m, "8.8.8.8", nil, t0)); d == nil {
			t.Errorf("%s allowed without claims", m)
		}
	}
}

// TestBlocksAccumulate: block lists accumulate over the exact, the service
// and the "*" rule, while allow lists, strict and auth_context come from the
// most specific rule alone.
func TestBlocksAccumulate(t *testing.T) {
	p := &policy.Policy{
		Locations: []policy.Location{
			{Name: "hq", Trusted: true, Ranges: prefixes("203.0.113.0/24")},
			{Name: "branch", Ranges: prefixes("192.0.2.0/24")},
			{Name: "home", Trusted: true, Ranges: prefixes("100.64.0.0/16")},
			{Name: "embargoed", Ranges: prefixes("198.51.100.0/24")},
		},
		Rules: []policy.Rule{
			{Methods: []string{"*"}, BlockLocations: []string{"embargoed"}},
			{Methods: []string{"/a.S/*"}, AllowLocations: []string{"hq", "home"}, BlockLocations: []string{"branch"}, AuthContext: []string{"c1"}},
			{Methods: []string{"/a.S/Open"}, AuthContext: []string{"c2"}},
			{Methods: []string{"/a.S/Branch"}, AllowLocations: []string{"branch", "home"}},
			{Methods: []string{"/a.S/Multi", "/b.S/Multi"}, AuthContext: []string{"c3"}},
			{Methods: []string{"/c.S/*"}, BlockLocations: []string{"home"}},
			{Methods: []string{"/c.S/Own"}, BlockLocations: []string{"hq"}},
		},
	}
	e := newEngine(t, p)
	ctx := context.Background()
	tests := []struct {
		name, method, ip string
		deny             bool
	}{
		{"service block inherited by a method rule", "/a.S/Open", "192.0.2.7", true},
		{"global block inherited by a method rule", "/a.S/Open", "198.51.100.7", true},
		{"service allow list not inherited by a method rule", "/a.S/Open", "8.8.8.8", false},
		{"service rule applies to methods without their own", "/a.S/Get", "8.8.8.8", true},
		{"service rule allow list", "/a.S/Get", "100.64.0.1", false},
		{"service block beats a method allow list", "/a.S/Branch", "192.0.2.7", true},
		{"method allow list replaces the service one", "/a.S/Branch", "203.0.113.1", true},
		{"method allow list admits its own locations", "/a.S/Branch", "100.64.0.1", false},
		{"global block beats a method allow list", "/a.S/Branch", "198.51.100.7", true},
		{"multi-pattern rule inherits its own service's block", "/a.S/Multi", "192.0.2.7", true},
		{"multi-pattern rule does not inherit another service's block", "/b.S/Multi", "192.0.2.7", false},
		{"multi-pattern rule inherits the global block for every pattern", "/b.S/Multi", "198.51.100.7", true},
		{"global block inherited by a service rule", "/c.S/Get", "198.51.100.7", true},
		{"service rule's own block", "/c.S/Get", "100.64.0.1", true},
		{"service rule open elsewhere", "/c.S/Get", "203.0.113.1", false},
		{"method rule's own block", "/c.S/Own", "203.0.113.1", true},
		{"method rule inherits service block", "/c.S/Own", "100.64.0.1", true},
		{"method rule inherits global block through the service", "/c.S/Own", "198.51.100.7", true},
		{"method rule open elsewhere", "/c.S/Own", "192.0.2.7", false},
		{"no rule but the global one", "/d.S/Get", "198.51.100.7", true},
		{"no rule but the global one, open", "/d.S/Get", "192.0.2.7", false},
	}
	for _, tt := range tests {
		d := e.LocationCheck().Check(ctx, req(tt.method, tt.ip, claimsAt("", t0, "h-"+tt.name), t0))
		if (d != nil) != tt.deny {
			t.Errorf("%s: %s from %s: denial = %+v, want deny=%v", tt.name, tt.method, tt.ip, d, tt.deny)
		}
	}

	// auth_context is not inherited either: /a.S/Branch has no auth context
	// although "/a.S/*" requires c1, and /a.S/Open needs c2, not c1.
	ac := e.AuthContextCheck()
	if d := ac.Check(ctx, req("/a.S/Branch", "100.64.0.1", claimsAt("", t0, "h-ac1"), t0)); d != nil {
		t.Errorf("/a.S/Branch: auth context inherited from /a.S/*: %+v", d)
	}
	if d := ac.Check(ctx, req("/a.S/Open", "8.8.8.8", claimsAt("", t0, "h-ac2", "c1"), t0)); d == nil || !strings.Contains(d.Claims, `"c2"`) {
		t.Errorf("/a.S/Open with c1: denial = %+v, want a c2 challenge", d)
	}

	// Blocks follow Update: removing the global block lifts it everywhere.
	p.Rules[0] = policy.Rule{Methods: []string{"*"}, AuthContext: []string{"c4"}}
	if err := e.Update(p); err != nil {
		t.Fatal(err)
	}
	if d := e.LocationCheck().Check(ctx, req("/a.S/Open", "198.51.100.7", claimsAt("", t0, "h-upd"), t0)); d != nil {
		t.Errorf("/a.S/Open after the global block was removed: %+v", d)
	}
	if d := e.LocationCheck().Check(ctx, req("/a.S/Open", "192.0.2.7", claimsAt("", t0, "h-upd"), t0)); d == nil {
		t.Error("/a.S/Open from branch after Update: the service block was lost")
	}
}
