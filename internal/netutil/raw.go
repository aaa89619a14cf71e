package netutil

import (
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RawWriteAll writes p with RawWrite until all of it is written (e == 0), the socket's buffer is full
// (e == EAGAIN: wait for writability, then write p[n:]) or the write fails. Call it inside a RawConn's
// callback, like RawWrite.
func RawWriteAll(fd uintptr, p []byte) (n int, e syscall.Errno) {
	for n < len(p) {
		m, e := RawWrite(fd, p[n:])
		switch {
		case e == syscall.EINTR:
		case e != 0:
			return n, e
		case m <= 0:
			return n, syscall.EAGAIN // no progress: wait as for a full buffer
		default:
			n += m
		}
	}
	return n, 0
}

// Peek checks a non-blocking socket without reading from it or waiting: e == EAGAIN when nothing is there,
// else n == 0 for the peer's end and n == 1 when bytes are waiting (or e for an error such as a reset). A
// raw system call: call it inside a RawConn's callback.
func Peek(fd uintptr) (n int, e syscall.Errno) {
	var b [1]byte
	r, _, e := syscall.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return int(r), e
}

// opError names a failure of a read or write on c as net.Conn's methods do ("read tcp a->b: …"), unwrapping
// a RawConn's own *net.OpError (which names the operation "raw-read" or "raw-write").
func opError(c net.Conn, op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// PeekPrefix waits until the bytes c has received show whether they begin with prefix, without reading them:
// true once all of prefix is there, false as soon as a byte differs (or the peer ended before it was all
// sent). It gives up after timeout. The bytes stay in the socket for whoever reads c next, which keeps a
// plain socket plain (no wrapper replaying what was read). c must be a TCP socket (see TCP).
func PeekPrefix(c *net.TCPConn, prefix string, timeout time.Duration) (bool, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, len(prefix))
	var match bool
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		r, _, e := syscall.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == syscall.EAGAIN || e == syscall.EINTR:
			return false
		case e != 0:
			perr = e
			return true
		}
		n := int(r)
		if n < len(prefix) && n > 0 && string(buf[:n]) == prefix[:n] && !peerEnded(fd) {
			return false // a beginning of prefix: wait for more
		}
		match = n == len(prefix) && string(buf) == prefix
		return true
	})
	if err == nil {
		err = perr
	}
	return match, err
}
