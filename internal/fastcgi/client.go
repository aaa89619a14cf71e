package fastcgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/internal/netutil"
)

// Client runs FastCGI requests and keeps idle connections (FCGI_KEEP_CONN) per application address for reuse.
type Client struct {
	// MaxIdle is how many idle connections are kept per address.
	MaxIdle int
	// IdleTimeout closes a connection idle longer than this: an idle kept connection holds a php-fpm worker.
	IdleTimeout time.Duration

	bodyBufs sync.Pool // *[]byte copy buffers for request bodies

	mu    sync.Mutex
	pools map[poolKey]*pool
	reap  *time.Timer
	unpin *time.Timer
}

// Target is where and how one request is sent.
type Target struct {
	Network        string // "tcp" or "unix"
	Addr           string
	ConnectTimeout time.Duration
	SendTimeout    time.Duration // bounds each write to the application
	ReadTimeout    time.Duration // bounds each read from the application
	KeepConn       bool          // ask the application to keep the connection, and pool it
	Local          *net.TCPAddr  // the address TCP connections are made from (fastcgi_bind), nil for any
	KeepAlive      bool          // SO_KEEPALIVE (fastcgi_socket_keepalive)
}

// poolKey names an application address and how its connections are made (a struct, so finding its pool
// builds no string per request).
type poolKey struct {
	network, addr string
	local         netip.AddrPort
	keepAlive     bool
}

func (t Target) key() poolKey {
	k := poolKey{network: t.Network, addr: t.Addr, keepAlive: t.KeepAlive}
	if t.Local != nil {
		k.local = t.Local.AddrPort()
	}
	return k
}

// dialer is the dialer of t's connections.
func (t Target) dialer() net.Dialer {
	local := t.Local
	if t.Network != "tcp" {
		local = nil
	}
	return netutil.Dialer(t.ConnectTimeout, t.KeepAlive, local)
}

type conn struct {
	nc     net.Conn
	dw     *netutil.DeadlineWriter // its D is set per request (fastcgi_send_timeout of the location)
	hf     *netutil.HeadFirst      // reads the connection; the end of a request is written from its first read
	rr     *recordReader
	rw     *recordWriter
	hr     *bufio.Reader // reads the CGI header block and then the body of the current response
	abort  func()        // unblocks the connection's reads and writes (the request's context ended)
	key    poolKey
	idleAt time.Time
}

// Response is the application's answer. Body streams STDOUT after the CGI headers; it must be closed, and a
// connection goes back to the pool only when the body was read to END_REQUEST.
type Response struct {
	Status int    // from the Status header; 302 for a Location without Status; 200 otherwise
	Reason string // the reason phrase of the Status header ("" without one)
	Header http.Header
	Body   io.ReadCloser
	// Reused says the request ran on a pooled connection.
	Reused bool
}

// StderrFunc receives each STDERR record's content (php-fpm's error output for the request).
type StderrFunc func(msg []byte)

// Call is one FastCGI request: its encoded PARAMS, and a body of ContentLength bytes (nil for none).
type Call struct {
	Params        []byte
	Body          io.Reader
	ContentLength int64
	Stderr        StderrFunc
	// MaxHeader bounds the CGI response header block.
	MaxHeader int
	// Rewind, when set, restarts Body from its beginning (a spooled body), so a request whose pooled connection
	// turned out closed can be sent again on a new one; without it only requests without a body are.
	Rewind func() error
	// NonIdempotent marks a request that may change state (POST, PATCH, LOCK): once written whole to a
	// connection it is never sent again, since the application may have acted on it (nginx's rule).
	NonIdempotent bool
	// Modifier1 and Modifier2 go in the uwsgi packet header (uwsgi_modifier1, uwsgi_modifier2); FastCGI has none.
	Modifier1, Modifier2 byte
}

