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
		return net.TCPAddrFromAddrPort(ap)
	}
	if s == "" {
		return nil
	}
	return stringAddr(s)
}

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }
