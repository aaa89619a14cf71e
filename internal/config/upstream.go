package config

import (
	"net"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// upstreamDirectives are nginx's upstream and map modules (the upstream block and its basic settings; balancing
// policies are stored for the upstream package).
var upstreamDirectives = []Spec{
	{Name: "upstream", Module: "http_upstream", Ctx: CtxHTTP, Args: "1", Block: true, Doc: "A named group of upstream servers for proxy_pass.",
		Apply: func(p *parser, d *Directive) error {
			name := d.Args[0]
			if _, dup := p.http.Upstreams[name]; dup {
				return d.errorf("duplicate upstream %q", name)
			}
			u := &Upstream{Name: name, Pos: d.Pos, KeepaliveRequests: 1000}
			p.ups = u
			defer func() { p.ups = nil }()
			if err := p.walk(p.body(d), CtxUpstream); err != nil {
				return err
			}
			if len(u.Servers) == 0 {
				return d.errorf("no servers are inside upstream")
			}
			p.http.Upstreams[name] = u
			return nil
		}},
	{Name: "keepalive", Module: "http_upstream", Ctx: CtxUpstream, Args: "1", Doc: "Idle keep-alive connections kept per upstream group.",
		Apply: func(p *parser, d *Directive) error {
			n, err := strconv.Atoi(d.Args[0])
			if err != nil || n < 1 {
				return d.errorf("invalid value %q in \"keepalive\" directive", d.Args[0])
			}
			p.ups.Keepalive = n
			return nil
		}},
	{Name: "least_conn", Module: "http_upstream", Ctx: CtxUpstream, Args: "0", Doc: "Balance to the peer with the fewest active connections (open tunnels count).",
		Apply: func(p *parser, d *Directive) error { p.ups.Policy = "least_conn"; return nil }},
	{Name: "ip_hash", Module: "http_upstream", Ctx: CtxUpstream, Args: "0", Doc: "Balance by client address.",
		Apply: func(p *parser, d *Directive) error { p.ups.Policy = "ip_hash"; return nil }},
	{Name: "hash", Module: "http_upstream", Ctx: CtxUpstream, Args: "1-2", Doc: "Balance by a key (consistent: ketama ring).",
		Apply: func(p *parser, d *Directive) error { p.ups.Policy, p.ups.PolicyArgs = "hash", d.Args; return nil }},
	{Name: "random", Module: "http_upstream", Ctx: CtxUpstream, Args: "0-2", Doc: "Balance to a random peer (two: the better of two).",
		Apply: func(p *parser, d *Directive) error { p.ups.Policy, p.ups.PolicyArgs = "random", d.Args; return nil }},
	{Name: "map", Module: "http_map", Ctx: CtxHTTP, Args: "2", Block: true, Doc: "Defines a variable whose value depends on another (default, hostnames, volatile, ~regex keys).",
		Apply: (*parser).mapBlock},
}

func (p *parser) upstreamServer(d *Directive) error {
	if d.Block != nil || len(d.Args) == 0 {
		return d.errorf("invalid \"server\" directive in upstream")
	}
	s := UpstreamServer{Addr: d.Args[0], Weight: 1, MaxFails: 1, FailTimeout: 10e9, Pos: d.Pos}
	if strings.HasPrefix(s.Addr, "unix:") {
		return d.errorf("unix sockets in upstream are not supported yet")
	}
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		s.Addr = net.JoinHostPort(strings.Trim(s.Addr, "[]"), "80")
	}
	for _, a := range d.Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "weight":
			s.Weight, err = strconv.Atoi(v)
			if s.Weight < 1 {
				err = strconv.ErrRange
			}
		case "max_fails":
			s.MaxFails, err = strconv.Atoi(v)
		case "fail_timeout":
			s.FailTimeout, err = ParseDuration(v)
		case "max_conns":
			s.MaxConns, err = strconv.Atoi(v)
		case "backup":
			s.Backup = true
		case "down":
			s.Down = true
		default:
			return d.errorf("invalid parameter %q", a)
		}
		if err != nil {
			return d.errorf("invalid parameter %q", a)
		}
	}
	p.ups.Servers = append(p.ups.Servers, s)
	return nil
}

func (p *parser) mapBlock(d *Directive) error {
	src, err := p.compile(d, d.Args[0])
	if err != nil {
		return err
	}
	target, ok := strings.CutPrefix(d.Args[1], "$")
	if !ok {
		return d.errorf("invalid variable name %q", d.Args[1])
	}
	var entries []vars.MapEntry
	hostnames, volatile := false, false
	for _, e := range p.body(d) {
		switch {
		case e.Name == "hostnames" && len(e.Args) == 0:
			hostnames = true
			continue
		case e.Name == "volatile" && len(e.Args) == 0:
			volatile = true
			continue
		case e.Name == "include":
			return e.errorf("include inside map is not supported")
		case len(e.Args) != 1:
			return e.errorf("invalid number of the map parameters")
		}
		entries = append(entries, vars.MapEntry{Key: e.Name, Value: e.Args[0]})
	}
	m, err := vars.NewMap(src, entries, hostnames, p.tab)
	if err != nil {
		return d.errorf("%v", err)
	}
	m.SetVolatile(volatile)
	if _, err := p.tab.DeclareMap(target, m); err != nil {
		return d.errorf("%v", err)
	}
	return nil
}
