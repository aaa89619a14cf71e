// Package upstream is the home of upstream peers and balancing: nginx's upstream module (smooth weighted round
// robin, least_conn, ip_hash, hash [consistent], random [two]) with passive health (max_fails/fail_timeout),
// backup, down and max_conns. The proxy asks a Group for a peer per try through a Try, and reports each try's
// outcome back; peer state (failures, active connections) lives in a Set and survives reloads for peers that
// stay in the configuration.
package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// Outcome is how one try ended, as nginx's peer free states.
type Outcome int

const (
	// Success: the peer answered (it is marked live again if it had failed).
	Success Outcome = iota
	// Failed: error, timeout, invalid header, or a status listed in proxy_next_upstream among 500, 502, 503,
	// 504 and 429; counts toward max_fails.
	Failed
	// Next: the request went on to the next peer without blaming this one (http_403, http_404).
	Next
)

// state is what a peer keeps across reloads: failure accounting and its active connection count. Fields other
// than conns are guarded by the group's mutex (shared by every generation of a group).
type state struct {
	conns    atomic.Int64
	fails    int
	accessed time.Time // last failure
	checked  time.Time // last time the peer was tried after (or at) a failure
	// recovered is when the peer came back after a failure or a failed health check (slow_start)
	recovered time.Time
	health    health
}

// Peer is one address of a server line. Its configuration is immutable; balancing fields are guarded by the
// group's mutex.
type Peer struct {
	Name        string // the server as written ("app:8080", "unix:/run/app.sock"); hash consistent hashes it
	Addr        string // the address dialled: ip:port, or unix:/path
	Weight      int
	MaxFails    int
	FailTimeout time.Duration
	MaxConns    int
	SlowStart   time.Duration
	Backup      bool
	Down        bool
	// ID is the peer's opaque name for sticky cookies: a hash of the group, server and address, stable across
	// restarts and reloads, that does not reveal the address.
	ID string

	st        *state
	index     int // position in its tier
	current   int // smooth weighted round robin: current_weight
	effective int // effective_weight, lowered by failures and restored by successes
}

// Network returns the network and address for net.Dial.
func (p *Peer) Network() (network, address string) {
	if path, ok := strings.CutPrefix(p.Addr, "unix:"); ok {
		return "unix", path
	}
	return "tcp", p.Addr
}

// Conns is the number of requests and tunnels to this peer now.
func (p *Peer) Conns() int64 { return p.st.conns.Load() }

// available is nginx's test for a peer that may be chosen: not down, not failed within fail_timeout, below
// max_conns.
func (p *Peer) available(now time.Time) bool {
	if p.Down || p.st.health.unhealthy {
		return false
	}
	if p.MaxFails > 0 && p.st.fails >= p.MaxFails && now.Sub(p.st.checked) <= p.FailTimeout {
		return false
	}
	return p.MaxConns == 0 || p.st.conns.Load() < int64(p.MaxConns)
}

// weightAt is the peer's weight now: during slow_start after a recovery it grows linearly from 1.
func (p *Peer) weightAt(now time.Time) int {
	if p.SlowStart <= 0 || p.st.recovered.IsZero() {
		return p.Weight
	}
	since := now.Sub(p.st.recovered)
	if since >= p.SlowStart {
		return p.Weight
	}
	return max(1, int(int64(p.Weight)*int64(since)/int64(p.SlowStart)))
}

// tier is the primary or the backup peers of a group.
type tier struct {
	peers []*Peer
	total int // sum of weights (down peers included, as nginx's total_weight)
	tries int // peers not down
}

// Group is one upstream block (or the implicit group of a proxy_pass address) of one configuration.
type Group struct {
	Name   string
	Conf   *config.Upstream
	mu     *sync.Mutex // shared with the previous and next generations of the group, as is peer state
	tiers  [2]tier     // primary, backup
	policy Policy
	log    *slog.Logger
	now    func() time.Time
	stop   context.CancelFunc // ends the health checker of this generation
}

// Policy chooses a peer for a try among the group's available peers (nginx's peer.get of a balancing
// module); it returns nil when none is available. It is called with the group's lock held.
type Policy interface {
	Pick(t *Try, now time.Time) *Peer
}

// single is nginx's "single" group: one primary peer and no backups. It is never marked failed and never
// retried.
func (g *Group) single() bool { return len(g.tiers[0].peers) == 1 && len(g.tiers[1].peers) == 0 }

