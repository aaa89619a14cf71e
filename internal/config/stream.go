package config

import (
	"net"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// ctxStream is the stream block and its servers: where most stream directives may appear.
const ctxStream = CtxStream | CtxStreamServer

// Stream is the stream block: TCP and UDP proxying, nginx's stream module. Its upstream groups and log formats are a
// namespace of their own, as in nginx (an http upstream and a stream upstream may share a name).
type Stream struct {
	Servers    []*StreamServer
	Upstreams  map[string]*Upstream
	LogFormats map[string]*LogFormat
	Conf       *LocConf // stream-level values of the server-scope directives, merged into each server
	Srv        SrvConf  // stream-level ssl_* values
	// ConnZones are the stream block's limit_conn_zone: a namespace apart from http's, as nginx's zones of
	// another module (a name may not serve both)
	ConnZones []ZoneSpec
}

// StreamServer is one server block of the stream block: its listening sockets and where it passes connections.
// Conf holds what it shares with http's tables (allow/deny, access_log, proxy_connect_timeout,
// proxy_next_upstream_*, and the stream-only proxy_timeout, proxy_protocol, ssl_preread); Srv its ssl_* files.
type StreamServer struct {
	Listens []Listen
	Pass    *StreamPass
	Conf    *LocConf
	Srv     SrvConf
	Pos     Pos
}

// StreamPass is a stream server's proxy_pass: an upstream group of the stream block, an address, or a value
// with variables that names one of the two per session.
type StreamPass struct {
	Raw      string
	Template *vars.Template // set when the target has variables
	Addr     string         // host:port or unix:/path, when it names no group
	Upstream *Upstream
	Pos      Pos
}

// streamDirectives are nginx's stream core and stream proxy directives that http's tables do not already own.
var streamDirectives = []Spec{
	{Name: "stream", Module: "stream_core", Ctx: CtxMain, Args: "0", Block: true, Doc: "TCP and UDP proxying (nginx's stream module): server blocks that accept connections (or UDP datagrams, a session per client address and port) and pass them both ways to an upstream, with upstream groups, allow/deny, limit_conn, access logs, TLS termination and PROXY protocol. Reloads keep its sockets and its open sessions.",
		Diff:  "UDP sessions (`listen … udp`) end as nginx's and deliver no empty datagram after an upstream error; a reload lets them finish (nginx ends them at their next datagram); at most 4096 sessions per UDP socket.",
		Apply: (*parser).streamBlock},
	{Name: "proxy_responses", Module: "stream_proxy", Ctx: ctxStream, Args: "1", Default: "(unlimited)", Doc: "UDP: the replies expected per client datagram; the session ends once the upstream has sent that many for every datagram of the session (DNS: 1). Without it a UDP session ends after proxy_timeout of silence.",
		Apply: func(p *parser, d *Directive) error { return p.setCount(d, &p.conf.StreamResponses) }},
	{Name: "proxy_requests", Module: "stream_proxy", Ctx: ctxStream, Args: "1", Default: "0", Doc: "UDP: after this many datagrams from a client (0: no limit) its session takes no more; the next datagram from the same address and port starts a new session (to a peer chosen again), while the old one waits for its replies.",
		Apply: func(p *parser, d *Directive) error { return p.setCount(d, &p.conf.StreamRequests) }},
	{Name: "proxy_timeout", Module: "stream_proxy", Ctx: ctxStream, Args: "1", Default: "10m", Doc: "Closes a session when no byte moved in either direction for this long (traffic one way keeps it open, as in nginx); logged with $status 200 and \"connection timed out\" at info.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.StreamTimeout) }},
	{Name: "proxy_protocol", Module: "stream_proxy", Ctx: ctxStream, Args: "1", Default: "off", Doc: "Sends a PROXY protocol v1 header with the client's address to the upstream before the session's bytes.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.StreamProxyProtocol) }},
	{Name: "ssl_preread", Module: "stream_ssl_preread", Ctx: ctxStream, Args: "1", Default: "off", Doc: "Reads the TLS ClientHello before choosing the upstream (without terminating TLS), for $ssl_preread_server_name and $ssl_preread_alpn_protocols, so a map can route by SNI. The bytes read are passed on unchanged.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.SSLPreread) }},
}

// streamBlock reads the stream block.
func (p *parser) streamBlock(d *Directive) error {
	if p.strm != nil || p.cfg.Stream != nil {
		return p.dup(d)
	}
	st := &Stream{Upstreams: map[string]*Upstream{}, LogFormats: map[string]*LogFormat{}, Conf: &LocConf{}}
	p.strm, p.cfg.Stream = st, st
	outerConf, outerSC := p.conf, p.sc
	p.conf, p.sc = st.Conf, &st.Srv
	defer func() { p.strm, p.conf, p.sc = nil, outerConf, outerSC }()
	// maps define variables other directives use: build them first, as in http
	var maps, rest []*Directive
	for _, c := range p.body(d) {
		if c.Name == "map" {
			maps = append(maps, c)
		} else {
			rest = append(rest, c)
		}
	}
	if err := p.walk(maps, CtxStream); err != nil {
		return err
	}
	return p.walk(rest, CtxStream)
}

// streamServer reads a server block inside stream.
func (p *parser) streamServer(d *Directive) error {
	s := &StreamServer{Conf: &LocConf{}, Pos: d.Pos}
	p.ssrv, p.conf, p.sc = s, s.Conf, &s.Srv
	defer func() { p.ssrv, p.conf, p.sc = nil, p.strm.Conf, &p.strm.Srv }()
	if err := p.walk(p.body(d), CtxStreamServer); err != nil {
		return err
	}
	if len(s.Listens) == 0 {
		return d.errorf("no \"listen\" is defined for server")
	}
	if s.Pass == nil {
		e := d.errorf("no \"proxy_pass\" is defined for server")
		e.Hint = "sluice's stream servers proxy: add `proxy_pass ADDRESS|UPSTREAM;` (nginx would close every connection)"
		return e
	}
	p.strm.Servers = append(p.strm.Servers, s)
	return nil
}

// streamListen checks the parameters of a listen directive in a stream server: those of http (default_server,
// http2, quic) have no meaning there, and a udp socket takes none of those of a TCP one (keepAlive: so_keepalive
// was given), as nginx refuses them.
func (p *parser) streamListen(d *Directive, l Listen, keepAlive bool) error {
	if l.HTTP2 || l.QUIC || l.DefaultServer {
		for _, a := range d.Args[1:] {
			if a == "http2" || a == "quic" || a == "default_server" || a == "default" {
				return d.errorf("invalid parameter %q of the \"listen\" directive", a)
			}
		}
	}
	if l.UDP {
		for _, c := range []struct {
			name string
			set  bool
		}{{"backlog", l.Backlog != 0}, {"ssl", l.SSL}, {"so_keepalive", keepAlive}, {"proxy_protocol", l.ProxyProtocol}} {
			if c.set {
				return d.errorf("\"listen\" directive \"%s\" parameter is incompatible with \"udp\"", c.name)
			}
		}
	}
	p.ssrv.Listens = append(p.ssrv.Listens, l)
	return nil
}

// streamPass reads proxy_pass in a stream server: an upstream name, host:port or unix:/path, or a value with
// variables.
func (p *parser) streamPass(d *Directive) error {
	if p.ssrv.Pass != nil {
		return p.dup(d)
	}
	raw := d.Args[0]
	sp := &StreamPass{Raw: raw, Pos: d.Pos}
	if strings.Contains(raw, "://") {
		return d.errorf("invalid URL prefix in %q", raw)
	}
	if strings.Contains(raw, "$") {
		t, err := p.compile(d, raw)
		if err != nil {
			return err
		}
		sp.Template = t
	}
	p.ssrv.Pass = sp
	return nil
}

// streamNextUpstream reads proxy_next_upstream in stream: on or off.
func (p *parser) streamNextUpstream(d *Directive) error {
	if len(d.Args) != 1 {
		return d.errorf("invalid number of arguments in \"proxy_next_upstream\" directive")
	}
	return p.setBool(d, &p.conf.StreamNext)
}

// upstreamGroups is the map an upstream block being read belongs to (http's or stream's) and the context of its
// body.
func (p *parser) upstreamGroups() (map[string]*Upstream, Context) {
	if p.strm != nil {
		return p.strm.Upstreams, CtxStreamUpstream
	}
	return p.http.Upstreams, CtxUpstream
}

// logFormats is the log_format namespace of the block being read (http's or stream's).
func (p *parser) logFormats() map[string]*LogFormat {
	if p.strm != nil {
		return p.strm.LogFormats
	}
	return p.http.LogFormats
}

// finishStream merges the stream block's values into its servers and resolves proxy_pass targets.
func (p *parser) finishStream(st *Stream) error {
	for _, u := range st.Upstreams {
		for _, s := range u.Servers {
			if s.Resolve {
				return s.Pos.errorf("\"resolve\" is not supported in stream upstreams")
			}
		}
	}
	for _, s := range st.Servers {
		mergeOpts(s.Conf, st.Conf)
		if err := s.checkUDP(); err != nil {
			return err
		}
		for _, c := range s.Conf.LimitConns.V {
			if !hasZone(st.ConnZones, c.Zone) {
				return s.Pos.errorf("limit_conn: unknown zone %q (declare it with limit_conn_zone in stream)", c.Zone)
			}
		}
		mergeSSL(&s.Srv.SSL, &st.Srv.SSL)
		if err := pairCertificates(&s.Srv.SSL); err != nil {
			return err
		}
		for _, l := range s.Listens {
			if l.SSL && len(s.Srv.SSL.Certificates) == 0 {
				e := l.Pos.errorf("no \"ssl_certificate\" is defined for server in %s", p.cfg.File)
				e.Hint = "add ssl_certificate and ssl_certificate_key to the stream server"
				return e
			}
		}
		for _, c := range s.Srv.SSL.Certificates {
			if c.ACME || c.Internal {
				return c.Pos.errorf("\"ssl_certificate\" keywords acme and internal are not supported in stream")
			}
		}
		for _, t := range s.Conf.AccessLogs.V {
			if t.Path == "off" {
				continue
			}
			if _, ok := st.LogFormats[t.Format]; !ok {
				return s.Pos.errorf("unknown log format %q", t.Format)
			}
		}
		sp := s.Pass
		if sp.Template != nil {
			continue
		}
		if u, ok := st.Upstreams[sp.Raw]; ok {
			sp.Upstream = u
			continue
		}
		if strings.HasPrefix(sp.Raw, "unix:") {
			sp.Addr = sp.Raw
			continue
		}
		host, _, err := net.SplitHostPort(sp.Raw)
		if err != nil {
			return sp.Pos.errorf("no port in upstream %q", sp.Raw)
		}
		if net.ParseIP(host) == nil {
			if _, err := net.LookupHost(host); err != nil {
				return sp.Pos.errorf("host not found in upstream %q", sp.Raw)
			}
		}
		sp.Addr = sp.Raw
	}
	return nil
}

// checkUDP refuses, on a server with a udp listen, what reads or writes a byte stream: ssl_preread (nginx
// accepts it and does nothing) and proxy_protocol on (a header nginx would put before the first datagram).
func (s *StreamServer) checkUDP() error {
	for _, l := range s.Listens {
		if !l.UDP {
			continue
		}
		for _, c := range []struct {
			name string
			on   bool
		}{{"ssl_preread", s.Conf.SSLPreread.V}, {"proxy_protocol", s.Conf.StreamProxyProtocol.V}} {
			if c.on {
				e := l.Pos.errorf("\"%s\" is not supported with \"listen … udp\"", c.name)
				e.Hint = "serve the UDP address from a server of its own, without " + c.name
				return e
			}
		}
	}
	return nil
}

// HasUDP reports whether the server listens on a UDP socket.
func (s *StreamServer) HasUDP() bool {
	for _, l := range s.Listens {
		if l.UDP {
			return true
		}
	}
	return false
}

// StreamTimeouts returns a stream server's proxy_connect_timeout and proxy_timeout (nginx's defaults 60s and
// 10m when unset).
func (s *StreamServer) StreamTimeouts() (connect, idle time.Duration) {
	return s.Conf.ProxyConnectTimeout.Get(60 * time.Second), s.Conf.StreamTimeout.Get(10 * time.Minute)
}
