package config

import (
	"net"
	"regexp"
	"strconv"
	"strings"
)

// fastcgiDirectives are nginx's ngx_http_fastcgi_module directives that sluice implements.
var fastcgiDirectives = []Spec{
	{Name: "fastcgi_pass", Module: "http_fastcgi", Ctx: CtxLocation, Args: "1", Doc: "Passes the request to a FastCGI application (php-fpm) at host:port, unix:/path.sock or an upstream group.",
		Diff:  "variables in the address are not supported yet.",
		Apply: (*parser).fastcgiPass},
	{Name: "fastcgi_index", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Doc: "File name appended to a URI ending in \"/\" in $fastcgi_script_name.",
		Apply: func(p *parser, d *Directive) error { p.conf.FastCGIIndex.set(d.Args[0]); return nil }},
	{Name: "fastcgi_split_path_info", Module: "http_fastcgi", Ctx: CtxLocation, Args: "1", Doc: "Regex with two captures splitting $uri into $fastcgi_script_name and $fastcgi_path_info.",
		Apply: func(p *parser, d *Directive) error {
			re, err := regexp.Compile(d.Args[0])
			if err != nil {
				return d.errorf("invalid regex %q: %v", d.Args[0], err)
			}
			if re.NumSubexp() < 2 {
				e := d.errorf("fastcgi_split_path_info regex %q must have two captures", d.Args[0])
				e.Hint = `for example: fastcgi_split_path_info ^(.+\.php)(/.+)$;`
				return e
			}
			p.conf.FastCGISplitPathInfo.set(re)
			return nil
		}},
	{Name: "fastcgi_keep_conn", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Keep connections to the application open and reuse them (FCGI_KEEP_CONN); idle ones close after 10s, at most 32 per address. POST, PATCH, LOCK and requests with a body that cannot be re-read always open a new connection, so php-fpm ending a worker (pm.max_requests) never fails them.",
		Diff:  "default on (nginx: off, and on needs an upstream keepalive); an idle kept connection holds a php-fpm worker, so sluice keeps few and closes them soon.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.FastCGIKeepConn) }},
	{Name: "fastcgi_catch_stderr", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Doc: "A string that, in the application's stderr before the response header, turns the response into 502.",
		Apply: func(p *parser, d *Directive) error { add(&p.conf.FastCGICatchStderr, d.Args[0]); return nil }},
}

// uwsgiDirectives are nginx's ngx_http_uwsgi_module directives of its own; the ones it shares with FastCGI
// are gatewayDirectives.
var uwsgiDirectives = []Spec{
	{Name: "uwsgi_pass", Module: "http_uwsgi", Ctx: CtxLocation, Args: "1", Doc: "Passes the request to a uWSGI application (Django, Flask) at host:port, uwsgi://host:port, unix:/path.sock or an upstream group, in the uwsgi protocol; the application answers with an HTTP status line and header.",
		Diff:  "variables in the address are not supported yet; suwsgi:// (uwsgi over TLS) is refused. A new connection per request, as nginx.",
		Apply: func(p *parser, d *Directive) error { return p.gatewayPass(d, HandlerUWSGI, &p.conf.UWSGI) }},
	{Name: "uwsgi_modifier1", Module: "http_uwsgi", Ctx: ctxHSL, Args: "1", Default: "0", Doc: "The modifier1 field of the uwsgi packet header (0: a WSGI request).",
		Apply: func(p *parser, d *Directive) error { return p.setModifier(d, &p.conf.UWSGIModifier1) }},
	{Name: "uwsgi_modifier2", Module: "http_uwsgi", Ctx: ctxHSL, Args: "1", Default: "0", Doc: "The modifier2 field of the uwsgi packet header.",
		Apply: func(p *parser, d *Directive) error { return p.setModifier(d, &p.conf.UWSGIModifier2) }},
}

// scgiDirectives are nginx's ngx_http_scgi_module directives of its own; the rest are gatewayDirectives.
var scgiDirectives = []Spec{
	{Name: "scgi_pass", Module: "http_scgi", Ctx: CtxLocation, Args: "1", Doc: "Passes the request to an SCGI application (rTorrent's XML-RPC, Python apps behind an SCGI server) at host:port, unix:/path.sock or an upstream group; the application answers with a CGI header (Status, or an HTTP status line) and the body until it closes the connection.",
		Diff:  "variables in the address are not supported yet. A new connection per request, as nginx.",
		Apply: func(p *parser, d *Directive) error { return p.gatewayPass(d, HandlerSCGI, &p.conf.SCGI) }},
}

// setModifier parses uwsgi_modifier1 and uwsgi_modifier2: a number from 0 to 255 (one byte of the header).
func (p *parser) setModifier(d *Directive, o *Opt[int]) error {
	if o.Set {
		return p.dup(d)
	}
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 0 || n > 255 {
		return d.errorf("value must be between 0 and 255 in \"%s\" directive", d.Name)
	}
	o.set(n)
	return nil
}

// GatewayPass is a parsed fastcgi_pass, uwsgi_pass or scgi_pass target.
type GatewayPass struct {
	Raw      string
	Network  string // "tcp" or "unix"
	Addr     string // host:port or socket path
	Upstream *Upstream
	Pos      Pos
}

func (p *parser) fastcgiPass(d *Directive) error {
	return p.gatewayPass(d, HandlerFastCGI, &p.conf.FastCGI)
}

// gatewayPass parses fastcgi_pass or uwsgi_pass (the address, which sets the location's handler h) into dst.
// uwsgi_pass takes an optional uwsgi:// in front; suwsgi:// (uwsgi over TLS) is refused.
func (p *parser) gatewayPass(d *Directive, h Handler, dst **GatewayPass) error {
	if p.conf.Proxy != nil || p.conf.FastCGI != nil || p.conf.UWSGI != nil || p.conf.SCGI != nil || p.conf.Handler != HandlerNone {
		return p.dup(d)
	}
	raw := d.Args[0]
	if strings.Contains(raw, "$") {
		return d.errorf("variables in \"%s\" are not supported yet", d.Name)
	}
	addr := raw
	if h == HandlerUWSGI {
		if strings.HasPrefix(raw, "suwsgi://") {
			e := d.errorf("suwsgi:// in \"uwsgi_pass\" is not supported: sluice does not speak uwsgi over TLS")
			e.Hint = "let uWSGI listen on a unix socket or a local address and write uwsgi_pass unix:/path.sock or uwsgi://host:port"
			return e
		}
		addr = strings.TrimPrefix(raw, "uwsgi://")
	}
	gp := &GatewayPass{Raw: raw, Pos: d.Pos}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return d.errorf("no path in %q of the \"%s\" directive", raw, d.Name)
		}
		gp.Network, gp.Addr = "unix", p.path(path)
	} else {
		if strings.Contains(addr, "://") {
			e := d.errorf("invalid host %q in \"%s\": no URL scheme is used", raw, d.Name)
			e.Hint = "write host:port, unix:/path.sock or an upstream name"
			switch h {
			case HandlerUWSGI:
				e = d.errorf("invalid host in upstream %q", raw)
				e.Hint = "write host:port, uwsgi://host:port, unix:/path.sock or an upstream name"
			case HandlerSCGI:
				e = d.errorf("invalid host in upstream %q", raw) // (nginx 1.22 takes no scgi:// either)
				e.Hint = "write host:port, unix:/path.sock or an upstream name, without a scheme"
			}
			return e
		}
		gp.Network, gp.Addr = "tcp", addr
	}
	*dst = gp
	p.conf.Handler = h
	return nil
}

