// Package server runs a configuration: it owns the listening sockets, the current configuration snapshot and
// the request path from accept to access log.
package server

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/sluice-proxy/sluice/internal/acme"
	"github.com/sluice-proxy/sluice/internal/compress"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/fastcgi"
	"github.com/sluice-proxy/sluice/internal/grpc"
	"github.com/sluice-proxy/sluice/internal/h1"
	"github.com/sluice-proxy/sluice/internal/h1guard"
	"github.com/sluice-proxy/sluice/internal/metrics"
	"github.com/sluice-proxy/sluice/internal/observe"
	"github.com/sluice-proxy/sluice/internal/proxy"
	"github.com/sluice-proxy/sluice/internal/static"
	"github.com/sluice-proxy/sluice/internal/statuspage"
	"github.com/sluice-proxy/sluice/internal/stream"
	"github.com/sluice-proxy/sluice/internal/tunnel"
	"github.com/sluice-proxy/sluice/internal/version"
)

// Version is sluice's version, shown in the Server header and by -v.
const Version = version.Version

// Server serves one configuration at a time and can swap it.
type Server struct {
	log     *slog.Logger
	snap    atomic.Pointer[snapshot]
	files   *observe.Files
	tracker *tunnel.Tracker
	proxy   *proxy.Proxy
	stream  *stream.Proxy // stream sessions (TCP proxying) and the stream block's upstream groups
	fastcgi *fastcgi.Handler
	grpc    *grpc.Handler
	connSeq atomic.Uint64
	stats   connStats
	// done counts finished requests and their total duration (the status page's rate and mean latency).
	done    struct{ requests, nanos atomic.Uint64 }
	started time.Time
	// stopping ends long-lived responses (the status page's event stream) when a stop begins.
	stopping context.Context
	stop     context.CancelFunc
	status   *statuspage.Handler
	metrics  *metrics.Metrics
	// requests holds finished requests' state (request, variables, response writer) for the next request.
	requests sync.Pool
	// lineBufs holds access log line buffers, so logging allocates nothing per request.
	lineBufs sync.Pool
	// fileBufs holds static.SmallFile-sized buffers: small files are read into one and written with the headers.
	fileBufs sync.Pool
	host     string

	// validators keeps the formatted Last-Modified, ETag and Content-Length of recently served files.
	validators static.Validators
	// mirrors counts the mirror subrequests running (mirror).
	mirrors atomic.Int64
	// cacheUpdates counts the background cache updates running; updatesWarned is when the cap was last logged
	cacheUpdates, updatesWarned atomic.Int64
	// gzips lends the gzip writers of compressed responses.
	gzips compress.Writers
	// byteranges numbers the boundaries of multipart/byteranges answers.
	byteranges atomic.Uint64

	// serverHeader are the Server header's values: without and with the version (server_tokens).
	serverHeader [2][]string

	mu        sync.Mutex
	listeners map[string]*listener
	acme      *acme.Manager // ssl_certificate acme; created on first use, outlives snapshots
	quic      map[string]*quicListener
	udp       map[string]*stream.UDPSocket // the stream block's udp sockets, by key (stream.ListenKey)
	servers   map[string]*httpServer
	active    sync.WaitGroup

	// inherited are listening sockets passed by the process this one replaces (binary upgrade), by address.
	inherited map[string]*os.File

	reloadMu   sync.Mutex
	lastReload ReloadResult
}

// New compiles cfg (loading certificates, opening log files) without binding anything.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	s := &Server{
		log:       log,
		files:     observe.NewFiles(),
		tracker:   tunnel.NewTracker(),
		listeners: map[string]*listener{},
		quic:      map[string]*quicListener{},
		udp:       map[string]*stream.UDPSocket{},
		servers:   map[string]*httpServer{},
	}
	s.host, _ = os.Hostname()
	s.serverHeader = [2][]string{{"sluice"}, {"sluice/" + Version}}
	s.requests.New = newRequest
	s.lineBufs.New = func() any { b := make([]byte, 0, 512); return &b }
	s.fileBufs.New = func() any { b := make([]byte, static.SmallFile); return &b }
	s.proxy = proxy.New(s.tracker, log)
	s.stream = stream.New(s.tracker, log)
	s.started = time.Now()
	s.stopping, s.stop = context.WithCancel(context.Background())
	s.status = &statuspage.Handler{Sample: s.sample, Stop: s.stopping}
	s.metrics = metrics.New(Version, metrics.Sources{
		Connections:   s.Conns,
		Tunnels:       s.tunnels,
		TunnelsOpened: s.tracker.Opened,
		Peers:         s.peers,
	})
	s.fastcgi = fastcgi.NewHandler(log)
	s.fastcgi.Upstreams = s.proxy.Upstreams() // one balancing state per group for proxy_pass and fastcgi_pass
	s.grpc = grpc.NewHandler(log)
	s.grpc.Upstreams = s.proxy.Upstreams() // and grpc_pass
	snap, err := build(cfg, s.files, nil, false)
	if err != nil {
		return nil, err
	}
	s.install(snap)
	s.lastReload.At = time.Now()
	return s, nil
}

