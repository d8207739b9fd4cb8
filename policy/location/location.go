// Package location matches IP addresses against named locations: sets of
// IPv4 and IPv6 CIDR ranges, each location with a name and a trusted flag, as
// in Microsoft Entra's IP-based named locations.
//
// A Table is built once and never changes, so it can be shared by any number
// of goroutines without locks; to change the ranges, build a new Table and
// swap it in (for example with atomic.Pointer). Look-up is a binary search
// over pre-computed, sorted, non-overlapping intervals in one 128-bit address
// space (IPv4 addresses live at their IPv4-mapped IPv6 position, so
// "1.2.3.4" and "::ffff:1.2.3.4" are the same key). It does not allocate and
// takes tens of nanoseconds at 5,000 ranges.
//
// Ranges of different locations may overlap: Lookup returns every location
// that contains the address.
package location

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Location is a named set of IP ranges.
type Location struct {
	// Name identifies the location; unique within a Table.
	Name string
	// Trusted marks the location as trusted (Entra's "mark as trusted
	// location"); rules can allow every trusted location at once.
	Trusted bool
	// Ranges are the location's CIDR ranges, IPv4 or IPv6.
	Ranges []netip.Prefix
}

// Limits on a Table, to bound build time and memory.
const (
	// MaxLocations is the most locations a Table holds.
	MaxLocations = 4096
	// MaxRanges is the most ranges, over all locations, a Table holds.
	MaxRanges = 1 << 20
)

// u128 is an address in the 128-bit IPv6 space, big-endian halves.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) isMax() bool { return a.hi == ^uint64(0) && a.lo == ^uint64(0) }

func (a u128) next() u128 {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}

func (a u128) prev() u128 {
	lo := a.lo - 1
	hi := a.hi
	if a.lo == 0 {
		hi--
	}
	return u128{hi, lo}
}

func key(ip netip.Addr) u128 {
	b := ip.As16() // IPv4 comes back in its IPv4-mapped form
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// bounds returns the first and last address of p in the 128-bit space.
func bounds(p netip.Prefix) (first, last u128) {
	p = p.Masked()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	first = key(p.Addr())
	host := 128 - bits
	var mhi, mlo uint64 // host mask
	switch {
	case host >= 128:
		mhi, mlo = ^uint64(0), ^uint64(0)
	case host >= 64:
		mhi, mlo = (uint64(1)<<(host-64))-1, ^uint64(0)
	default:
		mlo = (uint64(1) << host) - 1
	}
	last = u128{first.hi | mhi, first.lo | mlo}
	return first, last
}

// Table is an immutable, pre-built index of named locations. It is safe for
// concurrent use.
type Table struct {
	locs   []Location
	starts []u128  // interval i covers [starts[i], ends[i]]
	ends   []u128  // sorted, non-overlapping
	sets   []span  // locations of interval i, as a span of ids
	ids    []int32 // arena of location indexes
	ranges int
}

type span struct{ off, n uint32 }

// NewTable builds a Table. Location names must be unique and non-empty and
// every range valid; ranges with host bits set are an error rather than being
// silently masked. IPv4-mapped IPv6 prefixes (::ffff:a.b.c.d/n, n ≥ 96) are
// treated as the IPv4 prefix they denote. The slice and its ranges are
// copied.
func NewTable(locs []Location) (*Table, error) {
	if len(locs) > MaxLocations {
		return nil, fmt.Errorf("location: %d locations, more than the limit of %d", len(locs), MaxLocations)
	}
	t := &Table{locs: make([]Location, len(locs))}
	type event struct {
		at  u128
		id  int32
		add bool
	}
	var events []event
	seen := make(map[string]int, len(locs))
	for i, l := range locs {
		if l.Name == "" {
			return nil, fmt.Errorf("location: location #%d has no name", i)
		}
		if j, dup := seen[l.Name]; dup {
			return nil, fmt.Errorf("location: duplicate location name %q (#%d and #%d)", l.Name, j, i)
		}
		seen[l.Name] = i
		t.ranges += len(l.Ranges)
		if t.ranges > MaxRanges {
			return nil, fmt.Errorf("location: more than %d ranges in total", MaxRanges)
		}
		cp := Location{Name: l.Name, Trusted: l.Trusted, Ranges: make([]netip.Prefix, len(l.Ranges))}
		for k, p := range l.Ranges {
			np, err := Normalize(p)
			if err != nil {
				return nil, fmt.Errorf("location: %q range #%d: %w", l.Name, k, err)
			}
			cp.Ranges[k] = np
			first, last := bounds(np)
			events = append(events, event{at: first, id: int32(i), add: true})
			if !last.isMax() {
				events = append(events, event{at: last.next(), id: int32(i), add: false})
			}
		}
		t.locs[i] = cp
	}
	slices.SortFunc(events, func(a, b event) int {
		switch {
		case a.at.less(b.at):
			return -1
		case b.at.less(a.at):
			return 1
		}
		return 0
	})

	count := make([]int, len(locs))
	var active []int32 // sorted location ids with count > 0
	for i := 0; i < len(events); {
		at := events[i].at
		for ; i < len(events) && events[i].at == at; i++ {
			e := events[i]
			if e.add {
				count[e.id]++
				if count[e.id] == 1 {
					pos, _ := slices.BinarySearch(active, e.id)
					active = slices.Insert(active, pos, e.id)
				}
			} else {
				count[e.id]--
				if count[e.id] == 0 {
					pos, _ := slices.BinarySearch(active, e.id)
					active = slices.Delete(active, pos, pos+1)
				}
			}
		}
		if len(active) == 0 {
			continue
		}
		end := u128{^uint64(0), ^uint64(0)}
		if i < len(events) {
			end = events[i].at.prev()
		}
		if n := len(t.starts); n > 0 && t.ends[n-1].next() == at && slices.Equal(t.setOf(n-1), active) {
			t.ends[n-1] = end // same locations, contiguous: extend
			continue
		}
		t.starts = append(t.starts, at)
		t.ends = append(t.ends, end)
		t.sets = append(t.sets, span{uint32(len(t.ids)), uint32(len(active))})
		t.ids = append(t.ids, active...)
	}
	return t, nil
}

func (t *Table) setOf(i int) []int32 {
	s := t.sets[i]
	return t.ids[s.off : s.off+s.n : s.off+s.n]
}

// Normalize validates p and returns it in canonical form: an IPv4-mapped IPv6
// prefix becomes the IPv4 prefix it denotes. It reports an error for an
// invalid prefix, host bits set, a zone, or an IPv6 prefix that covers part
// of the IPv4-mapped space without being an IPv4-mapped prefix.
func Normalize(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, errors.New("invalid prefix")
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("prefix %s has a zone", p)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("prefix %s has host bits set (did you mean %s?)", p, m)
	}
	a := p.Addr()
	if a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("prefix %s covers more than the IPv4-mapped space ::ffff:0:0/96", p)
		}
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96), nil
	}
	if a.Is6() && p.Bits() < 96 && p.Contains(netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff})) {
		return netip.Prefix{}, fmt.Errorf("prefix %s covers the IPv4-mapped space ::ffff:0:0/96; write IPv4 ranges as IPv4", p)
	}
	return p, nil
}

