// Package netutil holds small connection helpers shared by the upstream clients (HTTP proxy, FastCGI).
package netutil

import (
	"crypto/tls"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Alive checks without blocking that an idle pooled connection was neither closed by the peer nor sent
// unsolicited bytes (which would be read as the next request's response). Callers check their own read
// buffers first. A pool that checks the same connection often keeps a Prober instead.
func Alive(c net.Conn) bool {
	p := NewProber(c)
	return p == nil || p.Alive()
}

// Prober is Alive for one connection, made once so that each check costs one system call and no allocation.
type Prober struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool
	ok  bool
}

// NewProber returns the prober of c (for TLS, of the socket under it), or nil when c is not a socket.
func NewProber(c net.Conn) *Prober {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &Prober{raw: raw}
	p.fn = func(fd uintptr) bool {
		_, errno := Peek(fd)
		// nothing to read (EAGAIN) is the only healthy answer: EOF (n == 0) or pending bytes are not
		p.ok = errno == unix.EAGAIN || errno == unix.EWOULDBLOCK
		return true // never wait for readiness
	}
	return p
}

// Alive reports whether the connection is still usable (see Alive). It fails on a closed connection or one
// whose read deadline has passed.
func (p *Prober) Alive() bool {
	p.ok = false
	if p.raw.Read(p.fn) != nil {
		return false
	}
	return p.ok
}

// Dialer is the dialer of connections to upstreams: SO_KEEPALIVE only when keepAlive (proxy_socket_keepalive,
// fastcgi_socket_keepalive), then with the system's probe timings as nginx sets it, and made from local when
// not nil (proxy_bind, fastcgi_bind; TCP only).
func Dialer(timeout time.Duration, keepAlive bool, local *net.TCPAddr) net.Dialer {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	if keepAlive {
		d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}
	}
	if local != nil {
		d.LocalAddr = local
	}
	return d
}
