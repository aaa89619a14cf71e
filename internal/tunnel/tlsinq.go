package tunnel

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"reflect"
	"sync"
	"syscall"
	"unsafe"
)

// tlsConnOffset locates crypto/tls.Conn's transport (the unexported conn field) by name and type, once. ok is
// false when this Go's crypto/tls has no such field: TLS directions then read through crypto/tls as before.
var tlsConnOffset = sync.OnceValues(func() (uintptr, bool) {
	sf, ok := reflect.TypeFor[tls.Conn]().FieldByName("conn")
	if !ok || sf.Type != reflect.TypeFor[net.Conn]() || len(sf.Index) != 1 {
		return 0, false
	}
	return sf.Offset, true
})

// inqConn is the transport a direction puts under its source *tls.Conn so that, like a plain one (rawCopy),
// it never pays a read that fails with EAGAIN. Inside the direction's RawConn.Read (fd >= 0) a read is a
// recvmsg on the socket that also reports the bytes still queued (TCP_INQ), and once a read left the queue
// empty the next one fails at once with errDrained, a temporary error after which crypto/tls keeps what it
// has read of a record: the direction then waits for readability in the same RawConn.Read. Outside it, it is
// the connection it wraps.
type inqConn struct {
	net.Conn             // the transport crypto/tls had: deadlines, Close
	sw       *sockWriter // writes: the socket's raw writer
	fd       int32       // the socket while inside the direction's RawConn.Read, else -1
	empty    bool        // the last read left the socket's queue empty
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

// Write writes to the socket with raw send(2) calls (see sockWriter); crypto/tls writes through here.
func (c *inqConn) Write(p []byte) (int, error) { return c.sw.Write(p) }

// NetConn is the transport under the wrapper (an idle direction finds the socket to wait on through it).
func (c *inqConn) NetConn() net.Conn { return c.Conn }

// under puts c under tc when tc is over a TCP socket (directly or through wrappers that expose NetConn and,
// after the handshake, hold no unread byte) that accepts TCP_INQ, and returns that socket's RawConn;
// otherwise it changes nothing and returns nil. It must run before anything else uses tc concurrently: a
// tunnel calls it before its directions start.
func (c *inqConn) under(tc *tls.Conn) syscall.RawConn {
	off, ok := tlsConnOffset()
	if !ok {
		return nil
	}
	tcp, ok := underTCP(tc.NetConn())
	if !ok || !enableInq(tcp) {
		return nil
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	sw := newSockWriter(tcp)
	if sw == nil {
		return nil
	}
	field := (*net.Conn)(unsafe.Add(unsafe.Pointer(tc), off))
	c.Conn, c.sw, c.fd = *field, sw, -1
	*field = c
	return rc
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
	ic := &d.tin
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
