package config

import (
	"net/textproto"
	"strings"
)

// GRPCPass is a grpc_pass target: an address, a unix socket or an upstream group, over h2c (grpc://) or TLS
// (grpcs://).
type GRPCPass struct {
	Raw      string
	TLS      bool   // grpcs://
	Network  string // "tcp" or "unix"
	Addr     string // host:port, socket path, or the upstream group's name
	Upstream *Upstream
	Pos      Pos
}

// grpcDirectives are nginx's ngx_http_grpc_module directives that sluice implements.
var grpcDirectives = append([]Spec{
	{Name: "grpc_pass", Module: "http_grpc", Ctx: CtxLocation, Args: "1", Doc: "Passes gRPC requests (HTTP/2, from clients over TLS or h2c) to a gRPC server at [grpc://|grpcs://]host:port, unix:/path.sock or an upstream group; streams both ways, trailers (grpc-status) included.",
		Diff:  "variables in the address are not supported; not allowed in if. Requests are multiplexed over HTTP/2 connections kept to each peer (nginx opens one connection per request unless the upstream has keepalive).",
		Apply: (*parser).grpcPass},
	{Name: "grpc_set_header", Module: "http_grpc", Ctx: ctxHSL, Args: "2", Doc: "Sets a request header (gRPC metadata) sent to the gRPC server; an empty value removes it; Host sets :authority. A level with any grpc_set_header replaces the inherited list.",
		Apply: func(p *parser, d *Directive) error { return p.setHeader(d, &p.conf.GRPCSetHeaders) }},
	{Name: "grpc_hide_header", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Doc: "Response header from the gRPC server not passed to the client (Date, Server and X-Accel-* are hidden by default).",
		Apply: func(p *parser, d *Directive) error { add(&p.conf.GRPCHideHeaders, d.Args[0]); return nil }},
	{Name: "grpc_pass_header", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Doc: "Passes a response header hidden by default.",
		Apply: func(p *parser, d *Directive) error { add(&p.conf.GRPCPassHeaders, d.Args[0]); return nil }},
	{Name: "grpc_connect_timeout", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout for connecting to the gRPC server.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.GRPCConnectTimeout) }},
	{Name: "grpc_read_timeout", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout between two reads from the gRPC server (504 before the response header; a stream then ends). Long-lived streams with quiet periods need a longer one, as in nginx.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.GRPCReadTimeout) }},
	{Name: "grpc_send_timeout", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Accepted; the HTTP/2 flow control toward the gRPC server bounds what waits.",
		Diff:  "no separate timeout between two writes to the server.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.GRPCSendTimeout) }},
	{Name: "grpc_intercept_errors", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Responses with an HTTP status >= 300 are replaced by error_page when one matches (gRPC errors travel as grpc-status with HTTP 200 and are never intercepted).",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.GRPCInterceptErrors) }},
	{Name: "grpc_next_upstream", Module: "http_grpc", Ctx: ctxHSL, Args: "1+", Default: "error timeout", Doc: "When a request goes on to the next peer of an upstream group: error, timeout (connecting), off.",
		Diff: "only a failed connect is retried (nothing was sent); invalid_header, http_5xx/403/404/429 and non_idempotent are accepted and not acted on.",
		Apply: func(p *parser, d *Directive) error {
			nu, _, err := conditions(d, true)
			p.conf.GRPCNextUpstream.set(nu)
			return err
		}},
	{Name: "grpc_next_upstream_tries", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Default: "0", Doc: "Most peers tried for one request (0: no limit).",
		Apply: func(p *parser, d *Directive) error { return p.setCount(d, &p.conf.GRPCNextTries) }},
	{Name: "grpc_next_upstream_timeout", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Default: "0", Doc: "Accepted.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.GRPCNextTimeout) }},
	{Name: "grpc_buffer_size", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; responses stream through without a buffer of this size."},
	{Name: "grpc_socket_keepalive", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; connections to gRPC servers are kept alive with HTTP/2 PINGs after 30 s of silence."},
	{Name: "grpc_ignore_headers", Module: "http_grpc", Ctx: ctxHSL, Args: "1+", Ignored: true, Doc: "Accepted; X-Accel-* fields from gRPC servers are hidden and not acted on."},
	{Name: "grpc_ssl_session_reuse", Module: "http_grpc", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; connections to a grpcs:// server are few and long-lived (HTTP/2)."},
}, upstreamSSLDirectives("grpc", "http_grpc", "grpcs://", "host of grpc_pass", func(c *LocConf) *UpstreamSSL { return &c.GRPCSSL })...)

// proxySSLDirectives are proxy_ssl_* (beside proxy_ssl_session_reuse, in proxyDirectives).
var proxySSLDirectives = upstreamSSLDirectives("proxy", "http_proxy", "https://", "$proxy_host", func(c *LocConf) *UpstreamSSL { return &c.ProxySSL })

// setHeader adds one proxy_set_header or grpc_set_header line to the level's list.
func (p *parser) setHeader(d *Directive, o *Opt[[]HeaderSet]) error {
	t, err := p.compile(d, d.Args[1])
	if err != nil {
		return err
	}
	hs := HeaderSet{Name: d.Args[0], Key: textproto.CanonicalMIMEHeaderKey(d.Args[0]), Value: t}
	for _, prev := range o.V {
		hs.Again = hs.Again || prev.Key == hs.Key
	}
	add(o, hs)
	return nil
}

func (p *parser) grpcPass(d *Directive) error {
	if p.conf.Proxy != nil || p.conf.FastCGI != nil || p.conf.UWSGI != nil || p.conf.SCGI != nil || p.conf.GRPC != nil || p.conf.Handler != HandlerNone {
		return p.dup(d)
	}
	raw := d.Args[0]
	if strings.Contains(raw, "$") {
		return d.errorf("variables in \"grpc_pass\" are not supported yet")
	}
	gp := &GRPCPass{Raw: raw, Pos: d.Pos, Network: "tcp"}
	addr := raw
	if rest, ok := strings.CutPrefix(strings.ToLower(addr), "grpc://"); ok {
		addr = raw[len(raw)-len(rest):]
	} else if rest, ok := strings.CutPrefix(strings.ToLower(addr), "grpcs://"); ok {
		addr, gp.TLS = raw[len(raw)-len(rest):], true
	} else if strings.Contains(addr, "://") {
		e := d.errorf("invalid URL prefix in \"grpc_pass\" %q", raw)
		e.Hint = "write grpc://host:port, grpcs://host:port, host:port, unix:/path.sock or an upstream name"
		return e
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return d.errorf("no path in %q of the \"grpc_pass\" directive", raw)
		}
		gp.Network, addr = "unix", p.path(path)
	} else if strings.ContainsAny(addr, "/?#") {
		return d.errorf("invalid host in \"grpc_pass\" %q: a gRPC target has no URI", raw)
	}
	gp.Addr = addr
	p.conf.GRPC = gp
	p.conf.Handler = HandlerGRPC
	return nil
}

// resolveGRPC points grpc_pass at its upstream block, or checks its address.
func (p *parser) resolveGRPC(lc *LocConf) error {
	gp := lc.GRPC
	if gp == nil || gp.Network != "tcp" {
		return nil
	}
	u, err := p.resolvePass(gp.Raw, gp.Addr, gp.Pos, "probes over HTTP/1.1, but grpc_pass speaks HTTP/2 to it",
		"write grpc://host:port, for example grpc://127.0.0.1:50051")
	gp.Upstream = u
	return err
}
