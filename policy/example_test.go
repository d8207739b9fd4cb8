package policy_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/policy"
)

// A policy built in code and evaluated directly; in a server, pass
// eng.Checks() to interceptor.WithChecks instead.
func Example() {
	eng, err := policy.NewEngine(&policy.Policy{
		Locations: []policy.Location{
			{Name: "hq", Trusted: true, Ranges: []netip.Prefix{
				netip.MustParsePrefix("203.0.113.0/24"),
				netip.MustParsePrefix("2001:db8:1::/48"),
			}},
		},
		Rules: []policy.Rule{
			{Methods: []string{"/inbox.v1.InboxService/*"}, AllowLocations: []string{"hq"}},
			{Methods: []string{"/inbox.v1.InboxService/DeleteMessage"}, AllowTrusted: true, AuthContext: []string{"c1"}},
		},
	}, policy.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	now := time.Unix(1700000000, 0) //datelint:ok printed in the challenge below; every check gets this instant as Request.Now
	call := func(method, ip string, c *token.Claims) {
		req := &interceptor.Request{
			FullMethod: method,
			Claims:     c,
			Peer:       &net.TCPAddr{IP: net.ParseIP(ip), Port: 50000},
			Now:        now,
		}
		if d := eng.Check(context.Background(), req); d != nil {
			fmt.Printf("%s from %s: %v %s\n", method, ip, d.Reason, d.Claims)
			return
		}
		fmt.Printf("%s from %s: allowed\n", method, ip)
	}
	alice := &token.Claims{Subject: "alice", IssuedAt: now.Add(-time.Hour), Hash: "a1"}
	call("/inbox.v1.InboxService/ListMessages", "203.0.113.10", alice)
	call("/inbox.v1.InboxService/ListMessages", "192.0.2.10", alice)
	call("/inbox.v1.InboxService/DeleteMessage", "2001:db8:1::10", alice)
	stepped := &token.Claims{Subject: "alice", IssuedAt: now, Hash: "a2", ACRS: []string{"c1"}}
	call("/inbox.v1.InboxService/DeleteMessage", "2001:db8:1::10", stepped)
	// Output:
	// /inbox.v1.InboxService/ListMessages from 203.0.113.10: allowed
	// /inbox.v1.InboxService/ListMessages from 192.0.2.10: REASON_LOCATION {"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}
	// /inbox.v1.InboxService/DeleteMessage from 2001:db8:1::10: REASON_AUTH_CONTEXT {"access_token":{"acrs":{"essential":true,"value":"c1"}}}
	// /inbox.v1.InboxService/DeleteMessage from 2001:db8:1::10: allowed
}

// Loading a policy file and keeping it current.
func ExampleWatch() {
	eng, err := policy.NewEngine(&policy.Policy{}, policy.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	w, err := policy.Watch(context.Background(), "testdata/policy.yaml", eng,
		policy.WithWatchLogger(quiet),
		policy.WithOnReload(func(r policy.Reload) {
			if r.Err != nil {
				fmt.Println("rejected:", r.Err)
			}
		}))
	if err != nil {
		panic(err)
	}
	defer w.Close()
	fmt.Println(len(eng.Policy().Locations), "locations")
	// Output: 3 locations
}

func ExampleParse() {
	_, err := policy.Parse("policy.yaml", []byte(`locations:
  - name: hq
    ranges: [203.0.113.0/24]
rules:
  - methods: ["/inbox.v1.InboxService/*"]
    allow_locations: [hq2]
    auth_context: [c26]
`))
	fmt.Println(err)
	// Output:
	// policy.yaml:6:23: rules[0].allow_locations[0]: unknown location "hq2" (defined: "hq")
	// policy.yaml:7:20: rules[0].auth_context[0]: "c26" is not an authentication context id (c1..c25)
}
