package netutil

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// HeadFirst reads an upstream socket (TCP or unix) with raw system calls, and can carry a request that the next
// read writes from inside its own wait for the answer (Defer). Writing there, after the poller's readiness was
// reset for the read, means the answer's arrival cannot be missed, so the read need not first try in vain.
// Before writing, it peeks at the socket without blocking: an end (or bytes) the peer sent before the request,
// whose readiness the reset discarded, is reported as a stale connection (nothing written) instead of being
// waited past; php-fpm, for one, half-closes a recycled worker's connection and waits for ours to end. That peek
// is also the pool's liveness check, so a kept connection's exchange costs a peek, a write and a read, where it
// cost a liveness probe, a write, a read that failed with EAGAIN and the read.
// Not safe for concurrent reads.
type HeadFirst struct {
	conn net.Conn
	rc   syscall.RawConn // nil: not a socket; reads and writes are conn's own
	rest io.Writer       // writes what a deferred head could not write without blocking (with its deadline)
	fn   func(fd uintptr) bool

	head   []byte // deferred bytes not written yet
	peeked bool   // the socket was checked before the head's first byte
	stale  error  // what the check found: the peer's end (io.EOF) or bytes it sent unasked
	p      []byte // the read in progress
	n      int
	rerr   syscall.Errno
	werr   syscall.Errno
}

// NewHeadFirst returns a reader of c; rest is where the part of a deferred head that would block goes (c itself,
// or a writer that bounds each write with a deadline).
func NewHeadFirst(c net.Conn, rest io.Writer) *HeadFirst {
	h := &HeadFirst{conn: c, rest: rest}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			h.rc = rc
			h.fn = h.step
		}
	}
	return h
}

// Defer has the next Read write p first. It reports false, and keeps nothing, when c is not a socket: the
// caller writes p itself. p must stay unchanged until that Read returns.
func (h *HeadFirst) Defer(p []byte) bool {
	if h.rc == nil || len(p) == 0 {
		return false
	}
	h.head, h.peeked, h.stale = p, false, nil
	return true
}

// CanDefer reports whether Defer takes a head (and so checks the connection before writing it).
func (h *HeadFirst) CanDefer() bool { return h.rc != nil }

// ErrUnsolicited is a stale connection's error when the peer had sent bytes before the request was written.
var ErrUnsolicited = errors.New("connection had unsolicited bytes before the request")

func (h *HeadFirst) Read(p []byte) (int, error) {
	if h.rc == nil {
		return h.conn.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	h.p, h.n, h.rerr, h.werr = p, 0, 0, 0
	err := h.rc.Read(h.fn)
	n, rerr, werr := h.n, h.rerr, h.werr
	h.p = nil
	if err != nil {
		h.head = nil
		return 0, h.opError("read", err)
	}
	if werr != 0 {
		h.head = nil
		return 0, h.opError("write", os.NewSyscallError("write", werr))
	}
	if h.stale != nil {
		err := h.stale
		h.head, h.stale = nil, nil
		return 0, err
	}
	if h.head != nil {
		// the rest of the head would block: it goes out the ordinary way, then the read waits as usual
		rest := h.head
		h.head = nil
		if _, err := h.rest.Write(rest); err != nil {
			return 0, err
		}
		return h.Read(p)
	}
	switch {
	case rerr != 0:
		return 0, h.opError("read", os.NewSyscallError("read", rerr))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// step is the RawConn.Read callback: write what is left of the head (stopping, with the head kept, when that
// would block), wait for the answer, read it.
func (h *HeadFirst) step(fd uintptr) bool {
	if h.head != nil {
		if !h.peeked {
			h.peeked = true
			r, e := Peek(fd)
			switch {
			case e == syscall.EAGAIN:
			case e != 0:
				h.werr = e // reset: nothing is written
				return true
			case r == 0:
				h.stale = io.EOF
				return true
			default:
				h.stale = ErrUnsolicited
				return true
			}
		}
		n, e := RawWriteAll(fd, h.head)
		h.head = h.head[n:]
		switch e {
		case 0:
			h.head = nil
			return false // the answer cannot be there yet: wait for it
		case syscall.EAGAIN:
			return true
		}
		h.werr = e
		return true
	}
	for {
		n, e := RawRead(fd, h.p)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		h.n, h.rerr = n, e
		return true
	}
}

func (h *HeadFirst) opError(op string, err error) error { return opError(h.conn, op, err) }
