package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"

	"github.com/sluice-proxy/sluice/internal/certs"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/h1"
	"github.com/sluice-proxy/sluice/internal/netutil"
	"github.com/sluice-proxy/sluice/internal/stream"
	"github.com/sluice-proxy/sluice/internal/tunnel"
)

// listener is one bound socket. It outlives configuration snapshots: a reload reconciles the set of listeners
// (keep, add, close) instead of re-binding, so no connection is refused during a reload.
type listener struct {
	addr   string
	ln     net.Listener
	srv    *Server
	hs     *httpServer   // serves the classified connections
	closed chan struct{} // closed once the socket is closed and every accepted connection was handed over
	// pending counts connections accepted but not yet handed to hs, so closing the socket (graceful stop,
	// binary upgrade) never drops one that the kernel had already given us.
	pending sync.WaitGroup
	// abort ends the hand-over at once (fast stop): connections still being classified are closed.
	abort     context.Context
	abortFunc context.CancelFunc
}

type connMeta struct {
	id        uint64
	onTLSPort bool
	// tls is the state of an HTTP/1.x TLS connection (delivered inside the framing guard): Request.TLS.
	tls *tls.ConnectionState
	// client is the check of the client's certificate, made once after the handshake; nil where the server the
	// SNI name chose has ssl_verify_client off
	client  *certs.ClientResult
	proxied netip.AddrPort // the client address of a PROXY protocol header (zero without one)
	// localKey is the connection's local address as a string, the key groupFor looks up first
	localKey string
	// h2c: a cleartext connection that began with HTTP/2's preface (prior knowledge, as gRPC clients do)
	h2c bool
}

// bind opens a listening socket with nginx's listen options.
func bind(l config.Listen) (net.Listener, error) {
	lc := listenConfig(l)
	// the backlog is the system's somaxconn (Go does not expose listen(2)'s argument)
	return lc.Listen(context.Background(), network("tcp", l), l.Addr)
}

// network is the network for a socket of proto ("tcp" or "udp") with l's address and ipv6only setting: "tcp6"
// sets IPV6_V6ONLY; plain "tcp" on [::] would also take IPv4 and collide with `listen 443;`.
func network(proto string, l config.Listen) string {
	if host, _, _ := net.SplitHostPort(l.Addr); strings.Contains(host, ":") {
		if !l.IPv6Only {
			return proto
		}
		return proto + "6"
	}
	return proto + "4"
}

// listenConfig applies the socket options of a listen directive (reuseport, so_keepalive: TCP keep-alive only
// when asked for, as nginx; Go's default would cost four setsockopt calls per accepted connection).
func listenConfig(l config.Listen) net.ListenConfig {
	keepAlive := time.Duration(-1)
	if l.KeepAlive.Enable {
		keepAlive = 0
	}
	return net.ListenConfig{
		KeepAlive:       keepAlive,
		KeepAliveConfig: l.KeepAlive,
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				if l.Reuseport {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// Close stops accepting; connections already accepted are still handed over (acceptLoop closes l.closed after).
func (l *listener) Close() error { return l.ln.Close() }

func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// acceptLoop accepts connections and classifies each in its own goroutine, so a slow client never delays
// another's accept.
func (l *listener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.pending.Wait()
				close(l.closed)
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// out of file descriptors: back off like net/http does, and say so once per burst
				if delay == 0 {
					delay = 5 * time.Millisecond
					l.srv.log.Error("accept() failed: " + err.Error())
				} else if delay < time.Second {
					delay *= 2
				}
				time.Sleep(delay)
				continue
			}
			l.srv.log.Error("accept() failed: " + err.Error())
			time.Sleep(10 * time.Millisecond)
			continue
		}
		delay = 0
		c = netutil.NewSocket(c)
		l.pending.Add(1)
		go func() {
			st := l.srv.snap.Load().stream
			if srv := st.Server(l.addr, c); srv != nil {
				l.serveStream(c, st, srv) // (it calls pending.Done once the session is tracked)
				return
			}
			c, m, ok := l.classify(c)
			l.pending.Done()
			if ok {
				l.serveConn(c, m)
			}
		}()
	}
}

