package location_test

import (
	"fmt"
	"net/netip"

	"github.com/caekit/caekit/policy/location"
)

func Example() {
	tb, err := location.NewTable([]location.Location{
		{Name: "hq", Trusted: true, Ranges: []netip.Prefix{
			netip.MustParsePrefix("203.0.113.0/24"),
			netip.MustParsePrefix("2001:db8:1::/48"),
		}},
		{Name: "embargo", Ranges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
	})
	if err != nil {
		panic(err)
	}
	for _, ip := range []string{"203.0.113.7", "::ffff:203.0.113.7", "2001:db8:1::1", "198.51.100.1", "192.0.2.1"} {
		fmt.Println(ip, tb.Names(netip.MustParseAddr(ip)))
	}
	// Output:
	// 203.0.113.7 [hq]
	// ::ffff:203.0.113.7 [hq]
	// 2001:db8:1::1 [hq]
	// 198.51.100.1 [embargo]
	// 192.0.2.1 []
}
