// Package stream is sluice's stream module: TCP and UDP proxying with nginx 1.22's semantics. A connection
// accepted on a stream server's socket is checked against limit_conn and allow/deny, optionally has TLS
// terminated, is connected to a peer of its upstream group (the next peer on a failed connect, with passive
// health as in http) and then copies bytes both ways through internal/tunnel, half-closes included, until both
// sides are done or proxy_timeout passes. UDP datagrams are sessions per client address and port (udp.go).
// Every session is logged with nginx's stream variables ($status 200, 403, 502, 503, …).
//
// Sessions are tracked by the server's tunnel tracker, so a reload leaves them open on their upstream and a
// graceful stop waits for them; the balancing state of the stream block's groups lives in a Proxy and survives
// reloads as http's does.
package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-proxy/sluice/internal/access"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/observe"
	"github.com/sluice-proxy/sluice/internal/tunnel"
	"github.com/sluice-proxy/sluice/internal/upstream"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// nginx's stream status codes ($status).
const (
	StatusOK         = 200
	StatusBadRequest = 400
	StatusForbidden  = 403
	StatusInternal   = 500
	StatusBadGateway = 502
	StatusLimited    = 503 // limit_conn
)

// nginx's defaults for the phases before the tunnel (their directives are not implemented).
const (
	handshakeTimeout = 60 * time.Second // ssl_handshake_timeout
	prereadTimeout   = 30 * time.Second // preread_timeout
)

// Proxy runs stream sessions. It holds what outlives one configuration: the balancing state of the stream
// block's upstream groups (a namespace apart from http's), the tracker that counts open sessions, and the copy
// buffers. Safe for concurrent use.
type Proxy struct {
	log      *slog.Logger
	tracker  *tunnel.Tracker
	ups      *upstream.Set
	bufs     *tunnel.BufferPool
	poller   *tunnel.Poller
	hostname string
	// udpBufs lends the buffers UDP sessions read their upstream's datagrams into, only while one is there
	udpBufs sync.Pool
}

// New returns a Proxy whose sessions are counted by tracker and logged to log.
func New(tracker *tunnel.Tracker, log *slog.Logger) *Proxy {
	h, _ := os.Hostname()
	p := &Proxy{log: log, tracker: tracker, ups: upstream.NewSet(log), bufs: tunnel.NewBufferPool(0), poller: tunnel.NewPoller(), hostname: h}
	p.udpBufs.New = func() any { b := make([]byte, maxDatagram); return &b }
	return p
}

// Update installs the upstream groups of a new configuration's stream block (nil: none); peers that stay keep
// their failure state and connection counts.
func (p *Proxy) Update(c *Config) {
	groups := map[string]*config.Upstream{}
	if c != nil && c.st != nil {
		groups = c.st.Upstreams
	}
	p.ups.Update(groups)
}

// Close stops the groups' background work (re-resolution, health checks: none is enabled in stream today).
func (p *Proxy) Close() { p.ups.Close() }

// Config is the compiled stream block of one configuration: a server per listening address, with its access
// log files and TLS settings. Immutable once built.
type Config struct {
	st      *config.Stream
	servers map[string]*Server
	// bind is the sockets to listen on: as nginx, a wildcard address also takes the connections to specific
	// addresses of its port, whose servers are then found by the connection's local address
	bind map[string]config.Listen
	// shared marks the wildcard sockets that also serve specific addresses
	shared map[string]bool
	// zones are the stream block's limit_conn_zone counts (carried over a reload that keeps a zone's name and
	// size) and zoneKeys their keys
	zones    *access.Zones
	zoneKeys map[string]*vars.Template
}

// Server is one stream server as it serves one listening address.
type Server struct {
	Conf   *config.StreamServer
	Listen config.Listen
	TLS    *tls.Config // set when the listen has ssl
	logs   []accessLog
	rules  []access.Rule
}

type accessLog struct {
	file   *observe.File
	format *config.LogFormat
}

