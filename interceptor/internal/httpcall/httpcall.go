// Package httpcall holds the glue that caekit's HTTP front doors
// (interceptor/caehttp and interceptor/caeconnect) share when they turn an
// HTTP request into an interceptor.Call: the request headers as gRPC-style
// metadata, and the peer address as a net.Addr.
package httpcall

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
)

// Metadata returns the request headers as gRPC-style metadata, with
// lower-case keys, for checks that read check.Request.Metadata.
func Metadata(h http.Header) metadata.MD {
	md := make(metadata.MD, len(h))
	for k, v := range h {
		md[strings.ToLower(k)] = v
	}
	return md
}

// Peer converts an "ip:port" remote address (http.Request.RemoteAddr,
// connect.Peer.Addr) to a net.Addr: a *net.TCPAddr when it parses, as
// gRPC's peer address is; nil for ""; otherwise an address whose String is
// s, so that checks and logs still see what the server saw.
func Peer(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return newTCPAddr(ap)
	}
	if s == "" {
		return nil
	}
	return stringAddr(s)
}

// tcpAddr is a net.TCPAddr and the bytes of its IP in one allocation
// (net.TCPAddrFromAddrPort makes two).
type tcpAddr struct {
	net.TCPAddr
	ip [16]byte
}

// newTCPAddr returns what net.TCPAddrFromAddrPort(ap) returns: a 4-byte IP
// for an IPv4 address, 16 bytes otherwise, the zone and the port.
func newTCPAddr(ap netip.AddrPort) *net.TCPAddr {
	t := new(tcpAddr)
	a := ap.Addr()
	if a.Is4() {
		b := a.As4()
		t.IP = t.ip[:copy(t.ip[:], b[:])]
	} else {
		t.ip = a.As16()
		t.IP = t.ip[:]
	}
	t.Zone = a.Zone()
	t.Port = int(ap.Port())
	return &t.TCPAddr
}

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }
