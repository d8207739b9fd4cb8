package httpcall

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
)

// TestNewTCPAddrMatchesStandardLibrary guards newTCPAddr (one allocation
// instead of net.TCPAddrFromAddrPort's two, issue 16 item 1): for IPv4,
// IPv6, IPv6 with a zone and IPv4-mapped IPv6 it returns what the standard
// library returns, IP length included (checks compare IPs by bytes).
func TestNewTCPAddrMatchesStandardLibrary(t *testing.T) {
	for _, s := range []string{"127.0.0.1:8443", "[::1]:443", "[fe80::1%eth0]:80", "[::ffff:10.1.2.3]:1", "0.0.0.0:0"} {
		ap := netip.MustParseAddrPort(s)
		got, want := newTCPAddr(ap), net.TCPAddrFromAddrPort(ap)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: newTCPAddr = %#v, want %#v", s, got, want)
		}
		if got.String() != want.String() {
			t.Errorf("%s: String() = %q, want %q", s, got.String(), want.String())
		}
	}
}
