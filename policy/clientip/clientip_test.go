package clientip_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/policy/clientip"
)

type strAddr string

func (s strAddr) Network() string { return "test" }
func (s strAddr) String() string  { return string(s) }

func tcp(s string) net.Addr {
	ap := netip.MustParseAddrPort(s)
	return net.TCPAddrFromAddrPort(ap)
}

func TestClientIP(t *testing.T) {
	withProxies, err := clientip.New(clientip.WithTrustedProxies(
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")),
		clientip.WithMaxHops(4))
	if err != nil {
		t.Fatal(err)
	}
	custom, err := clientip.New(clientip.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")), clientip.WithHeader("X-Real-Client"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := clientip.New()
	if err != nil {
		t.Fatal(err)
	}
	xff := func(v ...string) metadata.MD { return metadata.MD{"x-forwarded-for": v} }
	tests := []struct {
		name    string
		r       *clientip.Resolver
		peer    net.Addr
		md      metadata.MD
		want    string
		wantErr error
	}{
		{"peer v4", plain, tcp("198.51.100.7:5000"), nil, "198.51.100.7", nil},
		{"peer v6", plain, tcp("[2001:db8::7]:5000"), nil, "2001:db8::7", nil},
		{"peer mapped", plain, tcp("[::ffff:198.51.100.7]:5000"), nil, "198.51.100.7", nil},
		{"peer zone stripped", plain, tcp("[fe80::1%eth0]:5000"), nil, "fe80::1", nil},
		{"peer string addr", plain, strAddr("192.0.2.1:80"), nil, "192.0.2.1", nil},
		{"no peer", plain, nil, nil, "", clientip.ErrNoPeer},
		{"non-IP peer", plain, strAddr("bufconn"), nil, "", clientip.ErrNoPeer},
		{"no proxies: header ignored", plain, tcp("198.51.100.7:1"), xff("203.0.113.9"), "198.51.100.7", nil},
		{"untrusted peer: forged header ignored", withProxies, tcp("198.51.100.7:1"), xff("203.0.113.9"), "198.51.100.7", nil},
		{"untrusted peer: garbage header ignored", withProxies, tcp("198.51.100.7:1"), xff("not an ip"), "198.51.100.7", nil},
		{"trusted peer: header used", withProxies, tcp("10.1.1.1:1"), xff("203.0.113.9"), "203.0.113.9", nil},
		// Issue 13 item 10: a trusted proxy that names no client used to make
		// its own address the caller's (so a block list was judged against
		// the proxy); each of these now fails closed.
		{"trusted peer, no header: fails closed", withProxies, tcp("10.1.1.1:1"), nil, "", clientip.ErrNoForwardedClient},
		{"trusted peer, empty header: fails closed", withProxies, tcp("10.1.1.1:1"), xff(""), "", clientip.ErrNoForwardedClient},
		{"trusted peer, blank entries only: fails closed", withProxies, tcp("10.1.1.1:1"), xff(" , ,"), "", clientip.ErrNoForwardedClient},
		{"right-most untrusted wins over forged left entries", withProxies, tcp("10.1.1.1:1"), xff("1.1.1.1, 203.0.113.9, 10.2.2.2"), "203.0.113.9", nil},
		{"multiple values, last value last", withProxies, tcp("10.1.1.1:1"), xff("1.1.1.1", "203.0.113.9,10.2.2.2"), "203.0.113.9", nil},
		{"ports and brackets", withProxies, tcp("10.1.1.1:1"), xff("[2001:db8::9]:443, 10.0.0.5:80"), "2001:db8::9", nil},
		{"quoted", withProxies, tcp("10.1.1.1:1"), xff(`"[2001:db8::9]"`), "2001:db8::9", nil},
		{"mapped hop", withProxies, tcp("10.1.1.1:1"), xff("::ffff:203.0.113.9"), "203.0.113.9", nil},
		{"v6 proxy", withProxies, tcp("[fd00::1]:1"), xff("203.0.113.9, fd00::2"), "203.0.113.9", nil},
		{"all trusted: fails closed", withProxies, tcp("10.1.1.1:1"), xff("10.3.3.3, 10.2.2.2"), "", clientip.ErrNoForwardedClient},
		{"empty entries skipped", withProxies, tcp("10.1.1.1:1"), xff(" , 203.0.113.9 ,, "), "203.0.113.9", nil},
		{"garbage from trusted proxy fails closed", withProxies, tcp("10.1.1.1:1"), xff("203.0.113.9, bogus"), "", clientip.ErrBadHeader},
		{"too many hops", withProxies, tcp("10.1.1.1:1"), xff("10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5"), "", clientip.ErrBadHeader},
		{"too long", withProxies, tcp("10.1.1.1:1"), xff(strings.Repeat("1", 2000)), "", clientip.ErrBadHeader},
		{"custom header", custom, tcp("10.1.1.1:1"), metadata.MD{"x-real-client": {"203.0.113.4"}, "x-forwarded-for": {"1.1.1.1"}}, "203.0.113.4", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.ClientIP(tt.peer, tt.md)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	for _, opts := range [][]clientip.Option{
		{clientip.WithHeader("")},
		{clientip.WithHeader("x-ip-bin")},
		{clientip.WithMaxHops(0)},
		{clientip.WithMaxHeaderBytes(1 << 20)},
		{clientip.WithTrustedProxies(netip.MustParsePrefix("10.0.0.1/8"))},
	} {
		if _, err := clientip.New(opts...); err == nil {
			t.Errorf("New accepted bad options")
		}
	}
}

func TestNoAllocs(t *testing.T) {
	r, _ := clientip.New(clientip.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	peer := tcp("10.1.1.1:1")
	md := metadata.MD{"x-forwarded-for": {"203.0.113.9, 10.2.2.2"}}
	if n := testing.AllocsPerRun(100, func() { _, _ = r.ClientIP(peer, md) }); n != 0 {
		t.Fatalf("ClientIP allocates %v times", n)
	}
}
