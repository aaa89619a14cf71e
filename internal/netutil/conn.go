package netutil

import (
	"errors"
	"io"
	"net"
	"strings"
	"time"
)

// DeadlineWriter gives every write its own deadline D (proxy_send_timeout, fastcgi_send_timeout: the time
// between two successful writes). D of zero leaves the deadline alone.
type DeadlineWriter struct {
	net.Conn
	D time.Duration
}

func (w DeadlineWriter) Write(p []byte) (int, error) {
	if w.D > 0 {
		w.Conn.SetWriteDeadline(time.Now().Add(w.D))
	}
	return w.Conn.Write(p)
}

// IsStale reports errors that mean a reused connection had been closed by the peer before the request.
func IsStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}