// TLSFunc builds the TLS settings of a stream server with ssl on a listen (the server package owns certificate
// loading, shared with http).
type TLSFunc func(*config.StreamServer) (*tls.Config, error)

// Compile builds the stream block of cfg (nil without one): access log files are opened through files and TLS
// settings built by tlsFor, so every error surfaces before the configuration goes live. The limit_conn zones of
// prev (the running block, or nil) that keep their name and size keep their counts.
func Compile(st *config.Stream, prev *Config, files *observe.Files, tlsFor TLSFunc) (*Config, error) {
	c := &Config{st: st, servers: map[string]*Server{}, bind: map[string]config.Listen{}, shared: map[string]bool{},
		zones: access.NewZones(), zoneKeys: map[string]*vars.Template{}}
	if st == nil {
		return c, nil
	}
	var prevZones *access.Zones
	if prev != nil {
		prevZones = prev.zones
	}
	for _, z := range st.ConnZones {
		c.zones.AddConn(prevZones, z.Name, z.Size)
		c.zoneKeys[z.Name] = z.Key
	}
	for _, ss := range st.Servers {
		var tc *tls.Config
		var logs []accessLog
		for _, t := range ss.Conf.AccessLogs.V {
			if t.Path == "off" {
				continue
			}
			f, err := files.Open(t.Path, t.Buffer, t.Flush)
			if err != nil {
				return nil, &config.Error{File: ss.Pos.File, Line: ss.Pos.Line, Msg: "cannot open access log: " + err.Error()}
			}
			logs = append(logs, accessLog{file: f, format: st.LogFormats[t.Format]})
		}
		for _, l := range ss.Listens {
			if _, dup := c.servers[ListenKey(l)]; dup {
				return nil, &config.Error{File: l.Pos.File, Line: l.Pos.Line, Msg: "duplicate \"" + l.Addr + "\" address and port pair"}
			}
			srv := &Server{Conf: ss, Listen: l, logs: logs, rules: ss.Conf.Access.V}
			if l.SSL {
				if tc == nil {
					var err error
					if tc, err = tlsFor(ss); err != nil {
						return nil, err
					}
				}
				srv.TLS = tc
			}
			c.servers[ListenKey(l)] = srv
		}
	}
	for key, srv := range c.servers {
		host, port, _ := net.SplitHostPort(srv.Listen.Addr)
		wild := net.JoinHostPort("0.0.0.0", port)
		if strings.Contains(host, ":") {
			wild = net.JoinHostPort("::", port)
		}
		if srv.Listen.UDP {
			wild = udpPrefix + wild
		}
		if _, ok := c.servers[wild]; ok && wild != key {
			if srv.Listen.UDP {
				// which address a datagram was sent to needs IP_PKTINFO, which sluice does not read
				l := srv.Listen
				return nil, &config.Error{File: l.Pos.File, Line: l.Pos.Line, Msg: "\"" + l.Addr + "\" udp next to a udp wildcard on the same port is not supported",
					Hint: "listen on the wildcard only, or on specific addresses only"}
			}
			c.shared[wild] = true
			continue
		}
		c.bind[key] = srv.Listen
	}
	return c, nil
}

// udpPrefix starts the key of a udp socket, which may share its address with a TCP one.
const udpPrefix = "udp/"

// ListenKey names a stream listen's socket: its address, after "udp/" for a udp one.
func ListenKey(l config.Listen) string {
	if l.UDP {
		return udpPrefix + l.Addr
	}
	return l.Addr
}

// Listens returns the sockets the stream block listens on, by key (ListenKey), with their listen directives.
func (c *Config) Listens() map[string]config.Listen { return c.bind }

// Server returns the stream server of a connection accepted on the socket bound to bound (as written,
// "0.0.0.0:3306"), or nil when the socket is not a stream one. On a wildcard socket that also serves specific
// addresses, the connection's local address chooses, as in nginx.
func (c *Config) Server(bound string, conn net.Conn) *Server {
	if c == nil {
		return nil
	}
	if c.shared[bound] {
		if ta, ok := conn.LocalAddr().(*net.TCPAddr); ok {
			if s, ok := c.servers[unmapped(ta.AddrPort()).String()]; ok {
				return s
			}
		}
	}
	return c.servers[bound]
}

