package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/sluice-proxy/sluice/internal/h1guard"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/netutil"
)

// conn is one client connection and the state its loop keeps between requests.
type conn struct {
	srv    *Server
	rwc    net.Conn
	base   context.Context
	tls    *tls.ConnectionState
	remote string
	since  time.Time
	state  atomic.Int32
	br     *bufio.Reader

	headLimit bool // reading a head: reads are bounded by remain
	headLen   int  // the length of the buffered head headBuffered found (0: none)
	// staleRead: the read deadline of the last head (keepalive_timeout or client_header_timeout) is still
	// armed; it is cleared only before a read that is not a head's (one timer operation saved per request,
	// since the next wait for a request sets its own)
	staleRead atomic.Bool
	remain    int64 // bytes a head may still take from the socket
	tooLarge  bool

	// the client-gone watch: a read of one byte on the idle socket while a handler runs (see reqCtx)
	watchMu   sync.Mutex
	watchDone chan struct{}
	watchByte [1]byte
	hasByte   bool // watchByte holds the first byte of the next request

	cstate         http.ConnState         // the state last reported to ConnState (-1: none yet)
	sock           awaiter                // the plain TCP socket under the framing guard, waited on while idle (nil: other kinds)
	wt             netutil.WriteTimeouter // the socket under any wrappers, when it arms write timeouts itself
	ahead          *[]byte                // the buffer sock reads ahead into while the connection awaits a request
	idleFn, doneFn func()                 // sock.Await's callbacks: give back the reader, give back ahead

	tmpl     http.Request // the request parseHead fills, copied by WithContext and cleared
	hdr      http.Header  // the response header map, cleared for each request
	reqHdr   http.Header  // the last request's header map, cleared, for the next one
	next     *response    // the response of the request being read (readRequest makes it, serveRequest takes it)
	spare    *response    // the last response, when nothing can reach it any more (see watched), for the next request
	headRead int          // the length of the head parseHead read (0: net/http read it)
	buf      []byte       // a small response's body, held until its length is known
	hijack   bool
	linger   bool    // the connection closes while the client may still send: lingerClose
	lingerBy *Linger // the settings that decide linger (the location's, through SetLinger; nil: nginx's defaults)
	// headerTimeout is the request's client_header_timeout, which bounds the drain of a body the handler left
	// (for Complete, which finishes the response before the handler returns)
	headerTimeout time.Duration
	scratch       [32]byte

	// refLine is the request line of a head net/http reads, copied before it reads it: a refusal's Line when
	// its error says nothing more
	refLine string

	// rec is a copy of a head net/http reads, kept while recording when its target may be in absolute form
	// (see recordHead)
	rec       []byte
	recording bool
}

// connReader is what the connection's bufio.Reader reads from: it bounds a head and replays the byte the
// client-gone watch read.
type connReader struct{ c *conn }

var errTooLarge = errors.New("request head too large")

func (r connReader) Read(p []byte) (int, error) {
	n, err := r.read(p)
	if c := r.c; c.recording {
		c.rec = append(c.rec, p[:n]...)
	}
	return n, err
}

func (r connReader) read(p []byte) (int, error) {
	c := r.c
	if c.hasByte {
		c.hasByte = false
		p[0] = c.watchByte[0]
		return 1, nil
	}
	if !c.headLimit {
		c.clearStaleRead()
		return c.rwc.Read(p)
	}
	if c.remain <= 0 {
		c.tooLarge = true
		return 0, errTooLarge
	}
	if int64(len(p)) > c.remain {
		p = p[:c.remain]
	}
	n, err := c.rwc.Read(p)
	c.remain -= int64(n)
	return n, err
}

// awaiter is the plain TCP socket under the framing guard (netutil.Socket on Linux): it waits for a
// connection's next request holding no buffer, and reads what is already there in one system call.
type awaiter interface {
	Await(buf []byte, idle, done func()) error
	SetReadTimeout(d time.Duration) error // (one clock read, where SetReadDeadline(deadline(d)) takes two)
}

// sockUnder returns the socket directly under c's wrapper when it can await (plain TCP), nil for anything else
// (TLS, a wrapper replaying bytes it read).
func sockUnder(c net.Conn) awaiter {
	u, ok := c.(interface{ Unwrap() net.Conn })
	if !ok {
		return nil
	}
	a, _ := u.Unwrap().(awaiter)
	return a
}

