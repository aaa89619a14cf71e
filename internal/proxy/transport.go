package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/netutil"
)

// Transport is sluice's HTTP/1.1 client to upstream servers: a keep-alive pool per peer address, requests
// written as built, and responses whose hop-by-hop headers are removed with the upstream's own Connection
// header in view. (net/http's reader deletes the whole Connection header when it contains "close", which hides
// the headers it names, so a proxy built on it would pass them on.)
type Transport struct {
	// DialTimeout bounds connecting (proxy_connect_timeout).
	DialTimeout time.Duration
	// TLS, when set, makes connections TLS (https:// upstreams).
	TLS *tls.Config
	// MaxIdle is how many idle connections are kept in all, over every peer address (keepalive N: nginx's
	// cache of idle connections per upstream group); the least recently used go first.
	MaxIdle int
	// IdleTimeout closes connections idle this long (keepalive_timeout).
	IdleTimeout time.Duration
	// MaxRequests closes a connection after this many requests (keepalive_requests); 0 = no limit.
	MaxRequests int
	// SendTimeout bounds each write to the upstream (proxy_send_timeout); 0 = none.
	SendTimeout time.Duration
	// ReadTimeout bounds each read from the upstream (proxy_read_timeout) for RoundTrip; 0 = none.
	ReadTimeout time.Duration
	// KeepAlive sets SO_KEEPALIVE on connections, with the system's probe timings (proxy_socket_keepalive).
	KeepAlive bool
	// LocalAddr, when set, is the address connections are made from (proxy_bind).
	LocalAddr *net.TCPAddr
	// HandoffWait is how long a request waits for a connection put back while the pool churns (see
	// churnWindow); 0 = handoffWait.
	HandoffWait time.Duration

	mu    sync.Mutex
	idle  map[string]*idleList // per address
	nidle int                  // idle connections over all addresses
	// overflowAt is when put last closed a connection for want of room (more idle than MaxIdle): the pool
	// churns, and a request that finds no idle connection waits a moment for one (see await)
	overflowAt time.Time
}

// idleList is the idle connections to one address, oldest first. A connection keeps the list it goes back
// to (pconn.list), so putting it back costs no lookup; CloseIdle drops the lists, marking them gone.
type idleList struct {
	conns   []*pconn
	waiters []chan *pconn // requests waiting for a connection put back (await), oldest first
	gone    bool
}

// While the pool churns (put closed a connection for want of room within churnWindow), a request that finds
// no idle connection waits up to handoffWait for one that an exchange puts back, instead of dialling. With
// more requests in flight than keepalive N keeps (wrk -c200 against keepalive 64), nearly a third of the
// requests dialled a new connection, and put closed as many: a TCP handshake and teardown each, for no gain.
// nginx churns too, but less, since its event loop reads a response as soon as it arrives; a goroutine
// holds its connection while it waits to run. The pool still keeps at most MaxIdle idle connections.
const (
	churnWindow = time.Second
	handoffWait = 5 * time.Millisecond
)

// maxHeaderBytes is the largest upstream response header accepted (nginx: "upstream sent too big header").
const maxHeaderBytes = 16 << 10

// errSwitched is a 101 to a request that asked for no upgrade.
var errSwitched = errors.New("upstream switched protocols without an upgrade request")

// errHeaderTooBig is returned for upstream response headers over maxHeaderBytes.
var errHeaderTooBig = errors.New("upstream sent too big header")

// errLengthAndChunked is a response framed two ways at once (the stuff of response smuggling); nginx answers
// 502 rather than pick one.
var errLengthAndChunked = errors.New(`upstream sent "Content-Length" and "Transfer-Encoding" headers at the same time`)