// Conn is what the accepting side knows of a new connection.
type Conn struct {
	ID uint64
	// ReadProxyHeader reads the PROXY protocol header a `listen … proxy_protocol` socket's connections start
	// with, returning the connection positioned after it and the client address it gives (the server package's
	// reader, shared with http).
	ReadProxyHeader func(c net.Conn, timeout time.Duration) (net.Conn, netip.AddrPort, error)
	// Stopping, when set, is cancelled when a stop begins: a session still before its tunnel (PROXY header,
	// TLS handshake, preread, connect) then ends, rather than holding the process for those phases' timeouts.
	Stopping context.Context
	// Config is the stream block the connection was accepted under (its limit_conn zones)
	Config *Config
}

// proxyProtocolTimeout is nginx's proxy_protocol_timeout default.
const proxyProtocolTimeout = 30 * time.Second

// session is one stream session's state, from accept to its log line.
type session struct {
	p       *Proxy
	srv     *Server
	v       *vars.Request
	client  net.Conn
	tried   []tryStat   // every try, for $upstream_* lists
	tracked func()      // ends the tracker's count
	pre     func() bool // ends the stop's hold on the phases before the tunnel (context.AfterFunc's stop)
	release []func()    // ends the session's counts in limit_conn zones
}

// admit runs nginx's preaccess and access phases for a new session: limit_conn (over the limit: 503), then
// allow/deny (403). It returns StatusOK for a session that goes on; the counts it took end with the session.
func (s *session) admit(c *Config) int {
	conf, v := s.srv.Conf.Conf, s.v
	if c != nil {
		dry := conf.LimitConnDryRun.V
		for _, lc := range conf.LimitConns.V {
			z, key := c.zones.Conn[lc.Zone], c.zoneKeys[lc.Zone]
			if z == nil || key == nil {
				continue
			}
			k := key.Eval(v)
			if k == "" {
				continue
			}
			release, ok := z.Acquire(k, lc.N)
			if ok {
				s.release = append(s.release, release)
				continue
			}
			msg := "limiting connections by zone " + strconv.Quote(lc.Zone) + " while initializing session"
			if dry {
				msg = "limiting connections, dry run, by zone " + strconv.Quote(lc.Zone) + " while initializing session"
			}
			s.p.log.Log(context.Background(), conf.LimitConnLog.Get(slog.LevelError), msg, v.LogAttrs()...)
			if !dry {
				return StatusLimited
			}
		}
	}
	if len(s.srv.rules) > 0 && !access.Permit(s.srv.rules, v.RemoteAddr.Addr()) {
		s.p.log.Error("access forbidden by rule while initializing session", v.LogAttrs()...)
		return StatusForbidden
	}
	return StatusOK
}

// tryStat is one try's figures for the $upstream_* variables.
type tryStat struct {
	addr       string
	connect    time.Duration // -1: did not connect
	sent, recv int64
}

