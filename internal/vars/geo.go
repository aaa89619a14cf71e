package vars

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/sluice-proxy/sluice/internal/access"
)

// Geo is a compiled geo block: a value by the client address (or an address read from a variable), by the
// longest matching network or, with ranges, by an address range. Immutable once built; safe for concurrent use.
//
// The networks are flattened at load time into sorted segments that cover the whole address space, one
// table per family as nginx keeps one radix tree per family, so a lookup is one binary search.
type Geo struct {
	source  *Template      // nil: the client address ($remote_addr, after realip)
	proxies *access.RealIP // proxy lines: a trusted source address is replaced from X-Forwarded-For
	v4, v6  []segment
}

// segment is where a value starts; it lasts until the next segment's start.
type segment struct {
	start u128
	val   string
}

// u128 is an address as a number: IPv4 in lo's low 32 bits, IPv6 in both halves.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// next is a+1, false past max.
func (a u128) next(max u128) (u128, bool) {
	if a == max {
		return a, false
	}
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}, true
	}
	return u128{a.hi, a.lo + 1}, true
}

var (
	max4 = u128{0, 0xffffffff}
	max6 = u128{^uint64(0), ^uint64(0)}
	// none is nginx's INADDR_NONE: the IPv4 address looked up when the source is not an address
	none = u128{0, 0xffffffff}
)

func toU128(a netip.Addr) u128 {
	b := a.As16()
	if a.Is4() {
		return u128{0, uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])}
	}
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	return u128{hi, lo}
}

// lookup finds the value of the segment holding a.
func lookup(segs []segment, a u128) string {
	lo, hi := 0, len(segs) // segs[0].start is 0: the answer is in [lo, hi)
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if a.less(segs[m].start) {
			hi = m
		} else {
			lo = m
		}
	}
	return segs[lo].val
}

func (g *Geo) isVolatile() bool { return false }

// eval computes the geo value for r.
func (g *Geo) eval(r *Request) string {
	var a netip.Addr
	if g.source == nil {
		a = r.RemoteAddr.Addr()
	} else {
		var ok bool
		if a, ok = ParseNginxAddr(g.source.Eval(r)); !ok {
			return lookup(g.v4, none)
		}
	}
	if g.proxies != nil && r.HTTP != nil {
		a = g.proxies.Client(netip.AddrPortFrom(a, 0), r.HTTP.Header, netip.AddrPort{}).Addr()
	}
	a = a.Unmap()
	switch {
	case a.Is4():
		return lookup(g.v4, toU128(a))
	case a.Is6() && g.v6 != nil:
		return lookup(g.v6, toU128(a))
	}
	return lookup(g.v4, none) // ranges: an IPv6 client, as nginx, looks up INADDR_NONE
}

// ParseNginxAddr reads an address as nginx's ngx_parse_addr does: IPv4 as four decimal numbers (leading zeros
// allowed, "010.0.0.1" is 10.0.0.1), or IPv6 without zone or brackets.
func ParseNginxAddr(s string) (netip.Addr, bool) {
	if strings.IndexByte(s, ':') >= 0 {
		a, err := netip.ParseAddr(s)
		return a, err == nil && a.Zone() == ""
	}
	var b [4]byte
	n, dots, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || dots > 3 {
				return netip.Addr{}, false
			}
			b[dots] = byte(n)
			n, digits = 0, 0
			dots++
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return netip.Addr{}, false
		}
		n = n*10 + int(c-'0')
		digits++
		if n > 255 {
			return netip.Addr{}, false
		}
	}
	if dots != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

// GeoBuilder reads a geo block's lines in order.
type GeoBuilder struct {
	source    *Template
	ranges    bool
	entries   bool // a network or range line was read (ranges must come first)
	nets      map[netip.Prefix]string
	pieces    []piece // ranges: disjoint, sorted
	def       string
	proxies   []netip.Prefix
	recursive bool
}

type piece struct {
	lo, hi uint32
	val    string
}

// NewGeo starts a geo block whose address is read from source (nil: the client address).
func NewGeo(source *Template) *GeoBuilder {
	return &GeoBuilder{source: source, nets: map[netip.Prefix]string{}}
}