type pconn struct {
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	addr     string
	list     *idleList // where put keeps it (nil until its first put)
	idleAt   time.Time
	requests int
	probe    *netutil.Prober // nil when conn is not a socket
	close    func()          // closes conn (made once: the client-gone hook of every exchange)
	// the outcome of sending the request, once per exchange: on written when a goroutine sends it (async: a
	// request with a body), else in sendErr once sendDone (no channel operations on the common path)
	written  chan error
	dw       *netutil.DeadlineWriter // the writer under bw, when proxy_send_timeout is set
	async    bool
	sendDone bool
	sendErr  error
	// the read deadline (proxy_read_timeout between two reads): readTimeout of the exchange in progress, what
	// is left of it for the next read after a quick wait ran out (0: all of it), and the deadline now armed
	readTimeout time.Duration
	left        time.Duration
	deadline    time.Time
	extended    bool // extendRead may have moved the deadline from the one recorded
	// client-gone detection of the exchange in progress: its context, until watched (nil once watched or
	// when there is nothing to watch), and the stop of the watch armed on it
	ctx  context.Context
	stop func() bool
	// a request head sent from inside the first read of its response (sendHead): the socket (nil when conn
	// is not a plain one), the function its RawConn.Read runs (made once), the head's bytes, the head not
	// yet written, and the read in progress
	raw   syscall.RawConn
	rawFn func(fd uintptr) bool
	hbuf  bytes.Buffer
	hw    *bufio.Writer // writes into hbuf
	head  []byte
	rp    []byte
	rn    int
	rerr  error
	werr  error
}

// quickWait is how long a read from the upstream may wait at least (twice that at most) before the exchange
// watches for its client going away. Watching costs a callback registered on the request's context (and a read on the client's socket
// by the server), so the exchanges that are answered soon, nearly all of them, go without. It is well above
// the time a ready answer may wait for its goroutine to be scheduled on a saturated server (at 5 ms, one
// exchange in eight under wrk -c50 on two busy cores ran out), and short against anything a client would
// notice: a client gone earlier is acted on when it runs out.
const quickWait = 100 * time.Millisecond

// deadlineSlack is how far an armed read deadline may lag the exact one before it is armed anew: re-arming a
// runtime timer for every read costs more than the timeout's precision is worth (nginx's own timers run on a
// clock cached per event-loop turn).
const deadlineSlack = time.Millisecond

// pastDeadline stands for a read deadline armed but not known (extendRead moved it): being past, it is
// re-armed (or cleared) at the next occasion.
var pastDeadline = time.Unix(1, 0)

// armRead sets the read deadline to now + d (0: none), unless the one armed is within deadlineSlack of it.
func (pc *pconn) armRead(d time.Duration) {
	if d <= 0 {
		if !pc.deadline.IsZero() {
			pc.conn.SetReadDeadline(time.Time{})
			pc.deadline = time.Time{}
		}
		return
	}
	want := time.Now().Add(d)
	if diff := want.Sub(pc.deadline); diff < 0 || diff > deadlineSlack {
		pc.conn.SetReadDeadline(want)
		pc.deadline = want
	}
}

// connReader is what the pconn's bufio.Reader reads from: every read from the socket gets the read timeout.
// Until the exchange watches its client, a read first waits quickWait at most; when that runs out, the
// watch is armed and the read goes on for what is left of the read timeout.
type connReader struct{ pc *pconn }

func (r connReader) Read(p []byte) (int, error) {
	pc := r.pc
	if pc.ctx == nil {
		return pc.read(p)
	}
	if pc.readTimeout > 0 && pc.readTimeout <= 2*quickWait {
		pc.watched() // the whole timeout is the wait: running out is the answer
		return pc.read(p)
	}
	// the quick wait need not be exact: any deadline between quickWait and twice that from now will do, so
	// a connection busy with one exchange after another re-arms its runtime timer once per quickWait, not
	// for every read (nor is it cleared between exchanges: see put)
	start := time.Now()
	if d := pc.deadline.Sub(start); d < quickWait || d > 2*quickWait {
		pc.deadline = start.Add(2 * quickWait)
		pc.conn.SetReadDeadline(pc.deadline)
	}
	n, err := pc.sockRead(p)
	if n == 0 && pc.ctx != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// the upstream is slow to answer: from now on a client that goes away aborts the request
		pc.watch()
		if pc.readTimeout > 0 {
			pc.left = max(pc.readTimeout-time.Since(start), time.Nanosecond)
		}
		return pc.read(p)
	}
	return n, err
}

