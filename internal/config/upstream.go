package config

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// upstreamDirectives are nginx's upstream and map modules (the upstream block and its basic settings; balancing
// policies are stored for the upstream package).
var upstreamDirectives = []Spec{
	{Name: "upstream", Module: "http_upstream", Ctx: CtxHTTP | CtxStream, Args: "1", Block: true, Doc: "A named group of upstream servers for proxy_pass (in stream: of the stream block, a namespace of its own).",
		Apply: func(p *parser, d *Directive) error {
			name := d.Args[0]
			groups, ctx := p.upstreamGroups()
			if _, dup := groups[name]; dup {
				return d.errorf("duplicate upstream %q", name)
			}
			u := &Upstream{Name: name, Pos: d.Pos, KeepaliveRequests: 1000}
			p.ups = u
			defer func() { p.ups = nil }()
			if err := p.walk(p.body(d), ctx); err != nil {
				return err
			}
			if len(u.Servers) == 0 {
				return d.errorf("no servers are inside upstream")
			}
			if u.Policy == "ip_hash" || u.Policy == "hash" || u.Policy == "random" {
				for _, s := range u.Servers {
					if s.Backup {
						return s.Pos.errorf("the \"backup\" parameter cannot be used with \"%s\" balancing", u.Policy)
					}
				}
			}
			groups[name] = u
			return nil
		}},
	{Name: "keepalive", Module: "http_upstream", Ctx: CtxUpstream, Args: "1", Doc: "Idle keep-alive connections kept for the whole upstream group (over all its peers, least recently used closed first). Without it sluice still keeps up to 128. While the pool closes connections for want of room (more requests in flight than N), a request that finds no idle connection waits up to 5 ms for one a finishing request hands over before it dials.",
		Apply: func(p *parser, d *Directive) error {
			n, err := strconv.Atoi(d.Args[0])
			if err != nil || n < 1 {
				return d.errorf("invalid value %q in \"keepalive\" directive", d.Args[0])
			}
			p.ups.Keepalive = n
			return nil
		}},
	{Name: "least_conn", Module: "http_upstream", Ctx: CtxUpstream | CtxStreamUpstream, Args: "0", Doc: "Balance to the peer with the fewest active connections relative to its weight; an open WebSocket tunnel counts for its whole life. Ties go round robin.",
		Apply: func(p *parser, d *Directive) error { return p.setPolicy(d, "least_conn") }},
	{Name: "ip_hash", Module: "http_upstream", Ctx: CtxUpstream, Args: "0", Doc: "Balance by client address with nginx's function (first three octets of IPv4, the whole IPv6 address), so clients map as nginx maps them.",
		Apply: func(p *parser, d *Directive) error { return p.setPolicy(d, "ip_hash") }},
	{Name: "hash", Module: "http_upstream", Ctx: CtxUpstream | CtxStreamUpstream, Args: "1-2", Doc: "Balance by a key (text and variables); with consistent, on nginx's ketama ring (crc32, 160 points per weight), so adding a peer moves about 1/N of the keys.",
		Apply: func(p *parser, d *Directive) error {
			if len(d.Args) == 2 && d.Args[1] != "consistent" {
				return d.errorf("invalid parameter %q", d.Args[1])
			}
			t, err := p.compile(d, d.Args[0])
			if err != nil {
				return err
			}
			p.ups.HashKey = t
			p.ups.PolicyArgs = d.Args
			return p.setPolicy(d, "hash")
		}},
	{Name: "random", Module: "http_upstream", Ctx: CtxUpstream | CtxStreamUpstream, Args: "0-2", Doc: "Balance to a peer drawn by weight; with two, the one of two draws with fewer connections (least_conn, the only method).",
		Apply: func(p *parser, d *Directive) error {
			if len(d.Args) > 0 && d.Args[0] != "two" || len(d.Args) > 1 && d.Args[1] != "least_conn" {
				return d.errorf("invalid parameter %q", strings.Join(d.Args, " "))
			}
			p.ups.PolicyArgs = d.Args
			return p.setPolicy(d, "random")
		}},
	{Name: "health_check", Module: "sluice", Ctx: CtxUpstream, Args: "0+", Default: "interval=5s fails=3 passes=2 uri=/health timeout=2s match_status=200-399 (scheme: as proxy_pass)",
		Doc:   "Active health checks: every peer is probed with GET uri (on port=N if given) every interval; fails failed probes in a row take it out, passes good ones bring it back. A new peer takes requests only after its first probe passed (start and reload wait for it, at most timeout). Peers marked down are not probed. The probes speak TLS when a location proxies to the group with https://, plain HTTP otherwise; scheme=http or scheme=https says which instead (scheme=http for a plain status port next to a TLS one, with port=). Over TLS the certificate is not verified, as proxy_ssl_verify's default, and the peer's host name is sent as SNI; a group used by fastcgi_pass cannot have a health_check (the configuration is refused). While every peer of the group fails its check, requests to it get 502, as in NGINX Plus; when peers fail passively (max_fails), the next request tries them again (nginx-differences.md, 22).",
		Diff:  "sluice only (NGINX Plus has health_check in a location); here it belongs to the upstream block, so every location using the group shares one prober.",
		Apply: (*parser).healthCheck},
	{Name: "sticky", Module: "sluice", Ctx: CtxUpstream, Args: "2+", Doc: "sticky cookie NAME [expires=T|max] [path=/] [domain=D] [secure] [httponly] [samesite=strict|lax|none]: the first response sets a cookie naming the peer (an opaque id, not its address); later requests and WebSocket upgrades carrying it go to that peer while it is available, otherwise balancing picks another and the cookie is replaced.",
		Diff:  "sluice only (NGINX Plus has sticky cookie); for socket.io and other protocols whose polling and WebSocket requests must reach one backend.",
		Apply: (*parser).sticky},
	{Name: "proxy_tunnel_drain_timeout", Module: "sluice", Ctx: CtxUpstream, Args: "1", Default: "none",
		Doc:  "After a reload that removes a peer from this upstream block or marks it down, the peer gets no new requests and its open tunnels (WebSockets) are closed once this time has passed; without it they stay until they end.",
		Diff: "sluice only.",
		Apply: func(p *parser, d *Directive) error {
			t, err := ParseDuration(d.Args[0])
			if err != nil || t <= 0 {
				return d.errorf("invalid value %q in \"proxy_tunnel_drain_timeout\" directive", d.Args[0])
			}
			p.ups.DrainTimeout = t
			return nil
		}},
	{Name: "resolver", Module: "http_core", Ctx: ctxHSL | CtxUpstream, Args: "1+", Doc: "resolver ADDRESS ... [valid=T] [ipv4=off] [ipv6=off]: DNS servers used to re-resolve upstream servers marked resolve, every valid (default 30s); ipv6=off leaves out AAAA answers (IPv6 peers), ipv4=off A answers. In http or an upstream block. At any level (http, server, location) it also lets proxy_pass with variables connect to a host name made at request time, as in nginx; without one such a request gets 502 (\"no resolver defined\"), so a client's Host cannot steer sluice to any name it likes.",
		Diff:  "answers are re-queried every valid (default 30s) rather than after each record's TTL; status_zone= is accepted and ignored; names in proxy_pass with variables are looked up through the system resolver, not the listed servers.",
		Apply: (*parser).resolver},
	{Name: "map", Module: "http_map", Ctx: CtxHTTP | CtxStream, Args: "2", Block: true, Doc: "Defines a variable whose value depends on another (default, hostnames, volatile, ~regex keys).",
		Apply: (*parser).mapBlock},
}

