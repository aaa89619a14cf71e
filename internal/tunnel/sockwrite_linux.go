package tunnel

import (
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockWriter writes to a TCP socket through its RawConn with raw send(2) calls (MSG_NOSIGNAL). Unlike
// net.Conn.Write, a send that cannot block does not go through the scheduler's syscall entry and exit: with
// one P (worker_processes 1) each such entry woke sysmon from its idle sleep or let it hand the P off
// mid-write, which cost a busy tunnel about a sixth of its CPU. A full socket buffer still waits for
// writability under the write deadline, and the RawConn keeps the descriptor from being closed meanwhile.
type sockWriter struct {
	rc  syscall.RawConn
	fn  func(uintptr) bool // w.send, made once
	p   []byte
	n   int
	err error
}

// newSockWriter returns a writer for c when it is a TCP socket, else nil.
func newSockWriter(c net.Conn) *sockWriter {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &sockWriter{rc: rc}
	w.fn = w.send
	return w
}

func (w *sockWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	w.p, w.n, w.err = p, 0, nil
	err := w.rc.Write(w.fn)
	n := w.n
	if err == nil {
		err = w.err
	}
	w.p, w.err = nil, nil
	return n, err
}

// send is the RawConn.Write callback: it returns false (wait for writability) when the socket buffer is full.
func (w *sockWriter) send(fd uintptr) bool {
	for len(w.p) > 0 {
		r, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&w.p[0])), uintptr(len(w.p)), unix.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			w.n += int(r)
			w.p = w.p[r:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			w.err = os.NewSyscallError("write", e)
			return true
		}
	}
	return true
}