// read is one read under the read timeout.
func (pc *pconn) read(p []byte) (int, error) {
	d := pc.readTimeout
	if pc.left > 0 {
		d = pc.left
	}
	pc.armRead(d)
	n, err := pc.sockRead(p)
	if n > 0 {
		pc.left = 0
	}
	return n, err
}

// sendHead prepares a request without a body to be written from inside the first read of its response,
// when conn is a plain socket and writeHead can write the request; it reports whether it did. The read
// then waits for the answer without first trying in vain: the poller's readiness, reset when a read
// begins, is kept from before the write (a read begun after it would find nothing, the upstream has seldom
// answered that soon, and only then wait: a system call per exchange).
func (pc *pconn) sendHead(req *http.Request, hl *headerList) bool {
	if pc.raw == nil {
		return false
	}
	pc.hbuf.Reset()
	if !writeHead(pc.hw, req, hl) {
		return false
	}
	pc.hw.Flush()
	pc.head = pc.hbuf.Bytes()
	return true
}

// sockRead reads from conn, first writing the request head sendHead left, if any.
func (pc *pconn) sockRead(p []byte) (int, error) {
	if pc.head == nil {
		return pc.conn.Read(p)
	}
	pc.rp, pc.rn, pc.rerr, pc.werr = p, 0, nil, nil
	err := pc.raw.Read(pc.rawFn)
	n, rerr := pc.rn, pc.rerr
	pc.rp, pc.rerr = nil, nil
	if pc.head != nil && err != nil {
		// the read could not begin: its deadline passed first (its goroutine waited that long to run) or
		// the connection was closed. Nothing was written; the head waits for the next read.
		if oe, ok := err.(*net.OpError); ok {
			oe.Op = "read" // as conn.Read reports it
		}
		return 0, err
	}
	if pc.head != nil {
		// not (all) written: the write failed, or it would block, and the rest goes out the ordinary way
		// (with proxy_send_timeout)
		rest := pc.head
		pc.head = nil
		if pc.werr == nil {
			if _, err = pc.bw.Write(rest); err == nil {
				err = pc.bw.Flush()
			}
		} else {
			err = pc.opError("write", pc.werr)
		}
		pc.werr = nil
		pc.sent(err)
		if err != nil {
			pc.conn.Close()
			return 0, err
		}
		return pc.conn.Read(p)
	}
	switch {
	case err != nil: // the deadline, or a closed connection
		if oe, ok := err.(*net.OpError); ok {
			oe.Op = "read" // as conn.Read reports it
		}
		return 0, err
	case rerr != nil:
		return 0, pc.opError("read", rerr)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// writeThenRead is pc.rawFn: it writes what is left of the head, then waits for the answer (returning false
// has RawConn.Read wait for readiness) and reads it.
func (pc *pconn) writeThenRead(fd uintptr) bool {
	if len(pc.head) > 0 {
		n, e := netutil.RawWriteAll(fd, pc.head)
		pc.head = pc.head[n:]
		if e != 0 {
			if e != syscall.EAGAIN {
				pc.werr = e
			}
			return true
		}
	}
	if pc.head != nil {
		pc.head = nil
		pc.sent(nil)
		return false
	}
	for {
		n, e := netutil.RawRead(fd, pc.rp)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			pc.rn, pc.rerr = n, nil
		default:
			pc.rn, pc.rerr = 0, e
		}
		return true
	}
}

// opError wraps a system call's error as conn's own methods do.
func (pc *pconn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: pc.conn.LocalAddr().Network(), Source: pc.conn.LocalAddr(), Addr: pc.conn.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}

// watch arms client-gone detection for the exchange in progress: when its context ends, the connection is
// closed, which ends the exchange (nginx's proxy_ignore_client_abort off).
func (pc *pconn) watch() {
	pc.stop = context.AfterFunc(pc.ctx, pc.close)
	pc.ctx = nil
}

// watched marks the exchange as needing no watch.
func (pc *pconn) watched() { pc.ctx = nil }

// unwatch ends the exchange's client-gone detection; it reports false when the detection fired (the
// connection is closed or about to be).
func (pc *pconn) unwatch() bool {
	pc.ctx = nil
	if pc.stop == nil {
		return true
	}
	stopped := pc.stop()
	pc.stop = nil
	return stopped
}

// extendRead restarts the read timeout now (upload progress counts as activity); it may run concurrently
// with reads.
func (pc *pconn) extendRead() {
	if pc.readTimeout > 0 {
		pc.conn.SetReadDeadline(time.Now().Add(pc.readTimeout))
	}
}

// RoundTrip sends req to req.URL.Host and returns the response; its Body must be closed. The connection goes
// back to the pool when the body was read to the end and both sides allow keep-alive.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, _, err := t.roundTrip(req.Context(), req, nil, t.ReadTimeout, nil)
	return resp, err
}