// pending reports whether c's wrapper has something to say without the socket (a refusal of a head it read).
func pending(c net.Conn) bool {
	p, ok := c.(interface{ Pending() bool })
	return ok && p.Pending()
}

// awaitIdle waits on the socket for the next request. The connection's reader goes back to the pool while it
// waits (an idle keep-alive connection holds no read buffer), and the socket's first check reads into a pooled
// buffer that the reader then takes the bytes from.
func (c *conn) awaitIdle() error {
	if c.idleFn == nil {
		c.idleFn, c.doneFn = c.releaseReader, c.releaseAhead
	}
	c.ahead = c.srv.getAhead()
	err := c.sock.Await(*c.ahead, c.idleFn, c.doneFn)
	if c.br == nil {
		c.br = c.srv.getReader(c)
	}
	return err
}

func (c *conn) releaseReader() {
	c.br.Reset(nil)
	c.srv.readers.Put(c.br)
	c.br = nil
}

func (c *conn) releaseAhead() {
	c.srv.ahead.Put(c.ahead)
	c.ahead = nil
}

func (c *conn) setState(st http.ConnState) {
	if h := c.srv.ConnState; h != nil {
		h(c.rwc, c.cstate, st)
	}
	c.cstate = st
}

// serve is the connection's loop: wait for a request, read its head, serve it, until either side closes.
func (c *conn) serve() {
	s := c.srv
	c.setState(http.StateNew)
	c.br = s.getReader(c)
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler && s.Log != nil {
			// a handler's panic ends its connection, as in net/http
			s.Log.Error(fmt.Sprintf("panic serving %s: %v\n%s", c.remote, p, debug.Stack()))
		}
		if c.linger && !c.hijack {
			c.lingerClose() // still tracked: Close ends it
		}
		s.untrack(c)
		if c.br != nil {
			c.br.Reset(nil)
			s.readers.Put(c.br)
			c.br = nil
		}
		if c.hijack {
			c.setState(http.StateHijacked)
			return
		}
		c.rwc.Close()
		c.setState(http.StateClosed)
	}()
	first := true
	for {
		lim := s.Limits(c.base, c.rwc)
		if !c.await(lim, first) {
			return
		}
		req, err := c.readRequest(lim)
		if err != nil {
			// a refused head is answered by the default server's settings, as in nginx (no server was chosen)
			c.lingerBy = lim.Linger
			answered, more := c.refuse(err)
			c.linger = answered && c.lingers(false, more)
			return
		}
		c.setState(http.StateActive)
		if !c.serveRequest(req, lim) {
			return
		}
		first = false
		c.setState(http.StateIdle)
		if !c.state.CompareAndSwap(stActive, stIdle) {
			return // closed by Shutdown or Close
		}
		if s.shutdown.Load() {
			return
		}
	}
}

// await waits for the first byte of a request: keepalive_timeout between requests, client_header_timeout for
// the first. It then sets the head's deadline (client_header_timeout).
func (c *conn) await(lim Limits, first bool) bool {
	if first {
		c.setReadTimeout(lim.HeaderTimeout)
	} else if c.br.Buffered() == 0 && !c.hasByte {
		c.staleRead.Store(false)
		c.setReadTimeout(lim.IdleTimeout)
		// Let the goroutines that are ready run first. A client that waits for each response rarely has
		// its next request here yet, so reading now mostly fails (EAGAIN) and parks the goroutine until the
		// poller wakes it: a system call and two trips through the scheduler. After the others have run,
		// the request has often arrived and the first read takes it. nginx gets the same from its event
		// loop, which reads a socket only once the poller reported it. With nothing else ready this costs
		// a trip through the scheduler. On 2 cores under wrk -c50: read(2) per proxied request 2.92 -> 2.18.
		runtime.Gosched()
		if c.sock != nil && !pending(c.rwc) {
			if err := c.awaitIdle(); err != nil {
				return false
			}
		}
	}
	if _, err := c.br.Peek(1); err != nil && !refused(err) {
		return false
	}
	from := stIdle
	if first {
		from = stNew
	}
	if !c.state.CompareAndSwap(from, stActive) {
		return false
	}
	if !first && !c.headBuffered() {
		// the head's deadline, unless all of it is already here (the common case: no timer to arm)
		c.setReadTimeout(lim.HeaderTimeout)
	}
	return true
}

