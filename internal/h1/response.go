package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/internal/httpsyntax"
)

// smallBody is how much body a response holds before its head goes out, so a small complete response gets a
// Content-Length instead of chunks (net/http's figure).
const smallBody = 2048

// response is the http.ResponseWriter of one request. It frames the body by Content-Length when the handler
// set one or finished within smallBody, by chunks on HTTP/1.1 otherwise, by closing on HTTP/1.0.
type response struct {
	c      *conn
	req    *http.Request
	ctx    reqCtx
	body   body
	header http.Header
	bw     *bufio.Writer // holds the head and body until flushed; from the head on

	status      int
	reason      string // the final status line's reason phrase, when SetReason set one (a proxied response's)
	wroteHeader bool
	headSent    bool // the head is in bw
	head        bool // a HEAD request: no body goes out
	cl          int64
	written     int64
	chunked     bool
	closeAfter  bool
	noChunked   bool // chunked_transfer_encoding off
	hijacked    bool
	wdeadline   bool
	finished    bool  // finish ran (Complete may run it before the handler returns)
	sent        int64 // bytes put on the connection for this response: heads, body and its framing ($bytes_sent)
	err         error

	expect    bool // the client expects 100 Continue before it sends the body
	continued bool
	mu        sync.Mutex // the head against 100 Continue, which a body read may send from another goroutine

	st reqStore // the request's URL and first values, when the fast path parsed it
}

func (w *response) Header() http.Header { return w.header }

// SetLinger sets how the connection closes if it closes after this response (the location's lingering_close,
// lingering_time and lingering_timeout); l is kept, not copied. Without it nginx's defaults apply.
func (w *response) SetLinger(l *Linger) { w.c.lingerBy = l }

// SetReason sets the reason phrase of the final status line (before WriteHeader): a proxy relays its
// upstream's, as nginx does. Without one, sluice writes nginx's phrase for the code.
func (w *response) SetReason(reason string) { w.reason = reason }

// NoChunked makes a response of unknown length end with the connection instead of being chunked
// (chunked_transfer_encoding off).
func (w *response) NoChunked() { w.noChunked = true }

// watched reports whether something asked for the context's Done before the handler returned: a client
// watch, an AfterFunc, a context derived from it. That is how anything that outlives a request holds on to it,
// and code that keeps a request or its context past its handler must do one of these while the handler runs.
// When nothing did, nothing can reach the request once its handler has returned and the response is complete
// (a connection handed over returns before), so the connection reuses its header map, and, when it had no
// body (a transport's goroutine may still be reading one), the response and the *http.Request (recycle): two
// allocations, about 0.8 KiB, per keep-alive request.
func (x *reqCtx) watched() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.done != nil
}

// recycle clears w and the request it handed out for the connection's next request, keeping that request
// object (now zero but for its context) and the base its parse starts from. It drops every reference to the
// request's head (strings, URL, header map), which would otherwise stay in memory while the connection idles.
func (w *response) recycle() {
	req, base := w.req, w.st.base
	*w = response{}
	*req = *base
	w.req, w.st.base = req, base
}

func (w *response) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.interim(code)
		return
	}
	w.wroteHeader, w.status = true, code
	if v := httpsyntax.First(w.header, "Content-Length"); v != "" {
		if n, ok := httpsyntax.Length(v); ok {
			w.cl = n // (digits only: the usual value, read without ParseInt's generality)
		} else if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.cl = n
		} else {
			delete(w.header, "Content-Length")
		}
	}
}

// interim writes a 1xx head at once.
func (w *response) interim(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if code == http.StatusContinue {
		if w.continued {
			return
		}
		w.continued = true
	}
	bw := w.writer()
	b, f := w.appendHeader(w.appendStatusLine(bw.AvailableBuffer(), code))
	b = appendValues(b, "Connection", f.conn)
	b = append(b, "\r\n"...)
	bw.Write(b)
	w.sent += int64(len(b))
	w.fail(bw.Flush())
}

// sendContinue answers Expect: 100-continue on the body's first read, unless the response began.
func (w *response) sendContinue() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.continued || w.headSent {
		return
	}
	w.continued = true
	n, err := io.WriteString(w.c.rwc, "HTTP/1.1 100 Continue\r\n\r\n")
	w.sent += int64(n)
	w.fail(err)
}

func (w *response) writer() *bufio.Writer {
	if w.bw == nil {
		w.bw = w.c.srv.getWriter(w.c.rwc)
	}
	return w.bw
}

