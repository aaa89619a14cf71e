package config

import (
	"time"

	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// gatewayDirectives are the directives ngx_http_fastcgi_module, ngx_http_uwsgi_module and ngx_http_scgi_module
// share: one family, declared once for the three prefixes, as the modules differ only in the wire protocol.
// Their values go to the Gateway of the prefix (LocConf.FastCGIOpts, UWSGIOpts, SCGIOpts); the one handler in
// internal/fastcgi reads them.
var gatewayDirectives = append(gatewayFamily("fastcgi", "http_fastcgi", func(lc *LocConf) *Gateway { return &lc.FastCGIOpts }),
	append(gatewayFamily("uwsgi", "http_uwsgi", func(lc *LocConf) *Gateway { return &lc.UWSGIOpts }),
		gatewayFamily("scgi", "http_scgi", func(lc *LocConf) *Gateway { return &lc.SCGIOpts })...)...)

// Gateway is one prefix's family of gateway directives at a level (fastcgi_*, uwsgi_* or scgi_*), merged field by
// field; CacheConf is compiled once merged.
type Gateway struct {
	Params                                   Opt[[]GatewayParam]
	ConnectTimeout, ReadTimeout, SendTimeout Opt[time.Duration]
	InterceptErrors                          Opt[bool]
	HideHeaders, PassHeaders                 Opt[[]string]
	IgnoreHeaders                            Opt[IgnoreHeaders]
	Buffering                                Opt[bool]
	NextUpstream                             Opt[[]string]
	PassReqHeaders, PassReqBody              Opt[bool]
	NextTries                                Opt[int]           // *_next_upstream_tries; 0: no limit
	NextTimeout                              Opt[time.Duration] // *_next_upstream_timeout; 0: no limit
	Bind                                     Opt[*Bind]         // *_bind; nil value: off
	SocketKeepalive                          Opt[bool]
	LimitRate                                Opt[int64] // bytes per second; 0: no limit
	ForceRanges                              Opt[bool]
	Spool                                    Spooling  // *_buffers, *_max_temp_file_size, *_temp_path (spool.go)
	Cache                                    CacheOpts // *_cache and its directives (cache.go)

	CacheConf *cache.Conf // *_cache*, nil without a cache
}

// GatewayDefaults are the values of the gateway directives that were never set.
var GatewayDefaults = struct {
	ConnectTimeout, ReadTimeout, SendTimeout time.Duration
}{60 * time.Second, 60 * time.Second, 60 * time.Second}

// GatewayParam is one fastcgi_param, uwsgi_param or scgi_param.
type GatewayParam struct {
	Name       string
	Value      *vars.Template
	IfNotEmpty bool
}

// gatewayFamily declares the shared directives of one prefix, whose values go to the Gateway opts picks.
func gatewayFamily(pre, module string, opts func(*LocConf) *Gateway) []Spec {
	app := "the application"
	bodyDoc := "Accepted; a body of known length streams to the application, a chunked one is spooled (php-fpm needs CONTENT_LENGTH)."
	if pre != "fastcgi" {
		bodyDoc = "Accepted; a body of known length streams to the application, a chunked one is spooled (CONTENT_LENGTH is sent first)."
	}
	return []Spec{
		{Name: pre + "_param", Module: module, Ctx: ctxHSL, Args: "2-3", Doc: "Sets a parameter passed to " + app + "; with if_not_empty only when the value is not empty. A level with any " + pre + "_param replaces the inherited list.",
			Apply: func(p *parser, d *Directive) error {
				gp := GatewayParam{Name: d.Args[0]}
				if len(d.Args) == 3 {
					if d.Args[2] != "if_not_empty" {
						return d.errorf("invalid parameter %q", d.Args[2])
					}
					gp.IfNotEmpty = true
				}
				t, err := p.compile(d, d.Args[1])
				if err != nil {
					return err
				}
				gp.Value = t
				add(&opts(p.conf).Params, gp)
				return nil
			}},
		{Name: pre + "_connect_timeout", Module: module, Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout for connecting to " + app + ".",
			Apply: func(p *parser, d *Directive) error { return p.setDur(d, &opts(p.conf).ConnectTimeout) }},
		{Name: pre + "_read_timeout", Module: module, Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout between two reads from " + app + " (504 when it passes before the response header).",
			Apply: func(p *parser, d *Directive) error { return p.setDur(d, &opts(p.conf).ReadTimeout) }},
		{Name: pre + "_send_timeout", Module: module, Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout between two writes to " + app + ".",
			Apply: func(p *parser, d *Directive) error { return p.setDur(d, &opts(p.conf).SendTimeout) }},
		{Name: pre + "_intercept_errors", Module: module, Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Application responses with status >= 300 are replaced by error_page when one matches.",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &opts(p.conf).InterceptErrors) }},
		{Name: pre + "_hide_header", Module: module, Ctx: ctxHSL, Args: "1", Doc: "Response header from " + app + " not passed to the client.",
			Apply: func(p *parser, d *Directive) error { add(&opts(p.conf).HideHeaders, d.Args[0]); return nil }},
		{Name: pre + "_pass_header", Module: module, Ctx: ctxHSL, Args: "1", Doc: "Passes a response header hidden by default (Status, X-Accel-*).",
			Apply: func(p *parser, d *Directive) error { add(&opts(p.conf).PassHeaders, d.Args[0]); return nil }},
		{Name: pre + "_buffering", Module: module, Ctx: ctxHSL, Args: "1", Default: "on", Doc: "on: a response is read from " + app + " at its own pace, ahead of a slower client, into " + pre + "_buffers and then a temporary file (" + pre + "_max_temp_file_size), so the application is free once it has answered; off: every chunk is sent to the client at once.",
			Diff:  "the first 32k are sent as they are read, flushed whenever the application pauses; see " + pre + "_buffers.",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &opts(p.conf).Buffering) }},
		{Name: pre + "_next_upstream", Module: module, Ctx: ctxHSL, Args: "1+", Default: "error timeout", Doc: "When the next server of an upstream group is tried: error, timeout (connecting), off.",
			Diff: "only a failed connect is retried (nothing was sent); invalid_header, http_500/503/403/404/429 and non_idempotent are accepted and not acted on.",
			Apply: func(p *parser, d *Directive) error {
				for _, a := range d.Args {
					switch a {
					case "error", "timeout", "invalid_header", "http_500", "http_503", "http_403", "http_404", "http_429", "non_idempotent", "off":
					default:
						return d.errorf("invalid value %q in \"%s\" directive", a, d.Name)
					}
				}
				opts(p.conf).NextUpstream.set(d.Args)
				return nil
			}},
		{Name: pre + "_next_upstream_tries", Module: module, Ctx: ctxHSL, Args: "1", Default: "0", Doc: "Most servers of an upstream group tried for one request (0: no limit).",
			Apply: func(p *parser, d *Directive) error { return p.setCount(d, &opts(p.conf).NextTries) }},
		{Name: pre + "_next_upstream_timeout", Module: module, Ctx: ctxHSL, Args: "1", Default: "0", Doc: "Time after which a request is no longer passed on to the next server of an upstream group (0: no limit).",
			Apply: func(p *parser, d *Directive) error { return p.setDur(d, &opts(p.conf).NextTimeout) }},
		{Name: pre + "_bind", Module: module, Ctx: ctxHSL, Args: "1-2", Default: "off", Doc: "Local address (an IP address, with a port if wanted) that TCP connections to " + app + " are made from, or off; variables are allowed, as for proxy_bind.",
			Diff:  "transparent is refused, as for proxy_bind; connections to unix sockets bind nothing; with variables, connections are not kept for other requests.",
			Apply: func(p *parser, d *Directive) error { return p.bind(d, &opts(p.conf).Bind) }},
		{Name: pre + "_socket_keepalive", Module: module, Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: SO_KEEPALIVE on TCP connections to " + app + ", with the system's probe timings.",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &opts(p.conf).SocketKeepalive) }},
		{Name: pre + "_limit_rate", Module: module, Ctx: ctxHSL, Args: "1", Default: "0", Doc: "Limits the speed of reading the response of " + app + ", in bytes per second, per request (0: no limit); as in nginx only while the response is buffered (" + pre + "_buffering on, no X-Accel-Buffering: no).",
			Diff:  "the response streams through as it is read, as for proxy_limit_rate.",
			Apply: func(p *parser, d *Directive) error { return p.limitRate(d, &opts(p.conf).LimitRate) }},
		{Name: pre + "_force_ranges", Module: module, Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Answers a single byte range of a 200 from " + app + " that has a Content-Length itself (206, or 416), as proxy_force_ranges does.",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &opts(p.conf).ForceRanges) }},
		{Name: pre + "_send_lowat", Module: module, Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted (nginx applies it on FreeBSD only)."},
		{Name: pre + "_pass_request_headers", Module: module, Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Pass the client's request headers as HTTP_* parameters.",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &opts(p.conf).PassReqHeaders) }},
		{Name: pre + "_pass_request_body", Module: module, Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Pass the client's request body to " + app + ".",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &opts(p.conf).PassReqBody) }},
		{Name: pre + "_buffer_size", Module: module, Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; response headers up to 64k are read."},
		{Name: pre + "_busy_buffers_size", Module: module, Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
		{Name: pre + "_temp_file_write_size", Module: module, Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; the temporary file is written as the upstream is read."},
		{Name: pre + "_ignore_headers", Module: module, Ctx: ctxHSL, Args: "1+", Doc: "Application response fields not acted on: X-Accel-Redirect (the response is passed as it is), X-Accel-Buffering, X-Accel-Limit-Rate, and for " + pre + "_cache X-Accel-Expires, Expires, Cache-Control, Set-Cookie (a response with it is then cached) and Vary; X-Accel-Charset, which then no longer names the charset the response is given (see charset).",
			Apply: func(p *parser, d *Directive) error { return p.ignoreHeaders(d, &opts(p.conf).IgnoreHeaders) }},
		{Name: pre + "_ignore_client_abort", Module: module, Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; a client that goes away ends the request to the application (off)."},
		{Name: pre + "_request_buffering", Module: module, Ctx: ctxHSL, Args: "1", Ignored: true, Doc: bodyDoc},
	}
}
