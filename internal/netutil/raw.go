package netutil

import (
	"net"
	"syscall"
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
