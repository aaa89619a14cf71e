package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/sluice-proxy/sluice/internal/charset"
	"github.com/sluice-proxy/sluice/internal/compress"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/h1guard"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/subfilter"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// defaultSendTimeout is nginx's send_timeout default.
const defaultSendTimeout = 60 * time.Second

// respWriter records what was sent (for $status, $body_bytes_sent and the access log) and applies add_header
// just before the headers go out, when the status is known.
type respWriter struct {
	http.ResponseWriter
	rc          http.ResponseController
	sendTimeout time.Duration // send_timeout: the longest a single write may block
	deadline    bool          // a write deadline was set and must be cleared after the response
	lazyFor     time.Duration // the send_timeout handed to the connection, which arms it when a write would block
	lazySet     bool          // lazyFor was handed over
	writeBy     time.Time     // HTTP/2 and later: when the pending write's send_timeout runs out
	timedOut    bool          // the send_timeout of a stream was logged
	rq          *request
	status      int
	bytes       int64
	wroteHeader bool
	hijacked    bool
	forceStatus int    // error_page =code: the status the final response carries
	reason      string // a proxied response's reason phrase (SetReason)
	finished    atomic.Bool
	gunzip      *compress.Inflater // a gzip-encoded body is decompressed through it (gunzip), first
	varied      bool               // gunzip added Vary: Accept-Encoding (gzip_vary), which gzip does not repeat
	sub         *subfilter.Stream  // the body's strings are replaced through it (sub_filter), before gzip
	cs          *charset.Recoder   // the body is recoded through it (charset, source_charset), after sub_filter
	gz          *gzip.Writer       // the body is compressed through it (gzip)
	gzLevel     int
	gzIn        int64 // bytes given to gz, for $gzip_ratio
	// limit_rate: bytes per second (0: none), the part sent before it applies, the request's start (Unix
	// seconds) and the time before which nothing more is sent (nginx's delay after a send)
	rate, rateAfter, rateStart int64
	rateUntil                  time.Time
}

