package upstream

import (
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// clock is a settable time source for the tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestSet() (*Set, *clock) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	s := NewSet(slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.now = c.now
	return s, c
}

// srv is a server line: "name weight" with options after a comma, e.g. "a 5", "b 1 backup", "c 1 down".
func ups(policy string, lines ...string) *config.Upstream {
	u := &config.Upstream{Name: "u", Policy: policy}
	if p, args, ok := strings.Cut(policy, " "); ok {
		u.Policy, u.PolicyArgs = p, strings.Fields(args)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		s := config.UpstreamServer{Addr: f[0], Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second}
		for _, o := range f[1:] {
			switch {
			case o == "backup":
				s.Backup = true
			case o == "down":
				s.Down = true
			case strings.HasPrefix(o, "max_fails="):
				fmt.Sscan(o[len("max_fails="):], &s.MaxFails)
			case strings.HasPrefix(o, "slow_start="):
				s.SlowStart, _ = time.ParseDuration(o[len("slow_start="):])
			case strings.HasPrefix(o, "max_conns="):
				fmt.Sscan(o[len("max_conns="):], &s.MaxConns)
			default:
				fmt.Sscan(o, &s.Weight)
			}
		}
		u.Servers = append(u.Servers, s)
	}
	return u
}

func group(s *Set, u *config.Upstream) *Group {
	s.Update(map[string]*config.Upstream{u.Name: u})
	return s.Group(u.Name)
}

// pick runs one request that succeeds on its first peer.
func pick(g *Group, k Key) string {
	t := g.Begin(k)
	p := t.Next()
	if p == nil {
		return "-"
	}
	t.Done(Success).End()
	return p.Name
}

func seq(g *Group, n int) string {
	var out []string
	for range n {
		out = append(out, pick(g, Key{}))
	}
	return strings.Join(out, " ")
}

func TestSmoothWeightedSequence(t *testing.T) {
	for _, tc := range []struct {
		servers []string
		want    string
	}{
		// nginx's documented smooth sequence for weights 5,1,1
		{[]string{"a 5", "b 1", "c 1"}, "a a b a c a a a a b a c a a"},
		{[]string{"a 3", "b 1"}, "a a b a a a b a"},
		{[]string{"a", "b", "c"}, "a b c a b c"},
		{[]string{"a 2", "b 2", "c 1"}, "a b c a b a b c a b"},
		{[]string{"a", "b down", "c"}, "a c a c"},
		{[]string{"a", "b backup"}, "a a a"},
	} {
		s, _ := newTestSet()
		g := group(s, ups("", tc.servers...))
		if got := seq(g, len(strings.Fields(tc.want))); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.servers, got, tc.want)
		}
	}
}

func TestPassiveHealthAndBackup(t *testing.T) {
	s, clk := newTestSet()
	g := group(s, ups("", "a", "b", "c backup"))
	// a fails: b is tried next in the same request
	tr := g.Begin(Key{})
	if p := tr.Next(); p.Name != "a" {
		t.Fatalf("first pick %s", p.Name)
	}
	tr.Done(Failed).End()
	if p := tr.Next(); p.Name != "b" {
		t.Fatalf("after a failed, got %s", p.Name)
	}
	tr.Done(Success).End()
	// a is out for fail_timeout (max_fails=1)
	if got := seq(g, 3); got != "b b b" {
		t.Fatalf("with a down: %q", got)
	}
	// b fails too: only the backup is left
	tr = g.Begin(Key{})
	tr.Next()
	tr.Done(Failed).End()
	if p := tr.Next(); p == nil || p.Name != "c" {
		t.Fatalf("all primaries down: want backup c, got %v", p)
	}
	tr.Done(Success).End()
	if got := seq(g, 2); got != "c c" {
		t.Fatalf("backup only: %q", got)
	}
	// after fail_timeout a primary is tried again, and success makes it live
	clk.t = clk.t.Add(11 * time.Second)
	if got := seq(g, 4); !strings.Contains(got, "a") || strings.Contains(got, "c") {
		t.Fatalf("after fail_timeout: %q", got)
	}
	st := s.Snapshot()
	if len(st) != 3 || st[0].State != "up" || st[2].Backup != true {
		t.Fatalf("snapshot %+v", st)
	}
}