// Peers lists the group's peers, primaries first.
func (g *Group) Peers() []*Peer {
	return append(append([]*Peer(nil), g.tiers[0].peers...), g.tiers[1].peers...)
}

// Key is what hash-based policies balance on.
type Key struct {
	Client netip.Addr // ip_hash
	Hash   string     // hash KEY, evaluated for the request
	Sticky string     // the sticky cookie's value: the first try goes to the peer with this ID when available
}

// Try is one request's walk over a group: which peers it tried and how many tries it has left (nginx's
// rr peer data). It is used by one goroutine.
type Try struct {
	g     *Group
	key   Key
	tier  int
	tried []bool
	left  int
	cur   *Peer
	at    time.Time // when Next chose cur
	// policy scratch: hashes and the hash policies' own try counters (nginx's tries > 20 fallback)
	hash   uint32
	rehash int
	n      int
	pos    int // consistent hash: ring position
	begun  bool
	small  [8]bool // tried's storage for groups of up to 8 peers per tier
	// released has bit i set once the connection count of the i-th Done has been released (its release
	// function is idempotent without a flag of its own)
	released atomic.Uint64
	dones    int
}

// Begin starts a request's tries.
func (g *Group) Begin(k Key) *Try {
	t := new(Try)
	g.Start(t, k)
	return t
}

// Start starts a request's tries in t, storage of the caller's (Begin without its allocation).
func (g *Group) Start(t *Try, k Key) {
	n := max(len(g.tiers[0].peers), len(g.tiers[1].peers))
	*t = Try{g: g, key: k, left: g.tiers[0].tries + g.tiers[1].tries}
	if n <= len(t.small) {
		t.tried = t.small[:n]
	} else {
		t.tried = make([]bool, n)
	}
}

// At is the time the last Next chose its peer, for the caller to time the try by (one clock read less).
func (t *Try) At() time.Time { return t.at }

// Left is how many more peers this request may try (before proxy_next_upstream_tries).
func (t *Try) Left() int { return t.left }

// Next chooses the next peer and counts a connection to it; nil means no live upstreams.
func (t *Try) Next() *Peer {
	g := t.g
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var p *Peer
	if t.key.Sticky != "" {
		p = t.sticky(now)
		t.key.Sticky = ""
	}
	if p == nil {
		p = g.policy.Pick(t, now)
	}
	if p == nil {
		return nil
	}
	t.cur, t.at = p, now
	t.tried[p.index] = true
	if now.Sub(p.st.checked) > p.FailTimeout {
		p.st.checked = now
	}
	p.st.conns.Add(1)
	return p
}

// sticky returns the available peer whose ID the sticky cookie names, or nil.
func (t *Try) sticky(now time.Time) *Peer {
	for i := range t.g.tiers {
		for _, p := range t.g.tiers[i].peers {
			if p.ID != t.key.Sticky || !p.available(now) {
				continue
			}
			if i != t.tier {
				t.tier = i
				clear(t.tried)
			}
			return p
		}
	}
	return nil
}

// Done records how the current try ended (nginx's peer.free) and returns the hold on its connection count:
// end it at once, or when a request or tunnel that keeps using the peer ends.
func (t *Try) Done(o Outcome) Hold {
	p := t.cur
	if p == nil {
		return Hold{}
	}
	t.cur = nil
	g := t.g
	if g.single() {
		t.left = 0 // never failed, never retried: nothing to record
	} else {
		g.mu.Lock()
		if o == Failed {
			now := g.now()
			p.st.fails++
			p.st.accessed, p.st.checked = now, now
			if p.MaxFails > 0 {
				p.effective -= p.Weight / p.MaxFails
				if p.st.fails >= p.MaxFails {
					g.log.Warn("upstream server temporarily disabled", "upstream", g.Name, "peer", p.Addr)
				}
			}
			p.effective = max(p.effective, 0)
		} else if p.st.accessed.Before(p.st.checked) {
			if p.MaxFails > 0 && p.st.fails >= p.MaxFails {
				p.st.recovered = g.now() // back after being failed out: slow_start begins
			}
			p.st.fails = 0
		}
		if t.left > 0 {
			t.left--
		}
		g.mu.Unlock()
	}
	i := t.dones
	t.dones++
	if i >= 64 {
		return Hold{p: p, once: new(atomic.Bool)}
	}
	return Hold{p: p, t: t, bit: uint64(1) << i}
}