// resolveFastCGI points fastcgi_pass (uwsgi_pass, scgi_pass) at its upstream block, or checks its address.
func (p *parser) resolveFastCGI(lc *LocConf) error {
	for _, g := range [...]struct {
		pass          *GatewayPass
		why, portHint string
	}{
		{lc.FastCGI, "probes over HTTP, but fastcgi_pass speaks FastCGI to it",
			"php-fpm listens on 127.0.0.1:9000 by default, or use unix:/run/php/php-fpm.sock"},
		{lc.UWSGI, "probes over HTTP, but uwsgi_pass speaks uwsgi to it",
			"uWSGI listens where its socket option says, often 127.0.0.1:3031, or use unix:/run/uwsgi/app.sock"},
		{lc.SCGI, "probes over HTTP, but scgi_pass speaks SCGI to it",
			"write the port the SCGI server listens on, as rTorrent's network.scgi.open_port, or use unix:/run/rtorrent.sock"},
	} {
		if g.pass == nil || g.pass.Network != "tcp" {
			continue
		}
		u, err := p.resolvePass(g.pass.Raw, g.pass.Addr, g.pass.Pos, g.why, g.portHint)
		g.pass.Upstream = u
		if err != nil {
			return err
		}
	}
	return nil
}

// resolvePass finds the upstream block a fastcgi_pass or grpc_pass names, or checks that its address has a
// port and a host that resolves. A block with health_check cannot be one (its probes speak HTTP/1.1; why says
// what the pass speaks instead); portHint helps with a missing port.
func (p *parser) resolvePass(raw, addr string, pos Pos, why, portHint string) (*Upstream, error) {
	if u, ok := p.cfg.HTTP.Upstreams[addr]; ok {
		if u.HealthCheck != nil {
			e := pos.errorf("upstream %q has a health_check, which %s", raw, why)
			e.Hint = "remove health_check from the upstream block; a peer whose connections fail is still taken out for fail_timeout (max_fails)"
			return nil, e
		}
		return u, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		e := pos.errorf("no port in upstream %q", raw)
		e.Hint = portHint
		return nil, e
	}
	if net.ParseIP(host) == nil {
		if _, err := net.LookupHost(host); err != nil {
			return nil, pos.errorf("host not found in upstream %q", raw)
		}
	}
	return nil, nil
}
