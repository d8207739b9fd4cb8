package httpcall

import (
	"net"
	"net/http"
	"testing"
)

// TestPeer guards the peer conversion both HTTP front doors use: an
// "ip:port" becomes a *net.TCPAddr (what gRPC's peer gives checks), "" is
// no address, and anything else keeps its text.
func TestPeer(t *testing.T) {
	a, ok := Peer("192.0.2.7:443").(*net.TCPAddr)
	if !ok || a.IP.String() != "192.0.2.7" || a.Port != 443 {
		t.Fatalf("Peer(ip:port) = %#v, want *net.TCPAddr 192.0.2.7:443", a)
	}
	if p := Peer("[2001:db8::1]:8443"); p.String() != "[2001:db8::1]:8443" || p.Network() != "tcp" {
		t.Fatalf("Peer(IPv6) = %v (%s)", p, p.Network())
	}
	if p := Peer(""); p != nil {
		t.Fatalf("Peer(\"\") = %v, want nil", p)
	}
	if p := Peer("@unix-socket"); p == nil || p.String() != "@unix-socket" || p.Network() != "tcp" {
		t.Fatalf("Peer(non-ip) = %v, want the text kept", p)
	}
}

// TestMetadata guards the header conversion: keys are lower-cased as gRPC
// metadata keys are, and every value is kept.
func TestMetadata(t *testing.T) {
	h := http.Header{}
	h.Add("X-Tenant", "a")
	h.Add("X-Tenant", "b")
	md := Metadata(h)
	if got := md.Get("x-tenant"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("Metadata = %v, want x-tenant [a b]", md)
	}
	if _, ok := md["X-Tenant"]; ok {
		t.Fatalf("Metadata kept a canonical-case key: %v", md)
	}
}

// TestPeerIntoMatchesPeer guards the allocation-free peer conversion of
// the HTTP middleware: for every form of address it yields what Peer does
// (IPv4 as 4 bytes, IPv6 with its zone, an IPv4-mapped IPv6 as 16 bytes,
// non-"ip:port" text kept).
func TestPeerIntoMatchesPeer(t *testing.T) {
	for _, s := range []string{"192.0.2.7:443", "[2001:db8::1]:8443", "[fe80::1%eth0]:80", "[::ffff:192.0.2.7]:1", "pipe", ""} {
		var dst net.TCPAddr
		var buf [16]byte
		got, want := PeerInto(s, &dst, &buf), Peer(s)
		if (got == nil) != (want == nil) {
			t.Fatalf("%q: PeerInto %v, Peer %v", s, got, want)
		}
		if got == nil {
			continue
		}
		if got.String() != want.String() || got.Network() != want.Network() {
			t.Fatalf("%q: PeerInto %v, Peer %v", s, got, want)
		}
		if w, ok := want.(*net.TCPAddr); ok {
			g := got.(*net.TCPAddr)
			if !g.IP.Equal(w.IP) || len(g.IP) != len(w.IP) || g.Port != w.Port || g.Zone != w.Zone {
				t.Fatalf("%q: PeerInto %#v, Peer %#v", s, g, w)
			}
		}
	}
}