func (w *respWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if w.forceStatus != 0 && code >= 200 {
		code = w.forceStatus
		if code != http.StatusOK {
			// a file served as an error page: nginx's range filter offers ranges on 200s only
			delete(w.Header(), "Accept-Ranges")
		}
	}
	if code != http.StatusOK && code != http.StatusPartialContent && code != http.StatusNotModified {
		delete(w.Header(), "Last-Modified") // nginx sends it with 200, 206 and 304 only
	}
	if w.reason != "" && w.forceStatus == 0 {
		if rs, ok := w.ResponseWriter.(interface{ SetReason(string) }); ok {
			rs.SetReason(w.reason)
		}
	}
	if c := w.rq.conf; c != nil && c.Chunked.Set && !c.Chunked.V {
		if nc, ok := w.ResponseWriter.(interface{ NoChunked() }); ok {
			nc.NoChunked()
		}
	}
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wroteHeader = true
		w.status = code
		if w.rq.v.Status == 0 {
			w.rq.v.Status = code // $status in add_header, as nginx
		}
		w.rq.addHeaders(code)
		// a subrequest's body is dropped (captureWriter): it is not filtered, compressed or paced, so a cache
		// update reads its upstream at the upstream's pace
		if c := w.rq.conf; c != nil && !w.rq.subrequest && (c.GunzipFilter != nil || c.SubFilter != nil || c.Charset != nil || c.GzipFilter != nil) {
			w.startFilters(c, code)
		}
		if !w.rq.subrequest && (w.rq.v.LimitRateSet || w.rq.conf != nil && w.rq.conf.LimitRate.V != nil) {
			w.startRate()
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// startFilters runs the header side of the body filters, in nginx's order: gunzip, sub_filter, charset, then
// gzip (which compresses the decompressed, substituted, recoded body). A subrequest's body (auth_request,
// mirror) is dropped: it is neither decompressed, rewritten nor given a charset.
func (w *respWriter) startFilters(c *config.LocConf, code int) {
	if c.GunzipFilter != nil && !w.rq.subrequest {
		w.startGunzip(c.GunzipFilter, code)
	}
	if c.SubFilter != nil && !w.rq.subrequest {
		w.sub = c.SubFilter.Start(code, w.Header(), w.rq.v, subOut{w})
	}
	if c.Charset != nil && !w.rq.subrequest {
		rec, err := c.Charset.Header(code, w.Header(), w.rq.v.AccelCharset, w.rq.v, csOut{w})
		if err != nil {
			w.rq.log.Error(err.Error(), w.rq.v.LogAttrs()...)
		}
		w.cs = rec
	}
	if c.GzipFilter != nil {
		w.startGzip(c.GzipFilter, code)
	}
}

// startGunzip is nginx's gunzip header filter: a gzip-encoded response gets Vary (gzip_vary) and, unless the
// client takes gzip, is decompressed from here on: no Content-Encoding, Content-Length or Accept-Ranges, and
// a weak ETag. A response without a body (HEAD, 204, 304) gets the same head.
func (w *respWriter) startGunzip(u *compress.Gunzip, code int) {
	h := w.Header()
	if !u.Encoded(h) {
		return
	}
	if u.Test.Vary {
		if !variesByEncoding(h) { // (a gzip_static file has it already)
			h.Add("Vary", "Accept-Encoding")
		}
		w.varied = true
	}
	if u.Test.Accepts(w.rq.r, h) {
		return
	}
	delete(h, "Content-Encoding")
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges")
	compress.WeakETag(h)
	if w.rq.r.Method != http.MethodHead && code != http.StatusNoContent && code != http.StatusNotModified {
		w.gunzip = compress.NewInflater(gunzipOut{w}, u.BufSize)
	}
}

// variesByEncoding reports whether h has Vary: Accept-Encoding.
func variesByEncoding(h http.Header) bool {
	for _, v := range h["Vary"] {
		if strings.EqualFold(strings.TrimSpace(v), "Accept-Encoding") {
			return true
		}
	}
	return false
}

// gunzipOut takes the decompressed body on to sub_filter, or to what subOut takes it to.
type gunzipOut struct{ w *respWriter }

func (o gunzipOut) Write(b []byte) (int, error) {
	if o.w.sub != nil {
		return o.w.sub.Write(b)
	}
	return subOut(o).Write(b)
}

// subOut takes the substituted body on to the charset filter, or to what csOut takes it to.
type subOut struct{ w *respWriter }

func (o subOut) Write(b []byte) (int, error) {
	if o.w.cs != nil {
		return o.w.cs.Write(b)
	}
	return o.w.writeOut(b)
}

// csOut takes the recoded body on to gzip, limit_rate or the connection.
type csOut struct{ w *respWriter }

func (o csOut) Write(b []byte) (int, error) { return o.w.writeOut(b) }

// gzipCoding is the shared Content-Encoding value of compressed responses (read only).
var gzipCoding = []string{"gzip"}

// startGzip is nginx's gzip header filter, run after add_header: a response gzip may compress gets Vary
// (gzip_vary) and, when the client takes gzip, is compressed from here on: no Content-Length (the body is
// chunked, or ends with the connection), no Accept-Ranges, and a weak ETag. A HEAD gets the same head.
func (w *respWriter) startGzip(g *compress.Gzip, code int) {
	h := w.Header()
	if !g.Compressible(code, h) {
		return
	}
	if g.Vary && !w.varied {
		h.Add("Vary", "Accept-Encoding")
	}
	if !g.Accepts(w.rq.r, h) {
		return
	}
	h["Content-Encoding"] = gzipCoding
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges")
	compress.WeakETag(h)
	if w.rq.r.Method != http.MethodHead {
		w.gz, w.gzLevel = w.rq.s.gzips.Get(rawWriter{w}, g.Level), g.Level
	}
}

// endFilters ends the body filters: after a handler that returned normally, the decompressed body's end and
// what sub_filter held go out, a compressed body gets its end, and the gzip writer goes back; after a failed
// response (abort) only that. A gzip body that was cut short is an error: the response must be cut too.
func (w *respWriter) endFilters(complete bool) (err error) {
	if w.gunzip != nil {
		if complete {
			err = w.gunzip.Close()
		} else {
			w.gunzip.Abandon()
		}
		if err != nil {
			complete = false
		}
		w.gunzip = nil
	}
	if w.sub != nil {
		if complete {
			w.sub.Close()
		}
		w.sub = nil
	}
	w.cs = nil // (it holds no more than a cut UTF-8 sequence, which nginx drops too)
	w.varied = false
	if w.gz == nil {
		return err
	}
	if complete {
		w.gz.Close()
		w.rq.v.GzipRatio = gzipRatio(w.gzIn, w.bytes)
	}
	w.rq.s.gzips.Put(w.gz, w.gzLevel)
	w.gz = nil
	return err
}

// gzipRatio formats $gzip_ratio as nginx does: in/out with two decimals, rounded half up.
func gzipRatio(in, out int64) string {
	if out <= 0 {
		return ""
	}
	whole, frac := in/out, in*100/out%100
	if in*1000/out%10 > 4 {
		if frac++; frac > 99 {
			whole, frac = whole+1, 0
		}
	}
	return strconv.FormatInt(whole, 10) + "." + string([]byte{byte('0' + frac/10), byte('0' + frac%10)})
}

// rawWriter writes compressed bytes to the connection, counting them ($body_bytes_sent counts what was sent).
type rawWriter struct{ w *respWriter }

func (r rawWriter) Write(b []byte) (int, error) { return r.w.send(b) } // (limit_rate paces what goes out, compressed)

// SetReason keeps a proxied response's reason phrase for the HTTP/1 writer (HTTP/2 and HTTP/3 have none);
// WriteHeader passes it on unless an error_page has replaced the status (nginx then writes its own phrase).
func (w *respWriter) SetReason(reason string) { w.reason = reason }

func (w *respWriter) Write(b []byte) (int, error) {
	w.beforeWrite()
	if w.gunzip != nil {
		return w.gunzip.Write(b)
	}
	if w.sub != nil {
		return w.sub.Write(b)
	}
	if w.cs != nil {
		return w.cs.Write(b)
	}
	return w.writeOut(b)
}

// writeOut writes the body after sub_filter: compressed, paced or straight to the connection.
func (w *respWriter) writeOut(b []byte) (int, error) {
	if w.gz != nil {
		w.gzIn += int64(len(b))
		return w.gz.Write(b)
	}
	return w.send(b)
}

// send writes b to the connection, paced when limit_rate applies.
func (w *respWriter) send(b []byte) (int, error) {
	if w.rate > 0 {
		return w.paced(b)
	}
	return w.direct(b)
}

// direct writes b to the connection and counts what went out ($body_bytes_sent).
func (w *respWriter) direct(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	if err != nil {
		w.writeFailed()
	}
	return n, err
}

// WriteString writes s without first copying it into a byte slice (net/http's writer takes strings).
func (w *respWriter) WriteString(s string) (int, error) {
	w.beforeWrite()
	if w.gz != nil || w.rate > 0 || w.sub != nil || w.cs != nil || w.gunzip != nil {
		return w.Write([]byte(s))
	}
	n, err := io.WriteString(w.ResponseWriter, s)
	w.bytes += int64(n)
	if err != nil {
		w.writeFailed()
	}
	return n, err
}

// beforeWrite sends the headers if they are not yet and arms send_timeout for the write that follows.
func (w *respWriter) beforeWrite() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.armSendTimeout()
}

// armSendTimeout gives the next write send_timeout to complete. An HTTP/1 connection over a socket is given
// the timeout once and arms it only when a write would block (no runtime timer for the writes the kernel
// takes at once: nearly all); elsewhere each write gets a deadline.
func (w *respWriter) armSendTimeout() {
	if w.lazySet && w.lazyFor == w.sendTimeout {
		return
	}
	if w.rq.r.ProtoMajor == 1 {
		if wt := writeTimeouter(w.ResponseWriter); wt != nil && wt.SetWriteTimeout(w.sendTimeout) == nil {
			w.lazyFor, w.lazySet = w.sendTimeout, true
			return
		}
	}
	if w.sendTimeout > 0 {
		w.setWriteDeadline()
	}
}

// writeTimeouter returns the writer under w's wrappers that can take a lazily armed write timeout, or nil.
func writeTimeouter(w http.ResponseWriter) interface{ SetWriteTimeout(time.Duration) error } {
	for i := 0; i < 8; i++ {
		if wt, ok := w.(interface{ SetWriteTimeout(time.Duration) error }); ok {
			return wt
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// setWriteDeadline sets the connection's write deadline send_timeout from now.
func (w *respWriter) setWriteDeadline() {
	by := time.Now().Add(w.sendTimeout)
	err := w.rc.SetWriteDeadline(by)
	w.deadline = true
	if err == nil && w.rq.r.ProtoMajor != 1 {
		w.writeBy = by
	}
}

// writeFailed logs a write to an HTTP/2 stream that failed because it waited send_timeout, as nginx does;
// the stream is reset. (An HTTP/1 connection's guard sees its own write time out and logs it there.)
func (w *respWriter) writeFailed() {
	if w.timedOut || w.writeBy.IsZero() || time.Now().Before(w.writeBy) {
		return
	}
	w.timedOut = true
	w.rq.s.logSendTimeout(w.rq.r.RemoteAddr)
}

// ReadFrom lets a static file reach the connection's ReadFrom, which uses sendfile(2) on plain TCP. The file
// goes in slices so send_timeout still bounds each write rather than the whole transfer.
func (w *respWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	lr, limited := src.(*io.LimitedReader)
	if !ok || !limited || lr.N < 64<<10 || w.gz != nil || w.rate > 0 || w.sub != nil || w.cs != nil || w.gunzip != nil {
		// a small file goes out with the headers in one write; sendfile would cost a second system call
		bp := w.rq.s.fileBufs.Get().(*[]byte)
		defer w.rq.s.fileBufs.Put(bp)
		return io.CopyBuffer(writerOnly{w}, src, *bp)
	}
	const slice = 4 << 20
	var total int64
	for lr.N > 0 {
		if w.sendTimeout > 0 {
			w.setWriteDeadline() // sendfile(2) is not the socket's Write: it gets a deadline per slice
		}
		n := min(lr.N, slice)
		m, err := rf.ReadFrom(&io.LimitedReader{R: lr.R, N: n})
		lr.N -= m
		total += m
		w.bytes += m
		if err != nil {
			w.writeFailed()
			return total, err
		}
		if m < n {
			break // the file ended early
		}
	}
	return total, nil
}

// startRate sets the response's limit_rate: $limit_rate once set (by `set` or an upstream's
// X-Accel-Limit-Rate), else the location's limit_rate; and limit_rate_after.
func (w *respWriter) startRate() {
	rq := w.rq
	rate := rq.v.LimitRate
	if !rq.v.LimitRateSet {
		rate = rq.sizeOf(rq.conf.LimitRate.V, "limit_rate")
	}
	if rate <= 0 || rate >= maxRate {
		return // (a rate past any link is none; it would overflow the pacing arithmetic)
	}
	w.rate, w.rateStart = rate, rq.v.Start.Unix()
	w.rateAfter = rq.sizeOf(rq.conf.LimitRateAfter.V, "limit_rate_after")
}

// sizeOf evaluates a size directive's value (0 when unset; a value that is no size is logged and counts 0).
func (rq *request) sizeOf(t *vars.Template, name string) int64 {
	if t == nil {
		return 0
	}
	v := t.Eval(rq.v)
	n, err := vars.ParseSize(v)
	if err != nil {
		rq.log.Error(name+" \""+v+"\" is invalid", rq.v.LogAttrs()...)
		return 0
	}
	return n
}

// paced writes b at the response's limit_rate as nginx's write filter does: no more than the rate times the
// whole seconds since the request started, plus one second's worth, past limit_rate_after; after each send,
// nothing more until the rate has paid for it. Parts are at most ratePart bytes, as a socket buffer bounds
// nginx's sends, and each is flushed, so the pace is the client's. A client that leaves ends the wait.
func (w *respWriter) paced(b []byte) (int, error) {
	ctx := w.rq.r.Context()
	total := 0
	for len(b) > 0 {
		if d := time.Until(w.rateUntil); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return total, ctx.Err()
			}
		}
		limit := w.rate*(time.Now().Unix()-w.rateStart+1) - (w.bytes - w.rateAfter)
		if limit <= 0 {
			w.rateUntil = time.Now().Add(time.Duration(-limit*1000/w.rate+1) * time.Millisecond)
			continue
		}
		part := b[:min(len(b), ratePart)]
		if int64(len(part)) > limit {
			part = part[:limit]
		}
		before := w.bytes
		n, err := w.direct(part)
		total += n
		b = b[n:]
		if err != nil {
			return total, err
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		sent := max(w.bytes-w.rateAfter, 0) - max(before-w.rateAfter, 0)
		w.rateUntil = time.Now().Add(time.Duration(sent*1000/w.rate) * time.Millisecond)
	}
	return total, nil
}

// maxRate is the smallest limit_rate that counts as none (1 TiB a second).
const maxRate = 1 << 40

// ratePart is the most paced writes send at once.
const ratePart = 16 << 10

// writerOnly hides ReadFrom, so io.Copy falls back to Write.
type writerOnly struct{ io.Writer }

// Flush sends buffered data to the client (streaming, proxy_buffering off).
func (w *respWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.gz != nil {
		w.gz.Flush() // what was written so far leaves now, decodable (a sync flush)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// timedBody applies client_body_timeout: each read of the request body may wait at most d. The deadline is
// cleared at the end of the body so it cannot reach net/http's read of the next request.
type timedBody struct {
	io.ReadCloser
	rc   http.ResponseController
	d    time.Duration
	done *atomic.Bool // the handler returned: the connection's deadlines belong to net/http again
	// deadline is the pending read's deadline (UnixNano; 0 once the body is complete), for expired
	deadline atomic.Int64
}

// expired reports whether a body read was still pending when its deadline passed.
func (b *timedBody) expired() bool {
	d := b.deadline.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

func (b *timedBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, io.ErrUnexpectedEOF
	}
	dl := time.Now().Add(b.d)
	b.deadline.Store(dl.UnixNano())
	b.rc.SetReadDeadline(dl)
	n, err := b.ReadCloser.Read(p)
	if err == nil || err == io.EOF {
		b.deadline.Store(0)
	}
	if err == io.EOF && !b.done.Load() {
		// only a complete body clears the deadline: after a timeout it stays expired, so net/http's drain of
		// the rest cannot hang on a stalled client
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// Hijack hands the connection to a tunnel, without the request-framing guard: its bytes are no requests, and
// a tunnel reads a bare socket without holding a buffer while idle.
func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if g, ok := c.(*h1guard.Conn); ok {
		c = g.Unwrap()
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// addHeaders applies the Server header and add_header for a status (nginx: only for 2xx and some 3xx
// unless `always`).
func (rq *request) addHeaders(status int) {
	h := rq.w.Header()
	// shared read-only values (capacity 1: an Add appends to a copy), not a new slice per response; an
	// upstream's Server passed on by proxy_pass_header (or fastcgi_pass_header) stays, as in nginx
	if _, passed := h["Server"]; !passed {
		if rq.conf == nil || rq.conf.ServerTokens.Get(true) {
			h["Server"] = rq.s.serverHeader[1]
		} else {
			h["Server"] = rq.s.serverHeader[0]
		}
	}
	rq.corsHeaders(h)
	if rq.conf == nil {
		return
	}
	// $sent_http_NAME in add_header and expires (h5bp's maps on $sent_http_content_type) reads the head
	// being sent, as nginx's headers filter does; it was empty until the access log line.
	rq.v.ResponseHeader = h
	ok := false
	switch status {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		ok = true
	}
	if ok && rq.conf.Expires.Set {
		e := rq.conf.Expires.V
		if e.Value != nil {
			// as nginx, a value that is not an expires time (or daily with modified) sends nothing
			var err error
			if e, err = config.ParseExpires(e.Value.Eval(rq.v)); err != nil || e.Daily && rq.conf.Expires.V.Modified {
				e = config.Expires{Off: true}
			}
			e.Modified = rq.conf.Expires.V.Modified
		}
		setExpires(h, e, time.Now())
	}
	for _, ah := range rq.conf.AddHeaders.V { // the location's, or a matched `if` body's
		if !ok && !ah.Always {
			continue
		}
		v, key := ah.Value.Eval(rq.v), ah.Key
		switch key {
		case "Etag", "Last-Modified":
			// as nginx: these replace the response's own (a file's), and an empty value removes it
			if v == "" {
				delete(h, key)
			} else {
				h[key] = []string{v}
			}
		default:
			if v != "" {
				h[key] = append(h[key], v)
			}
		}
	}
}

// setExpires adds nginx's Expires and Cache-Control for the expires directive.
func setExpires(h http.Header, e config.Expires, now time.Time) {
	switch {
	case e.Off:
		return
	case e.Epoch:
		h.Set("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")
		h.Set("Cache-Control", "no-cache")
		return
	case e.Max:
		h.Set("Expires", "Thu, 31 Dec 2037 23:55:55 GMT")
		h.Set("Cache-Control", "max-age=315360000")
		return
	}
	at := now.Add(e.D)
	if e.Daily { // the next time the clock shows that time of day, as nginx's ngx_next_time (mktime)
		y, m, d := now.Date()
		sec := int(e.D / time.Second)
		at = time.Date(y, m, d, sec/3600, sec/60%60, sec%60, 0, now.Location())
		if !at.After(now) {
			at = time.Date(y, m, d+1, sec/3600, sec/60%60, sec%60, 0, now.Location())
		}
	}
	if e.Modified {
		lm, err := http.ParseTime(h.Get("Last-Modified"))
		if err != nil {
			return
		}
		at = lm.Add(e.D)
	}
	h.Set("Expires", at.UTC().Format(http.TimeFormat))
	if age := at.Unix() - now.Unix(); age < 0 || e.D < 0 { // whole seconds, as nginx's clock
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Cache-Control", "max-age="+strconv.FormatInt(age, 10))
	}
}

// special answers with an error status: the matching error_page if any (once, unless recursive_error_pages),
// otherwise nginx's built-in page.
func (rq *request) special(status int) {
	if rq.w.wroteHeader || rq.w.hijacked {
		return
	}
	if status == 444 {
		// nginx: close the connection without a response
		rq.v.Status = 444
		panic(http.ErrAbortHandler)
	}
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong, 495, 496, 497,
		http.StatusInternalServerError, http.StatusNotImplemented:
		// nginx ends the connection after these, also when an error_page answers them; HTTP/2 and HTTP/3
		// streams end alone (the header would make x/net/http2 shut the whole connection down)
		if rq.r.ProtoMajor == 1 {
			rq.w.Header().Set("Connection", "close")
		}
	}
	// nginx: a new error sets the response status afresh (r->err_status), so the `=code` of an error page whose
	// target fails does not carry over to the failure's answer
	rq.w.forceStatus = 0
	if !rq.errorPage && rq.conf != nil && len(rq.conf.ErrorPages.V) > 0 && rq.redirects <= maxRedirects {
		// nginx: without recursive_error_pages (the current location's), this is the last error page the
		// request runs; with it, the target's own error_page may run in turn, until the redirection limit
		rq.errorPage = !rq.conf.RecursiveErrorPages.V
		for _, ep := range rq.conf.ErrorPages.V {
			for _, c := range ep.Codes {
				if c == status {
					rq.runErrorPage(ep, status)
					return
				}
			}
		}
	}
	rq.defaultPage(status)
}

// runErrorPage performs an error_page: a redirect for URLs, an internal redirect for URIs and @names.
func (rq *request) runErrorPage(ep config.ErrorPage, status int) {
	target := ep.URI.Eval(rq.v)
	code := status
	if ep.Override > 0 {
		code = ep.Override
	}
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		if ep.Override <= 0 || code < 300 || code > 308 {
			code = http.StatusFound
		}
		rq.redirect(code, target)
		return
	}
	rq.w.forceStatus = code
	if ep.Override == -1 {
		rq.w.forceStatus = 0
	}
	if rq.r.Method != http.MethodHead {
		rq.r.Method = http.MethodGet
	}
	// the body was (or may have been) consumed by the failed handler; the error page must not read it
	rq.r.Body, rq.r.ContentLength = http.NoBody, 0
	if name, ok := strings.CutPrefix(target, "@"); ok {
		if l, ok := rq.srv.Matcher.Named(name); ok {
			rq.internal = true
			rq.serveLocation(l.Value)
			return
		}
		rq.defaultPage(http.StatusInternalServerError)
		return
	}
	path, args, _ := strings.Cut(target, "?")
	rq.v.URI, rq.v.Args, rq.uriChanged = path, args, true
	rq.internal = true
	rq.findAndServe()
}

// defaultPage writes nginx's built-in response for a status.
func (rq *request) defaultPage(status int) {
	h := rq.w.Header()
	for k := range h {
		if k != "Connection" && k != "Location" && k != "Www-Authenticate" && (k != "Content-Range" || status != http.StatusRequestedRangeNotSatisfiable) {
			delete(h, k)
		}
	}
	if status == http.StatusNoContent || status == http.StatusNotModified || status < 200 {
		rq.w.WriteHeader(status)
		return
	}
	body, ok := errorPage(status, rq.conf == nil || rq.conf.ServerTokens.Get(true))
	if status >= 494 && status <= 497 {
		status = http.StatusBadRequest // nginx's own codes go out as 400, with their pages
	}
	if !ok {
		// nginx has no page for this code (2xx, 418, 422, …): an empty body, typed as nginx types it for 2xx
		if status < 300 && rq.conf != nil {
			h.Set("Content-Type", rq.contentType())
		}
		h.Set("Content-Length", "0")
		rq.w.WriteHeader(status)
		return
	}
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if status == http.StatusRequestTimeout || status == 431 {
		h.Set("Connection", "close") // (special has set it for nginx's own list)
	}
	rq.w.WriteHeader(status)
	if rq.r.Method != http.MethodHead {
		rq.w.WriteString(body)
	}
}

// errorPage renders nginx's page for status; false when nginx has none (2xx, and codes such as 418 or 422:
// their answer has an empty body). tokens puts the version in the signature (server_tokens).
func errorPage(status int, tokens bool) (string, bool) {
	if !nginxPage(status) {
		return "", false
	}
	sig := "sluice"
	if tokens {
		sig += "/" + Version
	}
	title, head, detail := statusLine(status), statusLine(status), ""
	if status >= 494 && status <= 497 {
		// nginx's pages for its own codes: a 400 page, titled and explained by the reason
		head, detail = "400 Bad Request", "<center>"+strings.TrimPrefix(title, "400 ")+"</center>\r\n"
	}
	return "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + head + "</h1></center>\r\n" + detail + "<hr><center>" + sig + "</center>\r\n</body>\r\n</html>\r\n", true
}

// nginxPage reports whether nginx 1.22 has a built-in page for status (ngx_http_error_pages).
func nginxPage(status int) bool {
	switch {
	case status == 301, status == 302, status == 303, status == 307, status == 308:
		return true
	case status >= 400 && status <= 416:
		return status != 407
	case status == 421, status == 429, status >= 494 && status <= 497:
		return true
	case status >= 500 && status <= 505, status == 507:
		return true
	}
	return false
}

// statusLine is the title of nginx's page for status: its status line, except where the page says otherwise.
func statusLine(status int) string {
	switch status {
	case 302:
		return "302 Found"
	case 401:
		return "401 Authorization Required"
	case 494:
		return "400 Request Header Or Cookie Too Large" // nginx's pages for 494–497 show 400
	case 495:
		return "400 The SSL certificate error"
	case 496:
		return "400 No required SSL certificate was sent"
	case 497:
		return "400 The plain HTTP request was sent to HTTPS port"
	}
	return strconv.Itoa(status) + " " + httpsyntax.Reason(status)
}

// plainOnTLS answers a plain HTTP request on a TLS port as nginx does: 400 with its explanatory page.
func (rq *request) plainOnTLS() {
	body, _ := errorPage(497, true)
	h := rq.w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	rq.w.WriteHeader(http.StatusBadRequest)
	rq.w.WriteString(body)
	rq.log.Info("client sent plain HTTP request to HTTPS port", rq.v.LogAttrs()...)
}

// redirect answers with a redirect to target; a local target becomes absolute. (Relative redirects from an
// upstream pass unchanged, as in nginx.)
func (rq *request) redirect(code int, target string) {
	if strings.HasPrefix(target, "/") && !strings.HasPrefix(target, "//") {
		target = rq.absolute(target)
	}
	rq.w.Header().Set("Location", target)
	rq.defaultPage(code)
}

// absolute makes a local redirect target absolute as nginx's absolute_redirect and port_in_redirect do: the
// request's host name (without the client's port) and the port the connection arrived on, unless it is the
// scheme's default.
func (rq *request) absolute(target string) string {
	c := rq.conf
	if c != nil && !c.AbsoluteRedirect.Get(true) {
		return target
	}
	scheme, defPort := "http", uint16(80)
	if rq.r.TLS != nil {
		scheme, defPort = "https", 443
	}
	host := rq.v.HostName() // nginx's validated host: lower-cased, no port, no trailing dot
	if host == "" || c != nil && c.ServerNameInRedirect.Get(false) && rq.v.ServerName != "" {
		host = rq.v.ServerName
	}
	if p := rq.v.LocalAddr.Port(); p != 0 && p != defPort && (c == nil || c.PortInRedirect.Get(true)) {
		host += ":" + strconv.Itoa(int(p))
	}
	return scheme + "://" + host + target
}