func (p *parser) resolver(d *Directive) error {
	r := &Resolver{Valid: 30 * time.Second, Pos: d.Pos}
	for _, a := range d.Args {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case ok && k == "valid":
			t, err := ParseDuration(v)
			if err != nil || t <= 0 {
				return d.errorf("invalid parameter %q", a)
			}
			r.Valid = t
		case ok && (k == "ipv4" || k == "ipv6"):
			if v != "on" && v != "off" {
				return d.errorf("invalid parameter %q", a)
			}
			if k == "ipv4" {
				r.NoIPv4 = v == "off"
			} else {
				r.NoIPv6 = v == "off"
			}
		case ok && k == "status_zone":
		case ok:
			return d.errorf("invalid parameter %q", a)
		default:
			addr := a
			if _, _, err := net.SplitHostPort(addr); err != nil {
				addr = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
			}
			r.Addrs = append(r.Addrs, addr)
		}
	}
	if len(r.Addrs) == 0 {
		return d.errorf("no address in \"resolver\" directive")
	}
	if r.NoIPv4 && r.NoIPv6 {
		return d.errorf("\"ipv4\" and \"ipv6\" cannot both be \"off\"")
	}
	switch {
	case p.ups != nil:
		p.ups.Resolver = r
	case p.srv == nil && p.http != nil:
		p.http.Resolver = r
	}
	if p.ups == nil && p.conf != nil {
		p.conf.HasResolver.set(true)
	}
	return nil
}

