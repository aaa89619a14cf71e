//go:build unix

package tunnel

import (
	"net"
	"os"
	"syscall"
)

// rawConnOf returns the raw socket of a plain stream connection whose reads can
// bypass net.Conn.Read, so a direction takes a buffer from the pool only once
// the kernel has bytes for it. Wrapped or TLS connections return nil.
func rawConnOf(c net.Conn) syscall.RawConn {
	var sc interface {
		SyscallConn() (syscall.RawConn, error)
	}
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		// Only SOCK_STREAM: for unixpacket a 0-byte read is not EOF.
		if !isUnixStream(c.LocalAddr()) && !isUnixStream(c.RemoteAddr()) {
			return nil
		}
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

func isUnixStream(a net.Addr) bool {
	u, ok := a.(*net.UnixAddr)
	return ok && u != nil && u.Net == "unix"
}

// rawRead is the syscall.RawConn.Read callback of a direction. It returns
// false (wait for readability) on EAGAIN after handing the buffer back to the
// pool, so a blocked direction holds no buffer.
func (d *direction) rawRead(fd uintptr) bool {
	if d.buf == nil {
		d.buf = d.getBuf()
	}
	for {
		n, err := syscall.Read(int(fd), *d.buf)
		switch err {
		case nil:
			d.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			d.releaseBuf()
			return false
		default:
			d.rerr = os.NewSyscallError("read", err)
			return true
		}
	}
}