func (s *Server) install(snap *snapshot) {
	if snap.cfg.HTTP != nil {
		s.proxy.SetUpstreams(snap.cfg.HTTP.Upstreams)
	}
	s.fastcgi.Client.CloseIdle() // kept php-fpm connections hold workers; a new configuration may point elsewhere
	s.grpc.CloseIdle()
	s.stream.Update(snap.stream)
	s.snap.Store(snap)
}

// Start binds every listening socket of the current configuration and starts serving. Nothing is served if
// any socket cannot be bound. Inherited sockets the configuration does not name are closed.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.snap.Load()
	s.startACME(snap) // before serving: handshakes find the manager; certificates come in the background
	a, err := s.bindAdded(snap)
	for _, f := range s.inherited {
		f.Close()
	}
	s.inherited = nil
	if err != nil {
		return err
	}
	s.serve(snap, a)
	return nil
}

// peers is the balancer's read-only view of the upstream peers.
func (s *Server) peers() []metrics.Peer {
	st := s.proxy.Upstreams().Snapshot()
	out := make([]metrics.Peer, len(st))
	for i, p := range st {
		out[i] = metrics.Peer{Upstream: p.Upstream, Addr: p.Addr, Healthy: p.State == "up", Failures: uint64(p.Fails)}
	}
	return out
}

// Inherit hands the server listening sockets from the process it replaces (by bind address); Start uses them
// instead of binding, so no connection is refused during a binary upgrade. Call it before Start.
func (s *Server) Inherit(files map[string]*os.File) { s.inherited = files }

// ListenerFiles returns duplicates of the bound listening sockets (TCP and QUIC), by bind address, for a new
// process to inherit.
func (s *Server) ListenerFiles() (map[string]*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	socks := map[string]any{}
	for addr, l := range s.listeners {
		socks[addr] = l.ln
	}
	for key, q := range s.quic {
		socks[key] = q.pc
	}
	for key, u := range s.udp {
		socks[key] = u.Conn()
	}
	out := map[string]*os.File{}
	for key, c := range socks {
		fl, ok := c.(interface{ File() (*os.File, error) })
		if !ok {
			continue
		}
		f, err := fl.File()
		if err != nil {
			for _, f := range out {
				f.Close()
			}
			return nil, err
		}
		out[key] = f
	}
	return out, nil
}

// inherit takes the socket the process this one replaces passed for key, opened with open; false when there is
// none or it is unusable (then the caller binds anew).
func inherit[T any](s *Server, key string, open func(*os.File) (T, error)) (T, bool) {
	var c T
	f, ok := s.inherited[key]
	if !ok {
		return c, false
	}
	delete(s.inherited, key)
	c, err := open(f)
	f.Close()
	if err != nil {
		s.log.Warn("inherited socket for " + key + " unusable, binding anew: " + err.Error())
		return c, false
	}
	return c, true
}

// bindOrInherit takes the inherited socket for addr if there is one, else binds.
func (s *Server) bindOrInherit(addr string, l config.Listen) (net.Listener, error) {
	if ln, ok := inherit(s, addr, net.FileListener); ok {
		return ln, nil
	}
	return bind(l)
}

// added are the sockets a configuration adds to the running set, bound but not served yet.
type added struct {
	tcp    map[string]net.Listener
	udp    map[string]net.PacketConn // QUIC
	stream map[string]*net.UDPConn   // stream's udp sockets
}

func (a added) close() {
	for _, ln := range a.tcp {
		ln.Close()
	}
	for _, pc := range a.udp {
		pc.Close()
	}
	for _, pc := range a.stream {
		pc.Close()
	}
}

