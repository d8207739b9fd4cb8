// Package clientip decides which IP address a gRPC call comes from.
//
// By default that is the transport peer address and nothing else: forwarding
// headers are ignored, because any client can send them. Only when trusted
// proxies are configured, and only when the peer itself is one of them, is a
// forwarding header (x-forwarded-for by default) read; the client is then the
// right-most address in it that is not a trusted proxy. A header from a peer
// that is not a trusted proxy is ignored, so a forged header changes nothing.
//
// Parsing is bounded (total header bytes and number of hops examined) and
// fails closed: a trusted proxy that sends an unparseable or over-long header
// yields an error, not a guess, and so does a trusted proxy that names no
// client at all (no header, an empty one, or only trusted-proxy entries):
// the proxy's own address is never taken for the caller's, since a block
// list would then judge the proxy instead of the caller.
package clientip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/caekit/caekit/policy/location"
)

// Defaults.
const (
	// DefaultHeader is the metadata key read behind trusted proxies.
	DefaultHeader = "x-forwarded-for"
	// DefaultMaxHops is how many addresses of the header are examined.
	DefaultMaxHops = 16
	// DefaultMaxHeaderBytes bounds the total size of the header values.
	DefaultMaxHeaderBytes = 1024
)

// Errors returned by ClientIP; they are wrapped with detail.
var (
	// ErrNoPeer means the peer address is missing or not an IP address.
	ErrNoPeer = errors.New("clientip: no peer IP address")
	// ErrBadHeader means a trusted proxy sent a forwarding header that could
	// not be used.
	ErrBadHeader = errors.New("clientip: bad forwarding header")
	// ErrNoForwardedClient means a trusted proxy sent no forwarding header,
	// an empty one, or one that lists only trusted proxies: the caller's
	// address is unknown.
	ErrNoForwardedClient = errors.New("clientip: no client address behind the trusted proxy")
)

// Resolver finds a call's client IP. It is immutable and safe for concurrent use.
type Resolver struct {
	proxies  *location.Table
	header   string
	maxHops  int
	maxBytes int
}

type options struct {
	proxies  []netip.Prefix
	header   string
	maxHops  int
	maxBytes int
}

// Option configures a Resolver.
type Option func(*options)

// WithTrustedProxies sets the CIDR ranges of proxies whose forwarding header
// is believed. Without it, headers are never read.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return func(o *options) { o.proxies = append(o.proxies, prefixes...) }
}

// WithHeader sets the metadata key to read behind trusted proxies
// (default x-forwarded-for). Keys are case-insensitive.
func WithHeader(key string) Option {
	return func(o *options) { o.header = strings.ToLower(key) }
}

// WithMaxHops sets how many addresses of the header are examined, right to
// left, before giving up (default 16).
func WithMaxHops(n int) Option { return func(o *options) { o.maxHops = n } }

// WithMaxHeaderBytes bounds the total size of the header values (default 1024).
func WithMaxHeaderBytes(n int) Option { return func(o *options) { o.maxBytes = n } }