// Serve runs a session on c, accepted on srv's socket, until it ends; it closes c. ctx bounds the session (the
// server's stop); the session goes on after Serve returns when its tunnel runs (a poller then holds idle
// sessions without a goroutine).
//
// The session is tracked from its start (a graceful stop waits for it, and worker_shutdown_timeout bounds that),
// then accepted runs: the caller stops holding the listener's close for it, so a client that sends nothing
// (a PROXY header, a TLS handshake, a preread) does not hold the whole server's stop.
func (p *Proxy) Serve(ctx context.Context, srv *Server, c net.Conn, ci Conn, accepted func()) {
	tctx, done := p.tracker.Track(ctx, tunnel.Meta{Upstream: srv.upstreamName(), Location: StreamLocation + srv.Listen.Addr})
	if accepted != nil {
		accepted()
	}
	now := time.Now()
	v := &vars.Request{Start: now, ConnID: ci.ID, Stream: &vars.StreamVars{Protocol: "TCP"}, Hostname: p.hostname, ServerName: srv.Listen.Addr}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		v.RemoteAddr = unmapped(ta.AddrPort())
	}
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		v.LocalAddr = unmapped(ta.AddrPort())
	}
	s := &session{p: p, srv: srv, v: v, client: c, tracked: done}
	if ci.Stopping != nil {
		// a stop ends a session that has not reached its tunnel: its reads of the client fail at once
		s.pre = context.AfterFunc(ci.Stopping, func() { c.SetDeadline(time.Now()) })
		defer s.pre()
	}
	p.log.Info("client "+v.RemoteAddr.String()+" connected to "+srv.Listen.Addr, "conn", ci.ID)
	if srv.Listen.ProxyProtocol && ci.ReadProxyHeader != nil {
		// $proxy_protocol_addr is the header's client; $remote_addr stays the load balancer, as in nginx
		pc, addr, err := ci.ReadProxyHeader(c, proxyProtocolTimeout)
		if err != nil {
			p.log.Error("broken header ("+err.Error()+") while reading PROXY protocol", v.LogAttrs()...)
			s.end(StatusBadRequest)
			return
		}
		s.client, v.ProxyProtocolAddr = pc, addr
	}
	if status := s.admit(ci.Config); status != StatusOK {
		s.end(status)
		return
	}
	status := s.connect(tctx)
	if status != StatusOK {
		s.end(status)
	}
}

// StreamLocation starts the tracker's Location of a stream session, followed by its server's listen address: a
// reload tells from it (and the target in Upstream) whether the session's server is gone.
const StreamLocation = "stream "

// upstreamName labels the server's sessions in the tracker: its upstream group or address, marked as stream's
// (an http group of the same name is another group).
func (s *Server) upstreamName() string { return "stream " + s.Conf.Pass.Raw }

// connect runs the phases before the tunnel (TLS, preread, connecting to a peer) and starts the tunnel; it
// returns the status of a session that ends before the tunnel (StatusOK when the tunnel runs).
func (s *session) connect(ctx context.Context) int {
	conf := s.srv.Conf.Conf
	var clientBuffered []byte
	if s.srv.TLS != nil {
		tc := tls.Server(tunnel.NewTLSTransport(s.client), s.srv.TLS) // the tunnel then reads the socket itself
		s.client.SetDeadline(time.Now().Add(handshakeTimeout))
		err := tc.HandshakeContext(ctx)
		s.client.SetDeadline(time.Time{})
		if err != nil {
			s.p.log.Info("SSL handshake failed ("+err.Error()+") while SSL handshaking", s.v.LogAttrs()...)
			return StatusInternal // nginx finalizes a failed handshake with 500
		}
		st := tc.ConnectionState()
		s.v.TLS = &st
		s.client = tc
	}
	if conf.SSLPreread.Get(false) {
		var err error
		if clientBuffered, err = s.preread(); err != nil {
			s.p.log.Info(err.Error()+" while prereading client data", s.v.LogAttrs()...)
			return StatusBadRequest
		}
	}
	g, name, status := s.group()
	if g == nil {
		return status
	}
	connectTimeout, idle := s.srv.Conf.StreamTimeouts()
	tries := conf.ProxyNextTries.Get(0)
	nextTimeout := conf.ProxyNextTimeout.Get(0)
	next := conf.StreamNext.Get(true)
	var key upstream.Key
	if g.Conf != nil && g.Conf.HashKey != nil {
		key.Hash = g.Conf.HashKey.Eval(s.v)
	}
	key.Client = s.v.RemoteAddr.Addr()
	t := g.Begin(key)
	begun := time.Now()
	for n := 1; ; n++ {
		peer := t.Next()
		if peer == nil {
			s.p.log.Error("no live upstreams while connecting to upstream", s.v.LogAttrs("upstream", name)...)
			if len(s.tried) == 0 {
				s.tried = append(s.tried, tryStat{addr: name, connect: -1})
			}
			return StatusBadGateway
		}
		network, address := peer.Network()
		at := time.Now()
		d := net.Dialer{Timeout: connectTimeout, KeepAlive: -1}
		up, err := d.DialContext(ctx, network, address)
		if err == nil {
			hold := t.Done(upstream.Success)
			s.tried = append(s.tried, tryStat{addr: peer.Addr, connect: time.Since(at)})
			s.p.log.Info("proxy "+up.LocalAddr().String()+" connected to "+peer.Addr, "conn", s.v.ConnID)
			if conf.StreamProxyProtocol.Get(false) {
				if err := s.sendProxyHeader(up, connectTimeout); err != nil {
					hold.End()
					up.Close()
					s.p.log.Error("sending PROXY protocol header failed ("+err.Error()+")", s.v.LogAttrs("upstream", peer.Addr)...)
					return StatusBadGateway
				}
			}
			if s.pre != nil && !s.pre() {
				// the stop came first: the tunnel does not start, and the session ends here (logged as one the
				// client closed, nginx's 200)
				hold.End()
				up.Close()
				s.client.Close()
				s.end(StatusOK)
				return StatusOK
			}
			s.run(ctx, up, clientBuffered, idle, hold)
			return StatusOK
		}
		t.Done(upstream.Failed).End()
		s.tried = append(s.tried, tryStat{addr: peer.Addr, connect: -1})
		if ctx.Err() != nil {
			return StatusBadGateway
		}
		s.p.log.Error(connectError(err)+" while connecting to upstream", s.v.LogAttrs("upstream", peer.Addr)...)
		if !next || t.Left() == 0 || (tries > 0 && n >= tries) || (nextTimeout > 0 && time.Since(begun) >= nextTimeout) {
			return StatusBadGateway
		}
	}
}

