//go:build unix

package tunnel

import (
	"io"
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

// rawCopy is the RawConn.Read callback of a direction whose TCP socket
// reports the bytes left queued with each read (TCP_INQ): the copy loop runs
// inside it, and it returns false (wait for readability) when the socket is
// empty, after handing the buffer back to the pool.
//
// When a read left nothing queued, the next round waits for readability
// straight away instead of paying a read that fails with EAGAIN: bytes (or a
// FIN; the kernel then reports a non-zero count) that arrive later raise a
// readiness edge, which the runtime keeps for the wait as long as we stay
// inside this RawConn.Read. A new Read starts by forgetting it, which is why
// the writes happen in here, and why its first read is always real.
func (d *direction) rawCopy(fd uintptr) bool {
	for {
		if d.drained {
			d.drained = false
			return d.waitReadable()
		}
		if d.buf == nil {
			d.buf = d.getBuf()
		}
		n, inq, err := recvInq(int(fd), *d.buf)
		switch err {
		case nil:
			if n == 0 {
				d.rerr = io.EOF
				return true
			}
			if !d.write((*d.buf)[:n]) {
				d.wfailed = true
				return true
			}
			d.drained = inq == 0
		case syscall.EINTR:
		case syscall.EAGAIN:
			return d.waitReadable()
		default:
			d.rerr = os.NewSyscallError("read", err)
			return true
		}
	}
}