// bindAdded binds every socket (TCP and QUIC) snap adds to the running set. Nothing is served or closed yet, so
// a failure leaves the running set untouched. s.mu is held.
func (s *Server) bindAdded(snap *snapshot) (added, error) {
	a := added{tcp: map[string]net.Listener{}, udp: map[string]net.PacketConn{}, stream: map[string]*net.UDPConn{}}
	for addr, l := range snap.bind {
		if l.UDP {
			if s.udp[addr] != nil {
				continue
			}
			pc, err := s.bindOrInheritUDP(addr, l)
			if err == nil {
				if uc, ok := pc.(*net.UDPConn); ok {
					a.stream[addr] = uc
					continue
				}
				pc.Close()
				err = errors.New("not a UDP socket")
			}
			a.close()
			return added{}, &config.Error{File: l.Pos.File, Line: l.Pos.Line, Msg: "bind() to " + l.Addr + " (udp) failed: " + err.Error()}
		}
		if l.QUIC {
			if s.quic[addr] != nil || !snap.groups[addr].http3 {
				continue
			}
			pc, err := s.bindOrInheritUDP(addr, l)
			if err != nil {
				a.close()
				return added{}, &config.Error{File: l.Pos.File, Line: l.Pos.Line, Msg: "bind() to " + l.Addr + " (quic) failed: " + err.Error()}
			}
			a.udp[addr] = pc
			continue
		}
		if _, ok := s.listeners[addr]; ok {
			continue
		}
		ln, err := s.bindOrInherit(addr, l)
		if err != nil {
			a.close()
			return added{}, &config.Error{File: l.Pos.File, Line: l.Pos.Line, Msg: "bind() to " + addr + " failed: " + errors.Unwrap(err).Error()}
		}
		a.tcp[addr] = ln
	}
	return a, nil
}

// closeDropped closes the sockets snap no longer has. s.mu is held.
func (s *Server) closeDropped(snap *snapshot) {
	for addr, l := range s.listeners {
		if _, ok := snap.bind[addr]; !ok {
			l.Close()
			go s.servers[addr].Shutdown(context.Background())
			delete(s.listeners, addr)
			delete(s.servers, addr)
		}
	}
	for key, u := range s.udp {
		if _, ok := snap.bind[key]; !ok {
			go u.Shutdown() // its sessions may finish; the socket closes with the last
			delete(s.udp, key)
		}
	}
	for key, q := range s.quic {
		if l, ok := snap.bind[key]; !ok || !l.QUIC || !snap.groups[key].http3 {
			go q.close(context.Background())
			delete(s.quic, key)
		}
	}
}

// serve starts serving the sockets bound for snap. Call it once snap is installed: a connection on a new socket
// finds its listen group (TLS or not) in the current snapshot. s.mu is held.
func (s *Server) serve(snap *snapshot, a added) {
	for addr, ln := range a.tcp {
		l := &listener{addr: addr, ln: ln, srv: s, closed: make(chan struct{})}
		l.abort, l.abortFunc = context.WithCancel(context.Background())
		g := snap.groups[addr]
		hs := &httpServer{h1: &h1.Server{Handler: s, Limits: l.limits, ConnState: s.connState, Refuse: s.refuse, Log: s.log}}
		if g != nil { // (nil: a stream socket; cleartext ones serve HTTP/2 too when http2 is on: h2c)
			if err := hs.configureHTTP2(g, log.New(errorLogWriter{s.log}, "", 0)); err != nil {
				s.log.Error("HTTP/2 on " + addr + ": " + err.Error())
			}
		}
		l.hs = hs
		s.listeners[addr] = l
		s.servers[addr] = hs
		s.active.Add(1)
		go func() {
			defer s.active.Done()
			l.acceptLoop()
		}()
	}
	s.serveQUIC(snap, a.udp)
	for key, pc := range a.stream {
		s.udp[key] = s.stream.ServeUDP(pc, key, func() *stream.Config { return s.snap.Load().stream }, func() uint64 { return s.connSeq.Add(1) })
	}
}

// httpServer serves one listening socket's connections: HTTP/1.x with our own loop, HTTP/2 with x/net/http2.
type httpServer struct {
	h1 *h1.Server
	// base carries the HTTP/2 server's settings (header size, error log) and its graceful shutdown (GOAWAY on
	// Shutdown); it serves nothing itself
	base *http.Server
	//lint:ignore SA1019 x/net/http2 serves each connection with its own settings (see configureHTTP2)
	h2 *http2.Server
}

// Shutdown ends keep-alive, tells HTTP/2 clients to go away, and waits for the connections to close.
func (hs *httpServer) Shutdown(ctx context.Context) error {
	if hs.base != nil {
		hs.base.Shutdown(ctx) // returns at once: it tracks no connection, but starts HTTP/2's GOAWAY
	}
	return hs.h1.Shutdown(ctx)
}

