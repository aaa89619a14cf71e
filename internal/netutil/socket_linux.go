package netutil

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket is a TCP connection whose reads and writes are raw read(2) and write(2) calls made inside its
// RawConn, so a call that cannot block skips the scheduler's system-call entry and exit. net.Conn's own calls
// take that entry, which wakes sysmon from its sleep whenever the process had been idle for a moment; with one
// P (worker_processes 1) and a request every few tens of microseconds that cost a tenth of the CPU of a
// proxied request, and a context switch or two per request. A call that would block waits for the poller as
// net.Conn's does, under the same deadlines; closing works as for the connection it wraps.
//
// Reads and writes may run concurrently with each other, as on net.Conn; two reads (or two writes) may not.
//
// A write timeout (SetWriteTimeout) is armed only when a write would block, so a write the kernel takes at
// once costs no runtime timer.
type Socket struct {
	*net.TCPConn
	rc   syscall.RawConn
	r, w rawOp
	wto  atomic.Int64 // SetWriteTimeout's duration (0: none)
	// what Await read ahead, handed out by the next Reads: its bytes (pre), or the read's end or error (preErr);
	// preDone gives the buffer back once they are out
	pre     []byte
	preErr  error
	preDone func()
	aw      awaitOp
	// explicit: SetWriteDeadline or SetDeadline set a deadline, which governs writes instead of the timeout
	explicit atomic.Bool
	rdl      atomic.Int64 // the read deadline armed (Unix nanoseconds; 0: none), see SetReadDeadline
}

// lazyDeadline is how much later than the armed read deadline a new one may be and still leave it armed:
// nginx's NGX_TIMER_LAZY_DELAY.
const lazyDeadline = int64(300 * time.Millisecond)

// rawOp is one read or write in progress: its buffer, how much of it was done, and its error.
type rawOp struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
	// blocked: a write timeout applies, so the callback stops at EAGAIN to (re-)arm it (writes only)
	blocked bool
	// armed: the timeout is armed; the callback stops again only after a wait that made progress
	armed bool
}

// NewSocket wraps c when it is a *net.TCPConn; any other connection is returned as it is.
func NewSocket(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	s := &Socket{TCPConn: tc, rc: rc}
	s.r.fn = s.read
	s.w.fn = s.write
	return s
}

// RawWriter returns a writer of raw send(2) calls for c when it is a *net.TCPConn (its Socket), else nil: for
// code that reads the socket itself but writes through a Write method (a tunnel).
func RawWriter(c net.Conn) io.Writer {
	if s, ok := NewSocket(c).(*Socket); ok {
		return s
	}
	return nil
}

// TCP returns the *net.TCPConn of c when c is one or a Socket.
func TCP(c net.Conn) (*net.TCPConn, bool) {
	switch c := c.(type) {
	case *net.TCPConn:
		return c, true
	case *Socket:
		return c.TCPConn, true
	}
	return nil, false
}

// NetConn returns the connection under s (code that wants the socket itself looks through NetConn).
func (s *Socket) NetConn() net.Conn { return s.TCPConn }

func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.pre != nil || s.preErr != nil {
		return s.readAhead(p)
	}
	s.r.p, s.r.n, s.r.err = p, 0, nil
	err := s.rc.Read(s.r.fn)
	n := s.r.n
	if err == nil {
		err = s.r.err
	} else {
		err = s.opError("read", err)
	}
	s.r.p, s.r.err = nil, nil
	return n, err
}

func (s *Socket) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.w.p, s.w.n, s.w.err = p, 0, nil
	s.w.blocked = s.wto.Load() > 0 && !s.explicit.Load() // the callback returns at EAGAIN instead of waiting
	s.w.armed = false
	err := s.rc.Write(s.w.fn)
	for err == nil && s.w.blocked && s.w.n < len(p) && s.w.err == nil {
		// the socket's buffer is full: the write may wait at most the timeout for room, counted again after
		// every wait that let some bytes out (send_timeout is the time between two successful writes)
		s.w.armed = true
		s.TCPConn.SetWriteDeadline(time.Now().Add(time.Duration(s.wto.Load())))
		err = s.rc.Write(s.w.fn)
	}
	armed := s.w.armed
	s.w.blocked, s.w.armed = false, false
	if armed && !s.explicit.Load() {
		s.TCPConn.SetWriteDeadline(time.Time{})
	}
	n := s.w.n
	if err == nil {
		err = s.w.err
	} else {
		err = s.opError("write", err)
	}
	s.w.p, s.w.err = nil, nil
	return n, err
}

// awaitOp is one Await in progress.
type awaitOp struct {
	buf        []byte
	idle, done func()
	waited     bool
	fn         func(fd uintptr) bool
}

// Await waits until the socket can be read (bytes, the peer's end, an error) or the read deadline passes,
// without holding a buffer while it waits. Its first check is a read into buf: bytes already there (the usual
// case on a busy keep-alive connection) are what the next Reads return, so they cost one read(2) where a peek
// and a read would cost two. done is called once buf is free again: at once when nothing was there, else when
// the Reads have handed out its bytes. Before waiting, idle is called (to give back buffers: a waiting socket
// should hold none). The error is the wait's (a deadline, a closed socket); the read's own end or error is
// returned by the next Read.
func (s *Socket) Await(buf []byte, idle, done func()) error {
	if s.aw.fn == nil {
		s.aw.fn = s.await
	}
	s.aw.buf, s.aw.idle, s.aw.done, s.aw.waited = buf, idle, done, false
	err := s.rc.Read(s.aw.fn)
	if !s.aw.waited && s.pre == nil {
		done() // the read found nothing to keep (its end or error is kept in preErr) or never ran
	}
	s.aw = awaitOp{fn: s.aw.fn}
	if err != nil {
		return s.opError("read", err)
	}
	return nil
}

