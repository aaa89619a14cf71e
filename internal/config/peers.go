package config

import (
	"net"
	"strings"
)

// PeerAddr is the address proxy_pass sends to when its host names no upstream block, as $upstream_addr
// reports it: host:port as written, with the scheme's default port when none is.
func PeerAddr(scheme, host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// PassAddrs lists the addresses the proxy_pass, fastcgi_pass, uwsgi_pass and scgi_pass directives of c name directly (not an upstream
// block, no variables), as $upstream_addr reports them, each once.
func (c *Config) PassAddrs() []string {
	seen := map[string]bool{}
	var out []string
	add := func(lc *LocConf) {
		var a string
		switch {
		case lc == nil:
			return
		case lc.Proxy != nil && lc.Proxy.Upstream == nil && lc.Proxy.Template == nil:
			a = PeerAddr(lc.Proxy.Scheme, lc.Proxy.Host)
		case lc.FastCGI != nil && lc.FastCGI.Upstream == nil:
			a = lc.FastCGI.Addr
		case lc.UWSGI != nil && lc.UWSGI.Upstream == nil:
			a = lc.UWSGI.Addr
		case lc.SCGI != nil && lc.SCGI.Upstream == nil:
			a = lc.SCGI.Addr
		default:
			return
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	c.eachLocConf(add)
	return out
}

// PassesByVariable reports whether a proxy_pass of c has variables in its target: resolved per request, it
// may reach peers that no directive names.
func (c *Config) PassesByVariable() bool {
	found := false
	c.eachLocConf(func(lc *LocConf) {
		found = found || lc != nil && lc.Proxy != nil && lc.Proxy.Template != nil
	})
	return found
}

// eachLocConf calls f with the configuration of every location of every server, nested ones included.
func (c *Config) eachLocConf(f func(*LocConf)) {
	if c.HTTP == nil {
		return
	}
	var locs func([]*Location)
	locs = func(ls []*Location) {
		for _, l := range ls {
			f(l.Conf)
			locs(l.Children)
		}
	}
	for _, srv := range c.HTTP.Servers {
		locs(srv.Locations)
	}
}