func (p *parser) sticky(d *Directive) error {
	if p.ups.Sticky != nil {
		return p.dup(d)
	}
	if d.Args[0] != "cookie" {
		return d.errorf("invalid sticky method %q, only \"cookie\" is supported", d.Args[0])
	}
	st := &Sticky{Name: d.Args[1], Path: "/"}
	if st.Name == "" || strings.ContainsAny(st.Name, "=;, \t\"") {
		return d.errorf("invalid cookie name %q", st.Name)
	}
	for _, a := range d.Args[2:] {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "expires":
			if v == "max" {
				st.Expires = -1
			} else if st.Expires, err = ParseDuration(v); err == nil && st.Expires <= 0 {
				err = strconv.ErrRange
			}
		case "path":
			st.Path = v
		case "domain":
			st.Domain = v
		case "secure":
			st.Secure = true
		case "httponly":
			st.HTTPOnly = true
		case "samesite":
			st.SameSite = strings.ToLower(v)
			if st.SameSite != "strict" && st.SameSite != "lax" && st.SameSite != "none" {
				err = strconv.ErrSyntax
			}
		default:
			return d.errorf("invalid parameter %q", a)
		}
		if err != nil {
			return d.errorf("invalid parameter %q", a)
		}
	}
	p.ups.Sticky = st
	return nil
}

func (p *parser) healthCheck(d *Directive) error {
	if p.ups.HealthCheck != nil {
		return p.dup(d)
	}
	hc := &HealthCheck{Interval: 5 * time.Second, Timeout: 2 * time.Second, Fails: 3, Passes: 2, URI: "/health", StatusLo: 200, StatusHi: 399}
	for _, a := range d.Args {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "interval":
			hc.Interval, err = ParseDuration(v)
			if hc.Interval <= 0 {
				err = strconv.ErrRange
			}
		case "timeout":
			hc.Timeout, err = ParseDuration(v)
			if hc.Timeout <= 0 {
				err = strconv.ErrRange
			}
		case "fails":
			hc.Fails, err = strconv.Atoi(v)
			if hc.Fails < 1 {
				err = strconv.ErrRange
			}
		case "passes":
			hc.Passes, err = strconv.Atoi(v)
			if hc.Passes < 1 {
				err = strconv.ErrRange
			}
		case "uri":
			hc.URI = v
			if !strings.HasPrefix(v, "/") {
				err = strconv.ErrSyntax
			}
		case "port":
			hc.Port, err = strconv.Atoi(v)
			if hc.Port < 1 || hc.Port > 65535 {
				err = strconv.ErrRange
			}
		case "scheme":
			if v != "http" && v != "https" {
				err = strconv.ErrSyntax
			}
			hc.TLS, hc.SchemeSet = v == "https", true
		case "match_status":
			lo, hi, found := strings.Cut(v, "-")
			hc.StatusLo, err = strconv.Atoi(lo)
			hc.StatusHi = hc.StatusLo
			if found && err == nil {
				hc.StatusHi, err = strconv.Atoi(hi)
			}
			if err == nil && (hc.StatusLo < 100 || hc.StatusHi > 599 || hc.StatusLo > hc.StatusHi) {
				err = strconv.ErrRange
			}
		default:
			return d.errorf("invalid parameter %q", a)
		}
		if err != nil {
			return d.errorf("invalid parameter %q", a)
		}
	}
	p.ups.HealthCheck = hc
	return nil
}

func (p *parser) setPolicy(d *Directive, name string) error {
	if p.ups.Policy != "" {
		return d.errorf("load balancing method redefined")
	}
	p.ups.Policy = name
	return nil
}