func TestAllDown(t *testing.T) {
	s, _ := newTestSet()
	g := group(s, ups("", "a", "b"))
	for range 2 {
		tr := g.Begin(Key{})
		tr.Next()
		tr.Done(Failed).End()
	}
	// nginx: this request gets "no live upstreams" and every peer is marked live again for the next ones
	if p := g.Begin(Key{}).Next(); p != nil {
		t.Fatalf("all failed: got %s, want none", p.Name)
	}
	if got := seq(g, 2); strings.Contains(got, "-") {
		t.Fatalf("after all failed, the next requests got %q, want the peers tried again", got)
	}
	// a single peer is never marked failed
	g1 := group(s, ups("", "solo"))
	tr := g1.Begin(Key{})
	tr.Next()
	tr.Done(Failed).End()
	if tr.Left() != 0 {
		t.Fatalf("single peer must not be retried")
	}
	if pick(g1, Key{}) != "solo" {
		t.Fatalf("single peer marked down")
	}
}

func TestMaxConns(t *testing.T) {
	s, _ := newTestSet()
	g := group(s, ups("", "a max_conns=1", "b max_conns=1"))
	t1, t2, t3 := g.Begin(Key{}), g.Begin(Key{}), g.Begin(Key{})
	if t1.Next() == nil || t2.Next() == nil {
		t.Fatal("first two must get a peer")
	}
	if p := t3.Next(); p != nil {
		t.Fatalf("third got %s over max_conns", p.Name)
	}
	t1.Done(Success).End()
	if t3.Next() == nil {
		t.Fatal("a released peer must be usable")
	}
}

func TestLeastConn(t *testing.T) {
	s, _ := newTestSet()
	g := group(s, ups("least_conn", "a", "b", "c"))
	var held []Hold
	counts := map[string]int{}
	for range 30 {
		tr := g.Begin(Key{})
		p := tr.Next()
		counts[p.Name]++
		held = append(held, tr.Done(Success)) // held open: a tunnel
	}
	if counts["a"] != 10 || counts["b"] != 10 || counts["c"] != 10 {
		t.Fatalf("spread %v", counts)
	}
	// close three tunnels on b: the next three go to b
	for _, i := range []int{1, 4, 7} {
		held[i].End()
		held[i].End() // ending is idempotent
	}
	if got := seq(g, 1); got != "b" {
		t.Fatalf("least loaded: %q", got)
	}
	if g.Peers()[1].Conns() != 7 {
		t.Fatalf("conns %d", g.Peers()[1].Conns())
	}
}

func TestStateSurvivesReload(t *testing.T) {
	s, _ := newTestSet()
	g := group(s, ups("least_conn", "a", "b"))
	tr := g.Begin(Key{})
	p := tr.Next()
	hold := tr.Done(Success)
	tr2 := g.Begin(Key{})
	tr2.Next()
	tr2.Done(Failed).End()
	g2 := group(s, ups("least_conn", "a", "b", "c"))
	if got := g2.Peers()[p.index].Conns(); got != 1 {
		t.Fatalf("conns after reload %d", got)
	}
	hold.End()
	if got := g2.Peers()[p.index].Conns(); got != 0 {
		t.Fatalf("release after reload: %d", got)
	}
	if snap := s.Snapshot(); snap[1].State != "unavailable" || snap[1].Fails != 1 {
		t.Fatalf("failure state lost: %+v", snap)
	}
}

func TestIPHash(t *testing.T) {
	s, _ := newTestSet()
	g := group(s, ups("ip_hash", "a", "b", "c"))
	// nginx's function: hash = (hash*113 + octet) % 6271 from 89 over three octets, % total weight
	for _, ip := range []string{"10.0.0.1", "192.168.7.9", "172.16.3.4", "2001:db8::1"} {
		a := netip.MustParseAddr(ip)
		want := expectIPHash(a, 3)
		if got := pick(g, Key{Client: a}); got != want {
			t.Errorf("%s: got %s, want %s", ip, got, want)
		}
	}
	// the fourth octet does not matter
	if pick(g, Key{Client: netip.MustParseAddr("10.1.2.3")}) != pick(g, Key{Client: netip.MustParseAddr("10.1.2.200")}) {
		t.Error("same /24 mapped to different peers")
	}
}

func expectIPHash(a netip.Addr, n uint32) string {
	var b []byte
	if a.Is4() {
		x := a.As4()
		b = x[:3]
	} else {
		x := a.As16()
		b = x[:]
	}
	h := uint32(89)
	for _, c := range b {
		h = (h*113 + uint32(c)) % 6271
	}
	return string(rune('a' + h%n))
}