// headBuffered reports whether the buffer holds a complete head (up to its empty line); the length of a
// CRLF head found is kept for parseHead (headLen), which need not search again.
func (c *conn) headBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	if end := httpsyntax.HeadEnd(b, false); end >= 0 {
		c.headLen = end
		return true
	}
	return bytes.Contains(b, []byte("\n\r\n")) || bytes.Contains(b, []byte("\n\n"))
}

// clearStaleRead clears the read deadline left armed after the last head, before a read that is not a head's.
func (c *conn) clearStaleRead() {
	if c.staleRead.Load() && c.staleRead.Swap(false) {
		c.rwc.SetReadDeadline(time.Time{})
	}
}

// setReadTimeout sets the connection's read deadline d from now (none for d <= 0).
func (c *conn) setReadTimeout(d time.Duration) {
	if c.sock != nil {
		c.sock.SetReadTimeout(d)
		return
	}
	c.rwc.SetReadDeadline(deadline(d))
}

func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// refusal is a request head refused after parsing.
type refusal Refusal

func (r *refusal) Error() string { return r.Reason }

// readRequest reads and checks one request head.
func (c *conn) readRequest(lim Limits) (*http.Request, error) {
	c.headLimit, c.remain, c.tooLarge = true, int64(lim.MaxHeaderBytes)+8192, false
	var req *http.Request
	var err error
	var rec []byte // the head as read, when recordHead kept it
	hint := c.headLen
	c.headLen = 0
	if b, _ := c.br.Peek(1); len(b) == 1 && b[0] == '\r' {
		// empty lines before the request line (a client's CRLF after a POST body) are skipped, as nginx and
		// RFC 9112 §2.2 do; the guard has refused anything else there
		for b, _ = c.br.Peek(2); len(b) == 2 && b[0] == '\r' && b[1] == '\n'; b, _ = c.br.Peek(2) {
			c.br.Discard(2)
			hint = 0
		}
	}
	c.tmpl.Header, c.reqHdr = c.reqHdr, nil
	// made here, so the parse can use its storage (see reqStore); a spare one was cleared when kept
	if c.next = c.spare; c.next != nil {
		c.spare = nil
	} else {
		c.next = new(response)
	}
	if c.headRead = parseHead(c.br, &c.tmpl, hint, &c.next.st); c.headRead > 0 {
		req = &c.tmpl
		req.Body = http.NoBody
		if req.ContentLength > 0 {
			req.Body = &lengthBody{br: c.br, remain: req.ContentLength}
		}
	} else {
		c.reqHdr, c.tmpl.Header = c.tmpl.Header, nil
		c.recordHead()
		c.refLine = firstLine(c.br)
		req, err = http.ReadRequest(c.br)
		rec, c.rec, c.recording = c.rec, nil, false
	}
	c.headLimit = false
	if err != nil {
		if c.tooLarge {
			return nil, &refusal{Status: 494, Reason: "too long header line"}
		}
		return nil, err
	}
	c.staleRead.Store(true) // cleared before the handler's first read of the socket (clearStaleRead)
	if t := req.RequestURI; t == "" || t[0] != '/' && t != "*" {
		if r := notOriginForm(req, rec); r != nil {
			return nil, r.of(req)
		}
	}
	switch {
	case req.Host == "" && req.ProtoAtLeast(1, 1) && req.Method != http.MethodConnect:
		return nil, (&refusal{Status: 400, Reason: `HTTP/1.1 request without "Host" header`}).of(req)
	case !httpguts.ValidHostHeader(req.Host):
		return nil, (&refusal{Status: 400, Reason: "invalid host header"}).of(req)
	}
	return req, nil
}

// of completes a refusal of a parsed request with its request line and header, for the access log.
func (r *refusal) of(req *http.Request) *refusal {
	r.Line, r.Header = req.Method+" "+req.RequestURI+" "+req.Proto, req.Header
	return r
}

// firstLine returns a copy of the request line at the start of br's buffer, as far as it is there (without
// its line end).
func firstLine(br *bufio.Reader) string {
	b, _ := br.Peek(br.Buffered())
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(bytes.TrimSuffix(b, []byte("\r")))
}