// roundTrip is RoundTrip under ctx (rather than req's: the caller need not copy the request per try) with a
// read timeout between two reads (proxy_read_timeout: a deadline error); it also reports how long connecting
// took ($upstream_connect_time: 0 on a reused connection; -1 when no connection could be made). The response
// body's wrapper is b, storage of the caller's for one response at a time (nil: allocated). hl, when not nil,
// is req's header (req.Header is then nil, or made from hl).
func (t *Transport) roundTrip(ctx context.Context, req *http.Request, hl *headerList, readTimeout time.Duration, b *body) (*http.Response, time.Duration, error) {
	connect := time.Duration(-1)
	addr := req.URL.Host
	// nginx never repeats a non-idempotent request that may have reached the upstream
	replayable := (req.Body == nil || req.Body == http.NoBody) && req.Method != http.MethodPost && req.Method != http.MethodPatch && req.Method != "LOCK"
	for attempt := 0; ; attempt++ {
		var pc *pconn
		reused := false
		if attempt == 0 {
			if pc, reused = t.get(addr, readTimeout, replayable); pc == nil {
				pc, reused = t.await(ctx, addr, readTimeout, replayable)
			}
		}
		if pc == nil {
			var err error
			start := time.Now()
			if pc, err = t.dial(ctx, addr); err != nil {
				return nil, connect, err
			}
			connect = time.Since(start)
			pc.readTimeout = readTimeout
		} else {
			connect = 0
		}
		resp, err := t.exchange(ctx, pc, req, hl, b)
		if err == nil {
			return resp, connect, nil
		}
		// a kept-alive connection the upstream closed meanwhile: try once on a fresh one when nothing can have
		// been consumed
		if reused && replayable && attempt == 0 && ctx.Err() == nil && isStale(err) {
			continue
		}
		return nil, connect, err
	}
}

// exchange writes req (its header: hl, see roundTrip) on pc and reads the response headers; b (nil: allocated)
// becomes the response body.
func (t *Transport) exchange(ctx context.Context, pc *pconn, req *http.Request, hl *headerList, b *body) (*http.Response, error) {
	pc.requests++
	pc.left, pc.ctx, pc.stop = 0, ctx, nil
	if cb, ok := req.Body.(*clientBody); ok {
		cb.progress = pc.extendRead
		pc.extended = true
	}
	pc.sendDone, pc.sendErr = false, nil
	pc.async = req.Body != nil && req.Body != http.NoBody
	if !pc.async {
		// headers alone fit the socket buffer: no early-response deadlock is possible, so no goroutine
		if !pc.sendHead(req, hl) {
			pc.send(req, hl)
		}
	} else {
		// a body is sent while the response is read, so an upstream answering early is seen at once; the
		// client is watched from the start (reads and the upload's progress both set the read deadline)
		pc.watch()
		if req.Header == nil && hl != nil {
			req.Header = hl.header() // net/http writes it (before the goroutine: a retry reads the request)
		}
		go pc.send(req, nil)
	}
	// a caller's own body (serveHTTP's) reads the header through its list; RoundTrip's callers get a map
	listOnly := b != nil
	if b == nil {
		b = new(body)
	}
	k := b.st.kept()
	*b = body{t: t, pc: pc}
	b.st.restore(k)
	b.st.listOnly = listOnly
	resp, tokens, err := readResponse(pc.br, req, &b.st)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		// only the upgrade path may switch protocols; here the stream would be out of step for the next client
		resp.Body.Close()
		err = errSwitched
	}
	if err != nil {
		pc.unwatch()
		pc.conn.Close()
		if pc.head != nil { // never sent (no read was made)
			pc.head = nil
			pc.sent(err)
		}
		// unless still sending (a slow client body), where the read error is the answer
		if done, werr := pc.sendResult(); done && werr != nil {
			err = werr
		}
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return nil, err
	}
	for _, name := range tokens {
		name = textproto.CanonicalMIMEHeaderKey(name)
		delete(resp.Header, name)
		if resp == &b.st.resp {
			b.st.fields.del(name) // the list stays the header (fieldsOf)
		}
	}
	keep := !resp.Close && !req.Close && (t.MaxRequests == 0 || pc.requests < t.MaxRequests)
	b.ReadCloser, b.keep = resp.Body, keep
	resp.Body = b
	return resp, nil
}

