//go:build !linux

package netutil

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// NewSocket returns c: raw socket calls are made on Linux only.
func NewSocket(c net.Conn) net.Conn { return c }

// RawWriter returns nil: raw socket writes are made on Linux only.
func RawWriter(net.Conn) io.Writer { return nil }

// TCP returns the *net.TCPConn of c when c is one.
func TCP(c net.Conn) (*net.TCPConn, bool) {
	tc, ok := c.(*net.TCPConn)
	return tc, ok
}

// RawRead is read(2) on a non-blocking descriptor.
func RawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return errno(n, err)
}

// RawWrite is write(2) on a non-blocking descriptor.
func RawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return errno(n, err)
}

func errno(n int, err error) (int, syscall.Errno) {
	if err == nil {
		return n, 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return 0, e
	}
	return 0, syscall.EIO
}

// peerEnded reports whether the peer of a socket has hung up (or the connection failed), which a peek cannot
// tell while bytes are waiting.
func peerEnded(fd uintptr) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(p, 0)
	return err == nil && n > 0 && p[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
}