// serveStream hands a connection on a stream server's socket to the stream proxy. The session is tracked (a
// graceful stop waits for it) before this returns.
func (l *listener) serveStream(c net.Conn, st *stream.Config, srv *stream.Server) {
	if l.abort.Err() != nil {
		l.pending.Done()
		c.Close()
		return
	}
	ci := stream.Conn{ID: l.srv.connSeq.Add(1), ReadProxyHeader: readProxyHeader, Stopping: l.srv.stopping, Config: st}
	l.srv.stats.accepted.Add(1)
	l.srv.stats.handled.Add(1)
	l.srv.stream.Serve(context.Background(), srv, c, ci, l.pending.Done)
}

// classify decides whether a connection on this socket speaks TLS. On a TLS socket, a first byte that is not a
// TLS handshake record means a plain HTTP request sent to an HTTPS port, which gets nginx's 400 answer. It
// returns the connection to serve, false when there is none (closed).
func (l *listener) classify(c net.Conn) (net.Conn, connMeta, bool) {
	stop := context.AfterFunc(l.abort, func() { c.SetDeadline(time.Now()) })
	defer stop()
	snap := l.srv.snap.Load()
	meta := connMeta{id: l.srv.connSeq.Add(1), localKey: c.LocalAddr().String()}
	g := snap.groupFor(l.addr, meta.localKey)
	l.srv.stats.accepted.Add(1)
	l.srv.stats.handled.Add(1) // nginx's "handled" differs from "accepts" only at worker_connections, which sluice has not
	if g != nil && g.proxyProtocol {
		var err error
		if c, meta.proxied, err = readProxyHeader(c, g.headerTimeout); err != nil {
			l.srv.log.Info("broken PROXY protocol header from " + c.RemoteAddr().String() + ": " + err.Error())
			c.Close()
			return nil, meta, false
		}
	}
	if g != nil && !g.ssl && g.http2 {
		pc, h2c, ok := sniffH2C(c, g.headerTimeout)
		if !ok {
			c.Close()
			return nil, meta, false
		}
		if meta.h2c = h2c; h2c {
			return pc, meta, true
		}
		return l.srv.guard(pc, g), meta, true
	}
	if g == nil || !g.ssl {
		return l.srv.guard(c, g), meta, true
	}
	c.SetReadDeadline(time.Now().Add(g.handshakeTimeout))
	var first [1]byte
	_, err := io.ReadFull(c, first[:])
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return nil, meta, false
	}
	pc := &peekedConn{Conn: c, pending: first[:]}
	if first[0] != 0x16 {
		meta.onTLSPort = true
		return pc, meta, true
	}
	// the handshake runs here, on the connection's own goroutine, so its result is counted; net/http finds it done
	tc := tls.Server(tunnel.NewTLSTransport(pc), g.tlsConfig) // a tunnel over it then reads and writes the socket itself
	c.SetDeadline(time.Now().Add(g.handshakeTimeout))
	err = tc.Handshake()
	c.SetDeadline(time.Time{})
	l.srv.metrics.TLSHandshake(err)
	if err != nil {
		l.srv.log.Info("TLS handshake error from " + c.RemoteAddr().String() + ": " + err.Error())
		c.Close()
		return nil, meta, false
	}
	st := tc.ConnectionState()
	if g.clientAuth != nil {
		meta.client = g.verifyClient(&st)
	}
	if st.NegotiatedProtocol != "h2" {
		// HTTP/1.x over TLS gets the framing guard; HTTP/2 needs the *tls.Conn itself (net/http hands it to
		// the HTTP/2 server by ALPN) and has no such framing
		meta.tls = &st
		return l.srv.guard(tc, g), meta, true
	}
	return tc, meta, true
}