func (w *response) fail(err error) {
	if err != nil && w.err == nil {
		w.err = err
		w.closeAfter = true
	}
}

// bodyAllowed reports whether the status has a body (RFC 9110 §6.4.1).
func (w *response) bodyAllowed() bool {
	return !(w.status >= 100 && w.status <= 199 || w.status == 204 || w.status == 304)
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.head {
		w.written += int64(len(p))
		return len(p), nil
	}
	if !w.headSent {
		if len(w.c.buf)+len(p) <= smallBody {
			w.c.buf = append(w.c.buf, p...)
			w.written += int64(len(p))
			return len(p), nil
		}
		w.sendHead(false, p)
	}
	return w.writeBody(p)
}

func (w *response) WriteString(s string) (int, error) {
	if !w.headSent && w.wroteHeader && !w.head && len(w.c.buf)+len(s) <= smallBody && w.bodyAllowed() && !w.hijacked {
		w.c.buf = append(w.c.buf, s...)
		w.written += int64(len(s))
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// writeBody writes body bytes after the head.
func (w *response) writeBody(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		p = p[:w.cl-w.written]
		n, _ := w.writeBody(p)
		return n, http.ErrContentLength
	}
	if len(p) == 0 {
		return 0, nil
	}
	bw := w.bw
	if w.chunked {
		size := strconv.AppendInt(w.c.scratch[:0], int64(len(p)), 16)
		bw.Write(size)
		bw.WriteString("\r\n")
		w.sent += int64(len(size)) + 4 // the size line and the CRLF after the data
	}
	n, err := bw.Write(p)
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	w.written += int64(n)
	w.sent += int64(n)
	w.fail(err)
	return n, err
}

// sendHead puts the head into the writer, deciding the framing: final means the handler has returned and
// c.buf is the whole body. The held body follows it. next, if any, is the body's next write (sniffed for a
// Content-Type when nothing was held).
func (w *response) sendHead(final bool, next []byte) {
	w.mu.Lock()
	w.headSent = true
	w.mu.Unlock()
	h := w.header
	req := w.req
	allowed := w.bodyAllowed()
	if w.cl < 0 && allowed {
		switch {
		case final && (!w.head || w.written > 0):
			w.cl = w.written
			h["Content-Length"] = []string{strconv.FormatInt(w.cl, 10)}
		case w.head:
		case req.ProtoAtLeast(1, 1) && !w.noChunked:
			w.chunked = true
		default:
			w.closeAfter = true // HTTP/1.0: the body ends when the connection closes
		}
	}
	// the head is appended in the writer's free space and written with one Write (a Write or WriteString
	// per piece cost about 60 instructions each); a head larger than that space is appended to a new array
	bw := w.writer()
	b := w.appendStatusLine(bw.AvailableBuffer(), w.status)
	// the fields but Connection, noting on the way what would otherwise be looked up (about 140
	// instructions a lookup); the fields decided below come after them
	b, f := w.appendHeader(b)
	if f.te {
		delete(h, "Transfer-Encoding") // sluice frames the body itself
	}
	// a nil Content-Type value: no Content-Type, and none sniffed (net/http's convention)
	if sniff := w.c.buf; !f.typed && allowed && !f.encoded {
		if len(sniff) == 0 {
			sniff = next
		}
		if len(sniff) > 0 {
			ct := http.DetectContentType(sniff)
			h["Content-Type"] = []string{ct}
			b = httpsyntax.AppendField(b, "Content-Type", ct)
		}
	}
	connClose := hasToken(httpsyntax.FirstOf(f.conn), "close")
	if !w.closeAfter && connClose {
		w.closeAfter = true
	}
	switch {
	case w.closeAfter && req.ProtoAtLeast(1, 1) && !connClose:
		h["Connection"] = []string{"close"}
		b = append(b, "Connection: close\r\n"...)
	case w.closeAfter && !req.ProtoAtLeast(1, 1):
		// an HTTP/1.1 status line (below) makes the close explicit for the HTTP/1.0 client, as nginx does
		h["Connection"] = []string{"close"}
		b = append(b, "Connection: close\r\n"...)
	case !w.closeAfter && !req.ProtoAtLeast(1, 1):
		h["Connection"] = []string{"keep-alive"}
		b = append(b, "Connection: keep-alive\r\n"...)
	default:
		b = appendValues(b, "Connection", f.conn)
	}
	if !f.dated {
		b = append(b, w.c.srv.dateField()...)
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	b = append(b, "\r\n"...)
	bw.Write(b)
	w.sent += int64(len(b))
	if len(w.c.buf) > 0 {
		buf := w.c.buf
		w.written -= int64(len(buf))
		w.writeBody(buf)
		w.c.buf = buf[:0]
	}
}

// appendStatusLine appends the status line: HTTP/1.1 also to an HTTP/1.0 client, the highest version sluice
// speaks (RFC 9110 §6.2), as nginx answers; the 1.0 client's framing and Connection rules still apply.
func (w *response) appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	if code == 200 && w.reason == "" {
		return append(b, "200 OK\r\n"...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if w.reason != "" && code >= 200 {
		b = append(b, w.reason...)
	} else {
		b = append(b, httpsyntax.Reason(code)...) // nginx's phrases: "Gateway Time-out", "Not Allowed"
	}
	return append(b, "\r\n"...)
}

// headerValueCleaner replaces the line breaks a header value must not carry, as net/http does.
var headerValueCleaner = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ")

// noted is what appendHeader saw of the fields that sendHead decides on.
type noted struct {
	dated, te, typed, encoded bool     // Date (not nil), Transfer-Encoding, Content-Type (even nil), Content-Encoding (not nil)
	conn                      []string // the Connection values, not written
}

// appendHeader appends the header's fields but Transfer-Encoding (the framing is sluice's) and Connection
// (sendHead decides it), and notes what sendHead needs of them.
func (w *response) appendHeader(b []byte) (_ []byte, f noted) {
	for k, vs := range w.header {
		switch k {
		case "Transfer-Encoding":
			f.te = true
			continue
		case "Connection":
			f.conn = vs
			continue
		case "Date":
			f.dated = f.dated || vs != nil
		case "Content-Type":
			f.typed = true
		case "Content-Encoding":
			f.encoded = vs != nil
		}
		b = appendValues(b, k, vs)
	}
	return b, f
}

// appendValues appends a field line for each of k's values, cleaned as net/http writes them (a name that is
// not safe to write is left out).
func appendValues(b []byte, k string, vs []string) []byte {
	if !httpsyntax.NameSafe(k) {
		return b
	}
	for _, v := range vs {
		v, clean := plainValue(v)
		if !clean {
			v = strings.TrimSpace(headerValueCleaner.Replace(v))
		}
		b = httpsyntax.AppendField(b, k, v)
	}
	return b
}

// plainValue returns v without surrounding white space, and false when v holds a line break (the caller
// cleans it as net/http does); one pass over v instead of a search for each case.
func plainValue(v string) (string, bool) {
	if httpsyntax.LineBreak(v) {
		return v, false
	}
	if len(v) > 0 && (v[0] <= ' ' || v[len(v)-1] <= ' ') {
		v = strings.TrimSpace(v)
	}
	return v, true
}

// Complete ends the response now, as it ends once the handler returns (the head if it is not out yet, the
// last chunk, the flush; the rest of an unread request body is drained or the connection will close), and
// returns the bytes written to the connection for it: interim heads, the status line and header, the body
// and its chunked framing, nginx's $bytes_sent. Nothing may be written after it. For a hijacked response it
// reports what went out before the connection was handed over.
func (w *response) Complete() int64 {
	if !w.finished && !w.hijacked {
		w.finish(w.c.headerTimeout)
	}
	return w.sent
}

// finish completes the response after the handler returned (or from Complete): the head if it was not sent,
// the last chunk, the flush; the rest of an unread request body is drained, or the connection closes.
func (w *response) finish(headerTimeout time.Duration) {
	w.finished = true
	c := w.c
	if w.closeAfter || !w.headSent && hasToken(httpsyntax.FirstOf(w.header["Connection"]), "close") {
		// the connection ends after this response: no need to read the rest of the body first (the answer
		// would wait for it); it goes out now, and lingerClose reads and drops what still comes
		w.closeAfter = true
	} else if !w.body.drain(headerTimeout) {
		w.closeAfter = true
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(true, nil)
	}
	if w.chunked && w.err == nil {
		w.bw.WriteString("0\r\n\r\n")
		w.sent += 5
	}
	if w.cl >= 0 && w.written < w.cl && !w.head && w.bodyAllowed() {
		w.closeAfter = true // the body fell short of its length: the client must see the end
	}
	if w.bw != nil {
		w.fail(w.bw.Flush())
		w.bw.Reset(nil)
		c.srv.writers.Put(w.bw)
		w.bw = nil
	}
	if w.wdeadline {
		c.rwc.SetWriteDeadline(time.Time{})
	}
	if w.err != nil {
		w.closeAfter = true
	}
}

// FlushError sends what is buffered to the client (http.ResponseController.Flush).
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(false, nil)
	}
	if w.err != nil {
		return w.err
	}
	err := w.bw.Flush()
	w.fail(err)
	return err
}

func (w *response) Flush() { w.FlushError() }

// SetWriteDeadline bounds the writes to the client (send_timeout); the deadline is cleared after the
// response.
func (w *response) SetWriteDeadline(t time.Time) error {
	w.wdeadline = !t.IsZero()
	return w.c.rwc.SetWriteDeadline(t)
}

// SetWriteTimeout gives every write to the client that would block d to complete (send_timeout); the socket
// arms it only then. It fails when the connection is not over a socket that can (the caller sets deadlines).
func (w *response) SetWriteTimeout(d time.Duration) error {
	if w.c.wt == nil || w.hijacked {
		return errors.ErrUnsupported
	}
	w.c.wt.SetWriteTimeout(d)
	return nil
}

// SetReadDeadline bounds the reads of the request body (client_body_timeout).
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.staleRead.Store(false)
	return w.c.rwc.SetReadDeadline(t)
}

