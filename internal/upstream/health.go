package upstream

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// health is a peer's active health check state (guarded by the group's mutex).
type health struct {
	unhealthy bool // out of rotation until enough probes pass
	fails     int  // failed probes in a row
	passes    int  // good probes in a row
	probed    bool // at least one probe has run
}

// probePeers probes peers concurrently and applies the results; first marks a peer's first probe, whose pass
// or failure decides at once.
func (g *Group) probePeers(ctx context.Context, hc *config.HealthCheck, peers []*Peer) {
	results := make([]bool, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = probe(ctx, hc, p)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, p := range peers {
		h := &p.st.health
		first := !h.probed
		h.probed = true
		if results[i] {
			h.passes++
			h.fails = 0
			if h.unhealthy && (first || h.passes >= hc.Passes) {
				h.unhealthy = false
				p.st.recovered = g.now()
				if !first {
					g.log.Warn("upstream server is healthy again", "upstream", g.Name, "peer", p.Addr)
				}
			}
		} else {
			h.fails++
			h.passes = 0
			if !h.unhealthy && (first || h.fails >= hc.Fails) {
				h.unhealthy = true
				g.log.Warn("upstream server failed its health check, taken out", "upstream", g.Name, "peer", p.Addr, "uri", hc.URI)
			}
		}
	}
}

// checkLoop probes every peer that is not down every interval until ctx ends.
func (g *Group) checkLoop(ctx context.Context, hc *config.HealthCheck) {
	tick := time.NewTicker(hc.Interval)
	defer tick.Stop()
	var peers []*Peer
	for _, p := range g.Peers() {
		if !p.Down {
			peers = append(peers, p)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			g.probePeers(ctx, hc, peers)
		}
	}
}

// probe sends GET uri to the peer (on the check's port if set), over TLS when the group is proxied to with
// https://, and reports whether the status matched.
func probe(ctx context.Context, hc *config.HealthCheck, p *Peer) bool {
	network, address := p.Network()
	host := "localhost"
	if network == "tcp" {
		h, port, err := net.SplitHostPort(address)
		if err != nil {
			return false
		}
		if hc.Port != 0 {
			port = strconv.Itoa(hc.Port)
		}
		address = net.JoinHostPort(h, port)
		if nh, _, err := net.SplitHostPort(p.Name); err == nil {
			host = nh
		}
	}
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, address)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	scheme := "http"
	if hc.TLS {
		// as nginx's proxy_ssl_verify off (its default): the probe asks whether the peer answers, not who it is
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		if net.ParseIP(host) == nil {
			tr.TLSClientConfig.ServerName = host
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+hc.URI, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "sluice-health-check")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= hc.StatusLo && resp.StatusCode <= hc.StatusHi
}