// recordHead starts recording the head net/http is about to read (rec) unless its target is in origin form
// ("/…"): for an absolute-form target ReadRequest takes the Host from the target and drops the Host header,
// which notOriginForm then finds in the copy. Such requests are rare, so only they pay for the copy.
func (c *conn) recordHead() {
	b, _ := c.br.Peek(c.br.Buffered())
	if sp := bytes.IndexByte(b, ' '); sp >= 0 && sp+1 < len(b) && b[sp+1] == '/' {
		return
	}
	c.rec, c.recording = append([]byte(nil), b...), true
}

// notOriginForm checks a request whose target is not a path, as nginx does: CONNECT's authority form
// ("example.com:443") and userinfo in an absolute-form target are refused, and for an absolute-form target
// ("http://a.example/x") the Host header, which net/http dropped, is restored from rec under Header["Host"] (an empty
// list when there was none; see vars.HostHeader) and required in HTTP/1.1.
func notOriginForm(req *http.Request, rec []byte) *refusal {
	if req.URL.Scheme == "" || req.URL.Host == "" || req.URL.User != nil {
		// an authority-form CONNECT, "a:b", "http:///x", userinfo
		return &refusal{Status: 400, Reason: "invalid request"}
	}
	host, ok := hostField(rec)
	if !ok {
		if req.ProtoAtLeast(1, 1) {
			return &refusal{Status: 400, Reason: `HTTP/1.1 request without "Host" header`}
		}
		req.Header["Host"] = []string{}
		return nil
	}
	if !httpguts.ValidHostHeader(host) {
		return &refusal{Status: 400, Reason: "invalid host header"}
	}
	req.Header["Host"] = []string{host}
	return nil
}

// hostField returns the value of the Host field in head, a whole request head as the guard let it through
// (CRLF lines, at most one Host: ReadRequest refused more).
func hostField(head []byte) (string, bool) {
	_, rest, ok := bytes.Cut(head, []byte("\n"))
	for ok && len(rest) > 0 {
		var name, value []byte
		var end bool
		name, value, rest, _, end, ok = httpsyntax.NextField(rest, false)
		if end {
			break
		}
		if ok && len(name) == 4 && strings.EqualFold(string(name), "Host") {
			return string(value), true
		}
	}
	return "", false
}

// parseRefused splits the head the framing guard refused, as far as it read it, into its request line and
// header fields.
func parseRefused(head []byte) (string, http.Header) {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	var h http.Header
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if name, value, ok := bytes.Cut(l, []byte(":")); ok {
			if h == nil {
				h = http.Header{}
			}
			h.Add(string(name), string(bytes.TrimSpace(value)))
		}
	}
	return string(line), h
}

// refused reports whether err is the framing guard's refusal of the head being read.
func refused(err error) bool {
	var v *h1guard.Violation
	return errors.As(err, &v)
}

// refuse answers a head that could not be served (nothing for a client that went away or timed out); it
// reports whether it answered, and whether the client may still be sending (more bytes than the refused
// part are here: lingering_close on lingers then, as nginx does).
func (c *conn) refuse(err error) (answered, more bool) {
	var r *refusal
	var v *h1guard.Violation
	more = c.hasByte || c.br != nil && c.br.Buffered() > 0
	switch {
	case errors.As(err, &v):
		// the framing guard refused it: nothing of it was passed on
		r, more = &refusal{Status: v.Status, Reason: v.Reason}, v.More
		r.Line, r.Header = parseRefused(v.Head)
	case errors.As(err, &r):
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed):
		return false, false
	case strings.Contains(err.Error(), "too many Host headers"):
		r = &refusal{Status: 400, Reason: `duplicate header line: "Host"`}
	case strings.Contains(err.Error(), "transfer encoding"):
		r = &refusal{Status: 501, Reason: `unknown "Transfer-Encoding"`}
	case strings.Contains(err.Error(), "Content-Length"):
		r = &refusal{Status: 400, Reason: `invalid "Content-Length" header`}
	default:
		// a target ReadRequest cannot parse is a *url.Error, which is also a net.Error: it gets its 400
		var ue *url.Error
		var ne net.Error
		if !errors.As(err, &ue) && errors.As(err, &ne) {
			return false, false
		}
		r = &refusal{Status: 400, Reason: "invalid request"}
	}
	if r.Line == "" {
		r.Line = c.refLine
	}
	if c.srv.Refuse != nil {
		c.srv.Refuse(c.base, c.rwc, Refusal(*r))
	}
	return true, more
}