// Error reports where an exchange failed, so the handler can answer 502 or 504 and log nginx's wording.
type Error struct {
	Op      string // "connect", "send", "read header", "read body"
	Timeout bool
	Err     error
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ErrHeaderTooBig means the application's header block exceeded MaxHeader.
var ErrHeaderTooBig = errors.New("upstream sent too big header")

// Do sends req to t and reads the response header. A non-idempotent request (POST, PATCH, LOCK) always gets a
// new connection, which is kept afterwards like any other. A pooled connection that turns out to be closed is
// replaced by a new one when the request can be sent again.
func (c *Client) Do(ctx context.Context, t Target, req *Call) (*Response, error) {
	for attempt := 0; ; attempt++ {
		cn, reused := (*conn)(nil), false
		key := t.key()
		if t.KeepConn {
			if attempt > 0 || !req.resendable() {
				// A request that cannot be sent twice never rides a kept connection: php-fpm closes one a few
				// milliseconds after a worker's last response (pm.max_requests), and that close looks exactly
				// like a worker dying on the request. A retry dials too, so it cannot meet another such close.
				c.dialing(key)
			} else {
				var err error
				if cn, err = c.get(ctx, key); err != nil {
					return nil, &Error{Op: "connect", Err: err}
				}
				reused = cn != nil
			}
		}
		if cn == nil {
			var err error
			cn, err = dial(ctx, t)
			if err != nil {
				if t.KeepConn {
					c.probed(key, true)
					c.release(key)
				}
				return nil, &Error{Op: "connect", Timeout: isTimeout(err), Err: err}
			}
		}
		resp, sent, err := c.exchange(ctx, cn, t, req)
		if !reused {
			c.probed(key, t.KeepConn)
		}
		if err == nil {
			resp.Reused = reused
			return resp, nil
		}
		cn.nc.Close()
		if t.KeepConn {
			c.release(key)
		}
		if !reused || attempt > 0 || !isStale(err) || ctx.Err() != nil {
			return nil, err
		}
		// a kept connection the application had closed (php-fpm's pm.max_requests): send again on a new one
		if sent > 0 || req.Body != nil && req.ContentLength > 0 {
			if req.Rewind() != nil {
				return nil, err
			}
		}
	}
}

// resendable reports whether req may be sent again after a kept connection failed under it: idempotent, and
// without a body or with one that can be read again.
func (req *Call) resendable() bool {
	return !req.NonIdempotent && (req.Body == nil || req.ContentLength == 0 || req.Rewind != nil)
}

func dial(ctx context.Context, t Target) (*conn, error) {
	d := t.dialer()
	nc, err := d.DialContext(ctx, t.Network, t.Addr)
	if err != nil {
		return nil, err
	}
	nc = netutil.NewSocket(nc)
	dw := &netutil.DeadlineWriter{Conn: nc, D: t.SendTimeout}
	hf := netutil.NewHeadFirst(nc, dw)
	return &conn{nc: nc, dw: dw, hf: hf, rr: newRecordReader(hf), rw: newRecordWriter(dw), key: t.key(),
		abort: func() { nc.SetDeadline(time.Unix(1, 0)) }}, nil
}

// exchange writes the request and reads up to the end of the response header. sent counts body bytes sent.
func (c *Client) exchange(ctx context.Context, cn *conn, t Target, req *Call) (*Response, int64, error) {
	stop := context.AfterFunc(ctx, cn.abort)
	defer stop()
	rw := cn.rw
	cn.dw.D = t.SendTimeout
	err := rw.begin(t.KeepConn)
	if err == nil {
		err = rw.write(typeParams, req.Params)
	}
	if err == nil {
		err = rw.write(typeParams, nil)
	}
	var sent int64
	if err == nil && req.Body != nil && req.ContentLength != 0 {
		sent, err = c.sendBody(rw, req.Body)
		if err == nil && sent != req.ContentLength {
			err = fmt.Errorf("request body is %d bytes, expected %d", sent, req.ContentLength)
		}
	}
	if err == nil {
		err = rw.write(typeStdin, nil)
	}
	if err == nil {
		// what is still buffered (all of a request without a body) goes out from inside the first read of the
		// answer, which then does not try before php-fpm can have answered
		if held := rw.flushHeld(); held != nil && !cn.hf.Defer(held) {
			_, err = cn.dw.Write(held)
		}
	}
	if err != nil {
		var be *bodyError
		if errors.As(err, &be) {
			return nil, sent, be
		}
		return nil, sent, &Error{Op: "send", Timeout: isTimeout(err), Err: err}
	}
	rp := &reply{s: stream{c: c, cn: cn, t: t, stderr: req.Stderr}}
	s := &rp.s
	resp, err := readHeader(rp, cn, req.MaxHeader)
	if err != nil {
		if s.err != nil {
			err = s.err
		}
		return nil, sent, &Error{Op: "read header", Timeout: isTimeout(err), Err: err}
	}
	return resp, sent, nil
}

// bodyError is a failure reading the client's body (not the application's fault).
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// IsBodyError reports whether err came from reading the client's request body.
func IsBodyError(err error) bool {
	var be *bodyError
	return errors.As(err, &be)
}

func (c *Client) sendBody(rw *recordWriter, body io.Reader) (int64, error) {
	bp, _ := c.bodyBufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 32<<10)
		bp = &b
	}
	defer c.bodyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if werr := rw.write(typeStdin, buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, &bodyError{err}
		}
	}
}

// reply is what reading one response needs, allocated together once per request.
type reply struct {
	resp Response
	s    stream
	lr   limitedReader
	b    body
}