// h2Preface starts every HTTP/2 connection (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffH2C looks at the start of a cleartext connection on a socket with http2 on, until it is HTTP/2's
// preface (h2c with prior knowledge) or differs from it (HTTP/1.x), and returns the connection with those bytes
// still to be read: a TCP socket peeks at them (it stays a plain socket, which HTTP/1.x waits on while idle
// without a buffer), anything else (after a PROXY header) replays them. false: the client sent nothing within
// timeout, or left.
func sniffH2C(c net.Conn, timeout time.Duration) (net.Conn, bool, bool) {
	if tc, ok := netutil.TCP(c); ok {
		h2c, err := netutil.PeekPrefix(tc, h2Preface, timeout)
		return c, h2c, err == nil
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 0, len(h2Preface))
	for len(buf) < len(h2Preface) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if !strings.HasPrefix(h2Preface, string(buf)) {
			break
		}
		if err != nil {
			if len(buf) == 0 {
				return nil, false, false
			}
			break // HTTP/1.x's parser answers a cut-off head
		}
	}
	return &peekedConn{Conn: c, pending: buf}, string(buf) == h2Preface, true
}

// readProxyHeader reads the PROXY protocol (v1 or v2) header that must start a connection on a
// `listen … proxy_protocol` socket and returns the connection positioned after it with the client address it
// reports (zero for a v2 LOCAL header: a health check by the proxy itself).
func readProxyHeader(c net.Conn, timeout time.Duration) (net.Conn, netip.AddrPort, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	br := bufio.NewReaderSize(c, 256)
	h, err := proxyproto.Read(br)
	if err != nil {
		return c, netip.AddrPort{}, err
	}
	rest, _ := br.Peek(br.Buffered())
	pc := &peekedConn{Conn: c, pending: append([]byte(nil), rest...)}
	if h.Command.IsLocal() {
		return pc, netip.AddrPort{}, nil
	}
	src, _, ok := h.IPs()
	port, _, _ := h.Ports()
	a, aok := netip.AddrFromSlice(src)
	if !ok || !aok {
		return pc, netip.AddrPort{}, nil // UNKNOWN or unix addresses: the peer stays the client
	}
	return pc, netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// serveConn serves a classified connection until it closes: HTTP/2 (a *tls.Conn that chose h2) or HTTP/1.x.
func (l *listener) serveConn(c net.Conn, m connMeta) {
	if l.abort.Err() != nil {
		c.Close()
		return
	}
	ci := &connInfo{connMeta: m, listener: l, accepted: time.Now()}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ci.remote = unmapped(ta.AddrPort())
	}
	local := c.LocalAddr()
	if ta, ok := local.(*net.TCPAddr); ok {
		ci.local = unmapped(ta.AddrPort())
	}
	if ci.localKey == "" {
		ci.localKey = local.String()
	}
	ctx := context.WithValue(context.Background(), connInfoKey{}, ci)
	if tc, ok := c.(*tls.Conn); ok {
		l.serveH2(tc, ctx)
		return
	}
	if m.h2c {
		l.serveH2(c, ctx)
		return
	}
	l.hs.h1.ServeConn(ctx, c, m.tls)
}

// peekedConn replays the bytes read while classifying (the first TLS byte, what followed a PROXY header).
type peekedConn struct {
	net.Conn
	pending []byte
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// NetConn is the socket under the wrapper: an idle tunnel waits for its readability.
func (p *peekedConn) NetConn() net.Conn { return p.Conn }

// CloseWrite lets a tunnel half-close the client side through the wrapper.
func (p *peekedConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// connInfo is what the server knows about a client connection, kept in the request context.
type connInfo struct {
	connMeta
	requests atomic.Int64
	accepted time.Time // for keepalive_time
	listener *listener
	// remote and local are the connection's addresses, which every request on it has as $remote_addr and
	// $server_addr (converted once per connection, not once per request); zero where the server learns the
	// remote one per request and has no local one (QUIC)
	remote, local netip.AddrPort
	// the limits the last request on the connection had, and the snapshot they were read from: a request after
	// a reload reads them again (only the connection's goroutine reads and writes these)
	limSnap *snapshot
	lim     h1.Limits
}

type connInfoKey struct{}

// unmapped is ap with an IPv4-mapped IPv6 address as the IPv4 one.
func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