// New returns a Resolver.
func New(opts ...Option) (*Resolver, error) {
	o := options{header: DefaultHeader, maxHops: DefaultMaxHops, maxBytes: DefaultMaxHeaderBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if o.header == "" || strings.HasSuffix(o.header, "-bin") || strings.ContainsAny(o.header, " \t\r\n:") {
		return nil, fmt.Errorf("clientip: header %q is not a usable metadata key", o.header)
	}
	if o.maxHops < 1 || o.maxHops > 256 {
		return nil, fmt.Errorf("clientip: max hops %d outside 1..256", o.maxHops)
	}
	if o.maxBytes < 16 || o.maxBytes > 64<<10 {
		return nil, fmt.Errorf("clientip: max header bytes %d outside 16..65536", o.maxBytes)
	}
	r := &Resolver{header: o.header, maxHops: o.maxHops, maxBytes: o.maxBytes}
	if len(o.proxies) > 0 {
		t, err := location.NewTable([]location.Location{{Name: "trusted-proxies", Ranges: o.proxies}})
		if err != nil {
			return nil, fmt.Errorf("clientip: trusted proxies: %w", err)
		}
		r.proxies = t
	}
	return r, nil
}

// Header returns the metadata key read behind trusted proxies.
func (r *Resolver) Header() string { return r.header }

// PeerAddr converts a net.Addr (as in peer.Peer.Addr) to an IP address,
// unmapped and without zone.
func PeerAddr(a net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	switch v := a.(type) {
	case nil:
		return netip.Addr{}, false
	case *net.TCPAddr:
		if v == nil {
			return netip.Addr{}, false
		}
		ip, _ = netip.AddrFromSlice(v.IP)
	case *net.UDPAddr:
		if v == nil {
			return netip.Addr{}, false
		}
		ip, _ = netip.AddrFromSlice(v.IP)
	case *net.IPAddr:
		if v == nil {
			return netip.Addr{}, false
		}
		ip, _ = netip.AddrFromSlice(v.IP)
	default:
		ip = parseHop(a.String())
	}
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

// ClientIP returns the address of the caller. peer is the transport peer; md
// the incoming metadata. Without trusted proxies, or when the peer is not a
// trusted proxy, it is the peer address. Behind a trusted proxy it is the
// right-most header entry that is not a trusted proxy; with no such entry it
// fails with ErrNoForwardedClient. It allocates nothing on success.
func (r *Resolver) ClientIP(peer net.Addr, md metadata.MD) (netip.Addr, error) {
	ip, ok := PeerAddr(peer)
	if !ok {
		return netip.Addr{}, ErrNoPeer
	}
	if r.proxies == nil || !r.proxies.Contains(ip) {
		return ip, nil // headers from untrusted peers are ignored
	}
	return r.fromHeader(ip, md[r.header])
}

// ClientIPFromContext is ClientIP reading the forwarding header from the
// incoming metadata of ctx, and only when the peer is a trusted proxy, so that
// callers need not copy the whole metadata on every call.
func (r *Resolver) ClientIPFromContext(ctx context.Context, peer net.Addr) (netip.Addr, error) {
	ip, ok := PeerAddr(peer)
	if !ok {
		return netip.Addr{}, ErrNoPeer
	}
	if r.proxies == nil || !r.proxies.Contains(ip) {
		return ip, nil // headers from untrusted peers are ignored
	}
	return r.fromHeader(ip, metadata.ValueFromIncomingContext(ctx, r.header))
}

// fromHeader walks the forwarding header values behind the trusted proxy ip.
func (r *Resolver) fromHeader(ip netip.Addr, vals []string) (netip.Addr, error) {
	total := 0
	for _, v := range vals {
		total += len(v)
	}
	if total > r.maxBytes {
		return netip.Addr{}, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrBadHeader, r.header, total, r.maxBytes)
	}
	hops := 0
	// Walk right to left over all values and their comma-separated entries.
	for vi := len(vals) - 1; vi >= 0; vi-- {
		v := vals[vi]
		for end := len(v); end >= 0; {
			start := strings.LastIndexByte(v[:end], ',') + 1
			entry := strings.TrimSpace(v[start:end])
			end = start - 1
			if entry == "" {
				continue
			}
			hops++
			if hops > r.maxHops {
				return netip.Addr{}, fmt.Errorf("%w: more than %d hops in %s are trusted proxies", ErrBadHeader, r.maxHops, r.header)
			}
			hop := parseHop(entry)
			if !hop.IsValid() {
				return netip.Addr{}, fmt.Errorf("%w: entry %d from the right of %s is not an IP address", ErrBadHeader, hops, r.header)
			}
			if client := hop.Unmap().WithZone(""); !r.proxies.Contains(client) {
				return client, nil
			}
		}
	}
	// No header, an empty one, or only trusted proxies: the proxy (ip) did
	// not say who the caller is. Taking the proxy's own address would let
	// every caller behind it past a block list that does not name the
	// proxy, so fail closed.
	if hops == 0 {
		return netip.Addr{}, fmt.Errorf("%w: trusted proxy %s sent no %s entry", ErrNoForwardedClient, ip, r.header)
	}
	return netip.Addr{}, fmt.Errorf("%w: all %d %s entries from trusted proxy %s are trusted proxies", ErrNoForwardedClient, hops, r.header, ip)
}

// parseHop parses "1.2.3.4", "1.2.3.4:80", "2001:db8::1", "[2001:db8::1]:443"
// and "[2001:db8::1]", optionally in double quotes (RFC 7239 style).
func parseHop(s string) netip.Addr {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr()
	}
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if ip, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return ip
		}
	}
	return netip.Addr{}
}