// Close closes every connection.
func (hs *httpServer) Close() error {
	if hs.base != nil {
		hs.base.Close()
	}
	return hs.h1.Close()
}

// limits are the current configuration's limits for a connection, read before each request so a reload
// applies to connections on kept sockets.
func (l *listener) limits(ctx context.Context, c net.Conn) h1.Limits {
	lim := h1.Limits{HeaderTimeout: 60 * time.Second, IdleTimeout: 75 * time.Second, MaxHeaderBytes: http.DefaultMaxHeaderBytes}
	ci, ok := ctx.Value(connInfoKey{}).(*connInfo)
	if ok {
		snap := l.srv.snap.Load()
		if ci.limSnap == snap {
			return ci.lim // as for the request before (the guard has its head limit)
		}
		if g := snap.groupFor(l.addr, ci.localKey); g != nil {
			lim = h1.Limits{HeaderTimeout: g.headerTimeout, IdleTimeout: g.idleTimeout, MaxHeaderBytes: g.maxHeaderBytes, Linger: g.linger}
		}
		ci.limSnap, ci.lim = snap, lim
	}
	if gc, ok := c.(*h1guard.Conn); ok {
		gc.SetMaxHead(lim.MaxHeaderBytes)
	}
	return lim
}

// ReopenLogs reopens every log file (USR1, for logrotate).
func (s *Server) ReopenLogs() error { return s.files.ReopenAll() }

// Shutdown stops accepting, lets in-flight requests and open tunnels finish, and returns when they have or
// when ctx ends (then everything still open is closed).
//
// No connection the kernel accepted is dropped: the sockets are closed first, every accepted connection is
// handed over, then keep-alive ends: idle connections close, a connection still waiting for its first request
// may send it for 5 s (see h1.Server.Shutdown).
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	s.mu.Lock()
	servers := s.servers
	listeners := s.listeners
	s.servers = map[string]*httpServer{}
	s.listeners = map[string]*listener{}
	quics := s.takeQUIC()
	udps := s.udp
	s.udp = map[string]*stream.UDPSocket{}
	s.mu.Unlock()
	for _, l := range listeners {
		l.Close()
	}
	for _, u := range udps {
		u.Shutdown()
	}
	// QUIC sockets close at once and their connections drain (GOAWAY) alongside the TCP ones
	var wg sync.WaitGroup
	for _, q := range quics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.close(ctx)
		}()
	}
	for _, l := range listeners {
		select {
		case <-l.closed:
		case <-ctx.Done():
		}
	}
	var firstErr error
	var emu sync.Mutex
	for _, hs := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Shutdown(ctx); err != nil {
				emu.Lock()
				firstErr = err
				emu.Unlock()
				hs.Close()
			}
		}()
	}
	wg.Wait()
	if err := s.tracker.Wait(ctx); err != nil {
		s.tracker.Shutdown(context.Background())
		firstErr = err
	}
	s.active.Wait()
	s.proxy.Close()
	s.stream.Close()
	if s.acme != nil {
		s.acme.Stop()
	}
	s.files.CloseAll()
	return firstErr
}

// Close stops at once: listeners, connections and tunnels are closed.
func (s *Server) Close() error {
	s.stop()
	s.mu.Lock()
	servers := s.servers
	listeners := s.listeners
	s.servers = map[string]*httpServer{}
	s.listeners = map[string]*listener{}
	quics := s.takeQUIC()
	udps := s.udp
	s.udp = map[string]*stream.UDPSocket{}
	s.mu.Unlock()
	for _, u := range udps {
		u.Close()
	}
	expired, cancelQUIC := context.WithCancel(context.Background())
	cancelQUIC()
	for _, q := range quics {
		q.close(expired)
	}
	for _, l := range listeners {
		l.abortFunc()
	}
	for _, hs := range servers {
		hs.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.tracker.Shutdown(ctx)
	s.fastcgi.Client.CloseIdle()
	s.grpc.CloseIdle()
	s.proxy.Close()
	s.stream.Close()
	if s.acme != nil {
		s.acme.Stop()
	}
	s.files.CloseAll()
	return nil
}

// errorLogWriter routes net/http's own messages (TLS handshake errors and the like) to the error log at info,
// as nginx logs client-caused errors.
type errorLogWriter struct{ log *slog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	w.log.Info(msg)
	return len(p), nil
}