// sent reports the outcome of sending the exchange's request.
func (pc *pconn) sent(err error) {
	if pc.async {
		pc.written <- err
		return
	}
	pc.sendErr, pc.sendDone = err, true
}

// sendResult returns whether sending the exchange's request has ended (not while a body is still going out)
// and its outcome.
func (pc *pconn) sendResult() (done bool, err error) {
	if !pc.async {
		return pc.sendDone, pc.sendErr
	}
	select {
	case err := <-pc.written:
		return true, err
	default:
		return false, nil
	}
}

// send writes req (its header: hl, see roundTrip) and reports the outcome (sent).
func (pc *pconn) send(req *http.Request, hl *headerList) {
	var err error
	if !writeHead(pc.bw, req, hl) {
		if req.Header == nil && hl != nil {
			req.Header = hl.header() // net/http writes what writeHead does not
		}
		err = req.Write(pc.bw)
	}
	if err == nil {
		err = pc.bw.Flush()
	}
	if err != nil && pc.dw != nil && pc.dw.Err != nil {
		err = pc.dw.Err // net/http reports a failed body write as a body read error: keep the timeout visible
	}
	// the outcome first, then the close that wakes the reader: it finds why (a proxy_send_timeout is a timeout,
	// 504, not the read error the close causes)
	pc.sent(err)
	if err != nil {
		pc.conn.Close() // unblock the reader: the request cannot be completed
	}
}

// readResponse reads one response, skipping interim 1xx answers other than 101, and returns the header names
// the upstream's Connection header lists.
func readResponse(br *bufio.Reader, req *http.Request, st *respStore) (*http.Response, []string, error) {
	for {
		raw, n, err := peekHeader(br)
		if err != nil {
			return nil, nil, err
		}
		block, _ := br.Peek(n)
		resp, tokens := parseHead(block, br, req, st)
		if resp != nil {
			br.Discard(n)
		} else {
			if hasField(raw, "Transfer-Encoding") && hasField(raw, "Content-Length") {
				return nil, nil, errLengthAndChunked
			}
			tokens = connectionTokens(raw)
			if resp, err = http.ReadResponse(br, req); err != nil {
				return nil, nil, err
			}
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return resp, tokens, nil
	}
}

// peekHeader returns the buffered bytes that contain the whole header block, without consuming them, and
// the length of the block with the empty line that ends it.
func peekHeader(br *bufio.Reader) ([]byte, int, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		if end, n := blankLine(buf); end >= 0 {
			return buf[:end], n, nil
		}
		if br.Buffered() >= br.Size() {
			return nil, 0, errHeaderTooBig
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, 0, errHeaderTooBig
			}
			return nil, 0, err
		}
	}
}