// Hold is a try's share of its peer's connection count (least_conn, max_conns), from Done until End. The
// zero Hold holds nothing.
type Hold struct {
	p    *Peer
	t    *Try         // whose released bit marks the end (the first 64 tries of a request)
	bit  uint64       //
	once *atomic.Bool // the end, for later tries
}

// End releases the hold; ending it again does nothing.
func (h Hold) End() {
	switch {
	case h.p == nil:
	case h.t != nil:
		if h.t.released.Or(h.bit)&h.bit == 0 {
			h.p.st.conns.Add(-1)
		}
	case !h.once.Swap(true):
		h.p.st.conns.Add(-1)
	}
}

// Set holds the upstream groups of the running configuration and the peer state that outlives reloads.
type Set struct {
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	groups   map[string]*Group
	implicit map[string]*Group // proxy_pass addresses without an upstream block
	gen      atomic.Uint64     // counts the changes of groups (Update, re-resolution): see Gen
}

// Gen counts the times a group was replaced (by Update or by re-resolving a name): a group kept from an earlier
// Gen may be out of date.
func (s *Set) Gen() uint64 { return s.gen.Load() }

// NewSet returns an empty Set.
func NewSet(log *slog.Logger) *Set {
	return &Set{log: log, now: time.Now, groups: map[string]*Group{}, implicit: map[string]*Group{}}
}

// Update installs the upstream blocks of a new configuration. A peer that stays (same group, same server and
// address) keeps its failure state and connection count; removed peers keep serving what they already serve.
//
// With health_check, peers that have never been probed get their first probe before the groups are installed
// (bounded by the check's timeout), so a failing peer is out before any request can reach it.
//
// It returns the peers the new configuration removed from a group or marked down, with the group's
// proxy_tunnel_drain_timeout, so their open tunnels can be closed once it passes.
func (s *Set) Update(ups map[string]*config.Upstream) []Drained {
	s.mu.Lock()
	prev := s.groups
	s.mu.Unlock()
	// build and prepare (resolve, first probes) without the lock: requests keep using the running groups
	groups := make(map[string]*Group, len(ups))
	var wg sync.WaitGroup
	for name, u := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := s.build(u, resolveServers(context.Background(), u, prev[name]), prev[name])
			g.prepare()
			s.mu.Lock()
			groups[name] = g
			s.mu.Unlock()
		}()
	}
	wg.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if g.stop != nil {
			g.stop()
		}
	}
	for _, g := range groups {
		s.activate(g)
	}
	var drained []Drained
	for name, old := range s.groups {
		g := groups[name]
		if g == nil || g.Conf.DrainTimeout == 0 {
			continue // a removed group's tunnels are the server's (worker_shutdown_timeout)
		}
		for _, p := range old.Peers() {
			if !p.Down && !g.serving(p.Addr) {
				drained = append(drained, Drained{Upstream: name, Addr: p.Addr, Timeout: g.Conf.DrainTimeout})
			}
		}
	}
	s.groups = groups
	s.implicit = map[string]*Group{}
	s.gen.Add(1)
	return drained
}

// prepare gives peers that were never probed their first health check before the group takes requests.
func (g *Group) prepare() {
	hc := g.Conf.HealthCheck
	if hc == nil {
		return
	}
	var fresh []*Peer
	g.mu.Lock()
	for _, p := range g.Peers() {
		if !p.st.health.probed && !p.Down {
			p.st.health.unhealthy = true
			fresh = append(fresh, p)
		}
	}
	g.mu.Unlock()
	g.probePeers(context.Background(), hc, fresh)
}

// activate starts a group's background work (health checks, re-resolution); s.mu is held.
func (s *Set) activate(g *Group) {
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	if hc := g.Conf.HealthCheck; hc != nil {
		go g.checkLoop(ctx, hc)
	}
	if r := g.Conf.Resolver; r != nil && hasResolve(g.Conf) {
		go s.resolveLoop(ctx, g, r)
	}
}

// Drained is a peer a reload took out of its group (removed or marked down).
type Drained struct {
	Upstream, Addr string
	Timeout        time.Duration
}

// serving reports whether addr is a peer of g that is not down.
func (g *Group) serving(addr string) bool {
	for _, p := range g.Peers() {
		if p.Addr == addr && !p.Down {
			return true
		}
	}
	return false
}

