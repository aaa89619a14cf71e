package config

import (
	"errors"
	"github.com/sluice-proxy/sluice/internal/vars"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/h1"
	"github.com/sluice-proxy/sluice/internal/route"
)

// mainDirectives are the main and events contexts (nginx's core module).
var mainDirectives = []Spec{
	{Name: "events", Module: "core", Ctx: CtxMain, Args: "0", Block: true, Doc: "Connection processing settings; accepted, its directives have no effect (Go's runtime schedules connections).",
		Apply: func(p *parser, d *Directive) error { return p.walk(p.body(d), CtxEvents) }},
	{Name: "http", Module: "core", Ctx: CtxMain, Args: "0", Block: true, Doc: "The HTTP server configuration.",
		Apply: (*parser).httpBlock},
	{Name: "pid", Module: "core", Ctx: CtxMain, Args: "1", Default: "logs/sluice.pid", Doc: "File the process id is written to once the listeners are bound.",
		Apply: func(p *parser, d *Directive) error { p.cfg.Pid = p.path(d.Args[0]); return nil }},
	{Name: "worker_processes", Module: "core", Ctx: CtxMain, Args: "1", Default: "auto", Doc: "How many cores the one sluice process uses (GOMAXPROCS): N, or auto for every core; a reload applies a new value. A GOMAXPROCS environment variable wins over it.",
		Diff: "One process with N cores, not N processes. Without the directive sluice uses every core, where nginx runs 1 worker.",
		Apply: func(p *parser, d *Directive) error {
			if d.Args[0] == "auto" {
				p.cfg.WorkerProcesses = 0
				return nil
			}
			n, err := strconv.Atoi(d.Args[0])
			if err != nil || n < 1 {
				return d.errorf("invalid value %q in \"worker_processes\" directive (a number of cores, at least 1, or auto)", d.Args[0])
			}
			p.cfg.WorkerProcesses = n
			return nil
		}},
	{Name: "worker_priority", Module: "core", Ctx: CtxMain, Args: "1", Default: "0", Doc: "The scheduling priority (nice value, -20 to 20) of the sluice process, set at start and by a reload; a negative one needs the privilege to raise priority.",
		Diff: "nginx sets it on its workers; sluice is one process.",
		Apply: func(p *parser, d *Directive) error {
			n, err := strconv.Atoi(d.Args[0])
			if err != nil || n < -20 || n > 20 {
				return d.errorf("invalid number %q in \"worker_priority\" directive", d.Args[0])
			}
			p.cfg.WorkerPriority.set(n)
			return nil
		}},
	{Name: "worker_rlimit_core", Module: "core", Ctx: CtxMain, Args: "1", Doc: "The largest core file the process may write (RLIMIT_CORE), set at start and by a reload.",
		Apply: func(p *parser, d *Directive) error {
			n, err := vars.ParseSize(d.Args[0])
			if err != nil {
				return d.errorf("invalid value %q in \"worker_rlimit_core\" directive", d.Args[0])
			}
			p.cfg.WorkerRlimitCore.set(n)
			return nil
		}},
	{Name: "worker_shutdown_timeout", Module: "core", Ctx: CtxMain, Args: "1", Default: "none", Doc: "Upper bound on a graceful stop: open connections and tunnels are closed when it passes.",
		Diff: "Also applies after a reload to tunnels whose location or upstream group the new configuration removed (nginx: old workers); other tunnels stay open across reloads.",
		Apply: func(p *parser, d *Directive) error {
			v, err := p.duration(d, d.Args[0])
			p.cfg.WorkerShutdownTimeout = v
			return err
		}},
}

