package server

import (
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/observe"
	"github.com/sluice-proxy/sluice/internal/stream"
	"github.com/sluice-proxy/sluice/internal/tunnel"
)

// ReloadResult is the outcome of the last configuration reload, for the status page, metrics and `-s reload`.
type ReloadResult struct {
	Seq int       // 0 before any reload; increments with every attempt
	At  time.Time // when the attempt finished (the start time for Seq 0)
	Err error     // nil when the new configuration is live
}

// Check compiles cfg as a reload would (certificates, log files, listen conflicts) without binding or serving,
// so a signalling process (or sluice -t) can refuse a broken configuration before a running one sees it. It
// creates no file: certificates sluice would make are made in memory, log files are not created.
func Check(cfg *config.Config) error {
	files := observe.NewCheckFiles()
	defer files.CloseAll()
	_, err := build(cfg, files, nil, true)
	return err
}

// Reload swaps in a new configuration. If it fails to build or bind, the running one stays. New requests use
// the new snapshot at once; requests in flight finish on theirs; open tunnels stay open. With
// worker_shutdown_timeout set, tunnels whose location or upstream group the new configuration no longer has
// are closed when it passes.
// load reads and parses the new configuration; its failure is recorded as a failed reload too.
func (s *Server) Reload(load func() (*config.Config, error)) error {
	cfg, err := load()
	if err == nil {
		err = s.reload(cfg)
	}
	s.recordReload(err)
	return err
}

func (s *Server) reload(cfg *config.Config) error {
	snap, err := build(cfg, s.files, s.snap.Load(), false)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// every new socket is bound before anything changes, so a failed bind leaves the running set as it was
	a, err := s.bindAdded(snap)
	if err != nil {
		return err
	}
	old := s.snap.Load()
	s.closeDropped(snap)
	s.startACME(snap)
	s.install(snap)
	s.retainMetrics(old.cfg, cfg)
	s.serve(snap, a)
	if d := cfg.WorkerShutdownTimeout; d > 0 {
		time.AfterFunc(d, func() {
			cur := s.snap.Load()
			n := s.tracker.CloseMatching(func(m tunnel.Meta) bool {
				return orphaned(m, old, snap) && orphaned(m, old, cur)
			})
			if n > 0 {
				s.log.Info("worker_shutdown_timeout passed: closed " + itoa(n) + " tunnels whose location or upstream was removed")
			}
		})
	}
	return nil
}

// retainMetrics deletes the metrics series of peers and locations cfg no longer has. Every name $upstream_addr
// can carry under cfg is kept (balancer peers as resolved, group names, proxy_pass and fastcgi_pass addresses),
// and every server and location pair locationMetrics can label. While cfg has a proxy_pass with variables,
// whose peers are known only per request, every peer that prev did not name either is kept too: a reload that
// keeps such a location must not reset its peers' counts.
func (s *Server) retainMetrics(prev, cfg *config.Config) {
	live := namedPeers(cfg)
	for _, p := range s.proxy.Upstreams().Snapshot() {
		live[p.Addr] = true
	}
	keep := func(peer string) bool { return live[peer] }
	if cfg.PassesByVariable() {
		named := map[string]bool{}
		if prev != nil {
			named = namedPeers(prev)
		}
		keep = func(peer string) bool { return live[peer] || !named[peer] }
	}
	s.metrics.RetainPeers(keep)

	locs := map[[2]string]bool{{"", ""}: true} // answered before a server was chosen
	label := func(srv *config.Server) string {
		if len(srv.Names) > 0 {
			return srv.Names[0] // as locationMetrics labels it
		}
		return ""
	}
	eachLocation(cfg, func(srv *config.Server, l *config.Location) {
		name := ""
		if l != nil {
			name = l.Name()
		}
		locs[[2]string{label(srv), name}] = true
	})
	s.metrics.RetainLocations(func(server, location string) bool { return locs[[2]string{server, location}] })
}

// namedPeers is every peer name cfg writes down: proxy_pass and fastcgi_pass addresses, upstream groups and
// their servers (as written and as resolved at load time).
func namedPeers(cfg *config.Config) map[string]bool {
	named := map[string]bool{}
	for _, a := range cfg.PassAddrs() {
		named[a] = true
	}
	if cfg.HTTP != nil {
		for name, u := range cfg.HTTP.Upstreams {
			named[name] = true
			for _, srv := range u.Servers {
				named[srv.Addr] = true
				for _, a := range srv.Addrs {
					named[a] = true
				}
			}
		}
	}
	return named
}

func (s *Server) recordReload(err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.lastReload = ReloadResult{Seq: s.lastReload.Seq + 1, At: time.Now(), Err: err}
	s.metrics.Reload(err == nil, s.lastReload.At)
}

// LastReload reports the outcome of the last reload attempt.
func (s *Server) LastReload() ReloadResult {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return s.lastReload
}

// orphaned reports whether a tunnel opened under old has lost its location or its upstream group in next.
func orphaned(m tunnel.Meta, old, next *snapshot) bool {
	if listen, ok := strings.CutPrefix(m.Location, stream.StreamLocation); ok {
		// a stream session: orphaned once next has no stream server on its address passing to its target
		pass := strings.TrimPrefix(m.Upstream, "stream ")
		if next.cfg.Stream != nil {
			for _, srv := range next.cfg.Stream.Servers {
				if srv.Pass == nil || srv.Pass.Raw != pass {
					continue
				}
				for _, l := range srv.Listens {
					if stream.ListenKey(l) == listen {
						return false
					}
				}
			}
		}
		return true
	}
	if m.Location != "" && !next.locations[m.Location] {
		return true
	}
	if old.cfg.HTTP == nil || next.cfg.HTTP == nil {
		return false
	}
	_, wasGroup := old.cfg.HTTP.Upstreams[m.Upstream]
	_, isGroup := next.cfg.HTTP.Upstreams[m.Upstream]
	return wasGroup && !isGroup
}

// locationNames lists every location name of a configuration (all servers, nested locations included).
func locationNames(cfg *config.Config) map[string]bool {
	names := map[string]bool{}
	eachLocation(cfg, func(_ *config.Server, l *config.Location) {
		if l != nil {
			names[l.Name()] = true
		}
	})
	return names
}

// eachLocation calls f with every server of cfg (l nil) and each of its locations, nested ones included.
func eachLocation(cfg *config.Config, f func(srv *config.Server, l *config.Location)) {
	if cfg.HTTP == nil {
		return
	}
	for _, srv := range cfg.HTTP.Servers {
		f(srv, nil)
		var walk func([]*config.Location)
		walk = func(ls []*config.Location) {
			for _, l := range ls {
				f(srv, l)
				walk(l.Children)
			}
		}
		walk(srv.Locations)
	}
}