func (p *parser) upstreamServer(d *Directive) error {
	if d.Block != nil || len(d.Args) == 0 {
		return d.errorf("invalid \"server\" directive in upstream")
	}
	s := UpstreamServer{Addr: d.Args[0], Weight: 1, MaxFails: 1, FailTimeout: 10e9, Pos: d.Pos}
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
		case "slow_start":
			s.SlowStart, err = ParseDuration(v)
		case "resolve":
			s.Resolve = true
		default:
			return d.errorf("invalid parameter %q", a)
		}
		if err != nil {
			return d.errorf("invalid parameter %q", a)
		}
	}
	if _, _, err := net.SplitHostPort(s.Addr); err != nil && p.strm != nil && !strings.HasPrefix(s.Addr, "unix:") {
		return d.errorf("no port in upstream %q", s.Addr)
	}
	if err := resolveServer(d, &s); err != nil {
		return err
	}
	p.ups.Servers = append(p.ups.Servers, s)
	return nil
}

// resolveServer fills in the addresses of a server line: a name is resolved at load time (a server marked
// resolve may fail to resolve now: it is re-resolved while running).
func resolveServer(d *Directive, s *UpstreamServer) error {
	if path, ok := strings.CutPrefix(s.Addr, "unix:"); ok {
		if path == "" {
			return d.errorf("no path in the unix domain socket %q", s.Addr)
		}
		s.Addrs = []string{s.Addr}
	} else {
		if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			s.Addr = net.JoinHostPort(strings.Trim(s.Addr, "[]"), "80")
		}
		host, port, _ := net.SplitHostPort(s.Addr)
		if net.ParseIP(host) != nil {
			s.Addrs = []string{s.Addr}
		} else {
			if s.Resolve {
				return nil
			}
			ips, err := net.LookupHost(host)
			if err != nil || len(ips) == 0 {
				return d.errorf("host not found in upstream %q", d.Args[0])
			}
			for _, ip := range ips {
				s.Addrs = append(s.Addrs, net.JoinHostPort(ip, port))
			}
		}
	}
	return nil
}

// includeEntries reads the file an include inside a map block names, as directives (one entry each).
func (p *parser) includeEntries(e *Directive) ([]*Directive, error) {
	name := e.Args[0]
	if !filepath.IsAbs(name) {
		name = filepath.Join(p.confDir, name)
	}
	payload, err := p.parseFile(name)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) && ce.Line == 0 {
			return nil, e.errorf("%s: %s", name, ce.Msg)
		}
		return nil, err
	}
	c := payload.Config[0]
	return p.expand(&Block{raw: c.Parsed, file: c.File, configs: payload.Config}), nil
}

// entries expands the lines of a map, geo or split_clients block, reading each `include FILE;` in place as
// nginx does (relative to the configuration's directory).
func (p *parser) entries(d *Directive) ([]*Directive, error) {
	body := p.body(d)
	for i := 0; i < len(body); i++ {
		if e := body[i]; e.Name == "include" && len(e.Args) == 1 {
			inc, err := p.includeEntries(e)
			if err != nil {
				return nil, err
			}
			body = append(body[:i:i], append(inc, body[i+1:]...)...)
			i--
		}
	}
	return body, nil
}

// varBlock reads what map, geo and split_clients blocks share: the source (or key) template, the first of
// two arguments (nil with one), the $variable, the last, and the block's lines with includes read in place.
func (p *parser) varBlock(d *Directive) (src *vars.Template, target string, body []*Directive, err error) {
	if len(d.Args) == 2 {
		if src, err = p.compile(d, d.Args[0]); err != nil {
			return nil, "", nil, err
		}
	}
	last := d.Args[len(d.Args)-1]
	target, ok := strings.CutPrefix(last, "$")
	if !ok {
		return nil, "", nil, d.errorf("invalid variable name %q", last)
	}
	body, err = p.entries(d)
	return src, target, body, err
}

// declareBlock makes target the variable that m computes.
func (p *parser) declareBlock(d *Directive, target string, m vars.Computed) error {
	if _, err := p.tab.DeclareMap(target, m); err != nil {
		return d.errorf("%v", err)
	}
	return nil
}

func (p *parser) mapBlock(d *Directive) error {
	src, target, body, err := p.varBlock(d)
	if err != nil {
		return err
	}
	var entries []vars.MapEntry
	hostnames, volatile := false, false
	for _, e := range body {
		switch {
		case e.Name == "hostnames" && len(e.Args) == 0:
			hostnames = true
			continue
		case e.Name == "volatile" && len(e.Args) == 0:
			volatile = true
			continue
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
	return p.declareBlock(d, target, m)
}
