package netutil

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DeadlineWriter gives every write its own deadline D (proxy_send_timeout, fastcgi_send_timeout: the time
// between two successful writes). D of zero leaves the deadline alone.
//
// On a plain socket a write that the kernel takes at once cannot time out, so it is tried first without a
// deadline (no timer to arm and disarm per write); only a write that would block gets the deadline, which is
// cleared again afterwards.
type DeadlineWriter struct {
	net.Conn
	D time.Duration
	// Err is the last write's error: a caller whose own error hides it (net/http reports a failed body write
	// as a body read error) can still tell a timeout.
	Err error

	raw  syscall.RawConn // nil: not a socket (TLS, tests), every write gets its deadline
	fn   func(fd uintptr) bool
	p    []byte // the write in progress on the fast path, and how much of it went out
	n    int
	init bool
}

func (w *DeadlineWriter) Write(p []byte) (int, error) {
	if w.D <= 0 {
		return w.Conn.Write(p)
	}
	if !w.init {
		w.setup()
	}
	n := 0
	if w.raw != nil {
		w.p, w.n = p, 0
		if w.raw.Write(w.fn) == nil {
			n = w.n
		}
		w.p = nil
		if n == len(p) {
			return n, nil
		}
	}
	w.Conn.SetWriteDeadline(time.Now().Add(w.D))
	m, err := w.Conn.Write(p[n:])
	if w.raw != nil {
		w.Conn.SetWriteDeadline(time.Time{}) // the fast path must never meet an expired deadline
	}
	if err != nil {
		w.Err = err
	}
	return n + m, err
}

func (w *DeadlineWriter) setup() {
	w.init = true
	sc, ok := w.Conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	w.raw = raw
	w.fn = func(fd uintptr) bool {
		// what would block, or failed, is left to the ordinary write (with its deadline)
		n, _ := RawWriteAll(fd, w.p[w.n:])
		w.n += n
		return true
	}
}

// IsStale reports errors that mean a reused connection had been closed by the peer before the request.
func IsStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, ErrUnsolicited) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

// WriteTimeouter is a connection that arms a write timeout only when a write would block (Socket).
type WriteTimeouter interface {
	SetWriteTimeout(d time.Duration)
}

// WriteTimeoutOf returns the WriteTimeouter under c's wrappers (a framing guard, TLS, a connection replaying
// peeked bytes), found through their Unwrap or NetConn methods; nil when there is none.
func WriteTimeoutOf(c net.Conn) WriteTimeouter {
	for i := 0; i < 8 && c != nil; i++ {
		if wt, ok := c.(WriteTimeouter); ok {
			return wt
		}
		switch u := c.(type) {
		case interface{ Unwrap() net.Conn }:
			c = u.Unwrap()
		case interface{ NetConn() net.Conn }:
			c = u.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// ErrnoText is an error as nginx prints an errno: "111: Connection refused"; other errors as they are.
func ErrnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s != "" && s[0] >= 'a' && s[0] <= 'z' {
			s = string(s[0]-'a'+'A') + s[1:] // as strerror(3) writes it
		}
		return strconv.Itoa(int(errno)) + ": " + s
	}
	return err.Error()
}

// IsBindError reports whether err is a failure to bind a connection's local address (proxy_bind and the like):
// this host's error, not the peer's, which nginx answers with 500 without trying another peer.
func IsBindError(err error) bool {
	var se *os.SyscallError
	return errors.As(err, &se) && se.Syscall == "bind"
}