// EnableFullDuplex allows reading the body while writing the response, which this writer always does.
func (w *response) EnableFullDuplex() error { return nil }

// ReadFrom sends a body of declared length from src with the connection's ReadFrom (sendfile(2) for a file on
// plain TCP); anything else goes through Write.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	rf, ok := w.c.rwc.(io.ReaderFrom)
	if !ok || w.cl < 0 || w.head || !w.bodyAllowed() || w.hijacked || !w.headSent && !hasKey(w.header, "Content-Type") {
		return io.Copy(writerOnly{w}, src)
	}
	if !w.headSent {
		w.sendHead(false, nil)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.fail(err)
		return 0, err
	}
	left := w.cl - w.written
	var n int64
	var err error
	if lr, ok := src.(*io.LimitedReader); ok {
		// one LimitedReader directly around the file, the shape sendfile(2) is used for: a second one around
		// it would hide the *os.File and the socket's ReadFrom would copy through a buffer
		n, err = rf.ReadFrom(&io.LimitedReader{R: lr.R, N: min(lr.N, left)})
		lr.N -= n
	} else {
		n, err = rf.ReadFrom(io.LimitReader(src, left))
	}
	w.written += n
	w.sent += n
	w.fail(err)
	return n, err
}

func hasKey(h http.Header, k string) bool {
	_, ok := h[k]
	return ok
}

