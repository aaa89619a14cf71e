// Package netutil holds small connection helpers shared by the upstream clients (HTTP proxy, FastCGI).
package netutil

import (
	"crypto/tls"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Alive checks without blocking that an idle pooled connection was neither closed by the peer nor sent
// unsolicited bytes (which would be read as the next request's response). Callers check their own read
// buffers first.
func Alive(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		// nothing to read (EAGAIN) is the only healthy answer: EOF (n == 0) or pending bytes are not
		ok = n < 0 && (err == unix.EAGAIN || err == unix.EWOULDBLOCK)
		return true // never wait for readiness
	})
	return ok
}
