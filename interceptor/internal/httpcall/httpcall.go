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

// PeerInto is Peer without allocating for an "ip:port": the *net.TCPAddr
// it returns is dst, its IP held in buf, so a front door that already
// allocates a per-request value can embed both in it (the HTTP middleware's
// response writer). dst and buf must live as long as the address is used.
func PeerInto(s string, dst *net.TCPAddr, buf *[16]byte) net.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return Peer(s)
	}
	fillTCPAddr(ap, dst, buf)
	return dst
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
	fillTCPAddr(ap, &t.TCPAddr, &t.ip)
	return &t.TCPAddr
}

// fillTCPAddr sets dst to what net.TCPAddrFromAddrPort(ap) returns, its IP
// held in buf.
func fillTCPAddr(ap netip.AddrPort, dst *net.TCPAddr, buf *[16]byte) {
	a := ap.Addr()
	if a.Is4() {
		b := a.As4()
		dst.IP = buf[:copy(buf[:], b[:])]
	} else {
		*buf = a.As16()
		dst.IP = buf[:]
	}
	dst.Zone = a.Zone()
	dst.Port = int(ap.Port())
}

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }
