package config

import (
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// fastcgiDirectives are nginx's ngx_http_fastcgi_module directives that sluice implements.
var fastcgiDirectives = []Spec{
	{Name: "fastcgi_pass", Module: "http_fastcgi", Ctx: CtxLocation, Args: "1", Doc: "Passes the request to a FastCGI application (php-fpm) at host:port, unix:/path.sock or an upstream group.",
		Diff:  "variables in the address are not supported yet.",
		Apply: (*parser).fastcgiPass},
	{Name: "fastcgi_param", Module: "http_fastcgi", Ctx: ctxHSL, Args: "2-3", Doc: "Sets a parameter passed to the application; with if_not_empty only when the value is not empty. A level with any fastcgi_param replaces the inherited list.",
		Apply: func(p *parser, d *Directive) error {
			fp := FastCGIParam{Name: d.Args[0]}
			if len(d.Args) == 3 {
				if d.Args[2] != "if_not_empty" {
					return d.errorf("invalid parameter %q", d.Args[2])
				}
				fp.IfNotEmpty = true
			}
			t, err := p.compile(d, d.Args[1])
			if err != nil {
				return err
			}
			fp.Value = t
			add(&p.conf.FastCGIParams, fp)
			return nil
		}},
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
	{Name: "fastcgi_connect_timeout", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout for connecting to the application.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.FastCGIConnectTimeout) }},
	{Name: "fastcgi_read_timeout", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout between two reads from the application (504 when it passes before the response header).",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.FastCGIReadTimeout) }},
	{Name: "fastcgi_send_timeout", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout between two writes to the application.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.FastCGISendTimeout) }},
	{Name: "fastcgi_keep_conn", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Keep connections to the application open and reuse them (FCGI_KEEP_CONN); idle ones close after 10s, at most 32 per address. POST, PATCH, LOCK and requests with a body that cannot be re-read always open a new connection, so php-fpm ending a worker (pm.max_requests) never fails them.",
		Diff:  "default on (nginx: off, and on needs an upstream keepalive); an idle kept connection holds a php-fpm worker, so sluice keeps few and closes them soon.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.FastCGIKeepConn) }},
	{Name: "fastcgi_intercept_errors", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Application responses with status >= 300 are replaced by error_page when one matches.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.FastCGIInterceptErrors) }},
	{Name: "fastcgi_hide_header", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Doc: "Response header from the application not passed to the client.",
		Apply: func(p *parser, d *Directive) error { add(&p.conf.FastCGIHideHeaders, d.Args[0]); return nil }},
	{Name: "fastcgi_pass_header", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Doc: "Passes a response header hidden by default (Status, X-Accel-*).",
		Apply: func(p *parser, d *Directive) error { add(&p.conf.FastCGIPassHeaders, d.Args[0]); return nil }},
	{Name: "fastcgi_buffering", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "off: every chunk from the application is sent to the client at once.",
		Diff:  "on never holds a whole body: data streams through a small buffer, flushed whenever the application pauses.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.FastCGIBuffering) }},
	{Name: "fastcgi_catch_stderr", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Doc: "A string that, in the application's stderr before the response header, turns the response into 502.",
		Apply: func(p *parser, d *Directive) error { add(&p.conf.FastCGICatchStderr, d.Args[0]); return nil }},
	{Name: "fastcgi_next_upstream", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1+", Default: "error timeout", Doc: "When the next server of an upstream group is tried: error, timeout (connecting), off.",
		Diff: "only a failed connect is retried (nothing was sent); invalid_header, http_500/503/403/404/429 and non_idempotent are accepted and not acted on.",
		Apply: func(p *parser, d *Directive) error {
			for _, a := range d.Args {
				switch a {
				case "error", "timeout", "invalid_header", "http_500", "http_503", "http_403", "http_404", "http_429", "non_idempotent", "off":
				default:
					return d.errorf("invalid value %q in \"fastcgi_next_upstream\" directive", a)
				}
			}
			p.conf.FastCGINextUpstream.set(d.Args)
			return nil
		}},
	{Name: "fastcgi_pass_request_headers", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Pass the client's request headers as HTTP_* parameters.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.FastCGIPassReqHeaders) }},
	{Name: "fastcgi_pass_request_body", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Pass the client's request body to the application.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.FastCGIPassReqBody) }},
	{Name: "fastcgi_buffer_size", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; response headers up to 64k are read."},
	{Name: "fastcgi_buffers", Module: "http_fastcgi", Ctx: ctxHSL, Args: "2", Ignored: true, Doc: "Accepted; responses stream through a fixed small buffer."},
	{Name: "fastcgi_busy_buffers_size", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "fastcgi_max_temp_file_size", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; responses are never spooled to disk."},
	{Name: "fastcgi_temp_path", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1-4", Ignored: true, Doc: "Accepted."},
	{Name: "fastcgi_ignore_headers", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1+", Doc: "Application response fields not acted on: X-Accel-Redirect (the response is passed as it is), X-Accel-Buffering, X-Accel-Limit-Rate, and for fastcgi_cache X-Accel-Expires, Expires, Cache-Control, Set-Cookie (a response with it is then cached) and Vary; X-Accel-Charset, which then no longer names the charset the response is given (see charset).",
		Apply: func(p *parser, d *Directive) error { return p.ignoreHeaders(d, &p.conf.FastCGIIgnoreHeaders) }},
	{Name: "fastcgi_ignore_client_abort", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; a client that goes away ends the request to the application (off)."},
	{Name: "fastcgi_request_buffering", Module: "http_fastcgi", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; a body of known length streams to the application, a chunked one is spooled (php-fpm needs CONTENT_LENGTH)."},
}

// FastCGIDefaults are the values of fastcgi directives that were never set.
var FastCGIDefaults = struct {
	ConnectTimeout, ReadTimeout, SendTimeout time.Duration
}{60 * time.Second, 60 * time.Second, 60 * time.Second}

// FastCGIPass is a parsed fastcgi_pass target.
type FastCGIPass struct {
	Raw      string
	Network  string // "tcp" or "unix"
	Addr     string // host:port or socket path
	Upstream *Upstream
	Pos      Pos
}

// FastCGIParam is one fastcgi_param.
type FastCGIParam struct {
	Name       string
	Value      *vars.Template
	IfNotEmpty bool
}

func (p *parser) fastcgiPass(d *Directive) error {
	if p.conf.Proxy != nil || p.conf.FastCGI != nil || p.conf.Handler != HandlerNone {
		return p.dup(d)
	}
	raw := d.Args[0]
	if strings.Contains(raw, "$") {
		return d.errorf("variables in \"fastcgi_pass\" are not supported yet")
	}
	fp := &FastCGIPass{Raw: raw, Pos: d.Pos}
	if path, ok := strings.CutPrefix(raw, "unix:"); ok {
		if path == "" {
			return d.errorf("no path in %q of the \"fastcgi_pass\" directive", raw)
		}
		fp.Network, fp.Addr = "unix", p.path(path)
	} else {
		if strings.Contains(raw, "://") {
			e := d.errorf("invalid host %q in \"fastcgi_pass\": no URL scheme is used", raw)
			e.Hint = "write host:port, unix:/path.sock or an upstream name"
			return e
		}
		fp.Network, fp.Addr = "tcp", raw
	}
	p.conf.FastCGI = fp
	p.conf.Handler = HandlerFastCGI
	return nil
}

// resolveFastCGI points fastcgi_pass at its upstream block, or checks its address.
func (p *parser) resolveFastCGI(lc *LocConf) error {
	fp := lc.FastCGI
	if fp == nil || fp.Network != "tcp" {
		return nil
	}
	u, err := p.resolvePass(fp.Raw, fp.Addr, fp.Pos, "probes over HTTP, but fastcgi_pass speaks FastCGI to it",
		"php-fpm listens on 127.0.0.1:9000 by default, or use unix:/run/php/php-fpm.sock")
	fp.Upstream = u
	return err
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