// blankLine finds the empty line that ends a header block: the first "\r\n\r\n" or "\n\n", whichever comes
// first (a later one is body). It returns the block's length without that line and with it, or -1.
func blankLine(buf []byte) (end, n int) {
	n = httpsyntax.HeadEnd(buf, true)
	switch {
	case n < 0:
		return -1, 0
	case buf[n-2] == '\n': // "\n\n"
		return n - 2, n
	}
	return n - 4, n // "\r\n\r\n"
}

// connectionTokens lists the header names in the raw header block's Connection fields.
func connectionTokens(raw []byte) []string {
	var out []string
	for val := range fields(raw, "Connection") {
		out = appendTokens(out, string(val))
	}
	return out
}

// hasField reports whether the raw header block has a field name.
func hasField(raw []byte, name string) bool {
	for range fields(raw, name) {
		return true
	}
	return false
}

// fields yields the values of the raw header block's fields name (in any case).
func fields(raw []byte, name string) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for line := range bytes.SplitSeq(raw, []byte("\n")) {
			k, val, ok := bytes.Cut(line, []byte(":"))
			if ok && strings.EqualFold(string(bytes.TrimSpace(k)), name) && !yield(val) {
				return
			}
		}
	}
}

// body returns the connection to the pool once the response was read to its end.
type body struct {
	io.ReadCloser
	t     *Transport
	pc    *pconn
	keep  bool
	done  bool
	state atomic.Int32 // bodyReading, then bodyFinished (finish) or bodyCut (interrupt), whichever is first
	st    respStore    // the response, when parseHead read its head
}

const (
	bodyReading int32 = iota
	bodyFinished
	bodyCut
)

// interrupt ends a read of the body in progress on another goroutine (a Spool's, when the client went away)
// by closing the connection, unless the body has already been read to its end and the connection released.
func (b *body) interrupt() {
	if b.state.CompareAndSwap(bodyReading, bodyCut) {
		b.pc.conn.Close()
	}
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.finish(true)
	}
	return n, err
}

func (b *body) Close() error {
	b.finish(false)
	return nil
}

// writeBuffered writes the rest of the body to w straight from the connection's read buffer when all of it
// is there (the usual small response), then releases the connection as reading the body to its end does:
// no copy buffer, no read calls. It reports false, having done nothing, otherwise. The error is w's.
func (b *body) writeBuffered(w io.Writer) (int, bool, error) {
	lb, ok := b.ReadCloser.(*lengthBody)
	if !ok || b.done {
		return 0, false, nil
	}
	p := lb.buffered()
	if p == nil {
		return 0, false, nil
	}
	n, err := w.Write(p) // before the bytes leave the buffer: the connection is not reused until finish
	lb.consume()
	b.finish(true)
	return n, true, err
}

// finish releases the connection: back to the pool after a complete exchange, closed otherwise.
func (b *body) finish(eof bool) {
	if b.done {
		return
	}
	b.done = true
	cut := !b.state.CompareAndSwap(bodyReading, bodyFinished) // interrupt closed the connection
	stopped := b.pc.unwatch()
	reuse := eof && b.keep && stopped && !cut
	if reuse {
		// not while the request body is still being sent (the upstream answered early)
		done, err := b.pc.sendResult()
		reuse = done && err == nil
	}
	if !reuse {
		b.pc.conn.Close()
		b.ReadCloser.Close()
		return
	}
	b.t.put(b.pc)
}

func (t *Transport) dial(ctx context.Context, addr string) (*pconn, error) {
	c, err := dialPeer(ctx, addr, netutil.Dialer(t.DialTimeout, t.KeepAlive, t.LocalAddr))
	if err != nil {
		return nil, err
	}
	if t.TLS != nil {
		tc := tls.Client(c, t.TLS)
		hctx, cancel := context.WithTimeout(ctx, t.DialTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	var w io.Writer = c
	var dw *netutil.DeadlineWriter
	if t.SendTimeout > 0 {
		dw = &netutil.DeadlineWriter{Conn: c, D: t.SendTimeout}
		w = dw
	}
	pc := &pconn{conn: c, bw: bufio.NewWriterSize(w, 4096), dw: dw, addr: addr, probe: netutil.NewProber(c), written: make(chan error, 1)}
	pc.br = bufio.NewReaderSize(connReader{pc}, maxHeaderBytes)
	pc.close = func() { c.Close() }
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			pc.raw, pc.rawFn = raw, pc.writeThenRead
			pc.hw = bufio.NewWriterSize(&pc.hbuf, 1024)
		}
	}
	return pc, nil
}