// Serving reports whether addr is a peer, not marked down, of the named upstream block in the running
// configuration.
func (s *Set) Serving(upstream, addr string) bool {
	g := s.Group(upstream)
	return g != nil && g.serving(addr)
}

// Close stops the health checkers.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if g.stop != nil {
			g.stop()
		}
	}
}

// Group returns the group of an upstream block, or nil.
func (s *Set) Group(name string) *Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups[name]
}

// Implicit returns the group of a proxy_pass address that names no upstream block: its one peer, round robin.
// Groups of addresses from the configuration are kept until the next Update; others (proxy_pass with
// variables) are made per request.
func (s *Set) Implicit(addr string, keep bool) *Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.implicit[addr]; ok {
		return g
	}
	u := &config.Upstream{Name: addr, Servers: []config.UpstreamServer{{Addr: addr, Addrs: []string{addr}, Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second}}}
	g := s.build(u, u.Servers, nil)
	if keep {
		s.implicit[addr] = g
	}
	return g
}

type peerKey struct{ name, addr string }

// build makes the group of u, taking peer state and the lock from prev, the group's previous generation.
func (s *Set) build(u *config.Upstream, servers []config.UpstreamServer, prev *Group) *Group {
	g := &Group{Name: u.Name, Conf: u, mu: &sync.Mutex{}, log: s.log, now: s.now}
	old := map[peerKey]*state{}
	if prev != nil {
		g.mu = prev.mu
		for _, p := range prev.Peers() {
			old[peerKey{p.Name, p.Addr}] = p.st
		}
	}
	for _, sv := range servers {
		addrs := sv.Addrs
		if len(addrs) == 0 && !sv.Resolve {
			addrs = []string{sv.Addr}
		}
		for _, a := range addrs {
			p := &Peer{Name: sv.Addr, Addr: a, Weight: sv.Weight, MaxFails: sv.MaxFails, FailTimeout: sv.FailTimeout,
				MaxConns: sv.MaxConns, SlowStart: sv.SlowStart, Backup: sv.Backup, Down: sv.Down, effective: sv.Weight, ID: peerID(u.Name, sv.Addr, a)}
			if st, ok := old[peerKey{p.Name, p.Addr}]; ok {
				p.st = st
			} else {
				p.st = &state{}
			}
			tr := &g.tiers[0]
			if sv.Backup {
				tr = &g.tiers[1]
			}
			p.index = len(tr.peers)
			tr.peers = append(tr.peers, p)
			tr.total += p.Weight
			if !p.Down {
				tr.tries++
			}
		}
	}
	g.policy = newPolicy(u, g)
	return g
}

// peerID is the opaque sticky id of a peer.
func peerID(group, server, addr string) string {
	sum := sha256.Sum256([]byte(group + "\x00" + server + "\x00" + addr))
	return hex.EncodeToString(sum[:10])
}

// PeerStatus is a read-only view of one peer, for metrics and status pages.
type PeerStatus struct {
	Upstream string
	Name     string // server as written
	Addr     string
	Backup   bool
	State    string // "up", "down" (configured), "unavailable" (max_fails reached within fail_timeout), "unhealthy" (health_check)
	Fails    int
	Conns    int64
}

// Snapshot returns the state of every peer of every upstream block, sorted by upstream then position.
func (s *Set) Snapshot() []PeerStatus {
	s.mu.Lock()
	groups := make([]*Group, 0, len(s.groups))
	for _, g := range s.groups {
		groups = append(groups, g)
	}
	s.mu.Unlock()
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name < groups[j].Name })
	var out []PeerStatus
	for _, g := range groups {
		g.mu.Lock()
		now := g.now()
		for _, p := range g.Peers() {
			st := "up"
			switch {
			case p.Down:
				st = "down"
			case p.st.health.unhealthy:
				st = "unhealthy"
			case p.MaxFails > 0 && p.st.fails >= p.MaxFails && now.Sub(p.st.checked) <= p.FailTimeout:
				st = "unavailable"
			}
			out = append(out, PeerStatus{Upstream: g.Name, Name: p.Name, Addr: p.Addr, Backup: p.Backup, State: st,
				Fails: p.st.fails, Conns: p.st.conns.Load()})
		}
		g.mu.Unlock()
	}
	return out
}
