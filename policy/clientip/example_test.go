package clientip_test

import (
	"fmt"
	"net"
	"net/netip"

	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/policy/clientip"
)

func Example() {
	r, err := clientip.New(clientip.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	if err != nil {
		panic(err)
	}
	md := metadata.Pairs("x-forwarded-for", "192.0.2.66, 203.0.113.9, 10.0.0.2")

	// Through the trusted proxy: the right-most untrusted hop.
	ip, _ := r.ClientIP(&net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 443}, md)
	fmt.Println(ip)
	// Straight from the internet: the header is ignored.
	ip, _ = r.ClientIP(&net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 443}, md)
	fmt.Println(ip)
	// Output:
	// 203.0.113.9
	// 198.51.100.7
}