// dialPeer connects to a peer address: ip:port, host:port, or unix:/path, with d's timeout, keep-alive and
// local address (not for unix:). A tunnel's connection gets keep-alive (a backend host that vanished is
// noticed on an idle tunnel), a pooled HTTP connection does not unless proxy_socket_keepalive is on, as
// nginx's: its four setsockopt(2) calls were a third of the system calls a new upstream connection cost, and
// a pool churns connections when more requests are in flight than keepalive N keeps.
func dialPeer(ctx context.Context, addr string, d net.Dialer) (net.Conn, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		d.LocalAddr = nil
		return d.DialContext(ctx, "unix", path)
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return netutil.NewSocket(c), nil
}

// probeAfter is how long a pooled connection must have been idle before a request that can be sent again
// (replayable: no body, idempotent) pays for the liveness probe (a system call). Upstreams close idle
// connections after seconds (nginx 75 s, Apache and Node.js 5 s, Tomcat 20 s), so one idle for less is
// seldom gone, and if it is, the request is retried once on a fresh connection (roundTrip); nginx never
// probes. On 2 cores under wrk -c50 a millisecond had half the requests probe (0.45 recvfrom(2) per request
// through a 3-peer upstream). Requests that cannot be sent twice are always probed.
const probeAfter = time.Second

// get takes the most recently used live idle connection to addr, its read timeout set for the next exchange.
func (t *Transport) get(addr string, readTimeout time.Duration, replayable bool) (*pconn, bool) {
	for {
		t.mu.Lock()
		l := t.idle[addr]
		if l == nil || len(l.conns) == 0 {
			t.mu.Unlock()
			return nil, false
		}
		pc := l.conns[len(l.conns)-1]
		l.conns[len(l.conns)-1] = nil
		l.conns = l.conns[:len(l.conns)-1]
		t.nidle--
		t.mu.Unlock()
		if t.revive(pc, readTimeout, replayable) {
			return pc, true
		}
	}
}

// revive readies a connection taken from the pool (or handed over by put) for an exchange: its read timeout
// set, checked alive (see probeAfter); one idle too long or found dead is closed, and false returned.
func (t *Transport) revive(pc *pconn, readTimeout time.Duration, replayable bool) bool {
	idle := time.Since(pc.idleAt)
	if t.IdleTimeout > 0 && idle > t.IdleTimeout {
		pc.conn.Close()
		return false
	}
	pc.readTimeout = readTimeout
	probe := !replayable || idle >= probeAfter
	if probe && !pc.deadline.IsZero() && pc.deadline.Before(pc.idleAt.Add(idle+time.Millisecond)) {
		pc.armRead(0) // a read deadline passed (or about to) would fail the probe
	}
	if !alive(pc, probe) {
		pc.conn.Close()
		return false
	}
	return true
}

// await waits, while the pool churns (see churnWindow), up to HandoffWait for a connection to addr that an
// exchange puts back; nil (dial one) when the pool does not churn or none came.
func (t *Transport) await(ctx context.Context, addr string, readTimeout time.Duration, replayable bool) (*pconn, bool) {
	t.mu.Lock()
	if t.overflowAt.IsZero() || time.Since(t.overflowAt) > churnWindow {
		t.mu.Unlock()
		return nil, false
	}
	l := t.list(addr)
	ch := make(chan *pconn, 1) // put never blocks on it
	l.waiters = append(l.waiters, ch)
	t.mu.Unlock()
	wait := t.HandoffWait
	if wait <= 0 {
		wait = handoffWait
	}
	// (not ctx.Done: asking the client connection's context for it has h1 watch the connection, a read of
	// its own; a client gone during the short wait is found by the exchange)
	timer := time.NewTimer(wait)
	select {
	case pc := <-ch:
		timer.Stop()
		if t.revive(pc, readTimeout, replayable) {
			return pc, true
		}
		return nil, false
	case <-timer.C:
	}
	t.mu.Lock()
	if i := slices.Index(l.waiters, ch); i >= 0 {
		l.waiters = slices.Delete(l.waiters, i, i+1)
	}
	t.mu.Unlock()
	select {
	case pc := <-ch: // handed over as the wait ended
		if ctx.Err() != nil {
			t.put(pc) // another request's to take
			return nil, false
		}
		if t.revive(pc, readTimeout, replayable) {
			return pc, true
		}
	default:
	}
	return nil, false
}