// Line applies one line of the block: `default V`, `NETWORK V` (an address or CIDR), `delete NETWORK`,
// `proxy CIDR`, `proxy_recursive`, `ranges` and, with ranges, `A-B V` and `delete A-B`. A warning is what
// nginx warns about and accepts (a duplicate network replaces the earlier one, a delete that finds nothing).
// `include` is the caller's to expand.
func (b *GeoBuilder) Line(key string, args []string) (warning string, err error) {
	switch {
	case key == "ranges" && len(args) == 0:
		if b.entries {
			return "", errors.New(`the "ranges" directive must be the first directive inside "geo" block`)
		}
		b.ranges = true
		return "", nil
	case key == "proxy_recursive" && len(args) == 0:
		b.recursive = true
		return "", nil
	case len(args) != 1:
		return "", errors.New("invalid number of the geo parameters")
	case key == "proxy":
		p, ok := parseNet(args[0])
		if !ok {
			return "", fmt.Errorf("invalid network %q", args[0])
		}
		b.proxies = append(b.proxies, p)
		return "", nil
	case key == "default":
		if b.ranges {
			b.def = args[0]
			return "", nil
		}
		b.entries = true
		b.nets[netip.PrefixFrom(netip.IPv4Unspecified(), 0)] = args[0]
		b.nets[netip.PrefixFrom(netip.IPv6Unspecified(), 0)] = args[0]
		return "", nil
	}
	del := key == "delete"
	net, val := key, args[0]
	if del {
		net = args[0]
	}
	b.entries = true
	if b.ranges {
		return b.rangeLine(net, val, del)
	}
	p, ok := parseNet(net)
	if !ok {
		return "", fmt.Errorf("invalid network %q", net)
	}
	old, had := b.nets[p]
	if del {
		if !had {
			return fmt.Sprintf("no network %q to delete", net), nil
		}
		delete(b.nets, p)
		return "", nil
	}
	b.nets[p] = val
	if had {
		return fmt.Sprintf("duplicate network %q, value: %q, old value: %q", net, val, old), nil
	}
	return "", nil
}

// parseNet reads a geo network: an address or CIDR (host bits are cleared, as nginx does after a warning).
// An IPv4-mapped IPv6 network stays IPv6, as in nginx (where no client address reaches it).
func parseNet(s string) (netip.Prefix, bool) {
	addr, bits, hasBits := strings.Cut(s, "/")
	a, ok := ParseNginxAddr(addr)
	if !ok || hasBits && addr == "255.255.255.255" { // nginx takes 255.255.255.255 only as it is (INADDR_NONE)
		return netip.Prefix{}, false
	}
	n := a.BitLen()
	if hasBits {
		var err error
		if n, err = atoiBits(bits, a.BitLen()); err != nil {
			return netip.Prefix{}, false
		}
	}
	p, err := a.Prefix(n)
	return p, err == nil
}

func atoiBits(s string, max int) (int, error) {
	n := 0
	if s == "" || len(s) > 3 {
		return 0, errors.New("bad prefix length")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("bad prefix length")
		}
		n = n*10 + int(s[i]-'0')
	}
	if n > max {
		return 0, errors.New("bad prefix length")
	}
	return n, nil
}

// rangeLine adds or deletes an IPv4 range A-B. As in nginx, a range may be written inside an earlier one (it
// takes that part over), but not around or across one; delete removes only a range as it stands.
func (b *GeoBuilder) rangeLine(net, val string, del bool) (string, error) {
	first, last, ok := strings.Cut(net, "-")
	s, ok1 := ParseNginxAddr(first)
	e, ok2 := ParseNginxAddr(last)
	// nginx's ngx_inet_addr cannot tell 255.255.255.255 from an error: it is refused as a range end
	if !ok || !ok1 || !ok2 || !s.Is4() || !e.Is4() || e.Less(s) || last == "255.255.255.255" || first == "255.255.255.255" {
		return "", fmt.Errorf("invalid range %q", net)
	}
	lo, hi := uint32(toU128(s).lo), uint32(toU128(e).lo)
	// the first piece that ends at or after lo
	i, _ := slices.BinarySearchFunc(b.pieces, lo, func(p piece, lo uint32) int {
		switch {
		case p.hi < lo:
			return -1
		case p.hi > lo:
			return 1
		}
		return 0
	})
	var cur *piece
	if i < len(b.pieces) && b.pieces[i].lo <= hi {
		cur = &b.pieces[i]
	}
	if del {
		if cur == nil || cur.lo != lo || cur.hi != hi {
			return fmt.Sprintf("no address range %q to delete", net), nil
		}
		b.pieces = slices.Delete(b.pieces, i, i+1)
		return "", nil
	}
	switch {
	case cur == nil:
		b.pieces = slices.Insert(b.pieces, i, piece{lo, hi, val})
		return "", nil
	case cur.lo == lo && cur.hi == hi:
		old := cur.val
		cur.val = val
		return fmt.Sprintf("duplicate range %q, value: %q, old value: %q", net, val, old), nil
	case cur.lo > lo || cur.hi < hi:
		return "", fmt.Errorf("range %q overlaps \"%s-%s\"", net, u32Addr(cur.lo), u32Addr(cur.hi))
	}
	// inside cur: split it into what is left before, the new range, and what is left after
	outer := *cur
	repl := make([]piece, 0, 3)
	if outer.lo < lo {
		repl = append(repl, piece{outer.lo, lo - 1, outer.val})
	}
	repl = append(repl, piece{lo, hi, val})
	if hi < outer.hi {
		repl = append(repl, piece{hi + 1, outer.hi, outer.val})
	}
	b.pieces = slices.Replace(b.pieces, i, i+1, repl...)
	return "", nil
}