// Lookup returns the indexes (into Locations) of every location that
// contains ip, ascending; nil if none does. IPv4-mapped IPv6 addresses match
// IPv4 ranges; the zone is ignored. The returned slice is shared: do not
// modify it. Lookup does not allocate.
func (t *Table) Lookup(ip netip.Addr) []int32 {
	if t == nil || !ip.IsValid() || len(t.starts) == 0 {
		return nil
	}
	k := key(ip)
	// Find the last interval whose start is <= k.
	lo, hi := 0, len(t.starts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		s := t.starts[m]
		if s.hi < k.hi || (s.hi == k.hi && s.lo <= k.lo) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return nil
	}
	i := lo - 1
	if e := t.ends[i]; e.hi < k.hi || (e.hi == k.hi && e.lo < k.lo) {
		return nil
	}
	return t.setOf(i)
}

// Contains reports whether ip is in any location.
func (t *Table) Contains(ip netip.Addr) bool { return len(t.Lookup(ip)) > 0 }

// Names returns the names of the locations that contain ip. It allocates;
// use Lookup on hot paths.
func (t *Table) Names(ip netip.Addr) []string {
	ids := t.Lookup(ip)
	if len(ids) == 0 {
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.locs[id].Name
	}
	return out
}

// Location returns the location with index i. The result is shared: do not
// modify it.
func (t *Table) Location(i int32) *Location { return &t.locs[i] }

// Len returns the number of locations.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.locs)
}

// Index returns the index of the named location, or -1.
func (t *Table) Index(name string) int32 {
	for i := range t.locs {
		if t.locs[i].Name == name {
			return int32(i)
		}
	}
	return -1
}

// Ranges returns the number of ranges the table was built from.
func (t *Table) Ranges() int {
	if t == nil {
		return 0
	}
	return t.ranges
}

// Intervals returns the number of disjoint intervals the table searches.
func (t *Table) Intervals() int {
	if t == nil {
		return 0
	}
	return len(t.starts)
}