func TestConsistentHash(t *testing.T) {
	s, _ := newTestSet()
	names := []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}
	g3 := group(s, ups("hash $k consistent", names...))
	before := map[string]string{}
	for i := range 3000 {
		k := fmt.Sprintf("key-%d", i)
		before[k] = pick(g3, Key{Hash: k})
		if again := pick(g3, Key{Hash: k}); again != before[k] {
			t.Fatalf("%s unstable", k)
		}
	}
	g4 := group(s, ups("hash $k consistent", append(names, "10.0.0.4:80")...))
	moved := 0
	for k, was := range before {
		now := pick(g4, Key{Hash: k})
		if now != was {
			moved++
			if now != "10.0.0.4:80" {
				t.Fatalf("%s moved between old peers %s -> %s", k, was, now)
			}
		}
	}
	// about 1/4 of the keys move, and only to the new peer
	if moved < 3000/4-300 || moved > 3000/4+300 {
		t.Fatalf("%d of 3000 keys moved, want about 750", moved)
	}
	// ring points are nginx's: crc32("10.0.0.1\x0080" + previous hash, little endian)
	r := newRing(g3)
	if len(r.points) != 480 {
		t.Fatalf("%d points", len(r.points))
	}
}

func TestHashKey(t *testing.T) {
	s, _ := newTestSet()
	g := group(s, ups("hash $k", "a", "b", "c"))
	seen := map[string]bool{}
	for i := range 50 {
		k := fmt.Sprintf("/path/%d", i)
		p := pick(g, Key{Hash: k})
		if pick(g, Key{Hash: k}) != p {
			t.Fatalf("%s unstable", k)
		}
		seen[p] = true
	}
	if len(seen) != 3 {
		t.Fatalf("keys reached %v", seen)
	}
	// Cache::Memcached: (crc32(key) >> 16) & 0x7fff, modulo total weight
	if got, want := pick(g, Key{Hash: "foo"}), string(rune('a'+((crc32IEEE("foo")>>16)&0x7fff)%3)); got != want {
		t.Fatalf("foo -> %s, want %s", got, want)
	}
}

func TestRandomTwo(t *testing.T) {
	s, _ := newTestSet()
	g := group(s, ups("random two least_conn", "a", "b", "c"))
	var held []Hold
	for range 300 {
		tr := g.Begin(Key{})
		tr.Next()
		held = append(held, tr.Done(Success))
	}
	for _, p := range g.Peers() {
		if c := p.Conns(); c < 80 || c > 120 {
			t.Fatalf("random two: %s has %d of 300", p.Name, c)
		}
	}
	for _, h := range held {
		h.End()
	}
}

func crc32IEEE(s string) uint32 { return crc32.ChecksumIEEE([]byte(s)) }

func TestSticky(t *testing.T) {
	s, _ := newTestSet()
	g := group(s, ups("", "a", "b", "c"))
	b := g.Peers()[1]
	for range 5 {
		if got := pick(g, Key{Sticky: b.ID}); got != "b" {
			t.Fatalf("sticky to b went to %s", got)
		}
	}
	if pick(g, Key{Sticky: "unknown"}) == "-" {
		t.Fatal("an unknown id must fall back to balancing")
	}
	tr := g.Begin(Key{})
	for tr.Next() != b {
		tr.Done(Success).End()
		tr = g.Begin(Key{})
	}
	tr.Done(Failed).End()
	if got := pick(g, Key{Sticky: b.ID}); got == "b" {
		t.Fatal("sticky to a failed peer")
	}
	ids := map[string]bool{}
	for _, p := range g.Peers() {
		ids[p.ID] = true
	}
	if len(ids) != 3 {
		t.Fatalf("peer ids are not distinct: %v", ids)
	}
}

func TestSlowStart(t *testing.T) {
	s, clk := newTestSet()
	g := group(s, ups("", "a 10 slow_start=10s", "b 10"))
	// a fails and is out for fail_timeout
	tr := g.Begin(Key{})
	for tr.Next().Name != "a" {
		tr.Done(Success).End()
		tr = g.Begin(Key{})
	}
	tr.Done(Failed).End()
	clk.t = clk.t.Add(11 * time.Second)
	// a is tried again and succeeds: it recovers with weight 1 of 10
	for pick(g, Key{}) != "a" {
	}
	count := func(n int) int {
		c := 0
		for range n {
			if pick(g, Key{}) == "a" {
				c++
			}
		}
		return c
	}
	if c := count(110); c > 15 {
		t.Fatalf("right after recovery a got %d of 110, want about 10", c)
	}
	clk.t = clk.t.Add(5 * time.Second)
	if c := count(150); c < 35 || c > 65 {
		t.Fatalf("half way through slow_start a got %d of 150, want about 50", c)
	}
	clk.t = clk.t.Add(6 * time.Second)
	if c := count(100); c != 50 {
		t.Fatalf("after slow_start a got %d of 100, want 50", c)
	}
}

