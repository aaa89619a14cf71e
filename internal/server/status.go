package server

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/statuspage"
)

// sample is one status page snapshot.
func (s *Server) sample() statuspage.Snapshot {
	now := time.Now()
	n := s.Conns()
	snap := statuspage.Snapshot{
		Time:       now.UnixMilli(),
		Version:    Version,
		UptimeSec:  now.Sub(s.started).Seconds(),
		Conns:      statuspage.Conns{Active: n.Active, Reading: n.Reading, Writing: n.Writing, Waiting: n.Waiting},
		Tunnels:    s.tracker.Open(),
		Requests:   s.done.requests.Load(),
		LatencySum: float64(s.done.nanos.Load()) / 1e9,
	}
	perPeer := map[string]int{}
	for _, t := range s.tunnels() {
		snap.TunnelGroups = append(snap.TunnelGroups, statuspage.TunnelGroup{Location: t.Location, Upstream: t.Upstream, Peer: t.Peer, Open: t.Open})
		perPeer[t.Peer] += t.Open
	}
	slices.SortFunc(snap.TunnelGroups, func(a, b statuspage.TunnelGroup) int {
		return cmp.Or(strings.Compare(a.Location, b.Location), strings.Compare(a.Peer, b.Peer))
	})
	peers := map[string]*statuspage.Peer{}
	for addr, c := range s.metrics.PeerCounts() {
		peers[addr] = &statuspage.Peer{Addr: addr, Requests: c.Requests, Failures: c.Failures}
	}
	for _, p := range s.peers() {
		sp := peers[p.Addr]
		if sp == nil {
			sp = &statuspage.Peer{Addr: p.Addr}
			peers[p.Addr] = sp
		}
		healthy := p.Healthy
		sp.Upstream, sp.Healthy = p.Upstream, &healthy
	}
	for addr, n := range perPeer {
		if addr == "" {
			continue
		}
		if peers[addr] == nil {
			peers[addr] = &statuspage.Peer{Addr: addr}
		}
		peers[addr].Tunnels = n
	}
	for _, p := range peers {
		snap.Peers = append(snap.Peers, *p)
	}
	slices.SortFunc(snap.Peers, func(a, b statuspage.Peer) int { return strings.Compare(a.Addr, b.Addr) })
	r := s.LastReload()
	snap.Reload = statuspage.Reload{Seq: r.Seq, At: r.At.UnixMilli(), OK: r.Err == nil}
	if r.Err != nil {
		snap.Reload.Error = r.Err.Error()
	}
	return snap
}
