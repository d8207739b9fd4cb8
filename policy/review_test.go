package policy_test

// Security review tests: each pins down a defect the review found (and that
// is now fixed) or a behaviour the review verified.

import (
	"context"
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
	"github.com/caekit/caekit/policy"
)

const (
	reviewHQ        = "203.0.113.10"
	reviewEmbargoed = "198.51.100.7"
	reviewProxy     = "10.1.2.3"
)

func reviewPolicy(rules ...policy.Rule) *policy.Policy {
	return &policy.Policy{
		Locations: []policy.Location{
			{Name: "hq", Trusted: true, Ranges: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:1::/48")}},
			{Name: "embargoed", Ranges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("fe80::/64")}},
		},
		Rules:    rules,
		ClientIP: policy.ClientIP{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
	}
}

func reviewEngine(t *testing.T, p *policy.Policy) *policy.Engine {
	t.Helper()
	e, err := policy.NewEngine(p, policy.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func reviewReq(method, peer string, acrs ...string) *interceptor.Request {
	ip := net.ParseIP(peer)
	zone := ""
	if ip == nil { // "addr%zone"
		a := netip.MustParseAddr(peer)
		ip, zone = net.IP(a.AsSlice()), a.Zone()
	}
	return &interceptor.Request{
		FullMethod: method,
		Peer:       &net.TCPAddr{IP: ip, Port: 443, Zone: zone},
		Claims:     &interceptor.Claims{Issuer: "https://idp", Subject: "u", ObjectID: "o", TenantID: "t", ACRS: acrs, Hash: "h", IssuedAt: time.Now()},
		Now:        time.Now(),
	}
}

// TestReviewBlockSurvivesMoreSpecificRule (finding POL-1).
//
// Only the most specific rule applies, so a rule for one method (or one
// service) silently drops the block_locations of the broader rules: below,
// "*" blocks the embargoed location, and adding a step-up requirement for
// one sensitive method makes that method reachable from the embargoed
// location. The docs call block_locations a refusal "whatever the allow list
// says"; an operator tightening one method should never loosen it. Blocks
// should accumulate over every matching rule (exact, service and "*"), or
// Validate should refuse a more specific rule that lacks a broader rule's
// blocks.
func TestReviewBlockSurvivesMoreSpecificRule(t *testing.T) {
	eng := reviewEngine(t, reviewPolicy(
		policy.Rule{Methods: []string{"*"}, BlockLocations: []string{"embargoed"}},
		policy.Rule{Methods: []string{"/admin.v1.Admin/Delete"}, AuthContext: []string{"c1"}},
		policy.Rule{Methods: []string{"/billing.v1.Billing/*"}, AuthContext: []string{"c2"}},
	))
	ctx := context.Background()
	if d := eng.Check(ctx, reviewReq("/inbox.v1.Inbox/Get", reviewEmbargoed)); d == nil {
		t.Fatal("test setup: the default rule does not block the embargoed location")
	}
	if d := eng.Check(ctx, reviewReq("/admin.v1.Admin/Delete", reviewEmbargoed, "c1")); d == nil {
		t.Error("a caller in a location blocked for every method reaches /admin.v1.Admin/Delete because that method has a step-up rule")
	}
	if d := eng.Check(ctx, reviewReq("/billing.v1.Billing/Pay", reviewEmbargoed, "c2")); d == nil {
		t.Error("a caller in a location blocked for every method reaches /billing.v1.Billing/Pay because that service has a step-up rule")
	}
}

// TestReviewLocationAddressForms: an address is matched whatever its form
// (IPv4-mapped IPv6, with a zone), so a block cannot be dodged by reaching
// the service over a dual-stack socket.
func TestReviewLocationAddressForms(t *testing.T) {
	eng := reviewEngine(t, reviewPolicy(policy.Rule{Methods: []string{"*"}, BlockLocations: []string{"embargoed"}}))
	ctx := context.Background()
	for _, peer := range []string{reviewEmbargoed, "::ffff:" + reviewEmbargoed, "fe80::1%eth0"} {
		if d := eng.Check(ctx, reviewReq("/x.v1.S/M", peer)); d == nil {
			t.Errorf("peer %s in the blocked location was allowed", peer)
		}
	}
	if d := eng.Check(ctx, reviewReq("/x.v1.S/M", reviewHQ)); d != nil {
		t.Errorf("peer %s outside the block was denied: %s", reviewHQ, d.Description)
	}
}

// TestReviewForwardedForTrust: x-forwarded-for is read only from a trusted
// proxy, its right-most untrusted entry counts (entries a client prepends
// are ignored), and an unusable header from a trusted proxy denies.
func TestReviewForwardedForTrust(t *testing.T) {
	eng := reviewEngine(t, reviewPolicy(policy.Rule{Methods: []string{"*"}, AllowLocations: []string{"hq"}}))
	check := func(peer string, xff ...string) *interceptor.Denial {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{"x-forwarded-for": xff})
		return eng.Check(ctx, reviewReq("/x.v1.S/M", peer))
	}
	cases := []struct {
		name  string
		peer  string
		xff   []string
		allow bool
	}{
		{"forged header from an untrusted peer", reviewEmbargoed, []string{reviewHQ}, false},
		{"trusted proxy forwarding hq", reviewProxy, []string{reviewHQ}, true},
		{"client-prepended hq before its real address", reviewProxy, []string{reviewHQ + ", " + reviewEmbargoed}, false},
		{"client-prepended hq in an earlier header value", reviewProxy, []string{reviewHQ, reviewEmbargoed}, false},
		{"hq behind two trusted proxies", reviewProxy, []string{reviewHQ + ", 10.9.9.9"}, true},
		{"IPv4-mapped entry", reviewProxy, []string{"::ffff:" + reviewEmbargoed}, false},
		{"garbage entry", reviewProxy, []string{"unknown"}, false},
		{"garbage to the left of the client is not read", reviewProxy, []string{"garbage, " + reviewHQ}, true},
		{"bracketed IPv6 with port", reviewProxy, []string{"[2001:db8:1::5]:443"}, true},
	}
	for _, tc := range cases {
		d := check(tc.peer, tc.xff...)
		if (d == nil) != tc.allow {
			desc := "<allowed>"
			if d != nil {
				desc = d.Description
			}
			t.Errorf("%s: allowed=%v (%s), want %v", tc.name, d == nil, desc, tc.allow)
		}
	}
}

// TestReviewTrustedProxyWithoutClient guards issue 13 item 10: a trusted
// proxy that sends no forwarding header, an empty one, or one listing only
// trusted proxies used to make its own address the caller's, so a block list
// that does not name the proxy let every caller behind it through. The
// package doc promises to fail closed: each of these is now denied, with a
// plain PermissionDenied saying the address could not be determined.
func TestReviewTrustedProxyWithoutClient(t *testing.T) {
	eng := reviewEngine(t, reviewPolicy(policy.Rule{Methods: []string{"*"}, BlockLocations: []string{"embargoed"}}))
	cases := []struct {
		name string
		md   metadata.MD
	}{
		{"no header", nil},
		{"empty header", metadata.MD{"x-forwarded-for": {""}}},
		{"blank entries", metadata.MD{"x-forwarded-for": {" , "}}},
		{"only trusted proxies", metadata.MD{"x-forwarded-for": {"10.9.9.9, 10.8.8.8"}}},
	}
	for _, tc := range cases {
		ctx := metadata.NewIncomingContext(context.Background(), tc.md)
		d := eng.Check(ctx, reviewReq("/x.v1.S/M", reviewProxy))
		if d == nil {
			t.Errorf("%s: the trusted proxy's own address passed the block list", tc.name)
			continue
		}
		if d.Code != codes.PermissionDenied || d.Claims != "" || !strings.Contains(d.Description, "could not be determined") {
			t.Errorf("%s: denial = %+v, want a plain PermissionDenied saying the address is unknown", tc.name, d)
		}
	}
	// A proxied caller outside the block still passes.
	ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{"x-forwarded-for": {reviewHQ}})
	if d := eng.Check(ctx, reviewReq("/x.v1.S/M", reviewProxy)); d != nil {
		t.Errorf("proxied hq caller denied: %s", d.Description)
	}
}
