package tunnel

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// enableInq asks the kernel to report, with every read of a TCP socket, how many bytes are still queued
// (TCP_INQ, Linux 4.18+). A direction then knows when a read emptied the socket and waits for readiness
// without first paying a read that fails with EAGAIN. After a FIN the kernel reports a non-zero count, so an
// EOF read in the same batch as the last bytes is never missed.
func enableInq(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_TCP, unix.TCP_INQ, 1) }); err != nil {
		return false
	}
	return serr == nil
}

// recvInq reads like read(2) and also returns the bytes left in the socket's queue (TCP_CM_INQ; -1 when the
// kernel did not say). The socket is non-blocking, so it is a raw system call (see netutil.Socket).
func recvInq(fd int, p []byte) (n, inq int, err error) {
	var cmsg [32]byte // room for one cmsghdr with an int
	iov := unix.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Control: &cmsg[0]}
	msg.SetControllen(len(cmsg))
	r, _, e := syscall.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), 0)
	if e != 0 {
		return 0, -1, e
	}
	inq = -1
	if int(msg.Controllen) >= unix.CmsgLen(4) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&cmsg[0]))
		if h.Level == unix.SOL_TCP && h.Type == unix.TCP_CM_INQ {
			inq = int(*(*int32)(unsafe.Pointer(&cmsg[unix.CmsgLen(0)])))
		}
	}
	return int(r), inq, nil
}