func u32Addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Geo compiles the block.
func (b *GeoBuilder) Geo() *Geo {
	g := &Geo{source: b.source}
	if len(b.proxies) > 0 {
		g.proxies = &access.RealIP{From: b.proxies, Header: "X-Forwarded-For", Recursive: b.recursive}
	}
	if b.ranges {
		g.v4 = []segment{{val: b.def}}
		for _, p := range b.pieces {
			at := u128{0, uint64(p.lo)}
			if g.v4[len(g.v4)-1].start == at {
				g.v4[len(g.v4)-1].val = p.val
			} else {
				g.v4 = append(g.v4, segment{at, p.val})
			}
			if end, ok := (u128{0, uint64(p.hi)}).next(max4); ok {
				g.v4 = append(g.v4, segment{end, b.def})
			}
		}
		return g
	}
	var v4, v6 []span
	for p, v := range b.nets {
		s := span{lo: toU128(p.Addr()), val: v}
		if p.Addr().Is4() {
			s.hi = lastOf(p, max4)
			v4 = append(v4, s)
		} else {
			s.hi = lastOf(p, max6)
			v6 = append(v6, s)
		}
	}
	g.v4, g.v6 = flatten(v4, max4), flatten(v6, max6)
	return g
}

// span is one network as the first and last address it holds.
type span struct {
	lo, hi u128
	val    string
}

// lastOf is the last address of p.
func lastOf(p netip.Prefix, max u128) u128 {
	host := p.Addr().BitLen() - p.Bits() // bits below the prefix
	a := toU128(p.Addr())
	switch {
	case host >= 128:
		return max
	case host >= 64:
		return u128{a.hi | (1<<(host-64) - 1), ^uint64(0)}
	case host > 0:
		return u128{a.hi, a.lo | (1<<host - 1)}
	}
	return a
}

// flatten turns networks, which nest or are disjoint, into segments covering the space from 0 to max: each
// address takes the value of the longest network holding it, "" where none does (nginx's geo without default).
func flatten(spans []span, max u128) []segment {
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.lo != b.lo:
			if a.lo.less(b.lo) {
				return -1
			}
			return 1
		case a.hi == b.hi:
			return 0
		case b.hi.less(a.hi):
			return -1 // the wider network first
		}
		return 1
	})
	out := []segment{{}}
	emit := func(at u128, val string) {
		if last := &out[len(out)-1]; last.start == at {
			last.val = val
			return
		}
		out = append(out, segment{at, val})
	}
	var open []span
	current := func() string {
		if len(open) > 0 {
			return open[len(open)-1].val
		}
		return ""
	}
	closeBefore := func(at u128, all bool) {
		for len(open) > 0 && (all || open[len(open)-1].hi.less(at)) {
			end := open[len(open)-1].hi
			open = open[:len(open)-1]
			if next, ok := end.next(max); ok {
				emit(next, current())
			}
		}
	}
	for _, s := range spans {
		closeBefore(s.lo, false)
		open = append(open, s)
		emit(s.lo, s.val)
	}
	closeBefore(max, true)
	return out
}