// readHeader reads the CGI header block from STDOUT and decides the status as nginx does. The connection's
// header reader is reset onto this response's STDOUT; the body goes on reading through it.
func readHeader(rp *reply, cn *conn, maxHeader int) (*Response, error) {
	if maxHeader <= 0 {
		maxHeader = 64 << 10
	}
	s := &rp.s
	lr := &rp.lr
	*lr = limitedReader{r: s, n: int64(maxHeader)}
	if cn.hr == nil {
		cn.hr = bufio.NewReaderSize(lr, 4096)
	} else {
		cn.hr.Reset(lr)
	}
	br := cn.hr
	tp := textproto.NewReader(br)
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		if lr.n <= 0 {
			return nil, ErrHeaderTooBig
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	resp := &rp.resp
	*resp = Response{Header: http.Header(mh)}
	if err := cgiStatus(resp); err != nil {
		return nil, err
	}
	// what the header reader buffered beyond the blank line is the start of the body
	lr.n = 1 << 62
	rp.b = body{s: s, r: br}
	resp.Body = &rp.b
	return resp, nil
}

// cgiStatus decides resp's status from its CGI header as nginx does: the Status field (consumed), else 302 for
// a Location, else 200. A status already set (uwsgi's status line) is kept, and Status is then a plain field.
func cgiStatus(resp *Response) error {
	if resp.Status != 0 {
		return nil
	}
	h := resp.Header
	resp.Status = http.StatusOK
	if st := h.Get("Status"); st != "" {
		code, reason, _ := strings.Cut(strings.TrimSpace(st), " ")
		n, err := strconv.Atoi(code)
		if err != nil || n < 200 || n > 999 {
			// (an interim or 101 answer would be sent as final: a 101 makes a client or front proxy take the
			// connection for a tunnel that sluice goes on reading as HTTP)
			return fmt.Errorf("upstream sent invalid status %q", st)
		}
		resp.Status, resp.Reason = n, strings.TrimSpace(reason)
		h.Del("Status")
	} else if h.Get("Location") != "" {
		resp.Status = http.StatusFound
	}
	return nil
}

// stream reads STDOUT content across records, handing STDERR to the callback and ending at END_REQUEST.
type stream struct {
	c      *Client
	cn     *conn
	t      Target
	stderr StderrFunc
	cur    []byte // unread STDOUT content of the current record
	done   bool   // END_REQUEST seen
	err    error
	reuse  bool // the application keeps the connection
}

// arm sets the read deadline for the next read (fastcgi_read_timeout: the time between two reads).
func (s *stream) arm() {
	if s.t.ReadTimeout > 0 {
		s.cn.nc.SetReadDeadline(time.Now().Add(s.t.ReadTimeout))
	}
}

func (s *stream) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if s.done {
			return 0, io.EOF
		}
		if s.err != nil {
			return 0, s.err
		}
		s.arm()
		rec, err := s.cn.rr.next()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the connection closed before END_REQUEST
			}
			s.err = err
			return 0, err
		}
		if rec.id != requestID {
			continue // a management record or a stray id: not ours
		}
		switch rec.typ {
		case typeStdout:
			s.cur = rec.content
		case typeStderr:
			if s.stderr != nil && len(rec.content) > 0 {
				s.stderr(rec.content)
			}
		case typeEndRequest:
			_, ps := endRequest(rec.content)
			s.done = true
			s.reuse = s.t.KeepConn && ps == statusRequestComplete
			if ps != statusRequestComplete {
				s.err = fmt.Errorf("application refused the request (protocol status %d)", ps)
				s.done = false
				return 0, s.err
			}
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// finish pools or closes the connection once the response is over.
func (s *stream) finish() {
	if s.cn == nil {
		return
	}
	if s.done && s.reuse && s.cn.rr.br.Buffered() == 0 {
		s.c.put(s.cn)
	} else {
		s.cn.nc.Close()
	}
	s.cn = nil
	if s.t.KeepConn {
		s.c.release(s.t.key())
	}
}

// body is the response body: STDOUT after the header block. Once it has read to its end (eof) the connection
// and its reader belong to the pool, and the body touches neither again.
type body struct {
	s      *stream
	r      *bufio.Reader
	closed bool
	eof    bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &Error{Op: "read body", Timeout: isTimeout(err), Err: err}
	}
	if err == io.EOF {
		b.eof = true
		b.s.finish()
	}
	return n, err
}

// Ready reports whether more body bytes are ready without waiting for the application (proxy.Ready).
func (b *body) Ready() bool {
	return !b.eof && (b.r.Buffered() > 0 || len(b.s.cur) > 0 || b.s.cn != nil && b.s.cn.rr.br.Buffered() > 0)
}

// Close ends the response; a body not read to its end closes the connection.
func (b *body) Close() error {
	if !b.closed {
		b.closed = true
		if b.eof {
			return nil
		}
		if b.s.done && b.r.Buffered() == 0 && len(b.s.cur) == 0 {
			b.s.finish()
		} else if b.s.cn != nil {
			b.s.cn.nc.Close()
			b.s.cn = nil
			if b.s.t.KeepConn {
				b.s.c.release(b.s.t.key())
			}
		}
	}
	return nil
}

// limitedReader is io.LimitedReader that reports exhaustion as an error the header reader stops at.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, ErrHeaderTooBig
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isStale reports errors that mean a reused connection had been closed by the application before the request.
func isStale(err error) bool { return !IsBodyError(err) && netutil.IsStale(err) }