// group resolves the server's proxy_pass to a balancing group and its name (for logs); a nil group comes with
// the session's status.
func (s *session) group() (*upstream.Group, string, int) {
	pass := s.srv.Conf.Pass
	switch {
	case pass.Upstream != nil:
		if g := s.p.ups.Group(pass.Upstream.Name); g != nil {
			return g, pass.Upstream.Name, StatusOK
		}
		return nil, "", StatusInternal
	case pass.Template == nil:
		return s.p.ups.Implicit(pass.Addr, true), pass.Addr, StatusOK
	}
	target := pass.Template.Eval(s.v)
	if g := s.p.ups.Group(target); g != nil {
		return g, target, StatusOK
	}
	if _, _, err := net.SplitHostPort(target); err != nil && !strings.HasPrefix(target, "unix:") {
		s.p.log.Error("no port in upstream \""+target+"\"", s.v.LogAttrs()...)
		return nil, "", StatusInternal
	}
	host, _, _ := net.SplitHostPort(target)
	if host != "" && net.ParseIP(host) == nil && !strings.HasPrefix(target, "unix:") {
		// a name made per session: the system resolver looks it up (nginx would need a resolver)
		ips, err := net.LookupHost(host)
		if err != nil || len(ips) == 0 {
			s.p.log.Error("host not found in upstream \""+target+"\"", s.v.LogAttrs()...)
			return nil, "", StatusBadGateway
		}
	}
	return s.p.ups.Implicit(target, false), target, StatusOK
}

// run starts the tunnel between the client and up; the session ends (and is logged) when it finishes.
func (s *session) run(ctx context.Context, up net.Conn, clientBuffered []byte, idle time.Duration, hold upstream.Hold) {
	opt := tunnel.Options{IdleTimeout: idle, Pool: s.p.bufs, Poller: s.p.poller}
	tunnel.Start(ctx, s.client, up, clientBuffered, nil, opt, func(st tunnel.Stats) {
		hold.End()
		last := &s.tried[len(s.tried)-1]
		last.sent, last.recv = st.ClientToUpstream, st.UpstreamToClient
		// nginx counts bytes ssl_preread read toward the upstream ($upstream_bytes_sent) but not as received
		// from the client ($bytes_received): so does sluice, for logs that compare
		s.v.BytesSent, s.v.Stream.BytesReceived = st.UpstreamToClient, st.ClientToUpstream-int64(len(clientBuffered))
		if st.Reason == tunnel.ReasonIdleTimeout {
			s.p.log.Info("connection timed out (110: Connection timed out) while proxying connection", s.v.LogAttrs("upstream", last.addr)...)
		}
		s.end(StatusOK)
	})
}