// list returns the idle list of addr, made when it has none; t.mu is held.
func (t *Transport) list(addr string) *idleList {
	if t.idle == nil {
		t.idle = map[string]*idleList{}
	}
	l := t.idle[addr]
	if l == nil {
		l = &idleList{}
		t.idle[addr] = l
	}
	return l
}

// alive checks without blocking that an idle connection was neither closed by the upstream nor sent
// unsolicited bytes (which would be read as the next request's response); the socket is probed only when
// probe is set, the read buffer always.
func alive(pc *pconn, probe bool) bool {
	return pc.br.Buffered() == 0 && (!probe || pc.probe == nil || pc.probe.Alive())
}

func (t *Transport) put(pc *pconn) {
	now := time.Now()
	pc.idleAt = now
	// the read deadline stays armed: an idle connection is not read, the next exchange re-arms it only when
	// it is not of use (connReader.Read), and get clears one that has passed before probing
	if pc.extended {
		pc.deadline, pc.extended = pastDeadline, false // not the one armed: have the next read re-arm it
	}
	var evict []*pconn
	t.mu.Lock()
	l := pc.list
	if l == nil || l.gone {
		l = t.list(pc.addr)
		pc.list = l
	}
	if len(l.waiters) > 0 {
		// a request is waiting for a connection (await): it takes this one, which is not idle at all
		ch := l.waiters[0]
		n := copy(l.waiters, l.waiters[1:])
		l.waiters[n] = nil
		l.waiters = l.waiters[:n]
		ch <- pc // under the lock (it has room: never blocks), so a waiter that no longer finds itself listed finds pc
		t.mu.Unlock()
		return
	}
	// drop connections idle too long
	for len(l.conns) > 0 && t.IdleTimeout > 0 && now.Sub(l.conns[0].idleAt) > t.IdleTimeout {
		evict = append(evict, l.popOldest())
		t.nidle--
	}
	l.conns = append(l.conns, pc)
	t.nidle++
	// beyond the pool size, the least recently used connection of any address goes
	if t.nidle > max(t.MaxIdle, 1) {
		t.overflowAt = now
	}
	for t.nidle > max(t.MaxIdle, 1) {
		var oldest *idleList
		for _, o := range t.idle {
			if len(o.conns) > 0 && (oldest == nil || o.conns[0].idleAt.Before(oldest.conns[0].idleAt)) {
				oldest = o
			}
		}
		evict = append(evict, oldest.popOldest())
		t.nidle--
	}
	t.mu.Unlock()
	for _, e := range evict {
		e.conn.Close() // outside the lock: a TLS close may block
	}
}

// CloseIdle closes every idle connection (on reload or shutdown).
func (t *Transport) CloseIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for addr, l := range t.idle {
		for _, pc := range l.conns {
			pc.conn.Close()
		}
		l.conns, l.gone = nil, true
		delete(t.idle, addr)
	}
	t.nidle = 0
}

// popOldest takes the list's oldest connection out, moving the rest down so the array is reused.
func (l *idleList) popOldest() *pconn {
	pc := l.conns[0]
	n := copy(l.conns, l.conns[1:])
	l.conns[n] = nil
	l.conns = l.conns[:n]
	return pc
}

// isStale reports errors that mean a reused connection had been closed by the upstream before the request.
func isStale(err error) bool { return netutil.IsStale(err) }
