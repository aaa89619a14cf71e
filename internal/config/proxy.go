package config

import (
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/route"
)

// proxyDirectives are nginx's ngx_http_proxy_module directives that sluice implements, plus sluice's WebSocket ones.
var proxyDirectives = []Spec{
	{Name: "proxy_pass", Module: "http_proxy", Ctx: CtxLocation | CtxStreamServer, Args: "1", Doc: "Proxies the request to http(s)://address[/uri] or an upstream group; nginx's URI replacement rules. In a stream server: ADDRESS (host:port, unix:/path) or an upstream group of the stream block, variables allowed (a value naming a stream upstream group uses it, else it is an address).",
		Apply: func(p *parser, d *Directive) error {
			if p.strm != nil {
				return p.streamPass(d)
			}
			return p.proxyPass(d)
		}},
	{Name: "proxy_http_version", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "1.1", Doc: "HTTP version toward the upstream.",
		Diff: "sluice always speaks HTTP/1.1 with keep-alive to upstreams (nginx defaults to 1.0 and Connection: close); \"1.0\" is accepted and sends Connection: close.",
		Apply: func(p *parser, d *Directive) error {
			if d.Args[0] != "1.0" && d.Args[0] != "1.1" {
				return d.errorf("invalid value %q in \"proxy_http_version\" directive, it must be \"1.0\" or \"1.1\"", d.Args[0])
			}
			p.conf.ProxyHTTPVersion.set(d.Args[0])
			return nil
		}},
	{Name: "proxy_set_header", Module: "http_proxy", Ctx: ctxHSL, Args: "2", Default: "Host $proxy_host", Doc: "Sets a request header sent upstream; an empty value removes it. A level with any proxy_set_header replaces the inherited list.",
		Diff:  "Connection and Upgrade are managed by sluice: WebSocket upgrades are tunnelled without them and keep-alive is used otherwise, so the tutorial's lines are accepted and change nothing harmful.",
		Apply: func(p *parser, d *Directive) error { return p.setHeader(d, &p.conf.ProxySetHeaders) }},
	{Name: "proxy_hide_header", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Doc: "Response header from the upstream not passed to the client.",
		Apply: func(p *parser, d *Directive) error { add(&p.conf.ProxyHideHeaders, d.Args[0]); return nil }},
	{Name: "proxy_ignore_headers", Module: "http_proxy", Ctx: ctxHSL, Args: "1+", Doc: "Upstream response fields not acted on: X-Accel-Redirect (the response is passed as it is) and X-Accel-Buffering; X-Accel-Expires, Expires, Cache-Control, Set-Cookie and Vary no longer decide whether and how long proxy_cache stores a response; X-Accel-Limit-Rate stops the pacing it asks for; X-Accel-Charset no longer names the charset the response is given (see charset).",
		Apply: func(p *parser, d *Directive) error { return p.ignoreHeaders(d, &p.conf.ProxyIgnoreHeaders) }},
	{Name: "proxy_pass_header", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Doc: "Passes a response header that is hidden by default (Server, Date, X-Accel-*).",
		Apply: func(p *parser, d *Directive) error { add(&p.conf.ProxyPassHeaders, d.Args[0]); return nil }},
	{Name: "proxy_pass_request_headers", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Pass the client's request headers upstream.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyPassReqHeaders) }},
	{Name: "proxy_pass_request_body", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Pass the client's request body upstream.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyPassReqBody) }},
	{Name: "proxy_set_body", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Doc: "Replaces the request body sent upstream.",
		Apply: func(p *parser, d *Directive) error { return p.setTemplate(d, &p.conf.ProxySetBody) }},
	{Name: "proxy_cookie_domain", Module: "http_proxy", Ctx: ctxHSL, Args: "1-2", Default: "off", Doc: "Rewrites the domain attribute of the upstream's Set-Cookie headers: off, or DOMAIN REPLACEMENT (a case-insensitive exact match, a leading dot in the cookie kept; ~regex, whose captures the replacement may use). Variables are allowed; the first rule that matches applies, and a level with its own rules does not inherit others.",
		Apply: func(p *parser, d *Directive) error { return p.cookieRewrite(d, &p.conf.ProxyCookieDomain, true) }},
	{Name: "proxy_cookie_path", Module: "http_proxy", Ctx: ctxHSL, Args: "1-2", Default: "off", Doc: "Rewrites the path attribute of the upstream's Set-Cookie headers: off, or PATH REPLACEMENT (the matching prefix is replaced; ~regex or ~*regex replace the whole value and may use captures). Variables are allowed; the first rule that matches applies.",
		Apply: func(p *parser, d *Directive) error { return p.cookieRewrite(d, &p.conf.ProxyCookiePath, false) }},
	{Name: "proxy_cookie_flags", Module: "http_proxy", Ctx: ctxHSL, Args: "1-4", Default: "off", Doc: "Adds or removes flags of the upstream's Set-Cookie headers: off, or COOKIE FLAG... with the flags secure, httponly, samesite=strict, samesite=lax, samesite=none, nosecure, nohttponly, nosamesite. COOKIE is a name (without case; variables allowed) or a ~regex (without case); the first rule whose cookie matches applies, and a level with its own rules does not inherit others. A changed Set-Cookie is written again with \"; \" between its attributes, as nginx does.",
		Diff:  "an unknown flag written without variables is refused at load (nginx accepts it and ignores it).",
		Apply: (*parser).cookieFlags},
	{Name: "proxy_redirect", Module: "http_proxy", Ctx: ctxHSL, Args: "1-2", Default: "default", Doc: "Rewrites Location and Refresh headers of upstream redirects: default, off, or from to.",
		Apply: (*parser).proxyRedirect},
	{Name: "proxy_connect_timeout", Module: "http_proxy", Ctx: ctxHSL | ctxStream, Args: "1", Default: "60s", Doc: "Timeout for connecting to the upstream (in stream too).",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.ProxyConnectTimeout) }},
	{Name: "proxy_read_timeout", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout between two reads from the upstream. Applies to tunnels only when set explicitly in the location (as nginx).",
		Diff:  "an idle WebSocket tunnel is not cut by the default 60s; see proxy_tunnel_timeout.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.ProxyReadTimeout) }},
	{Name: "proxy_send_timeout", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout between two writes to the upstream.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.ProxySendTimeout) }},
	{Name: "proxy_force_ranges", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Answers a single byte range of a proxied 200 that has a Content-Length itself (206, or 416), whatever the upstream's Accept-Ranges, whose Accept-Ranges is then not passed; for upstreams that ignore Range. If-Range must name the upstream's ETag.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyForceRanges) }},
	{Name: "proxy_buffering", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "on: a response is read from the upstream at its own pace, ahead of a slower client, into proxy_buffers and then a temporary file (proxy_max_temp_file_size), so the upstream connection is free once the response is in; off: every chunk is sent to the client at once.",
		Diff:  "the first 32k are sent as they are read, flushed whenever the upstream pauses; see proxy_buffers.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyBuffering) }},
	{Name: "proxy_request_buffering", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Accepted; request bodies are always streamed to the upstream.",
		Diff:  "sluice streams request bodies in both modes.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyRequestBuffering) }},
	{Name: "proxy_intercept_errors", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Upstream responses with status >= 300 are replaced by error_page when one matches.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyInterceptErrors) }},
	{Name: "proxy_next_upstream", Module: "http_proxy", Ctx: ctxHSL | ctxStream, Args: "1+", Default: "error timeout", Doc: "When a request goes on to the next peer: error, timeout, invalid_header, http_500, http_502, http_503, http_504, http_403, http_404, http_429, non_idempotent, off. A non-idempotent request (POST, LOCK, PATCH) is never passed on once sent unless non_idempotent is listed.",
		Diff: "request bodies are streamed, not buffered: once a try has read any of a request body, the request goes on to the next peer only if the body was at most client_body_buffer_size (16k), whose copy is kept while it streams; a larger one goes on only when the connection to the previous peer could not be made.",
		Apply: func(p *parser, d *Directive) error {
			if p.strm != nil {
				return p.streamNextUpstream(d)
			}
			return p.proxyNextUpstream(d)
		}},
	{Name: "proxy_next_upstream_tries", Module: "http_proxy", Ctx: ctxHSL | ctxStream, Args: "1", Default: "0", Doc: "Most peers tried for one request, or one stream session (0: no limit).",
		Apply: func(p *parser, d *Directive) error { return p.setCount(d, &p.conf.ProxyNextTries) }},
	{Name: "proxy_next_upstream_timeout", Module: "http_proxy", Ctx: ctxHSL | ctxStream, Args: "1", Default: "0", Doc: "Time after which a request (or a stream session) is no longer passed on to the next peer (0: no limit).",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.ProxyNextTimeout) }},
	{Name: "proxy_method", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Doc: "The method sent upstream instead of the client's; variables are allowed.",
		Diff: "a value that is not an HTTP token (empty, or with a space) is not sent: refused at load when it has no variables, else the request gets 500 and the error log says why; nginx sends it as it is. A POST or PUT made from a bodiless request carries Content-Length: 0 (nginx sends none).",
		Apply: func(p *parser, d *Directive) error {
			t, err := p.compile(d, d.Args[0])
			if err != nil {
				return err
			}
			if t.IsConst() && !httpsyntax.Token(t.String()) {
				return d.errorf("invalid method %q in \"proxy_method\" directive", d.Args[0])
			}
			p.conf.ProxyMethod.set(t)
			return nil
		}},
	{Name: "proxy_ignore_client_abort", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: a client that closes its connection does not end the request to the upstream, which goes on to its end; the response is logged as usual.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyIgnoreClientAbort) }},
	{Name: "proxy_socket_keepalive", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: SO_KEEPALIVE on connections to upstreams, with the system's probe timings.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxySocketKeepalive) }},
	{Name: "proxy_bind", Module: "http_proxy", Ctx: ctxHSL, Args: "1-2", Default: "off", Doc: "Local address (an IP address, with a port if wanted) that connections to upstreams are made from, or off; variables are allowed (an empty value binds nothing, an invalid one is logged and binds nothing).",
		Diff:  "transparent is refused: binding a non-local address needs CAP_NET_ADMIN and routing set up for it.",
		Apply: func(p *parser, d *Directive) error { return p.bind(d, &p.conf.ProxyBind) }},
	{Name: "proxy_ssl_session_reuse", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Resume TLS sessions with https:// upstreams (sessions are kept per location and upstream name).",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxySSLSessionReuse) }},
	{Name: "proxy_limit_rate", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "0", Doc: "Limits the speed of reading the upstream's response, in bytes per second, per request (0: no limit). As in nginx it applies only while the response is buffered (proxy_buffering on, no X-Accel-Buffering: no).",
		Diff:  "the response streams through as it is read; nothing is held beyond the usual small buffer.",
		Apply: func(p *parser, d *Directive) error { return p.limitRate(d, &p.conf.ProxyLimitRate) }},
	{Name: "proxy_websocket", Module: "sluice", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Tunnel WebSocket upgrades to proxied locations even without the Upgrade/Connection proxy_set_header lines.",
		Diff:  "sluice only; nginx tunnels only when the magic lines are present.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyWebsocket) }},
	{Name: "proxy_tunnel_timeout", Module: "sluice", Ctx: ctxHSL, Args: "1", Default: "1h", Doc: "Idle timeout of an upgraded (WebSocket) tunnel: no byte either way for this long closes it.",
		Diff:  "sluice only; nginx applies proxy_read_timeout (60s) to tunnels, which cuts idle WebSockets.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.ProxyTunnelTimeout) }},
}

// ClientBodyBufferDefault is client_body_buffer_size's default (nginx's on 64-bit): how much of a request body
// is held in memory, by FastCGI for a chunked body and by the proxy to send a body to a next peer.
const ClientBodyBufferDefault = 16 << 10

// ProxyDefaults are the values of proxy directives that were never set.
var ProxyDefaults = struct {
	ConnectTimeout, ReadTimeout, SendTimeout, TunnelTimeout time.Duration
	NextUpstream                                            NextUpstream
}{60 * time.Second, 60 * time.Second, 60 * time.Second, time.Hour, NextUpstream{Error: true, Timeout: true}}

// add appends to a list directive's value at this level (values from outer levels are merged in only later,
// and only when this level sets none).
func add[T any](o *Opt[[]T], v ...T) {
	o.V = append(o.V, v...)
	o.Set = true
}

// ignoreHeaders reads proxy_ignore_headers or fastcgi_ignore_headers (names without case, as nginx).
func (p *parser) ignoreHeaders(d *Directive, o *Opt[IgnoreHeaders]) error {
	names := map[string]IgnoreHeaders{
		"x-accel-redirect": IgnoreAccelRedirect, "x-accel-expires": IgnoreAccelExpires,
		"x-accel-limit-rate": IgnoreAccelLimitRate, "x-accel-buffering": IgnoreAccelBuffering,
		"x-accel-charset": IgnoreAccelCharset, "expires": IgnoreExpires, "cache-control": IgnoreCacheControl,
		"set-cookie": IgnoreSetCookie, "vary": IgnoreVary,
	}
	var v IgnoreHeaders
	for _, a := range d.Args {
		f, ok := names[strings.ToLower(a)]
		if !ok {
			return d.errorf("invalid value %q in \"%s\" directive", a, d.Name)
		}
		v |= f
	}
	o.set(v)
	return nil
}

// setCount sets o to the directive's argument, a number ≥ 0.
func (p *parser) setCount(d *Directive, o *Opt[int]) error {
	n, err := count(d)
	if err != nil {
		return err
	}
	o.set(n)
	return nil
}

// count reads the directive's argument as a number ≥ 0.
func count(d *Directive) (int, error) {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 0 {
		return 0, d.errorf("invalid value %q in \"%s\" directive", d.Args[0], d.Name)
	}
	return n, nil
}

func (p *parser) setBool(d *Directive, o *Opt[bool]) error {
	v, err := p.onOff(d)
	if err != nil {
		return err
	}
	o.set(v)
	return nil
}

func (p *parser) proxyPass(d *Directive) error {
	if p.conf.Proxy != nil || p.conf.Handler != HandlerNone {
		return p.dup(d)
	}
	raw := d.Args[0]
	pp := &ProxyPass{Raw: raw, Pos: d.Pos}
	var rest string
	switch {
	case strings.HasPrefix(raw, "http://"):
		pp.Scheme, rest = "http", raw[len("http://"):]
	case strings.HasPrefix(raw, "https://"):
		pp.Scheme, rest = "https", raw[len("https://"):]
	case strings.HasPrefix(raw, "$"):
		rest = raw
	default:
		return d.errorf("invalid URL prefix in %q", raw)
	}
	if strings.Contains(raw, "$") {
		t, err := p.compile(d, raw)
		if err != nil {
			return err
		}
		pp.Template = t
	} else {
		host := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			host, pp.URI, pp.HasURI = rest[:i], rest[i:], true
		}
		if host == "" {
			return d.errorf("no host in %q of the \"proxy_pass\" directive", raw)
		}
		if strings.HasPrefix(host, "unix:") {
			return d.errorf("proxy_pass to unix sockets is not supported yet")
		}
		pp.Host, pp.ProxyHost = host, host
		if h, port, err := net.SplitHostPort(host); err == nil {
			pp.Port = port
			if pp.Scheme == "http" && port == "80" || pp.Scheme == "https" && port == "443" {
				pp.ProxyHost = h
			}
		}
		if pp.HasURI && p.loc != nil {
			switch {
			case p.loc.Modifier == route.Regex || p.loc.Modifier == route.RegexCaseless:
				return d.errorf("\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block")
			case p.loc.Modifier == route.Named:
				return d.errorf("\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block")
			}
		}
	}
	p.conf.Proxy = pp
	p.conf.Handler = HandlerProxy
	return nil
}

func (p *parser) proxyNextUpstream(d *Directive) error {
	nu, _, err := conditions(d, true)
	p.conf.ProxyNextUpstream.set(nu)
	return err
}

// conditions parses the failures listed by proxy_next_upstream (next: non_idempotent is allowed, updating is
// accepted and means nothing without a cache, as in nginx) or proxy_cache_use_stale (updating is one).
func conditions(d *Directive, next bool) (nu NextUpstream, updating bool, err error) {
	for _, a := range d.Args {
		switch a {
		case "off":
			if len(d.Args) > 1 {
				return nu, false, d.errorf("\"off\" cannot be combined with other parameters of \"%s\"", d.Name)
			}
		case "error":
			nu.Error = true
		case "timeout":
			nu.Timeout = true
		case "invalid_header":
			nu.InvalidHeader = true
		case "non_idempotent":
			if !next {
				return nu, false, d.errorf("invalid value %q in \"%s\" directive", a, d.Name)
			}
			nu.NonIdempotent = true
		case "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429":
			code, _ := strconv.Atoi(a[5:])
			nu.Status = append(nu.Status, code)
		case "updating":
			updating = !next
		default:
			return nu, false, d.errorf("invalid value %q in \"%s\" directive", a, d.Name)
		}
	}
	return nu, updating, nil
}

// cookieRewrite parses proxy_cookie_domain and proxy_cookie_path: off, or a rule (see rewriteRule; a domain
// regex is caseless, as in nginx).
func (p *parser) cookieRewrite(d *Directive, o *Opt[[]CookieRewrite], domain bool) error {
	if len(d.Args) == 1 {
		if d.Args[0] != "off" {
			return d.errorf("invalid parameter %q of the %q directive", d.Args[0], d.Name)
		}
		*o = Opt[[]CookieRewrite]{Set: true}
		return nil
	}
	r, err := p.rewriteRule(d, domain)
	if err != nil {
		return err
	}
	add(o, r)
	return nil
}

// rewriteRule parses the FROM REPLACEMENT of proxy_redirect and proxy_cookie_*: FROM is a pattern (see pattern)
// whose regex captures REPLACEMENT may use.
func (p *parser) rewriteRule(d *Directive, caseless bool) (CookieRewrite, error) {
	r, err := p.pattern(d, d.Args[0], caseless, true)
	if err != nil {
		return r, err
	}
	t, err := p.compile(d, d.Args[1])
	if err != nil {
		return r, err
	}
	r.To = t
	return r, nil
}

// pattern parses what a rule matches: literal, with variables, or a regex (~; with star, ~* is one without
// case; caseless makes every regex caseless). The result has no replacement.
func (p *parser) pattern(d *Directive, from string, caseless, star bool) (CookieRewrite, error) {
	r := CookieRewrite{From: from}
	if rest, ok := strings.CutPrefix(r.From, "~"); ok {
		if r2, ok := strings.CutPrefix(rest, "*"); ok && star {
			rest, caseless = r2, true
		}
		if caseless {
			rest = "(?i)" + rest
		}
		re, err := regexp.Compile(rest)
		if err != nil {
			return r, d.errorf("invalid regex %q: %v", r.From, err)
		}
		if err := p.tab.AddCaptureNames(re); err != nil {
			return r, d.errorf("%v", err)
		}
		r.FromRe = re
	} else if strings.Contains(r.From, "$") {
		ft, err := p.compile(d, r.From)
		if err != nil {
			return r, err
		}
		r.FromT = ft
	}
	return r, nil
}

// cookieFlags parses proxy_cookie_flags: off, or COOKIE FLAG... (a cookie regex is caseless and ~* is no
// special form, as in nginx). Flags without variables are known now: an unknown one is refused; one with
// variables is looked up for each response, where an unknown value is ignored (nginx's debug log).
func (p *parser) cookieFlags(d *Directive) error {
	o := &p.conf.ProxyCookieFlags
	if len(d.Args) == 1 {
		if d.Args[0] != "off" {
			return d.errorf("invalid parameter %q", d.Args[0])
		}
		if o.Set {
			return p.dup(d)
		}
		*o = Opt[[]CookieFlags]{Set: true}
		return nil
	}
	if o.Set && len(o.V) == 0 {
		return p.dup(d) // after off
	}
	m, err := p.pattern(d, d.Args[0], true, false)
	if err != nil {
		return err
	}
	cf := CookieFlags{Cookie: m}
	for _, a := range d.Args[1:] {
		t, err := p.compile(d, a)
		if err != nil {
			return err
		}
		if !t.IsConst() {
			cf.Vars = append(cf.Vars, t)
			continue
		}
		f := ParseCookieFlag(a)
		if f == 0 {
			return d.errorf("invalid parameter %q", a)
		}
		cf.Flags |= f
	}
	add(o, cf)
	return nil
}

// bind parses proxy_bind (or fastcgi_bind, uwsgi_bind) into o: off, an IP address (with a port), or a value
// with variables; transparent is refused.
func (p *parser) bind(d *Directive, o *Opt[*Bind]) error {
	if len(d.Args) == 2 {
		if d.Args[1] != "transparent" {
			return d.errorf("invalid parameter %q", d.Args[1])
		}
		e := d.errorf("\"%s ... transparent\" is not supported", d.Name)
		e.Hint = "binding to a non-local address needs CAP_NET_ADMIN (IP_TRANSPARENT) and policy routing for the replies; sluice does not do it"
		return e
	}
	a := d.Args[0]
	if a == "off" {
		o.set(nil)
		return nil
	}
	t, err := p.compile(d, a)
	if err != nil {
		return err
	}
	if !t.IsConst() {
		o.set(&Bind{Template: t})
		return nil
	}
	addr, ok := ParseBind(a)
	if !ok {
		return d.errorf("invalid address %q", a)
	}
	o.set(&Bind{Addr: addr})
	return nil
}

// limitRate parses proxy_limit_rate (or fastcgi_limit_rate, uwsgi_limit_rate) into o: bytes per second.
func (p *parser) limitRate(d *Directive, o *Opt[int64]) error {
	n, err := ParseSize(d.Args[0])
	if err != nil {
		return d.errorf("\"%s\" directive invalid value %q", d.Name, d.Args[0])
	}
	o.set(n)
	return nil
}

// ParseBind parses a proxy_bind address: an IP address, or IP:port ([v6]:port); no host names (nginx's
// ngx_parse_addr_port).
func ParseBind(s string) (*net.TCPAddr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil && a.Zone() == "" {
		return &net.TCPAddr{IP: a.AsSlice()}, true
	}
	return nil, false
}

// ParseCookieFlag returns the bits of one proxy_cookie_flags flag (without case), 0 for an unknown one.
func ParseCookieFlag(s string) CookieFlag {
	switch strings.ToLower(s) {
	case "secure":
		return CookieSecure
	case "nosecure":
		return CookieNoSecure
	case "httponly":
		return CookieHTTPOnly
	case "nohttponly":
		return CookieNoHTTPOnly
	case "samesite=strict":
		return CookieSameSiteStrict
	case "samesite=lax":
		return CookieSameSiteLax
	case "samesite=none":
		return CookieSameSiteNone
	case "nosamesite":
		return CookieNoSameSite
	}
	return 0
}

func (p *parser) proxyRedirect(d *Directive) error {
	if len(d.Args) == 1 {
		switch d.Args[0] {
		case "off":
			p.conf.ProxyRedirect = Opt[[]Redirect]{Set: true}
			return nil
		case "default":
			add(&p.conf.ProxyRedirect, Redirect{Default: true})
			return nil
		}
		return d.errorf("invalid parameter %q of the \"proxy_redirect\" directive", d.Args[0])
	}
	r, err := p.rewriteRule(d, false)
	if err != nil {
		return err
	}
	add(&p.conf.ProxyRedirect, Redirect{From: r.From, FromT: r.FromT, FromRe: r.FromRe, To: r.To})
	return nil
}