// end finishes the session: it closes the client (the tunnel has closed it already when it ran), records the
// variables and writes the access log lines.
func (s *session) end(status int) {
	if status != StatusOK && s.client != nil { // (a UDP session has no connection of its own)
		s.client.Close()
	}
	if s.tracked != nil {
		s.tracked()
	}
	for _, r := range s.release {
		r()
	}
	s.log(status)
}

// log records the session's variables ($status, the $upstream_* lists) and writes its access log lines.
func (s *session) log(status int) {
	v := s.v
	v.Status = status
	if len(s.tried) > 0 {
		var addrs, sent, recv, conn []byte
		for i, t := range s.tried {
			if i > 0 {
				addrs, sent, recv, conn = append(addrs, ", "...), append(sent, ", "...), append(recv, ", "...), append(conn, ", "...)
			}
			addrs = append(addrs, t.addr...)
			sent = strconv.AppendInt(sent, t.sent, 10)
			recv = strconv.AppendInt(recv, t.recv, 10)
			if t.connect < 0 {
				conn = append(conn, '-')
			} else {
				conn = appendSeconds(conn, t.connect)
			}
		}
		v.UpstreamAddr, v.Stream.UpstreamBytesSent, v.Stream.UpstreamBytesReceived, v.UpstreamConnectTime = string(addrs), string(sent), string(recv), string(conn)
	}
	for _, l := range s.srv.logs {
		line := l.format.Template.AppendEscaped(nil, v, l.format.Escape)
		l.file.Write(append(line, '\n'))
	}
}

// appendSeconds appends d as nginx's seconds with millisecond resolution ("0.001").
func appendSeconds(b []byte, d time.Duration) []byte {
	ms := d.Milliseconds()
	b = strconv.AppendInt(b, ms/1000, 10)
	b = append(b, '.')
	frac := ms % 1000
	if frac < 100 {
		b = append(b, '0')
	}
	if frac < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, frac, 10)
}

// connectError describes a failed connect as nginx's error log does: "connect() failed (111: Connection
// refused)", or "upstream timed out (110: Connection timed out)".
func connectError(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "upstream timed out (110: Connection timed out)"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return "connect() failed (" + strconv.Itoa(int(errno)) + ": " + sentence(errno.Error()) + ")"
	}
	return "connect() failed (" + err.Error() + ")"
}

// sentence capitalises the first letter of an errno text, as strerror(3) writes it.
func sentence(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// sendProxyHeader writes a PROXY protocol v1 header for the session's client to up (proxy_protocol on).
func (s *session) sendProxyHeader(up net.Conn, timeout time.Duration) error {
	src, dst := s.v.RemoteAddr, s.v.LocalAddr
	fam := "TCP4"
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		fam = "TCP6"
		src = netip.AddrPortFrom(netip.AddrFrom16(src.Addr().As16()), src.Port())
		dst = netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
	}
	h := "PROXY " + fam + " " + src.Addr().String() + " " + dst.Addr().String() + " " + strconv.Itoa(int(src.Port())) + " " + strconv.Itoa(int(dst.Port())) + "\r\n"
	if !src.IsValid() || !dst.IsValid() {
		h = "PROXY UNKNOWN\r\n"
	}
	up.SetWriteDeadline(time.Now().Add(timeout))
	_, err := up.Write([]byte(h))
	up.SetWriteDeadline(time.Time{})
	return err
}

// unmapped is ap with an IPv4-mapped IPv6 address as the IPv4 one.
func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
