package upstream

import (
	"hash/crc32"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// newPolicy returns the balancing policy of an upstream block.
func newPolicy(u *config.Upstream, g *Group) Policy {
	switch u.Policy {
	case "least_conn":
		return leastConn{}
	case "ip_hash":
		return ipHash{}
	case "hash":
		if len(u.PolicyArgs) > 1 && u.PolicyArgs[1] == "consistent" {
			return newRing(g)
		}
		return hashKey{}
	case "random":
		r := random{}
		for _, a := range u.PolicyArgs {
			switch a {
			case "two":
				r.two = true
			}
		}
		return r
	}
	return roundRobin{}
}

// maxHashTries is nginx's limit of hash probes before falling back to round robin.
const maxHashTries = 20

// roundRobin is nginx's smooth weighted round robin, falling over to the backup tier when no primary is
// available.
type roundRobin struct{}

func (roundRobin) Pick(t *Try, now time.Time) *Peer { return rr(t, now) }

// rr is nginx's ngx_http_upstream_get_round_robin_peer: the single-peer shortcut, then smooth weighted
// selection in the current tier, then the backup tier (once there, a request stays there).
func rr(t *Try, now time.Time) *Peer {
	g := t.g
	if g.single() {
		p := g.tiers[0].peers[0]
		if p.Down || (p.MaxConns > 0 && p.st.conns.Load() >= int64(p.MaxConns)) {
			return nil
		}
		return p
	}
	from := t.tier
	for {
		if p := smooth(t, now); p != nil {
			return p
		}
		if !t.toBackup() {
			t.g.allFailed(from)
			return nil
		}
	}
}

// allFailed is nginx's answer when no peer is left: this request gets "no live upstreams", and the failure
// counts of the tiers it walked are cleared so the next requests try the peers again ("mark them as live for
// quick recovery").
func (g *Group) allFailed(from int) {
	for i := from; i < len(g.tiers); i++ {
		for _, p := range g.tiers[i].peers {
			p.st.fails = 0
		}
	}
}

// toBackup moves a request to the backup tier (nginx resets the tried set there); false when it is there
// already or there is none.
func (t *Try) toBackup() bool {
	if t.tier == 1 || len(t.g.tiers[1].peers) == 0 {
		return false
	}
	t.tier = 1
	clear(t.tried)
	return true
}

// smooth is nginx's ngx_http_upstream_get_peer: every available peer gains its effective weight, the one with
// the highest current weight wins and loses the total.
func smooth(t *Try, now time.Time) *Peer {
	var best *Peer
	total := 0
	for _, p := range t.g.tiers[t.tier].peers {
		if t.tried[p.index] || !p.available(now) {
			continue
		}
		total += p.gain(now)
		if best == nil || p.current > best.current {
			best = p
		}
	}
	if best != nil {
		best.current -= total
	}
	return best
}

// gain is one step of smooth weighted round robin for p: its current weight grows by its effective weight
// (capped during slow_start), and a lowered effective weight recovers by one. It returns what was added.
func (p *Peer) gain(now time.Time) int {
	w := min(p.effective, p.weightAt(now))
	p.current += w
	if p.effective < p.Weight {
		p.effective++
	}
	return w
}

// leastConn is nginx's least_conn: the peer with the fewest connections relative to its weight; ties are
// broken by smooth weighted round robin. Requests in flight and open tunnels both count. While a peer is in its
// slow_start, peers are ranked by (connections+1) / current weight instead, as HAProxy's leastconn does:
// connections/weight ranks a returning peer with none first whatever its weight, so it would take every new
// connection until it caught up with the others, which is what slow_start is there to prevent.
type leastConn struct{}

func (leastConn) Pick(t *Try, now time.Time) *Peer {
	if t.g.single() {
		return rr(t, now)
	}
	from := t.tier
	for {
		if p := fewest(t, now); p != nil {
			return p
		}
		if !t.toBackup() {
			t.g.allFailed(from)
			return nil
		}
	}
}

// load is a peer's standing for least_conn: connections over weight, compared as a fraction. ramp is set while
// a candidate peer is in its slow start (see leastConn).
func (p *Peer) load(now time.Time, ramp bool) (conns, weight int64) {
	if ramp {
		return p.st.conns.Load() + 1, int64(p.weightAt(now))
	}
	return p.st.conns.Load(), int64(p.Weight)
}

func fewest(t *Try, now time.Time) *Peer {
	peers := t.g.tiers[t.tier].peers
	ramp := false
	for _, p := range peers {
		if p.SlowStart > 0 && !t.tried[p.index] && p.available(now) && p.weightAt(now) < p.Weight {
			ramp = true
			break
		}
	}
	var best *Peer
	var bc, bw int64
	many := false
	for _, p := range peers {
		if t.tried[p.index] || !p.available(now) {
			continue
		}
		c, w := p.load(now, ramp)
		if best == nil {
			best, bc, bw = p, c, w
			continue
		}
		if c*bw < bc*w {
			best, bc, bw, many = p, c, w, false
		} else if c*bw == bc*w {
			many = true
		}
	}
	if best == nil || !many {
		return best
	}
	first, total := best, 0
	for _, p := range peers[first.index:] {
		if t.tried[p.index] || !p.available(now) {
			continue
		}
		if c, w := p.load(now, ramp); c*bw != bc*w {
			continue
		}
		total += p.gain(now)
		if p.current > best.current {
			best = p
		}
	}
	best.current -= total
	return best
}

// byWeight maps w in [0, total) to a primary peer by walking the weights (nginx's hash to peer mapping).
func byWeight(peers []*Peer, w int) *Peer {
	for _, p := range peers {
		if w < p.Weight {
			return p
		}
		w -= p.Weight
	}
	return peers[len(peers)-1]
}

// usable is the hash policies' test of a probed peer.
func (t *Try) usable(p *Peer, now time.Time) bool {
	return !t.tried[p.index] && p.available(now)
}

// ipHash is nginx's ip_hash: the first three octets of an IPv4 client address (the whole IPv6 address) hashed
// with nginx's function, so clients map to the peers nginx would pick.
type ipHash struct{}

func (ipHash) Pick(t *Try, now time.Time) *Peer {
	tr := &t.g.tiers[0]
	if t.n > maxHashTries || len(tr.peers) < 2 {
		return rr(t, now)
	}
	var addr []byte
	switch a := t.key.Client; {
	case a.Is4() || a.Is4In6():
		b := a.Unmap().As4()
		addr = b[:3]
	case a.Is6():
		b := a.As16()
		addr = b[:]
	default:
		addr = []byte{0, 0, 0}
	}
	if !t.begun {
		t.begun, t.hash = true, 89
	}
	for {
		h := t.hash
		for _, c := range addr {
			h = (h*113 + uint32(c)) % 6271
		}
		t.hash = h
		p := byWeight(tr.peers, int(h%uint32(tr.total)))
		if t.usable(p, now) {
			return p
		}
		if t.n++; t.n > maxHashTries {
			return rr(t, now)
		}
	}
}

// hashKey is nginx's hash KEY: Cache::Memcached-compatible hashing of the key (crc32 of the rehash count and
// key), mapped to peers by weight.
type hashKey struct{}

func (hashKey) Pick(t *Try, now time.Time) *Peer {
	tr := &t.g.tiers[0]
	if t.n > maxHashTries || len(tr.peers) < 2 || t.key.Hash == "" {
		return rr(t, now)
	}
	for {
		var buf []byte
		if t.rehash > 0 {
			buf = strconv.AppendInt(buf, int64(t.rehash), 10)
		}
		buf = append(buf, t.key.Hash...)
		t.hash += (crc32.ChecksumIEEE(buf) >> 16) & 0x7fff
		t.rehash++
		p := byWeight(tr.peers, int(t.hash%uint32(tr.total)))
		if t.usable(p, now) {
			return p
		}
		if t.n++; t.n > maxHashTries {
			return rr(t, now)
		}
	}
}

// ring is nginx's hash KEY consistent: a ketama ring of 160 crc32 points per unit of weight for each server,
// as Cache::Memcached::Fast computes them, so keys map to the servers nginx would pick.
type ring struct {
	points []point
}

type point struct {
	hash   uint32
	server string
}

func newRing(g *Group) *ring {
	r := &ring{}
	for _, p := range g.tiers[0].peers {
		host, port := p.Name, ""
		if len(host) >= 5 && (host[:5] == "unix:" || host[:5] == "UNIX:") {
			host = host[5:]
		} else {
			for j := len(host) - 1; j >= 0; j-- {
				c := host[j]
				if c == ':' {
					host, port = p.Name[:j], p.Name[j+1:]
					break
				}
				if c < '0' || c > '9' {
					break
				}
			}
		}
		base := append(append([]byte(host), 0), port...)
		var prev [4]byte
		for j := 0; j < p.Weight*160; j++ {
			h := crc32.ChecksumIEEE(append(base[:len(base):len(base)], prev[:]...))
			r.points = append(r.points, point{hash: h, server: p.Name})
			prev = [4]byte{byte(h), byte(h >> 8), byte(h >> 16), byte(h >> 24)}
		}
	}
	sort.SliceStable(r.points, func(i, j int) bool { return r.points[i].hash < r.points[j].hash })
	// drop duplicate hashes, keeping the first (nginx)
	out := r.points[:0]
	for i, pt := range r.points {
		if i == 0 || pt.hash != out[len(out)-1].hash {
			out = append(out, pt)
		}
	}
	r.points = out
	return r
}

// find returns the first point at or after hash (nginx's ngx_http_upstream_find_chash_point).
func (r *ring) find(hash uint32) int {
	return sort.Search(len(r.points), func(i int) bool { return r.points[i].hash >= hash })
}

func (r *ring) Pick(t *Try, now time.Time) *Peer {
	tr := &t.g.tiers[0]
	if t.n > maxHashTries || len(tr.peers) < 2 || t.key.Hash == "" || len(r.points) == 0 {
		return rr(t, now)
	}
	if !t.begun {
		t.begun, t.pos = true, r.find(crc32.ChecksumIEEE([]byte(t.key.Hash)))
	}
	for {
		server := r.points[t.pos%len(r.points)].server
		// among the addresses of that server, smooth weighted round robin
		var best *Peer
		total := 0
		for _, p := range tr.peers {
			if p.Name != server || !t.usable(p, now) {
				continue
			}
			p.current += p.effective
			total += p.effective
			if p.effective < p.Weight {
				p.effective++
			}
			if best == nil || p.current > best.current {
				best = p
			}
		}
		if best != nil {
			best.current -= total
			return best
		}
		t.pos++
		if t.n++; t.n > maxHashTries {
			return rr(t, now)
		}
	}
}

// random is nginx's random [two [least_conn]]: a peer drawn by weight, or the one with fewer connections
// (relative to weight) of two draws.
type random struct{ two bool }

func (r random) Pick(t *Try, now time.Time) *Peer {
	tr := &t.g.tiers[0]
	if t.n > maxHashTries || len(tr.peers) < 2 {
		return rr(t, now)
	}
	var prev *Peer
	for {
		p := byWeight(tr.peers, rand.IntN(tr.total))
		if t.usable(p, now) && p != prev {
			if !r.two {
				return p
			}
			if prev != nil {
				if p.st.conns.Load()*int64(prev.Weight) > prev.st.conns.Load()*int64(p.Weight) {
					p = prev
				}
				return p
			}
			prev = p
		}
		if t.n++; t.n > maxHashTries {
			if prev != nil {
				return prev
			}
			return rr(t, now)
		}
	}
}