// lingers reports whether a connection that closes after its response reads and drops what the client still
// sends first. A request body left unread always is, for lingering_time and lingering_timeout, as nginx
// discards (reads and drops) the body of a request it answered without reading it, whatever lingering_close
// says (observed from nginx 1.22: lingering_close off and a 413 to an upload still read it for lingering_time).
// Otherwise lingering_close (c.lingerBy) decides, as in nginx's ngx_http_finalize_connection: never with off,
// always with always, and with on (the default) when more bytes than the request are here (pipelined requests,
// the rest of a refused head).
func (c *conn) lingers(unreadBody, more bool) bool {
	if unreadBody {
		return true
	}
	mode, _, _ := c.lingerBy.values()
	switch mode {
	case LingerOff:
		return false
	case LingerAlways:
		return true
	}
	return more
}

// lingerClose ends a connection whose client may still be sending (an unread request body, a refused head):
// closing with unread bytes makes the kernel reset the connection, and a reset can destroy the response the
// client has not read yet (the 413 for an upload). The response is out; a FIN says nothing more comes, and
// what the client still sends is read and dropped until it closes, for lingering_time at most and
// lingering_timeout per read.
func (c *conn) lingerClose() {
	// the response is out: to Shutdown the connection is idle (closeIdle closes it, which ends the reads)
	c.state.Store(stIdle)
	_, total, each := c.lingerBy.values()
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	// the socket under the framing guard (or TLS under it): what comes now is dropped unparsed
	r := c.rwc
	if u, ok := r.(interface{ Unwrap() net.Conn }); ok {
		r = u.Unwrap()
	}
	buf := make([]byte, 4096)
	end := time.Now().Add(total)
	for {
		d := min(each, time.Until(end))
		if d <= 0 || r.SetReadDeadline(time.Now().Add(d)) != nil {
			return
		}
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// maxDrain is how much of a body the handler left unread is read and dropped to keep the connection
// (net/http's figure); a longer rest closes the connection.
const maxDrain = 256 << 10

// serveRequest runs the handler for req and completes its response; it reports whether the connection may
// carry another request.
func (c *conn) serveRequest(req *http.Request, lim Limits) bool {
	s := c.srv
	w := c.next
	c.next = nil
	w.c, w.cl = c, -1
	c.lingerBy = nil // nginx's defaults unless the handler sets its location's (SetLinger)
	c.headerTimeout = lim.HeaderTimeout
	req.RemoteAddr = c.remote
	req.TLS = c.tls
	w.ctx.Context, w.ctx.c, w.ctx.b, w.ctx.head = c.base, c, &w.body, c.headRead
	if w.req != nil && req.Context() == context.Context(&w.ctx) {
		*w.req = *req // a reused response: the parse started from its base, so the context is already w's
		req = w.req
	} else {
		req = req.WithContext(&w.ctx)
		w.req = req
	}
	c.tmpl = http.Request{} // the fast path's request lives on in the copy only
	if c.hdr == nil {
		c.hdr = make(http.Header, 8)
	} else {
		clear(c.hdr)
	}
	w.header = c.hdr
	c.buf = c.buf[:0]
	w.head = req.Method == http.MethodHead
	w.body.w = w
	if req.Body != nil && req.Body != http.NoBody {
		w.body.r = req.Body
		w.body.cl = req.ContentLength
		w.expect = req.ProtoAtLeast(1, 1) && req.ContentLength != 0 && hasToken(req.Header.Get("Expect"), "100-continue")
		req.Body = &w.body
	} else {
		w.body.done.Store(true)
		w.body.pipelined.Store(c.br.Buffered() > 0 || c.hasByte)
	}
	w.closeAfter = req.Close || lim.IdleTimeout <= 0 || s.shutdown.Load()
	s.Handler.ServeHTTP(w, req)
	c.stopWatch()
	w.ctx.cancel()
	if w.hijacked {
		return false
	}
	if !w.finished {
		w.finish(lim.HeaderTimeout)
	}
	keep := !w.closeAfter
	c.linger = !keep && c.lingers(!w.body.done.Load(), c.hasByte || c.br.Buffered() > 0)
	if w.ctx.watched() {
		return keep // something may still hold the request (see watched)
	}
	if h := req.Header; h != nil && len(h) <= 32 {
		// the next request's header fills this map: nothing can reach this request any more, and its
		// values are not the map's
		clear(h)
		c.reqHdr = h
	}
	if w.body.r == nil && keep {
		if w.st.base == nil {
			w.st.base = new(http.Request).WithContext(&w.ctx)
		}
		w.recycle() // now, not when reused: an idle connection holds nothing of its last request
		c.spare = w
	}
	return keep
}

// hasToken reports whether the comma-separated list v holds token (case-insensitively).
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// watch starts the client-gone watch for x, when the socket carries nothing the handler may still read.
func (c *conn) watch(x *reqCtx, b *body) {
	x.wanted.Store(true) // the body's end starts the watch if it cannot start now
	if !b.done.Load() || b.pipelined.Load() {
		return
	}
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.watchDone != nil || c.hijack {
		return
	}
	c.clearStaleRead()
	done := make(chan struct{})
	c.watchDone = done
	go func() {
		defer close(done)
		n, err := c.rwc.Read(c.watchByte[:])
		if n == 1 {
			c.hasByte = true // the next request began: the client is still there
			return
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			x.cancel()
		}
	}()
}

// stopWatch ends the client-gone watch, if any, before the connection reads again or is handed over.
func (c *conn) stopWatch() {
	c.watchMu.Lock()
	done := c.watchDone
	c.watchDone = nil
	c.watchMu.Unlock()
	if done == nil {
		return
	}
	c.rwc.SetReadDeadline(time.Unix(1, 0))
	<-done
	c.rwc.SetReadDeadline(time.Time{})
}

// reqCtx is a request's context: the connection's values, cancelled when the handler returns or, once
// something waits on Done, when the client closes the connection. Only waiting arms the watch (a read on the
// socket), so a request nobody watches costs no goroutine.
type reqCtx struct {
	context.Context
	c    *conn
	b    *body
	mu   sync.Mutex
	done chan struct{}
	err  error
	// wanted: something waits on Done; the watch starts once the body was read
	wanted atomic.Bool
	head   int // the head's length on the wire, when known
}

// HeadLength is the length of the request's head as it came on the wire (request line, header lines and the
// empty line), 0 when not known: $request_length without counting the parsed fields again.
func (x *reqCtx) HeadLength() int { return x.head }

func (x *reqCtx) Done() <-chan struct{} {
	x.mu.Lock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		} else {
			defer x.c.watch(x, x.b)
		}
	}
	d := x.done
	x.mu.Unlock()
	return d
}

