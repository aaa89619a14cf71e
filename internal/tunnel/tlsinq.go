package tunnel

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/sluice-proxy/sluice/internal/netutil"
)

// NewTLSTransport wraps c, the connection a TLS server connection is about to run over (tls.Server(
// NewTLSTransport(c), cfg)), so that a tunnel over that TLS connection later reads and writes its socket
// directly (see inqConn). Until then, and for connections that never become tunnels, it is c.
func NewTLSTransport(c net.Conn) net.Conn { return &inqConn{Conn: c, fd: -1} }

// inqConn is the transport under a TLS client side (NewTLSTransport) that lets a tunnel direction read it like
// a plain socket (rawCopy): it never pays a read that fails with EAGAIN. Inside the direction's RawConn.Read (fd >= 0) a read is a
// recvmsg on the socket that also reports the bytes still queued (TCP_INQ), and once a read left the queue
// empty the next one fails at once with errDrained, a temporary error after which crypto/tls keeps what it
// has read of a record: the direction then waits for readability in the same RawConn.Read. Outside it, it is
// the connection it wraps.
type inqConn struct {
	net.Conn           // the transport crypto/tls had: deadlines, Close
	sw       io.Writer // writes: the socket's raw writer (netutil.RawWriter)
	fd       int32     // the socket while inside the direction's RawConn.Read, else -1
	empty    bool      // the last read left the socket's queue empty
}

// errDrained is inqConn's read error once the socket's queue is empty.
var errDrained error = drainedError{}

type drainedError struct{}

func (drainedError) Error() string   { return "tunnel: socket drained" }
func (drainedError) Timeout() bool   { return false }
func (drainedError) Temporary() bool { return true } // crypto/tls keeps a partial record and stays usable

func (c *inqConn) Read(p []byte) (int, error) {
	if c.fd < 0 {
		return c.Conn.Read(p)
	}
	if c.empty {
		return 0, errDrained
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, inq, err := recvInq(int(c.fd), p)
		switch err {
		case nil:
			if n == 0 {
				return 0, io.EOF
			}
			c.empty = inq == 0
			return n, nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			c.empty = true
			return 0, errDrained
		default:
			return 0, os.NewSyscallError("read", err)
		}
	}
}

// Write writes to the socket with raw send(2) calls (netutil.RawWriter) once a tunnel owns the connection.
func (c *inqConn) Write(p []byte) (int, error) {
	if c.sw != nil {
		return c.sw.Write(p)
	}
	return c.Conn.Write(p)
}

// NetConn is the transport under the wrapper (an idle direction finds the socket to wait on through it).
func (c *inqConn) NetConn() net.Conn { return c.Conn }

// inqTransport returns tc's transport when it is an inqConn (NewTLSTransport) over a TCP socket (directly or
// through wrappers that expose NetConn and, after the handshake, hold no unread byte) that accepts TCP_INQ,
// with that socket's RawConn, after switching its writes to raw sends; otherwise nil. It must run before
// anything else uses tc concurrently: a tunnel calls it before its directions start.
func inqTransport(tc *tls.Conn) (*inqConn, syscall.RawConn) {
	ic, ok := tc.NetConn().(*inqConn)
	if !ok {
		return nil, nil
	}
	tcp, ok := underTCP(ic.Conn)
	if !ok || !enableInq(tcp) {
		return nil, nil
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		return nil, nil
	}
	sw := netutil.RawWriter(tcp)
	if sw == nil {
		return nil, nil
	}
	ic.sw, ic.fd = sw, -1
	return ic, rc
}

func underTCP(c net.Conn) (*net.TCPConn, bool) {
	for range 8 {
		switch s := c.(type) {
		case *net.TCPConn:
			return s, true
		case interface{ NetConn() net.Conn }:
			c = s.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}

// tlsCopy is the RawConn.Read callback of a direction whose source is a *tls.Conn with d.tin under it:
// rawCopy's loop, reading through crypto/tls.
func (d *direction) tlsCopy(fd uintptr) bool {
	ic := d.tin
	ic.fd, ic.empty = int32(fd), false // the first read of each round is real (see rawCopy)
	for {
		p, err := d.readConn()
		if len(p) > 0 && !d.write(p) {
			ic.fd = -1
			d.wfailed = true
			return true
		}
		if !d.grow {
			d.releaseBuf()
		}
		if err == nil && ic.empty && !tlsHoldsInput(d.src.(*tls.Conn)) {
			// nothing queued and nothing in crypto/tls: skip the Read that
			// would only find that out (it costs crypto/tls an allocation)
			err = errDrained
		}
		switch err {
		case nil:
		case errDrained:
			ic.fd = -1
			return d.waitReadable()
		default:
			ic.fd = -1
			d.rerr = err
			return true
		}
	}
}