// coreDirectives are nginx's ngx_http_core_module directives that sluice implements.
var coreDirectives = []Spec{
	{Name: "server", Module: "http_core", Ctx: CtxHTTP | CtxUpstream | CtxStream | CtxStreamUpstream, Args: "0+", Either: true, Doc: "A virtual server (in http), or a peer (in upstream): ADDRESS [weight=N] [max_fails=N] [fail_timeout=T] [max_conns=N] [backup] [down] [slow_start=T] [resolve]; ADDRESS is ip:port, host:port (every address the name resolves to at load time is a peer; with resolve, re-resolved through the resolver while running) or unix:/path. slow_start (as NGINX Plus) ramps a recovered peer's weight up from 1 over T (round robin and least_conn; under least_conn, while a peer ramps up, peers are ranked by (connections+1)/current weight, as HAProxy does, so the returning peer takes its share of new connections rather than all of them).",
		Apply: func(p *parser, d *Directive) error {
			if p.ups != nil {
				return p.upstreamServer(d)
			}
			if len(d.Args) == 0 && d.Block != nil && p.strm != nil {
				return p.streamServer(d)
			}
			if len(d.Args) != 0 {
				return d.errorf("invalid number of arguments in \"server\" directive")
			}
			if d.Block == nil {
				return d.errorf("directive \"server\" has no opening \"{\"")
			}
			return p.serverBlock(d)
		}},
	{Name: "location", Module: "http_core", Ctx: CtxServer | CtxLocation, Args: "1-2", Block: true, Doc: "Settings for requests whose normalised URI matches; nginx's matching order.",
		Apply: (*parser).locationBlock},
	{Name: "listen", Module: "http_core", Ctx: CtxServer | CtxStreamServer, Args: "1+", Default: "*:80", Doc: "Address and port to accept on, with ssl, http2, quic (a UDP socket for HTTP/3, nginx 1.25 syntax), default_server, reuseport, backlog=, ipv6only=, proxy_protocol (v1 and v2 headers), so_keepalive=on|off|keepidle:keepintvl:keepcnt (TCP keep-alive probes on accepted connections; off by default, as in nginx); in stream, udp (a UDP socket: ssl, proxy_protocol, backlog and so_keepalive are refused with it, as in nginx).",
		Diff:  "unix: sockets, bind, setfib, accept_filter and fastopen are not supported yet (refused with an error); deferred, rcvbuf and sndbuf are accepted and ignored.",
		Apply: (*parser).listen},
	{Name: "server_name", Module: "http_core", Ctx: CtxServer, Args: "1+", Default: `""`, Doc: "Names of the virtual server: exact, *.wildcard, wildcard.*, .example.com, ~regex.",
		Apply: func(p *parser, d *Directive) error {
			for _, n := range d.Args {
				if re, ok := strings.CutPrefix(n, "~"); ok {
					// a regex name's named captures become variables ($sub in return, proxy_pass, …)
					if cre, err := regexp.Compile(re); err == nil {
						if err := p.tab.AddCaptureNames(cre); err != nil {
							return d.errorf("%v", err)
						}
					}
					p.srv.Names = append(p.srv.Names, n)
					continue
				}
				p.srv.Names = append(p.srv.Names, strings.ToLower(n))
			}
			return nil
		}},
	{Name: "root", Module: "http_core", Ctx: ctxHSL | CtxIf, Args: "1", Default: "html", Doc: "Directory that files are served from ($document_root); relative to the prefix.",
		Apply: func(p *parser, d *Directive) error {
			if p.conf.Root.Set {
				return p.dup(d)
			}
			if p.conf.Alias.Set {
				return d.errorf("\"root\" directive is duplicate, \"alias\" directive was specified earlier")
			}
			v := d.Args[0]
			if !strings.Contains(v, "$") {
				v = p.path(v)
			}
			t, err := p.compile(d, v)
			p.conf.Root.set(t)
			return err
		}},
	{Name: "index", Module: "http_core", Ctx: ctxHSL, Args: "1+", Default: "index.html", Doc: "Files tried, in order, for a request ending in \"/\".",
		Apply: func(p *parser, d *Directive) error {
			for _, a := range d.Args {
				t, err := p.compile(d, a)
				if err != nil {
					return err
				}
				add(&p.conf.Index, t)
			}
			return nil
		}},
	{Name: "types", Module: "http_core", Ctx: ctxHSL, Args: "0", Block: true, Doc: "File extension to MIME type map (the built-in mime.types is used when `include mime.types` finds no file). With no types block at all, html, gif and jpg are known, as in nginx.",
		Apply: func(p *parser, d *Directive) error {
			m := p.conf.Types.V
			if !p.conf.Types.Set || m == nil {
				m = map[string]string{}
			}
			for _, e := range p.body(d) {
				for _, ext := range e.Args {
					m[strings.ToLower(ext)] = e.Name
				}
			}
			p.conf.Types.set(m)
			return nil
		}},
	{Name: "default_type", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "text/plain", Doc: "MIME type of responses whose type the types map does not give.",
		Apply: func(p *parser, d *Directive) error { p.conf.DefaultType.set(d.Args[0]); return nil }},
	{Name: "error_page", Module: "http_core", Ctx: ctxHSL | CtxIf, Args: "2+", Doc: "URI (or redirect) shown for the given status codes; =code changes the status.",
		Apply: (*parser).errorPage},
	{Name: "recursive_error_pages", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: a request that error_page sent to another URI may be sent on again by that location's error_page when it fails too (up to the limit of 10 redirections, then 500); off: the first error page is the last, and a failure there gets the built-in page. The location where the error occurs decides.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.RecursiveErrorPages) }},
	{Name: "client_max_body_size", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "1m", Doc: "Largest request body accepted (413 above it); 0 = no limit.",
		Apply: func(p *parser, d *Directive) error {
			v, err := p.size(d, d.Args[0])
			p.conf.MaxBodySize.set(v)
			return err
		}},
	{Name: "client_body_timeout", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout between two reads of the request body.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.ClientBodyTimeout) }},
	{Name: "chunked_transfer_encoding", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "off: an HTTP/1.1 response whose length is not known beforehand is not chunked; its body ends when the connection closes (for clients that cannot read chunked bodies).",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.Chunked) }},
	{Name: "send_timeout", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "60s", Doc: "Timeout between two writes of the response to the client.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.SendTimeout) }},
	{Name: "limit_rate", Module: "http_core", Ctx: ctxHSL | CtxIf, Args: "1", Default: "0", Doc: "Limits the rate of each response to the client, in bytes per second (k, m suffixes; variables allowed; 0: none), as nginx paces it: about a second's worth goes at once, then the average holds. `set $limit_rate` and an upstream's X-Accel-Limit-Rate override it for the request.",
		Apply: func(p *parser, d *Directive) error { return p.setSizeTemplate(d, &p.conf.LimitRate) }},
	{Name: "limit_rate_after", Module: "http_core", Ctx: ctxHSL | CtxIf, Args: "1", Default: "0", Doc: "The part of a response sent before limit_rate applies (variables allowed).",
		Apply: func(p *parser, d *Directive) error { return p.setSizeTemplate(d, &p.conf.LimitRateAfter) }},
	{Name: "lingering_close", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "on",
		Doc:  "When a connection that closes after a response first reads and drops what the client still sends (so the response is not lost to a reset): `on` when more than the request has arrived (pipelined requests, the rest of a refused head), `always` whenever it closes, `off` never. A request body left unread is read and dropped in every mode, as nginx discards it. The location that answered decides; for a request refused before a server is chosen, the default server of the address.",
		Diff: "HTTP/1 only: HTTP/2 and HTTP/3 connections close as their libraries close them.",
		Apply: func(p *parser, d *Directive) error {
			m, ok := map[string]h1.LingerMode{"on": h1.LingerOn, "off": h1.LingerOff, "always": h1.LingerAlways}[d.Args[0]]
			if !ok {
				return d.errorf("invalid value %q in %q directive, it must be \"off\", \"on\" or \"always\"", d.Args[0], d.Name)
			}
			p.conf.LingeringClose.set(m)
			return nil
		}},
	{Name: "lingering_time", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "30s", Doc: "The longest a lingering close (lingering_close) reads and drops the client's bytes in all.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.LingeringTime) }},
	{Name: "lingering_timeout", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "5s", Doc: "The longest a lingering close waits for more bytes from the client; a client silent for that long is closed.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.LingeringTimeout) }},
	{Name: "keepalive_time", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "1h", Doc: "How long an HTTP/1 keep-alive connection serves requests: the first request after this time since it was accepted is its last (Connection: close).",
		Diff:  "read from the server, not the location; HTTP/2 and HTTP/3 connections are not ended by it.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.KeepaliveTime) }},
	{Name: "keepalive_timeout", Module: "http_core", Ctx: ctxHSL | CtxUpstream, Args: "1-2", Default: "75s (upstream: 60s)", Doc: "How long an idle keep-alive client connection stays open (0 disables keep-alive); in upstream, how long an idle upstream connection is kept.",
		Diff: "the second argument (Keep-Alive: timeout= header) is accepted and ignored; in a location it is not applied yet (the server's value is used).",
		Apply: func(p *parser, d *Directive) error {
			if p.ups != nil {
				v, err := p.duration(d, d.Args[0])
				p.ups.KeepaliveTimeout = v
				return err
			}
			return p.setDur(d, &p.conf.KeepaliveTimeout)
		}},
	{Name: "keepalive_requests", Module: "http_core", Ctx: ctxHSL | CtxUpstream, Args: "1", Default: "1000", Doc: "Requests served on one keep-alive connection (client, or upstream in an upstream block) before it is closed.",
		Diff: "in a location it is not applied yet (the server's value is used).",
		Apply: func(p *parser, d *Directive) error {
			n, err := count(d)
			if err != nil {
				return err
			}
			if p.ups != nil {
				p.ups.KeepaliveRequests = n
				return nil
			}
			p.conf.KeepaliveRequests.set(n)
			return nil
		}},
	{Name: "client_header_timeout", Module: "http_core", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "60s", Doc: "Timeout for reading the request line and headers.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.sc.ClientHeaderTimeout) }},
	{Name: "large_client_header_buffers", Module: "http_core", Ctx: CtxHTTP | CtxServer, Args: "2", Default: "4 8k", Doc: "Limit on request line and header size: number × size bytes in all; a longer request line gets 414, a larger head 400 (Request Header Or Cookie Too Large).",
		Diff: "sluice enforces the product as a total head limit rather than per-line buffers.",
		Apply: func(p *parser, d *Directive) error {
			n, err := strconv.Atoi(d.Args[0])
			if err != nil || n <= 0 {
				return d.errorf("invalid value %q in %q directive", d.Args[0], d.Name)
			}
			sz, err := p.size(d, d.Args[1])
			if err != nil {
				return err
			}
			p.sc.LargeHeaderBuffers.set(n * int(sz))
			return nil
		}},
	{Name: "http2", Module: "http_v2", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "off", Doc: "Enables HTTP/2 (nginx 1.25.1 syntax; `listen … http2` also works): on TLS listeners by ALPN, and on cleartext ones for clients that begin with HTTP/2's preface (h2c with prior knowledge, as gRPC clients do).",
		Diff: "nginx 1.22 speaks only HTTP/2 on a cleartext http2 port, so HTTP/1.x clients get no answer there; sluice serves both, told apart by HTTP/2's preface.",
		Apply: func(p *parser, d *Directive) error {
			v, err := p.onOff(d)
			p.sc.HTTP2.set(v)
			return err
		}},
	{Name: "http2_extended_connect", Module: "http_v2", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "on",
		Doc:  "Accepts WebSockets over HTTP/2 (RFC 8441 extended CONNECT, advertised with SETTINGS_ENABLE_CONNECT_PROTOCOL) on TLS listeners with HTTP/2; each stream is proxied to the upstream as an HTTP/1.1 WebSocket upgrade. With off the setting is not advertised and browsers open WebSockets over HTTP/1.1. The default server of the address decides.",
		Diff: "sluice only: nginx does not offer WebSockets over HTTP/2.",
		Apply: func(p *parser, d *Directive) error {
			v, err := p.onOff(d)
			p.sc.HTTP2ExtConnect.set(v)
			return err
		}},
	{Name: "http2_max_concurrent_streams", Module: "http_v2", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "128",
		Doc: "Most concurrent streams per HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS). Streams a client opens and resets faster than handlers finish are bounded too: a client that keeps more queued gets GOAWAY (rapid reset, CVE-2023-44487). The default server of the address decides.",
		Apply: func(p *parser, d *Directive) error {
			n, err := strconv.Atoi(d.Args[0])
			if err != nil || n < 1 {
				return d.errorf("invalid value %q in %q directive", d.Args[0], d.Name)
			}
			p.sc.HTTP2MaxStreams.set(n)
			return nil
		}},
	{Name: "http3", Module: "http_v3", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "on", Doc: "Serves HTTP/3 on the server's `listen … quic` sockets (with github.com/quic-go/quic-go); the TLS listener on the same port then announces it with Alt-Svc. WebSockets over HTTP/3 (RFC 9220 extended CONNECT) are bridged like those over HTTP/2.",
		Diff: "Alt-Svc is added automatically; an `add_header Alt-Svc` of your own is sent as well.",
		Apply: func(p *parser, d *Directive) error {
			v, err := p.onOff(d)
			p.sc.HTTP3.set(v)
			return err
		}},
	{Name: "merge_slashes", Module: "http_core", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "on", Doc: "Merge repeated slashes in the URI before matching.",
		Diff: "off is not applied yet: repeated slashes are always merged, so that what location matching sees is what is sent upstream.",
		Apply: func(p *parser, d *Directive) error {
			v, err := p.onOff(d)
			p.sc.MergeSlashes.set(v)
			return err
		}},
	{Name: "underscores_in_headers", Module: "http_core", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "off", Doc: "Pass request headers whose names contain an underscore (api_key) to upstreams and FastCGI applications; off drops them, so that X_Real_IP cannot pose as X-Real-IP. With on, an upstream that maps _ to - (CGI, WSGI) may take Transfer_Encoding or Content_Length for framing headers: turn it on only for upstreams that keep the two apart.",
		Diff:  "such headers are not visible as $http_ variables either way.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.UnderscoresInHeaders) }},
	{Name: "ignore_invalid_headers", Module: "http_core", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "on", Doc: "Accepted with on. A header name that is not a token is refused with 400 (see docs/security.md); off, which would pass such names on, is refused.",
		Apply: func(p *parser, d *Directive) error {
			v, err := p.onOff(d)
			if err == nil && !v {
				return d.errorf("\"ignore_invalid_headers off\" is not supported: sluice refuses a request whose header name is not a token (400)")
			}
			return err
		}},
	{Name: "proxy_headers_hash_max_size", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted (nginx's hash table sizing; sluice needs none)."},
	{Name: "proxy_headers_hash_bucket_size", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted (nginx's hash table sizing; sluice needs none)."},
	{Name: "absolute_redirect", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Redirects sluice sends (return, rewrite … redirect, error_page with a URI, the `/dir` → `/dir/` redirect, a Location proxy_redirect rewrote) carry an absolute URL; off leaves a relative one as it is.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.AbsoluteRedirect) }},
	{Name: "port_in_redirect", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "An absolute redirect names the port the request arrived on, unless it is the scheme's default.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.PortInRedirect) }},
	{Name: "server_name_in_redirect", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "An absolute redirect names the server's first server_name instead of the request's host ($host).",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ServerNameInRedirect) }},
	{Name: "server_tokens", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Show the version in the Server header and error pages (off: \"sluice\" only).",
		Apply: func(p *parser, d *Directive) error {
			if d.Args[0] == "build" {
				p.conf.ServerTokens.set(true)
				return nil
			}
			v, err := p.onOff(d)
			p.conf.ServerTokens.set(v)
			return err
		}},
}

// setDur parses a directive's first argument as an nginx time value into o.
func (p *parser) setDur(d *Directive, o *Opt[time.Duration]) error {
	v, err := p.duration(d, d.Args[0])
	if err != nil {
		return err
	}
	o.set(v)
	return nil
}

func (p *parser) httpBlock(d *Directive) error {
	if p.http != nil {
		return p.dup(d)
	}
	h := &HTTP{Upstreams: map[string]*Upstream{}, LogFormats: map[string]*LogFormat{}, Vars: p.tab, Loc: &LocConf{}}
	p.http, p.conf, p.sc = h, h.Loc, &h.Srv
	p.cfg.HTTP = h
	defer func() { p.conf, p.sc = nil, nil }()
	// maps (and geo, split_clients) define variables other directives use: build them first, in order (nginx
	// resolves them lazily).
	var maps, rest []*Directive
	for _, c := range p.body(d) {
		if c.Name == "map" || c.Name == "geo" || c.Name == "split_clients" {
			maps = append(maps, c)
		} else {
			rest = append(rest, c)
		}
	}
	if err := p.walk(maps, CtxHTTP); err != nil {
		return err
	}
	return p.walk(rest, CtxHTTP)
}

func (p *parser) serverBlock(d *Directive) error {
	s := &Server{Loc: &LocConf{}, Pos: d.Pos}
	p.srv, p.conf, p.sc, p.ops = s, s.Loc, &s.Srv, &s.Ops
	defer func() { p.srv, p.conf, p.sc, p.ops = nil, p.http.Loc, &p.http.Srv, nil }()
	if err := p.walk(p.body(d), CtxServer); err != nil {
		return err
	}
	if len(s.Listens) == 0 {
		s.Listens = []Listen{{Addr: "0.0.0.0:80", Pos: d.Pos}}
	}
	if len(s.Names) == 0 {
		s.Names = []string{""}
	}
	p.http.Servers = append(p.http.Servers, s)
	return nil
}

func (p *parser) locationBlock(d *Directive) error {
	l := &Location{Conf: &LocConf{}, Parent: p.loc, Pos: d.Pos}
	args := d.Args
	if len(args) == 2 {
		switch args[0] {
		case "=":
			l.Modifier = route.Exact
		case "^~":
			l.Modifier = route.PrefixNoRegex
		case "~":
			l.Modifier = route.Regex
		case "~*":
			l.Modifier = route.RegexCaseless
		default:
			return d.errorf("invalid location modifier %q", args[0])
		}
		l.Pattern = args[1]
	} else {
		a := args[0]
		switch {
		case strings.HasPrefix(a, "@"):
			l.Modifier, l.Pattern = route.Named, a[1:]
		case strings.HasPrefix(a, "="):
			l.Modifier, l.Pattern = route.Exact, a[1:]
		case strings.HasPrefix(a, "^~"):
			l.Modifier, l.Pattern = route.PrefixNoRegex, a[2:]
		case strings.HasPrefix(a, "~*"):
			l.Modifier, l.Pattern = route.RegexCaseless, a[2:]
		case strings.HasPrefix(a, "~"):
			l.Modifier, l.Pattern = route.Regex, a[1:]
		default:
			l.Pattern = a
		}
	}
	if l.Modifier == route.Regex || l.Modifier == route.RegexCaseless {
		// named captures become variables; route.Compile reports a bad regex with its own message
		if re, err := regexp.Compile(l.Pattern); err == nil {
			if err := p.tab.AddCaptureNames(re); err != nil {
				return d.errorf("%v", err)
			}
		}
	}
	parent, saveConf, saveOps := p.loc, p.conf, p.ops
	p.loc, p.conf, p.ops = l, l.Conf, &l.Ops
	defer func() { p.loc, p.conf, p.ops = parent, saveConf, saveOps }()
	if err := p.walk(p.body(d), CtxLocation); err != nil {
		return err
	}
	if parent != nil {
		parent.Children = append(parent.Children, l)
	} else {
		p.srv.Locations = append(p.srv.Locations, l)
	}
	return nil
}

func (p *parser) listen(d *Directive) error {
	l := Listen{Pos: d.Pos}
	addr := d.Args[0]
	if strings.HasPrefix(addr, "unix:") {
		return d.errorf("listen on unix sockets is not supported yet")
	}
	host, port := "", addr
	if strings.HasPrefix(addr, "[") {
		h, pt, err := net.SplitHostPort(addr)
		if err != nil {
			if strings.HasSuffix(addr, "]") {
				h, pt = strings.Trim(addr, "[]"), "80"
			} else {
				return d.errorf("invalid listen address %q", addr)
			}
		}
		host, port = h, pt
	} else if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		host, port = addr[:i], addr[i+1:]
	} else if _, err := strconv.Atoi(addr); err != nil {
		host, port = addr, "80"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return d.errorf("invalid port in %q of the \"listen\" directive", addr)
	}
	switch host {
	case "", "*":
		host = "0.0.0.0"
	case "localhost":
		host = "127.0.0.1"
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	} else if ips, err := net.LookupIP(host); err == nil && len(ips) > 0 {
		host = ips[0].String()
	} else {
		return d.errorf("host not found in %q of the \"listen\" directive", addr)
	}
	l.Addr = net.JoinHostPort(host, strconv.Itoa(n))
	l.IPv6Only = true // nginx's default: [::]:443 does not also take IPv4, so `listen 443; listen [::]:443;` works
	keepAliveSet := false
	for _, a := range d.Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "ssl":
			l.SSL = true
		case "udp":
			if p.strm == nil {
				return d.errorf("invalid parameter %q of the \"listen\" directive", a)
			}
			l.UDP = true
		case "http2":
			l.HTTP2 = true
		case "default_server", "default":
			l.DefaultServer = true
		case "reuseport":
			l.Reuseport = true
		case "backlog":
			b, err := strconv.Atoi(v)
			if err != nil {
				return d.errorf("invalid backlog %q", v)
			}
			l.Backlog = b
		case "ipv6only":
			l.IPv6Only = v == "on"
		case "proxy_protocol":
			l.ProxyProtocol = true
		case "quic":
			l.QUIC = true
		case "so_keepalive":
			ka, err := parseSoKeepalive(v)
			if err != nil {
				return d.errorf("invalid so_keepalive value %q: %v", a, err)
			}
			l.KeepAlive, keepAliveSet = ka, true
		case "deferred", "rcvbuf", "sndbuf":
		default:
			return d.errorf("invalid parameter %q of the \"listen\" directive", a)
		}
	}
	if p.strm != nil {
		return p.streamListen(d, l, keepAliveSet)
	}
	if l.QUIC && (l.SSL || l.HTTP2 || l.ProxyProtocol) {
		return d.errorf("\"quic\" cannot be combined with \"ssl\", \"http2\" or \"proxy_protocol\" in the \"listen\" directive")
	}
	p.srv.Listens = append(p.srv.Listens, l)
	return nil
}

// parseSoKeepalive reads listen's so_keepalive=on|off|[keepidle]:[keepintvl]:[keepcnt] (times in nginx's
// units, seconds by default; an empty field keeps the system's value, as does "on").
// setTemplate sets o to the directive's argument, which may have variables.
func (p *parser) setTemplate(d *Directive, o *Opt[*vars.Template]) error {
	t, err := p.compile(d, d.Args[0])
	if err != nil {
		return err
	}
	o.set(t)
	return nil
}

// setSizeTemplate sets o to a size that may have variables; one without is checked now.
func (p *parser) setSizeTemplate(d *Directive, o *Opt[*vars.Template]) error {
	if !strings.Contains(d.Args[0], "$") {
		if _, err := ParseSize(d.Args[0]); err != nil {
			return d.errorf("invalid value %q in \"%s\" directive", d.Args[0], d.Name)
		}
	}
	return p.setTemplate(d, o)
}

func parseSoKeepalive(v string) (net.KeepAliveConfig, error) {
	switch v {
	case "off":
		return net.KeepAliveConfig{}, nil
	case "on":
		return net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}, nil
	}
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return net.KeepAliveConfig{}, errors.New("want on, off or keepidle:keepintvl:keepcnt")
	}
	ka := net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}
	for i, f := range parts[:2] {
		if f == "" {
			continue
		}
		dur, err := ParseDuration(f)
		if err != nil || dur < time.Second {
			return ka, errors.New("bad time " + strconv.Quote(f))
		}
		if i == 0 {
			ka.Idle = dur
		} else {
			ka.Interval = dur
		}
	}
	if f := parts[2]; f != "" {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return ka, errors.New("bad count " + strconv.Quote(f))
		}
		ka.Count = n
	}
	return ka, nil
}