// await is Await's RawConn.Read callback: the first call reads ahead; after a wait the socket is readable.
func (s *Socket) await(fd uintptr) bool {
	if s.aw.waited {
		return true
	}
	for {
		n, e := RawRead(fd, s.aw.buf)
		switch e {
		case 0:
			if n == 0 {
				s.preErr = io.EOF
			} else {
				s.pre, s.preDone = s.aw.buf[:n], s.aw.done
			}
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			s.aw.waited = true
			s.aw.done()
			s.aw.idle()
			return false
		default:
			s.preErr = s.opError("read", os.NewSyscallError("read", e))
			return true
		}
	}
}

// readAhead hands out what Await read ahead.
func (s *Socket) readAhead(p []byte) (int, error) {
	if s.pre == nil {
		err := s.preErr
		s.preErr = nil
		return 0, err
	}
	n := copy(p, s.pre)
	s.pre = s.pre[n:]
	if len(s.pre) == 0 {
		s.pre = nil
		done := s.preDone
		s.preDone = nil
		done()
	}
	return n, nil
}

// SetWriteTimeout gives every later write that would block d to complete, counted from the moment it would
// block (send_timeout: the time between two successful writes); 0 turns it off. A deadline set with
// SetWriteDeadline or SetDeadline governs instead while it is set.
func (s *Socket) SetWriteTimeout(d time.Duration) { s.wto.Store(int64(max(d, 0))) }

func (s *Socket) SetWriteDeadline(t time.Time) error {
	s.explicit.Store(!t.IsZero())
	return s.TCPConn.SetWriteDeadline(t)
}

func (s *Socket) SetDeadline(t time.Time) error {
	s.explicit.Store(!t.IsZero())
	s.rdl.Store(unixNano(t))
	return s.TCPConn.SetDeadline(t)
}

// SetReadDeadline sets the read deadline, except that a deadline at most 300 ms and at most an eighth of its
// timeout later than the one armed leaves that one armed, as nginx leaves a timer within 300 ms of its new
// expiry (NGX_TIMER_LAZY_DELAY). A keep-alive connection arms keepalive_timeout again for every request, and
// moving a runtime timer cost 650 of the 37k instructions of a proxied request. The deadline then passes at
// most that much early; never late, and a deadline that has passed is always re-armed.
func (s *Socket) SetReadDeadline(t time.Time) error {
	return s.setReadDeadline(t, time.Until(t))
}

// SetReadTimeout is SetReadDeadline(time.Now().Add(d)), or no deadline for d <= 0, with one clock read where
// that would take two.
func (s *Socket) SetReadTimeout(d time.Duration) error {
	if d <= 0 {
		return s.setReadDeadline(time.Time{}, 0)
	}
	return s.setReadDeadline(time.Now().Add(d), d)
}

// setReadDeadline is SetReadDeadline with t's distance from now, d, known.
func (s *Socket) setReadDeadline(t time.Time, d time.Duration) error {
	n := unixNano(t)
	if armed := s.rdl.Load(); n != 0 && armed != 0 && n >= armed && n-armed <= lazyDeadline && n-armed <= int64(d/8) {
		return nil
	}
	s.rdl.Store(n)
	return s.TCPConn.SetReadDeadline(t)
}

// unixNano is t in Unix nanoseconds, 0 for the zero time (no deadline).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// opError names a failure as net.Conn's Read and Write do ("read tcp a->b: …").
func (s *Socket) opError(op string, err error) error { return opError(s.TCPConn, op, err) }

// RawRead is read(2) on a non-blocking descriptor as a raw system call (see Socket): call it only inside a
// RawConn's Read or Write, which keep fd open. p must not be empty.
func RawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// RawWrite is send(2) with MSG_NOSIGNAL on a non-blocking socket as a raw system call (see RawRead): a peer
// that has gone is an EPIPE error, not a signal. p must not be empty.
func RawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	return int(r), e
}

// read is the RawConn.Read callback: false means "wait until readable".
func (s *Socket) read(fd uintptr) bool {
	for {
		r, e := RawRead(fd, s.r.p)
		switch e {
		case 0:
			s.r.n = r
			if r == 0 {
				s.r.err = io.EOF
			}
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.r.err = s.opError("read", os.NewSyscallError("read", e))
			return true
		}
	}
}

// write is the RawConn.Write callback: it writes all of s.w.p, returning false (wait until writable) when the
// socket's buffer is full.
func (s *Socket) write(fd uintptr) bool {
	n, e := RawWriteAll(fd, s.w.p[s.w.n:])
	s.w.n += n
	switch e {
	case 0:
		return true
	case syscall.EAGAIN:
		// with a timeout: stop to arm it before the first wait, and to re-arm it after a wait that made progress
		return s.w.blocked && (!s.w.armed || n > 0)
	}
	s.w.err = s.opError("write", os.NewSyscallError("write", e))
	return true
}

// peerEnded reports whether the peer of a socket has shut down its side (or the connection failed), which a
// peek cannot tell while bytes are waiting.
func peerEnded(fd uintptr) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(p, 0)
	return err == nil && n > 0 && p[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
}
