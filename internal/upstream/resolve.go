package upstream

import (
	"context"
	"net"
	"slices"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// resolveTimeout bounds one re-resolution of a name.
const resolveTimeout = 5 * time.Second

func hasResolve(u *config.Upstream) bool {
	for _, s := range u.Servers {
		if s.Resolve {
			return true
		}
	}
	return false
}

// lookup resolves host through the configured DNS servers (tried in order), leaving out the address family
// that ipv4=off or ipv6=off turned off.
func lookup(ctx context.Context, r *config.Resolver, host string) ([]string, error) {
	var err error
	for _, server := range r.Addrs {
		res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
		var found []net.IP
		if found, err = res.LookupIP(ctx, r.Network(), host); err == nil {
			ips := make([]string, len(found))
			for i, ip := range found {
				ips[i] = ip.String()
			}
			slices.Sort(ips)
			return ips, nil
		}
	}
	return nil, err
}

// resolveServers returns u's server lines with the addresses of those marked resolve looked up now; a name that
// fails to resolve keeps the addresses it had in prev.
func resolveServers(ctx context.Context, u *config.Upstream, prev *Group) []config.UpstreamServer {
	if !hasResolve(u) || u.Resolver == nil {
		return u.Servers
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	out := slices.Clone(u.Servers)
	for i := range out {
		sv := &out[i]
		if !sv.Resolve {
			continue
		}
		host, port, err := net.SplitHostPort(sv.Addr)
		if err != nil {
			continue
		}
		ips, err := lookup(ctx, u.Resolver, host)
		if err != nil {
			// keep what was known, but not an address family ipv4=off or ipv6=off has turned off since
			sv.Addrs = slices.DeleteFunc(prevAddrs(prev, sv.Addr), func(a string) bool { return !u.Resolver.Allows(a) })
			continue
		}
		sv.Addrs = nil
		for _, ip := range ips {
			sv.Addrs = append(sv.Addrs, net.JoinHostPort(ip, port))
		}
	}
	return out
}

func prevAddrs(g *Group, name string) []string {
	if g == nil {
		return nil
	}
	var out []string
	for _, p := range g.Peers() {
		if p.Name == name {
			out = append(out, p.Addr)
		}
	}
	return out
}

// resolveLoop re-resolves g's names every valid and installs a new generation of the group when the addresses
// changed; it ends with ctx (a reload, or a newer generation).
func (s *Set) resolveLoop(ctx context.Context, g *Group, r *config.Resolver) {
	tick := time.NewTicker(r.Valid)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		servers := resolveServers(ctx, g.Conf, g)
		if ctx.Err() != nil {
			return
		}
		if sameAddrs(g, servers) {
			continue
		}
		next := s.build(g.Conf, servers, g)
		next.prepare()
		s.mu.Lock()
		if s.groups[g.Name] != g || ctx.Err() != nil {
			s.mu.Unlock()
			return // reloaded meanwhile
		}
		g.stop()
		s.activate(next)
		s.groups[g.Name] = next
		s.gen.Add(1)
		s.mu.Unlock()
		s.log.Info("upstream re-resolved", "upstream", g.Name, "peers", len(next.Peers()))
		return // the new generation runs its own loop
	}
}

// sameAddrs reports whether servers resolve to exactly g's peers.
func sameAddrs(g *Group, servers []config.UpstreamServer) bool {
	var want []string
	for _, sv := range servers {
		addrs := sv.Addrs
		if len(addrs) == 0 && !sv.Resolve {
			addrs = []string{sv.Addr}
		}
		for _, a := range addrs {
			want = append(want, sv.Addr+"|"+a)
		}
	}
	var have []string
	for _, p := range g.Peers() {
		have = append(have, p.Name+"|"+p.Addr)
	}
	slices.Sort(want)
	slices.Sort(have)
	return slices.Equal(want, have)
}