func (p *parser) errorPage(d *Directive) error {
	ep := ErrorPage{}
	args := d.Args
	uri := args[len(args)-1]
	args = args[:len(args)-1]
	if last := args[len(args)-1]; strings.HasPrefix(last, "=") {
		if last == "=" {
			ep.Override = -1
		} else {
			c, err := strconv.Atoi(last[1:])
			if err != nil {
				return d.errorf("invalid response code %q", last)
			}
			ep.Override = c
		}
		args = args[:len(args)-1]
	}
	if len(args) == 0 {
		return d.errorf("invalid number of arguments in \"error_page\" directive")
	}
	for _, a := range args {
		c, err := strconv.Atoi(a)
		if err != nil || c < 300 || c > 599 {
			return d.errorf("value %q must be between 300 and 599", a)
		}
		ep.Codes = append(ep.Codes, c)
	}
	t, err := p.compile(d, uri)
	if err != nil {
		return err
	}
	ep.URI = t
	add(&p.conf.ErrorPages, ep)
	return nil
}

// compileLinger makes lc's lingering_* settings the one value a connection points at (nil when none is set
// at any level: nginx's defaults apply).
func compileLinger(lc *LocConf) {
	if !lc.LingeringClose.Set && !lc.LingeringTime.Set && !lc.LingeringTimeout.Set {
		lc.Linger = nil
		return
	}
	lc.Linger = &h1.Linger{Mode: lc.LingeringClose.Get(h1.LingerOn), Time: lc.LingeringTime.Get(h1.DefaultLingerTime),
		Timeout: lc.LingeringTimeout.Get(h1.DefaultLingerTimeout)}
}