// TestSlowStartLeastConn: under least_conn a peer back from a failure, with no connections, does not take every
// new connection while its weight ramps up; once slow_start is over it catches up as nginx's least_conn would.
func TestSlowStartLeastConn(t *testing.T) {
	s, clk := newTestSet()
	g := group(s, ups("least_conn", "a 10 slow_start=10s", "b 10", "c 10"))
	var held []Hold
	open := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			tr := g.Begin(Key{})
			p := tr.Next()
			got[p.Name]++
			held = append(held, tr.Done(Success))
		}
		return got
	}
	// a fails and is out for fail_timeout; b and c take ten connections
	tr := g.Begin(Key{})
	if p := tr.Next(); p.Name != "a" {
		t.Fatalf("first pick %s", p.Name)
	}
	tr.Done(Failed).End()
	if got := open(10); got["a"] != 0 || got["b"] != 5 || got["c"] != 5 {
		t.Fatalf("while a is out: %v", got)
	}
	clk.t = clk.t.Add(11 * time.Second)
	if got := pick(g, Key{}); got != "a" { // a, with no connections, is tried and recovers
		t.Fatalf("after fail_timeout: %s", got)
	}
	if got := open(10); got["a"] > 2 {
		t.Fatalf("right after recovery a took %d of 10 new connections (%v), want 2 at most", got["a"], got)
	}
	clk.t = clk.t.Add(10 * time.Second)
	// slow_start is over: a, far behind, takes new connections until it has caught up
	if got := open(10); got["a"] < 8 {
		t.Fatalf("after slow_start a took %d of 10 (%v), want it to catch up", got["a"], got)
	}
	for _, h := range held {
		h.End()
	}
}

func TestDrainedOnReload(t *testing.T) {
	s, _ := newTestSet()
	u := ups("", "a", "b", "c")
	u.DrainTimeout = time.Second
	group(s, u)
	u2 := ups("", "a", "c down")
	u2.DrainTimeout = time.Second
	// b removed and c marked down: both drain, a keeps serving
	d := s.Update(map[string]*config.Upstream{"u": u2})
	if len(d) != 2 || d[0].Addr != "b" || d[1].Addr != "c" || s.Serving("u", "b") || s.Serving("u", "c") || !s.Serving("u", "a") {
		t.Fatalf("removing b and marking c down drained %v", d)
	}
	d = s.Update(map[string]*config.Upstream{"u": u2})
	if len(d) != 0 {
		t.Fatalf("an unchanged reload drained %v", d)
	}
	u3 := ups("", "a")
	u3.DrainTimeout = time.Second
	group(s, u)
	d = s.Update(map[string]*config.Upstream{"u": u3})
	if len(d) != 2 || d[0].Addr != "b" || d[1].Addr != "c" || s.Serving("u", "b") || !s.Serving("u", "a") {
		t.Fatalf("drained %v", d)
	}
}

// Every hold a request's tries take ends once, however often End is called, past the 64 tries whose ends a
// Try records itself too.
func TestHoldEndsOnce(t *testing.T) {
	s, _ := newTestSet()
	var names []string
	for i := range 70 {
		names = append(names, fmt.Sprintf("p%d", i))
	}
	g := group(s, ups("least_conn", names...))
	tr := g.Begin(Key{})
	var holds []Hold
	for range 70 {
		if tr.Next() == nil {
			t.Fatalf("no peer after %d tries", len(holds))
		}
		holds = append(holds, tr.Done(Next))
	}
	conns := func() (n int64) {
		for _, p := range g.Peers() {
			n += p.Conns()
		}
		return n
	}
	if n := conns(); n != 70 {
		t.Fatalf("%d connections counted, want 70", n)
	}
	for _, h := range holds {
		h.End()
		h.End()
	}
	if n := conns(); n != 0 {
		t.Fatalf("%d connections counted after every hold ended (twice), want 0", n)
	}
	Hold{}.End() // the zero hold holds nothing
}
