package location_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/caekit/caekit/policy/location"
)

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, v := range s {
		out[i] = netip.MustParsePrefix(v)
	}
	return out
}

func mustTable(t testing.TB, locs ...location.Location) *location.Table {
	t.Helper()
	tb, err := location.NewTable(locs)
	if err != nil {
		t.Fatalf("NewTable: %v", err)
	}
	return tb
}

func TestLookupEdges(t *testing.T) {
	tb := mustTable(t,
		location.Location{Name: "hq", Trusted: true, Ranges: pfx("203.0.113.0/24", "2001:db8:1::/48")},
		location.Location{Name: "lab", Ranges: pfx("203.0.113.128/25", "10.0.0.0/8")},
		location.Location{Name: "edge", Ranges: pfx("0.0.0.0/32", "255.255.255.255/32", "ffff:ffff::/32", "::1/128")},
	)
	tests := []struct {
		ip   string
		want []string
	}{
		{"203.0.112.255", nil},
		{"203.0.113.0", []string{"hq"}},   // first address
		{"203.0.113.127", []string{"hq"}}, // last before overlap
		{"203.0.113.128", []string{"hq", "lab"}},
		{"203.0.113.255", []string{"hq", "lab"}}, // last address
		{"203.0.114.0", nil},
		{"::ffff:203.0.113.1", []string{"hq"}}, // IPv4-mapped IPv6
		{"::ffff:203.0.114.1", nil},
		{"9.255.255.255", nil},
		{"10.0.0.0", []string{"lab"}},
		{"10.255.255.255", []string{"lab"}},
		{"11.0.0.0", nil},
		{"2001:db8:1::", []string{"hq"}},
		{"2001:db8:1:ffff:ffff:ffff:ffff:ffff", []string{"hq"}},
		{"2001:db8:0:ffff:ffff:ffff:ffff:ffff", nil},
		{"2001:db8:2::", nil},
		{"2001:db8:1::5%eth0", []string{"hq"}}, // zone ignored
		{"0.0.0.0", []string{"edge"}},
		{"0.0.0.1", nil},
		{"255.255.255.255", []string{"edge"}},
		{"255.255.255.254", nil},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", []string{"edge"}},
		{"fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", nil},
		{"::1", []string{"edge"}},
		{"::", nil},
		{"::2", nil},
	}
	for _, tt := range tests {
		got := tb.Names(netip.MustParseAddr(tt.ip))
		if !slices.Equal(got, tt.want) {
			t.Errorf("Names(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if tb.Lookup(netip.Addr{}) != nil {
		t.Error("zero Addr matched")
	}
	var nilTable *location.Table
	if nilTable.Lookup(netip.MustParseAddr("10.0.0.1")) != nil || nilTable.Len() != 0 {
		t.Error("nil table matched")
	}
	if i := tb.Index("lab"); i != 1 || !tb.Location(tb.Index("hq")).Trusted || tb.Index("nope") != -1 {
		t.Error("Index/Location wrong")
	}
}

func TestAdjacentMerge(t *testing.T) {
	tb := mustTable(t, location.Location{Name: "a", Ranges: pfx("10.0.0.0/25", "10.0.0.128/25", "10.0.1.0/24")})
	if tb.Intervals() != 1 {
		t.Fatalf("intervals = %d, want 1 (adjacent ranges merged)", tb.Intervals())
	}
	if !tb.Contains(netip.MustParseAddr("10.0.1.255")) || tb.Contains(netip.MustParseAddr("10.0.2.0")) {
		t.Fatal("merged interval has wrong bounds")
	}
}

func TestNewTableErrors(t *testing.T) {
	tests := []struct {
		name string
		locs []location.Location
		want string
	}{
		{"dup", []location.Location{{Name: "a"}, {Name: "a"}}, `duplicate location name "a"`},
		{"noname", []location.Location{{}}, "has no name"},
		{"hostbits", []location.Location{{Name: "a", Ranges: pfx("10.0.0.1/8")}}, "did you mean 10.0.0.0/8"},
		{"invalid", []location.Location{{Name: "a", Ranges: []netip.Prefix{{}}}}, "invalid prefix"},
		{"mapped-broad", []location.Location{{Name: "a", Ranges: pfx("::fffe:0:0/95")}}, "IPv4-mapped"},
		{"v6-covers-mapped", []location.Location{{Name: "a", Ranges: pfx("::/64")}}, "IPv4-mapped space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := location.NewTable(tt.locs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestMappedPrefixNormalized(t *testing.T) {
	tb := mustTable(t, location.Location{Name: "a", Ranges: pfx("::ffff:192.0.2.0/120")})
	if got := tb.Location(0).Ranges[0].String(); got != "192.0.2.0/24" {
		t.Fatalf("normalized = %s", got)
	}
	if !tb.Contains(netip.MustParseAddr("192.0.2.9")) {
		t.Fatal("IPv4 address not matched by mapped prefix")
	}
}

// TestAgainstLinearScan compares Lookup with a brute-force scan over random,
// overlapping ranges and addresses chosen near range edges.
func TestAgainstLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	locs := randomLocations(r, 40, 25)
	tb := mustTable(t, locs...)
	var probes []netip.Addr
	for _, l := range locs {
		for _, p := range l.Ranges {
			first := p.Addr()
			last := lastAddr(p)
			probes = append(probes, first, first.Prev(), last, last.Next())
		}
	}
	for range 2000 {
		probes = append(probes, randomAddr(r))
	}
	for _, ip := range probes {
		if !ip.IsValid() {
			continue
		}
		var want []string
		for _, l := range locs {
			for _, p := range l.Ranges {
				if p.Contains(ip) {
					want = append(want, l.Name)
					break
				}
			}
		}
		if got := tb.Names(ip); !slices.Equal(got, want) {
			t.Fatalf("Names(%s) = %v, want %v", ip, got, want)
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func randomAddr(r *rand.Rand) netip.Addr {
	if r.IntN(2) == 0 {
		return netip.AddrFrom4([4]byte{byte(r.IntN(4)) + 10, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	b[4] = byte(r.IntN(4))
	for i := 5; i < 16; i++ {
		b[i] = byte(r.IntN(256))
	}
	return netip.AddrFrom16(b)
}

func randomLocations(r *rand.Rand, nLoc, perLoc int) []location.Location {
	locs := make([]location.Location, nLoc)
	for i := range locs {
		locs[i].Name = fmt.Sprintf("loc%d", i)
		for range perLoc {
			a := randomAddr(r)
			bits := 8 + r.IntN(25)
			if a.Is6() {
				bits = 32 + r.IntN(97)
			}
			locs[i].Ranges = append(locs[i].Ranges, netip.PrefixFrom(a, bits).Masked())
		}
	}
	return locs
}

// benchTable builds n non-overlapping ranges, half IPv4 /24s and half IPv6 /48s.
func benchTable(b *testing.B, n int) (*location.Table, []netip.Addr) {
	locs := make([]location.Location, 0, 64)
	var probes []netip.Addr
	for i := range n {
		if i%100 == 0 {
			locs = append(locs, location.Location{Name: fmt.Sprintf("loc%d", i/100)})
		}
		var p netip.Prefix
		if i%2 == 0 {
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(10 + i>>16), byte(i >> 8), byte(i), 0}), 24)
		} else {
			p = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i)}), 48)
		}
		locs[len(locs)-1].Ranges = append(locs[len(locs)-1].Ranges, p)
		probes = append(probes, p.Addr().Next(), netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
	}
	tb, err := location.NewTable(locs)
	if err != nil {
		b.Fatal(err)
	}
	return tb, probes
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 5000} {
		b.Run(fmt.Sprintf("ranges=%d", n), func(b *testing.B) {
			tb, probes := benchTable(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			hits := 0
			for i := 0; b.Loop(); i++ {
				hits += len(tb.Lookup(probes[i%len(probes)]))
			}
			if hits == 0 {
				b.Fatal("no hits")
			}
		})
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tb := mustTable(t, location.Location{Name: "a", Ranges: pfx("10.0.0.0/8", "2001:db8::/32")})
	ip := netip.MustParseAddr("::ffff:10.1.2.3")
	if n := testing.AllocsPerRun(100, func() { tb.Lookup(ip) }); n != 0 {
		t.Fatalf("Lookup allocates %v times", n)
	}
}