func (x *reqCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

func (x *reqCtx) cancel() {
	x.mu.Lock()
	if x.err == nil {
		x.err = context.Canceled
		if x.done != nil {
			close(x.done)
		}
	}
	x.mu.Unlock()
}

// body is a request body as the handler reads it: it sends 100 Continue on the first read when the client
// expects it, records the end, and refuses reads once the handler returned.
type body struct {
	w         *response
	r         io.ReadCloser
	mu        sync.Mutex
	cl        int64 // declared length (-1: chunked)
	n         int64 // bytes read
	closed    bool
	done      atomic.Bool // read to the end
	pipelined atomic.Bool // at the end, more bytes were buffered (a pipelined request)
	read      bool        // the handler read from it
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.done.Load() {
		return 0, io.EOF
	}
	b.read = true
	if b.w.expect {
		b.w.sendContinue()
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err == io.EOF || b.cl >= 0 && b.n >= b.cl {
		b.pipelined.Store(b.w.c.br.Buffered() > 0)
		b.done.Store(true)
		if x := &b.w.ctx; x.wanted.Load() && !b.closed {
			b.w.c.watch(x, b)
		}
	}
	return n, err
}

func (b *body) Close() error { return nil }

// drain reads and drops what the handler left of the body (at most maxDrain); it reports whether the body
// ended, so the connection can carry another request.
func (b *body) drain(headerTimeout time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.done.Load() {
		return true
	}
	if b.w.expect && !b.w.continued {
		return false // the client waits for 100 Continue before sending the body: nothing to drain
	}
	if !b.read {
		b.w.c.staleRead.Store(false)
		b.w.c.setReadTimeout(headerTimeout)
	}
	n, err := io.CopyN(io.Discard, b.r, maxDrain+1)
	if err == io.EOF && n <= maxDrain {
		b.done.Store(true)
		b.w.c.rwc.SetReadDeadline(time.Time{})
		return true
	}
	return false
}