// writerOnly hides ReadFrom, so io.Copy uses Write.
type writerOnly struct{ io.Writer }

// Hijack hands the connection over (a WebSocket tunnel): the socket under any request-framing wrapper, with
// the bytes the client sent beyond the request.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c := w.c
	if w.headSent && w.bw != nil {
		if err := w.bw.Flush(); err != nil {
			return nil, nil, err
		}
	}
	c.stopWatch()
	if c.wt != nil {
		c.wt.SetWriteTimeout(0) // a tunnel times its writes itself
	}
	c.clearStaleRead()
	c.watchMu.Lock()
	c.hijack = true
	c.watchMu.Unlock()
	w.hijacked = true
	c.state.Store(stClosed)
	raw := c.rwc
	if u, ok := raw.(interface{ Unwrap() net.Conn }); ok {
		raw = u.Unwrap()
	}
	var rest []byte
	if c.hasByte {
		rest = append(rest, c.watchByte[0])
		c.hasByte = false
	}
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		rest = append(rest, b...)
	}
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(rest), raw), max(len(rest), 16))
	if len(rest) > 0 {
		br.Peek(len(rest))
	}
	if w.bw != nil {
		w.bw.Reset(nil)
		c.srv.writers.Put(w.bw)
		w.bw = nil
	}
	return raw, bufio.NewReadWriter(br, bufio.NewWriterSize(raw, 1024)), nil
}

// dateField is the Date field's line ("Date: …\r\n"), formatted once a second.
func (s *Server) dateField() string {
	now := time.Now()
	sec := now.Unix()
	if d := s.dateCache.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &dateLine{sec: sec, s: "Date: " + now.UTC().Format(http.TimeFormat) + "\r\n"}
	s.dateCache.Store(d)
	return d.s
}

type dateLine struct {
	sec int64
	s   string
}
