package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/netutil"
	"github.com/sluice-proxy/sluice/internal/static"
	"github.com/sluice-proxy/sluice/internal/tunnel"
	"github.com/sluice-proxy/sluice/internal/upstream"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// errNoLive: every peer of the group is down, failed or at max_conns (nginx's "no live upstreams").
var errNoLive = errors.New("no live upstreams")

// serveHTTP forwards an ordinary request through the pooled transport and streams the response back. With cc
// (proxy_cache) a failure may be answered from a stale entry, and a cacheable response is stored as it streams.
func (p *Proxy) serveHTTP(ctx context.Context, pr *Request, o *outgoing, cc *cache.Request) {
	t, out := &o.t, &o.req
	tr, err := p.transport(pr, t)
	if err != nil {
		pr.Log.Error("proxy: upstream TLS settings: "+err.Error(), pr.V.LogAttrs()...)
		pr.Error(http.StatusInternalServerError)
		return
	}
	readTimeout := pr.Conf.ProxyReadTimeout.Get(config.ProxyDefaults.ReadTimeout)
	if pr.Conf.ProxyIgnoreClientAbort.Get(false) {
		// the exchange goes on when the client leaves (nothing watches it); writing to a client that has gone
		// fails, and that ends it, as in nginx
		ctx = context.WithoutCancel(ctx)
	}
	rp := newRetryPolicy(pr, out)
	try := &o.try
	t.group.Start(try, balanceKey(pr, t))
	if pr.body != nil {
		keepBody(pr, out, try, &rp)
	}
	var at attempts
	at.follow(pr.V)
	var resp *http.Response
	var fail failure
	var hold upstream.Hold
	var last time.Time
	var chosen *upstream.Peer
	for n := 1; ; n++ {
		peer := try.Next()
		if peer == nil {
			pr.Log.Error("proxy: no live upstreams while connecting to upstream", pr.V.LogAttrs("upstream", t.group.Name)...)
			at.add(t.group.Name, "502", "-", "-", "0.000")
			err, fail = errNoLive, failError
			break
		}
		// each try has its own read timeout, armed on its connection: a timed-out try leaves the next alone
		out.URL.Host = peer.Addr
		tried := try.At()
		last = tried
		var connected time.Duration
		resp, connected, err = tr.roundTrip(ctx, out, &o.hl, readTimeout, &o.body)
		took := pr.V.UpstreamSince(tried)
		connect := "-"
		if connected >= 0 {
			connect = pr.V.UpstreamTime(connected)
		}
		status := 0
		if err == nil {
			status = resp.StatusCode
			if !rp.statusListed(status) {
				at.add(peer.Addr, httpsyntax.Status(status), connect, took, took)
				hold = try.Done(upstream.Success)
				chosen = peer
				break
			}
			fail = failStatus
		} else {
			if readTimedOut(err) {
				err = errReadTimeout
			}
			fail = classify(err)
		}
		hdr := "-"
		if err == nil {
			hdr = took
		}
		at.add(peer.Addr, statusText(pr.R.Context().Err() != nil, fail, status), connect, hdr, took)
		sent := err == nil || !isDialError(err)
		bindErr := err != nil && netutil.IsBindError(err) // (this host's error: no other peer, none blamed)
		retry := !bindErr && rp.next(ctx, try, fail, n, sent) && pr.body.readErr() == nil
		if err == nil && !retry {
			// a listed status with no peer left to try: it is the answer
			hold = try.Done(upstream.Success)
			chosen = peer
			break
		}
		if bindErr {
			try.Done(upstream.Next).End()
		} else {
			try.Done(rp.outcome(ctx, pr, fail, status)).End()
		}
		if err == nil {
			resp.Body.Close()
			resp = nil
		}
		if !retry {
			break
		}
		if err != nil {
			// at error, as nginx logs a failed try: with the default error_log level a dead peer is seen
			pr.Log.Error("proxy: upstream "+peer.Addr+" failed, trying next upstream: "+err.Error(), pr.V.LogAttrs()...)
		} else {
			pr.Log.Warn("proxy: upstream "+peer.Addr+" answered "+httpsyntax.Status(status)+", trying next upstream", pr.V.LogAttrs()...)
		}
	}
	defer hold.End()
	at.set(pr.V)
	if resp == nil {
		if berr := pr.body.readErr(); berr != nil {
			status := ClientBodyStatus(berr)
			pr.Log.Error("proxy: reading the client request body failed: "+berr.Error(), pr.V.LogAttrs()...)
			pr.Error(status)
			return
		}
		if pr.R.Context().Err() != nil {
			pr.Log.Info("proxy: client closed connection while waiting for upstream", pr.V.LogAttrs("upstream", t.group.Name)...)
			pr.V.Status = 499
			return
		}
		status := http.StatusBadGateway
		switch {
		case fail == failTimeout:
			status = http.StatusGatewayTimeout
		case netutil.IsBindError(err):
			status = http.StatusInternalServerError // proxy_bind to an address this host cannot bind: nginx's 500
		}
		if err != errNoLive {
			pr.Log.Error("proxy: upstream request failed: "+err.Error(), pr.V.LogAttrs("upstream", t.scheme+"://"+at.last()[aAddr]+t.uri)...)
		}
		if e := cc.UseStale(cacheFailure(fail), 0); e != nil {
			pr.V.UpstreamCacheStatus = cache.StatusStale
			p.serveEntry(pr, e)
			return
		}
		pr.Error(status)
		return
	}
	defer resp.Body.Close()
	pr.V.UpstreamHeader = o.body.st.header(resp)
	if cc != nil && p.answered(pr, cc, resp, o.body.st.fieldsOf(resp)) {
		return
	}

	if pr.Intercept != nil && resp.StatusCode >= 300 && pr.Intercept(resp.StatusCode) {
		pr.Error(resp.StatusCode)
		return
	}

	h := pr.W.Header()
	uf := p.copyResponseHeader(h, resp.Header, o.body.st.fieldsOf(resp), pr)
	ignore := pr.Conf.ProxyIgnoreHeaders.V
	if uf.accel && pr.Redirect != nil && ignore&config.IgnoreAccelRedirect == 0 {
		// nginx's X-Accel-Redirect: the upstream chose a file or location to serve instead; of its fields only
		// AccelKept go on to that response
		for _, f := range o.body.st.fieldsOf(resp) { // (the fields are here, or in the map, or both)
			if !slices.Contains(AccelKept, f.name) {
				delete(h, f.name)
			}
		}
		for k := range resp.Header {
			if !slices.Contains(AccelKept, k) {
				delete(h, k)
			}
		}
		resp.Body.Close()
		// the exchange with the upstream is over: its peer's connection count (max_conns, least_conn) and the
		// response time end here, not after the response the redirect ends in (a slow download)
		at.finish(pr.V, last, time.Time{})
		hold.End()
		pr.Redirect(uf.accelRedirect)
		return
	}
	if ignore&config.IgnoreAccelBuffering != 0 {
		uf.accelBuffer = ""
	}
	if uf.accelLimitRate != "" && ignore&config.IgnoreAccelLimitRate == 0 {
		AccelLimitRate(pr.V, uf.accelLimitRate)
	}
	if ignore&config.IgnoreAccelCharset == 0 {
		pr.V.AccelCharset = uf.accelCharset
	}
	setSticky(h, pr, t, chosen)
	if resp.ContentLength >= 0 && !uf.contentLength && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified && pr.R.Method != http.MethodHead {
		h["Content-Length"] = []string{itoa(resp.ContentLength)}
	}
	status, body, size := resp.StatusCode, io.Reader(resp.Body), resp.ContentLength
	if status == http.StatusOK && pr.Conf.ProxyForceRanges.V && cc == nil {
		switch st, skip, n := ForceRange(pr.R, pr.V, pr.Conf, h, resp.ContentLength); st {
		case http.StatusRequestedRangeNotSatisfiable:
			resp.Body.Close()
			pr.Error(st)
			return
		case http.StatusPartialContent:
			status, size = st, n
			if pr.R.Method != http.MethodHead {
				if _, err := io.CopyN(io.Discard, resp.Body, skip); err != nil {
					pr.Log.Error("proxy: upstream response body failed: "+err.Error(), pr.V.LogAttrs()...)
					pr.Error(http.StatusBadGateway)
					return
				}
				body = io.LimitReader(resp.Body, n) // the rest is not read: the connection is not kept
			}
		}
	}
	if cc.Storing() && status == http.StatusOK {
		// nginx's not_modified filter answers a cacheable response's conditional request (the upstream saw
		// none of the client's conditions); the body still fills the entry
		switch st := cachePrecondition(pr, h); st {
		case http.StatusPreconditionFailed:
			pr.Error(st)
			return
		case http.StatusNotModified:
			status, cc.NoBody = st, true
		}
	}
	if pr.Header != nil {
		pr.Header(status)
	}
	if status == resp.StatusCode {
		setReason(pr.W, resp)
	}
	pr.W.WriteHeader(status)

	accel := uf.accelBuffer
	flushEach := !pr.Conf.ProxyBuffering.Get(true) || accel == "no" ||
		strings.HasPrefix(uf.contentType, "text/event-stream") || resp.ContentLength == -1
	if strings.EqualFold(accel, "yes") {
		flushEach = false
	}
	buffered := (pr.Conf.ProxyBuffering.Get(true) && !strings.EqualFold(accel, "no")) || strings.EqualFold(accel, "yes")
	var spool func() *Spool // (called only for a long response: a closure that does not escape costs nothing)
	var sp *Spool           // the spool a long response took
	if buffered {
		spool = func() *Spool {
			sp = p.newSpool(&pr.Conf.ProxySpool, resp.Body, func(err error) {
				pr.Log.Error("proxy: temporary file: "+err.Error(), pr.V.LogAttrs()...)
			})
			sp.Done = hold.End
			return sp
		}
	}
	src := body
	if rate := pr.Conf.ProxyLimitRate.V; rate > 0 && pr.Conf.ProxyBuffering.Get(true) && !strings.EqualFold(accel, "no") {
		// as nginx, proxy_limit_rate applies to buffered responses only
		src = NewRateLimited(body, rate)
	}
	if cc.Storing() {
		tee := cc.Tee(src)
		if cc.HeadGet || cc.NoBody {
			_, err = io.Copy(io.Discard, tee) // the client gets the head only; the entry gets the body
		} else {
			var cacheMsg *string // a failed early commit
			sspool := spool
			if spool != nil {
				sspool = func() *Spool {
					// the entry is committed once the upstream's part is in, not once a slow client has it
					sp := spool()
					cacheMsg = CommitEarly(sp, cc, tee)
					return sp
				}
			}
			_, err = p.stream(pr.W, tee, flushEach, size, sspool)
			if cacheMsg != nil && *cacheMsg != "" {
				pr.Log.Error("proxy: cache: "+*cacheMsg, pr.V.LogAttrs()...)
			}
		}
		cc.End(tee, err, func(msg string) { pr.Log.Error("proxy: cache: "+msg, pr.V.LogAttrs()...) })
	} else if !(cc != nil && cc.HeadGet) {
		_, err = p.stream(pr.W, src, flushEach, size, spool)
	}
	var upEnd time.Time
	if sp != nil {
		upEnd = sp.Ended
	}
	at.finish(pr.V, last, upEnd)
	if err != nil && !errors.Is(err, io.EOF) {
		if readTimedOut(err) {
			err = errReadTimeout
		}
		pr.Log.Error("proxy: upstream response body failed: "+err.Error(), pr.V.LogAttrs("upstream", t.scheme+"://"+pr.V.UpstreamAddr+t.uri)...)
		// the client must not take a truncated body for a whole one: abort the connection/stream
		panic(http.ErrAbortHandler)
	}
}

// ForceRange is nginx's range filter on an upstream's 200 under proxy_force_ranges (or fastcgi_force_ranges,
// uwsgi_force_ranges; the upstream's Accept-Ranges is not passed) for the client's request r: 206 with the Content-Range and Content-Length set in h, the body bytes to skip and to send;
// 416 with Content-Range set, for the error page; 0 for the whole body, with Accept-Ranges: bytes. A body of
// unknown length, or one the gzip filter will compress, is sent whole (nginx's range filter sees no length).
func ForceRange(r *http.Request, v *vars.Request, c *config.LocConf, h http.Header, length int64) (status int, skip, n int64) {
	delete(h, "Accept-Ranges")
	if length < 0 {
		return 0, 0, 0
	}
	// a body a filter will change (gzip, gunzip, sub_filter, a charset recoding) is sent whole, as nginx's
	// range filter, which runs after them, sees no length
	ctype := httpsyntax.FirstOf(h["Content-Type"])
	switch {
	case c.GzipFilter != nil && c.GzipFilter.Compressible(http.StatusOK, h) && c.GzipFilter.Accepts(r, h),
		c.GunzipFilter != nil && c.GunzipFilter.Inflates(r, h),
		c.SubFilter != nil && c.SubFilter.Takes(ctype, length),
		c.Charset != nil && c.Charset.Lengthens(ctype, v):
		return 0, 0, 0
	}
	start, end, st, ok := static.ForcedRange(r.Header, length, httpsyntax.FirstOf(h["Etag"]), httpsyntax.FirstOf(h["Last-Modified"]))
	switch {
	case !ok:
		h["Accept-Ranges"] = []string{"bytes"}
		return 0, 0, 0
	case st == http.StatusRequestedRangeNotSatisfiable:
		h["Content-Range"] = []string{"bytes */" + itoa(length)}
		return st, 0, 0
	}
	h["Content-Range"] = []string{static.ContentRange(start, end, length)}
	h["Content-Length"] = []string{itoa(end - start)}
	return st, start, end - start
}

// readTimedOut reports a read from the upstream that hit its deadline (proxy_read_timeout); a write that hit
// proxy_send_timeout is not one.
func readTimedOut(err error) bool {
	var oe *net.OpError
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &oe) && oe.Op == "read"
}

// Ready is a response body that can tell whether more of it can be read without waiting for the upstream
// (fastcgi's records); Stream flushes when nothing more is ready.
type Ready interface{ Ready() bool }

// Stream copies an upstream response body to the client through buf: the one copy loop of the proxy and
// fastcgi handlers. It flushes after every read when flushEach, and otherwise whenever the upstream has
// nothing more ready: body's Ready when it has one, else a read shorter than buf. Once size bytes (the
// upstream's Content-Length, -1 unknown) are copied the response is complete and is not flushed here: the
// server sends it when the handler returns, in the same write. A client gone away ends the copy without an
// error; a failed read returns its error (io.EOF is the end, not an error). With spool, a response longer
// than spoolAfter is read ahead of the client (see Spool).
func Stream(w http.ResponseWriter, body io.Reader, buf []byte, flushEach bool, size int64, spool func() *Spool) (int64, error) {
	ready, _ := body.(Ready)
	var total int64
	for {
		if spool != nil && total >= spoolAfter {
			// a response bigger than the socket buffers take at once: the upstream need not wait for the client
			return spool().copy(w, body, buf, flushEach, total, size)
		}
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, nil // client went away; nothing to report upstream-side
			}
			total += int64(n)
			more := n == len(buf)
			if ready != nil {
				more = err == nil && ready.Ready()
			}
			if (flushEach || !more) && total != size {
				if ferr := Flush(w); ferr != nil {
					return total, nil
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return total, nil
			}
			return total, err
		}
	}
}

// stream is Stream through one of p's pooled buffers; an upstream body the transport holds whole already is
// written from there.
func (p *Proxy) stream(w http.ResponseWriter, r io.Reader, flushEach bool, size int64, spool func() *Spool) (int64, error) {
	if b, ok := r.(*body); ok {
		if n, done, _ := b.writeBuffered(w); done {
			return int64(n), nil // all of it: nothing to flush before the response ends (a write error: the client went away)
		}
	}
	bp := p.copyBufs.Get().(*[]byte)
	defer p.copyBufs.Put(bp)
	return Stream(w, r, *bp, flushEach, size, spool)
}

// newSpool is the Spool of a buffered response read from r under c, its memory buffers p's copy buffers;
// fileErr reports a temporary file that failed.
func (p *Proxy) newSpool(c *config.Spooling, r io.Reader, fileErr func(error)) *Spool {
	sp := &Spool{Mem: c.Mem(), MaxFile: c.MaxFile(), Dir: c.Dir(), Bufs: &p.copyBufs, FileError: fileErr}
	if b, ok := r.(*body); ok {
		sp.Interrupt = b.interrupt
	}
	return sp
}

// timedBody restarts a timer after every read from r (the timer bounds each read).
type timedBody struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.timer.Reset(b.d)
	return n, err
}

// rateLimited reads at most rate bytes a second on average (proxy_limit_rate): each read waits until the
// bytes read before it are due, so the response streams at the rate, in pieces of a tenth of a second's worth
// (nginx reads a buffer, then waits for as long as its bytes take at the rate).
type rateLimited struct {
	r     io.Reader
	rate  float64 // bytes per second
	chunk int     // most bytes one read takes
	n     int64   // bytes read
	start time.Time
}

// NewRateLimited reads r at rate bytes per second at most (proxy_limit_rate, fastcgi_limit_rate).
func NewRateLimited(r io.Reader, rate int64) io.Reader {
	return &rateLimited{r: r, rate: float64(rate), chunk: int(min(max(rate/10, 1<<10), 32<<10)), start: time.Now()}
}

func (l *rateLimited) Read(p []byte) (int, error) {
	if wait := time.Until(l.start.Add(time.Duration(float64(l.n) / l.rate * float64(time.Second)))); wait > 0 {
		time.Sleep(wait)
	}
	if len(p) > l.chunk {
		p = p[:l.chunk]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// Flush is http.ResponseController's Flush without allocating the controller (one per response otherwise).
func Flush(w http.ResponseWriter) error {
	for {
		switch f := w.(type) {
		case interface{ FlushError() error }:
			return f.FlushError()
		case http.Flusher:
			f.Flush()
			return nil
		case interface{ Unwrap() http.ResponseWriter }:
			w = f.Unwrap()
		default:
			return http.ErrNotSupported
		}
	}
}

// upstreamFields are the fields of an upstream response that the proxy reads after copying them, noted by
// copyResponseHeader's walk over them (a lookup each cost as much as copying a field).
type upstreamFields struct {
	contentLength            bool   // the upstream sent a Content-Length
	contentType, accelBuffer string // Content-Type, X-Accel-Buffering ("" when absent)
	accelRedirect            string // X-Accel-Redirect
	accel                    bool   // the upstream sent X-Accel-Redirect (empty or not)
	accelLimitRate           string // X-Accel-Limit-Rate
	accelCharset             string // X-Accel-Charset
}

// copyResponseHeader copies upstream response headers minus hop-by-hop and hidden ones, applying proxy_redirect.
// list, when not nil, holds src's fields in the order they came (respStore.fieldsOf), walked instead of src.
func (p *Proxy) copyResponseHeader(dst, src http.Header, list []field, pr *Request) upstreamFields {
	// filtered while copying (no clone of the upstream's map: this runs for every response)
	c := respCopy{dst: dst, pass: pr.Conf.ProxyPassHeaders.V, hide: pr.Conf.ProxyHideHeaders.V}
	had := len(dst) > 0 // fields set before (the Location to rewrite may be one of them)
	if list != nil {
		// the Connection values are needed before the walk (a field it names may come first); found in the
		// short list, not looked up in the map (about 140 instructions)
		for _, f := range list {
			if f.name == "Connection" {
				c.conn = f.vals
				break
			}
		}
		for _, f := range list {
			c.field(f.name, f.vals)
		}
	} else {
		c.conn = src["Connection"]
		for k, v := range src {
			c.field(k, v)
		}
	}
	loc, ref := c.loc, c.ref
	if !c.contentType {
		dst["Content-Type"] = nil // as nginx: no type invented (net/http would sniff one, e.g. text/html)
	}
	rewriteCookies(dst, pr)
	if had {
		loc, ref = dst["Location"], dst["Refresh"]
	}
	if l := httpsyntax.FirstOf(loc); l != "" {
		dst["Location"] = []string{p.redirect(pr, l)}
	}
	if r := httpsyntax.FirstOf(ref); r != "" {
		r, _ = p.rewriteRedirect(pr, r) // (nginx makes only Location absolute)
		dst["Refresh"] = []string{r}
	}
	return c.uf
}

// respCopy is copyResponseHeader's walk over the upstream's fields: the filter and what it notes on the way.
type respCopy struct {
	dst              http.Header
	pass, hide, conn []string
	uf               upstreamFields
	loc, ref         []string
	contentType      bool
}

// field copies one upstream field k: v unless it is hop-by-hop, named by Connection, or hidden.
func (c *respCopy) field(k string, v []string) {
	switch k {
	case "Content-Length":
		c.uf.contentLength = len(v) > 0 && v[0] != ""
	case "Content-Type":
		c.uf.contentType = httpsyntax.FirstOf(v)
	case "X-Accel-Buffering":
		c.uf.accelBuffer = httpsyntax.FirstOf(v)
	case "X-Accel-Redirect":
		c.uf.accelRedirect, c.uf.accel = httpsyntax.FirstOf(v), true
	case "X-Accel-Limit-Rate":
		c.uf.accelLimitRate = httpsyntax.FirstOf(v)
	case "X-Accel-Charset":
		c.uf.accelCharset = httpsyntax.FirstOf(v)
	}
	if isHop(k) || namedIn(c.conn, k) || httpsyntax.ContainsFold(c.hide, k) || (hiddenDefault(k) && !httpsyntax.ContainsFold(c.pass, k)) {
		return
	}
	c.dst[k] = v
	switch k {
	case "Content-Type":
		c.contentType = true
	case "Location":
		c.loc = v
	case "Refresh":
		c.ref = v
	}
}

// redirect applies proxy_redirect to a Location/Refresh value.
func (p *Proxy) redirect(pr *Request, v string) string {
	out, ok := p.rewriteRedirect(pr, v)
	if ok && strings.HasPrefix(out, "/") && !strings.HasPrefix(out, "//") && pr.Absolute != nil {
		out = pr.Absolute(out)
	}
	return out
}

// evalCaptures evaluates t with the captures m of re in place of the request's ($1 is re's).
func evalCaptures(pr *Request, t *vars.Template, m []string, re *regexp.Regexp) string {
	caps, names := pr.V.Captures, pr.V.CaptureNames
	pr.V.Captures, pr.V.CaptureNames = m, re.SubexpNames()
	out := t.Eval(pr.V)
	pr.V.Captures, pr.V.CaptureNames = caps, names
	return out
}

// rewriteCookies applies proxy_cookie_domain, proxy_cookie_path and proxy_cookie_flags to the upstream's
// Set-Cookie values (a new slice: the values may be the upstream response's).
func rewriteCookies(h http.Header, pr *Request) {
	c := pr.Conf
	if len(c.ProxyCookieDomain.V) == 0 && len(c.ProxyCookiePath.V) == 0 && len(c.ProxyCookieFlags.V) == 0 {
		return // (no map lookup per response without rules)
	}
	sc := h["Set-Cookie"]
	if len(sc) == 0 {
		return
	}
	out := make([]string, len(sc))
	for i, v := range sc {
		out[i] = rewriteCookie(v, pr)
	}
	h["Set-Cookie"] = out
}

// cookieAttr is one attribute of a Set-Cookie value (the first is the cookie's name and value); del marks one
// proxy_cookie_flags removed, hasVal one written with "=".
type cookieAttr struct {
	key, val    string
	hasVal, del bool
}

// rewriteCookie rewrites one Set-Cookie value as nginx does: split at ";" into attributes (spaces around
// names and values trimmed), every domain attribute matched without case (a leading dot kept aside), every
// path by prefix, a regex rule replacing the whole value; the first proxy_cookie_flags rule whose cookie
// matches edits the flags. When a rule applied, the value is written again with "; " between the attributes;
// otherwise it is returned as it came. A value whose first part has no "=" is not a cookie and stays.
func rewriteCookie(v string, pr *Request) string {
	var arr [8]cookieAttr
	attrs := parseCookie(v, arr[:0])
	if !attrs[0].hasVal {
		return v
	}
	c := pr.Conf
	domains, paths := c.ProxyCookieDomain.V, c.ProxyCookiePath.V
	changed := false
	for i := 1; i < len(attrs); i++ {
		a := &attrs[i]
		switch {
		case !a.hasVal:
		case len(domains) > 0 && strings.EqualFold(a.key, "domain"):
			dot, val := "", a.val
			if strings.HasPrefix(val, ".") {
				dot, val = ".", val[1:]
			}
			if nv, hit := cookieRule(val, domains, pr, true); hit {
				a.val, changed = dot+nv, true
			}
		case len(paths) > 0 && strings.EqualFold(a.key, "path"):
			if nv, hit := cookieRule(a.val, paths, pr, false); hit {
				a.val, changed = nv, true
			}
		}
	}
	if len(c.ProxyCookieFlags.V) > 0 {
		if f := cookieFlagsFor(attrs[0].key, c.ProxyCookieFlags.V, pr); f != 0 {
			attrs, changed = editCookieFlags(attrs, f), true
		}
	}
	if !changed {
		return v
	}
	var b strings.Builder
	for i, a := range attrs {
		if a.del {
			continue
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.key)
		if a.hasVal {
			b.WriteByte('=')
			b.WriteString(a.val)
		}
	}
	return b.String()
}

// parseCookie splits a Set-Cookie value into its attributes, appended to attrs.
func parseCookie(v string, attrs []cookieAttr) []cookieAttr {
	for {
		part, rest, more := strings.Cut(v, ";")
		k, val, hasVal := strings.Cut(part, "=")
		attrs = append(attrs, cookieAttr{key: strings.Trim(k, " "), val: strings.Trim(val, " "), hasVal: hasVal})
		if !more {
			return attrs
		}
		v = rest
	}
}

// cookieFlagsFor returns the flags of the first proxy_cookie_flags rule whose cookie matches name (without
// case), 0 when none does; flags from variables with an unknown value count for nothing.
func cookieFlagsFor(name string, rules []config.CookieFlags, pr *Request) config.CookieFlag {
	for i := range rules {
		r := &rules[i]
		switch m := &r.Cookie; {
		case m.FromRe != nil:
			if !m.FromRe.MatchString(name) {
				continue
			}
		case m.FromT != nil:
			if !strings.EqualFold(m.FromT.Eval(pr.V), name) {
				continue
			}
		case !strings.EqualFold(m.From, name):
			continue
		}
		f := r.Flags
		for _, t := range r.Vars {
			f |= config.ParseCookieFlag(t.Eval(pr.V))
		}
		return f
	}
	return 0
}

// editCookieFlags applies flags to a cookie's attributes as nginx's proxy_cookie_flags: an attribute present
// is kept (a SameSite of another value is replaced) or removed; a flag to add that is absent is appended as
// Secure, HttpOnly or SameSite=Strict|Lax|None.
func editCookieFlags(attrs []cookieAttr, f config.CookieFlag) []cookieAttr {
	sameSite := ""
	switch {
	case f&config.CookieSameSiteStrict != 0:
		sameSite = "Strict"
	case f&config.CookieSameSiteLax != 0:
		sameSite = "Lax"
	case f&config.CookieSameSiteNone != 0:
		sameSite = "None"
	}
	secure, httpOnly := f&config.CookieSecure != 0, f&config.CookieHTTPOnly != 0
	for i := 1; i < len(attrs); i++ {
		a := &attrs[i]
		switch {
		case strings.EqualFold(a.key, "secure"):
			a.del = !secure && f&config.CookieNoSecure != 0
			secure = false
		case strings.EqualFold(a.key, "httponly"):
			a.del = !httpOnly && f&config.CookieNoHTTPOnly != 0
			httpOnly = false
		case strings.EqualFold(a.key, "samesite"):
			switch {
			case sameSite != "":
				if !a.hasVal || !strings.EqualFold(a.val, sameSite) {
					*a = cookieAttr{key: "SameSite", val: sameSite, hasVal: true}
				}
				sameSite = ""
			case f&config.CookieNoSameSite != 0:
				a.del = true
			}
		}
	}
	if secure {
		attrs = append(attrs, cookieAttr{key: "Secure"})
	}
	if httpOnly {
		attrs = append(attrs, cookieAttr{key: "HttpOnly"})
	}
	if sameSite != "" {
		attrs = append(attrs, cookieAttr{key: "SameSite", val: sameSite, hasVal: true})
	}
	return attrs
}

// cookieRule applies the first rule of rules that matches v.
func cookieRule(v string, rules []config.CookieRewrite, pr *Request, domain bool) (string, bool) {
	for _, r := range rules {
		if r.FromRe != nil {
			if m := r.FromRe.FindStringSubmatch(v); m != nil {
				return evalCaptures(pr, r.To, m, r.FromRe), true
			}
			continue
		}
		from := r.From
		if r.FromT != nil {
			from = r.FromT.Eval(pr.V)
		}
		switch {
		case domain && strings.EqualFold(v, from):
			return r.To.Eval(pr.V), true
		case !domain && from != "" && strings.HasPrefix(v, from):
			return r.To.Eval(pr.V) + v[len(from):], true
		}
	}
	return v, false
}

// rewriteRedirect applies the first proxy_redirect rule that matches v; false when none did.
func (p *Proxy) rewriteRedirect(pr *Request, v string) (string, bool) {
	rules := pr.Conf.ProxyRedirect
	if rules.Set && len(rules.V) == 0 {
		return v, false // off
	}
	list := rules.V
	if !rules.Set {
		list = []config.Redirect{{Default: true}}
	}
	for _, r := range list {
		switch {
		case r.Default:
			pp := pr.Conf.Proxy
			if pp == nil || pp.Template != nil || pr.Loc == nil {
				continue
			}
			uri := "/"
			if pp.HasURI {
				uri = pp.URI
			}
			from := pp.Scheme + "://" + pp.Host + uri
			if strings.HasPrefix(v, from) {
				to := pr.Loc.Pattern
				if !pp.HasURI {
					to = "/"
				}
				return to + v[len(from):], true
			}
		case r.FromRe != nil:
			// the replacement takes the regex's captures ($1), and replaces the whole value, as in nginx
			if m := r.FromRe.FindStringSubmatch(v); m != nil {
				return evalCaptures(pr, r.To, m, r.FromRe), true
			}
		default:
			from := r.From
			if r.FromT != nil {
				from = r.FromT.Eval(pr.V) // variables in the "from" part ($proxy_host)
			}
			if from != "" && strings.HasPrefix(v, from) {
				return r.To.Eval(pr.V) + v[len(from):], true
			}
		}
	}
	return v, false
}

// serveUpgrade dials the upstream, forwards the upgrade request, and opens a tunnel only when the upstream
// answered a valid 101; any other answer is relayed as a normal response and the client connection stays HTTP.
func (p *Proxy) serveUpgrade(ctx context.Context, pr *Request, t *target, out *http.Request) {
	c := pr.Conf
	connectTimeout := c.ProxyConnectTimeout.Get(config.ProxyDefaults.ConnectTimeout)
	readTimeout := c.ProxyReadTimeout.Get(config.ProxyDefaults.ReadTimeout)
	rp := newRetryPolicy(pr, out)
	try := t.group.Begin(balanceKey(pr, t))
	var at attempts
	at.follow(pr.V)
	var conn net.Conn
	var br *bufio.Reader
	var resp *http.Response
	var err error
	var peer *upstream.Peer
	start := time.Now()
	for n := 1; ; n++ {
		if peer = try.Next(); peer == nil {
			pr.Log.Error("proxy: no live upstreams while connecting to upstream", pr.V.LogAttrs("upstream", t.group.Name)...)
			at.add(t.group.Name, "502", "-", "-", "0.000")
			at.set(pr.V)
			pr.Error(http.StatusBadGateway)
			return
		}
		tried := try.At()
		var connected time.Duration
		conn, br, resp, connected, err = p.handshake(ctx, pr, t, out, peer.Addr, connectTimeout, readTimeout)
		took := pr.V.UpstreamSince(tried)
		fail, status := failStatus, 0
		if err == nil {
			status = resp.StatusCode
			if status == http.StatusSwitchingProtocols || !rp.statusListed(status) {
				at.add(peer.Addr, httpsyntax.Status(status), pr.V.UpstreamTime(connected), took, took)
				break
			}
		} else {
			fail = classify(err)
		}
		hdr := "-"
		if err == nil {
			hdr = took
		}
		connect := "-"
		if connected > 0 {
			connect = pr.V.UpstreamTime(connected)
		}
		at.add(peer.Addr, statusText(pr.R.Context().Err() != nil, fail, status), connect, hdr, took)
		bindErr := err != nil && netutil.IsBindError(err) // (this host's error: no other peer, none blamed)
		retry := !bindErr && rp.next(ctx, try, fail, n, connected > 0)
		if err == nil && !retry {
			break // a listed status with no peer left: it is the answer
		}
		if bindErr {
			try.Done(upstream.Next).End()
		} else {
			try.Done(rp.outcome(ctx, pr, fail, status)).End()
		}
		if err == nil {
			resp.Body.Close()
			conn.Close()
		}
		if !retry {
			at.set(pr.V)
			pr.Log.Error("proxy: upgrade to upstream failed: "+err.Error(), pr.V.LogAttrs("upstream", peer.Addr)...)
			if pr.R.Context().Err() != nil {
				pr.V.Status = 499
				return
			}
			status := http.StatusBadGateway
			switch {
			case fail == failTimeout:
				status = http.StatusGatewayTimeout
			case bindErr:
				status = http.StatusInternalServerError
			}
			pr.Error(status)
			return
		}
		if err != nil {
			pr.Log.Error("proxy: upstream "+peer.Addr+" failed, trying next upstream: "+err.Error(), pr.V.LogAttrs()...)
		} else {
			pr.Log.Warn("proxy: upstream "+peer.Addr+" answered "+httpsyntax.Status(status)+", trying next upstream", pr.V.LogAttrs()...)
		}
	}
	// the peer's connection count is held for the tunnel's whole life (least_conn counts open WebSockets)
	hold := try.Done(upstream.Success)
	at.set(pr.V)
	pr.V.UpstreamHeader = resp.Header
	addrs := []string{peer.Addr}

	if resp.StatusCode != http.StatusSwitchingProtocols {
		// a refusal: relay it as an ordinary response; the client connection goes on as HTTP
		defer hold.End()
		defer conn.Close()
		defer resp.Body.Close()
		h := pr.W.Header()
		p.copyResponseHeader(h, resp.Header, nil, pr)
		setSticky(h, pr, t, peer)
		if resp.ContentLength >= 0 {
			h.Set("Content-Length", itoa(resp.ContentLength))
		}
		if pr.Header != nil {
			pr.Header(resp.StatusCode)
		}
		setReason(pr.W, resp)
		pr.W.WriteHeader(resp.StatusCode)
		conn.SetDeadline(time.Time{}) // the timer below bounds each read instead
		timer := time.AfterFunc(readTimeout, func() { conn.Close() })
		defer timer.Stop()
		if _, err := p.stream(pr.W, &timedBody{resp.Body, timer, readTimeout}, true, resp.ContentLength, nil); err != nil {
			pr.Log.Error("proxy: upstream response body failed: "+err.Error(), pr.V.LogAttrs()...)
			panic(http.ErrAbortHandler) // never present a cut-off body as complete
		}
		return
	}
	tunnelled := false
	defer func() {
		if !tunnelled {
			hold.End()
		}
	}()
	if err := tunnel.CheckResponse(out.Header, resp); err != nil {
		conn.Close()
		pr.Log.Error("proxy: upstream's 101 rejected: "+err.Error(), pr.V.LogAttrs("upstream", "http://"+pr.V.UpstreamAddr+t.uri)...)
		pr.V.UpstreamStatus = "101"
		pr.Error(http.StatusBadGateway)
		return
	}
	conn.SetDeadline(time.Time{})
	if _, ok := ExtendedConnect(pr.R); ok {
		p.serveStreamTunnel(pr, t, conn, resp, peekAll(br), start, addrs[len(addrs)-1])
		return
	}

	hj, ok := pr.W.(http.Hijacker)
	if !ok {
		conn.Close()
		pr.Error(http.StatusInternalServerError)
		return
	}
	client, brw, err := hj.Hijack()
	if err != nil {
		conn.Close()
		pr.Log.Error("proxy: hijack failed: "+err.Error(), pr.V.LogAttrs()...)
		return
	}
	client.SetDeadline(time.Time{})

	// the 101 goes to the client as the upstream sent it, minus what the configuration hides
	hdr := resp.Header.Clone()
	for _, name := range pr.Conf.ProxyHideHeaders.V {
		hdr.Del(name)
	}
	for _, name := range hiddenByDefault {
		if !httpsyntax.ContainsFold(pr.Conf.ProxyPassHeaders.V, name) {
			hdr.Del(name)
		}
	}
	hdr.Set("Connection", "upgrade")
	hdr.Set("Upgrade", resp.Header.Get("Upgrade"))
	setSticky(hdr, pr, t, peer)
	if pr.Header != nil {
		// add_header applies to the 101 only with always; let the server decide on the writer's header map
		rw := pr.W.Header()
		for k, v := range rw {
			if _, exists := hdr[k]; !exists {
				hdr[k] = v
			}
		}
	}
	bw := &countingWriter{w: brw.Writer}
	bw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	hdr.Write(bw)
	bw.WriteString("\r\n")
	head := bw.n // for $bytes_sent: the head and what the tunnel relays to the client, as nginx counts them
	if err := brw.Writer.Flush(); err != nil {
		client.Close()
		conn.Close()
		return
	}
	pr.V.Status = http.StatusSwitchingProtocols

	clientBuffered := peekAll(brw.Reader)
	upstreamBuffered := peekAll(br)

	idle := c.ProxyTunnelTimeout.Get(config.ProxyDefaults.TunnelTimeout)
	if c.ProxyReadTimeout.Set && c.ProxyReadTimeout.V < idle {
		idle = c.ProxyReadTimeout.V
	}
	tctx, done := p.Tracker.Track(context.Background(), tunnel.Meta{Location: pr.Loc.Name(), Upstream: upstreamName(t), Peer: addrs[len(addrs)-1]})
	v, log, target := pr.V, pr.Log, "http://"+pr.V.UpstreamAddr+t.uri
	run := func(finished func()) {
		tunnel.Start(tctx, client, conn, clientBuffered, upstreamBuffered, tunnel.Options{IdleTimeout: idle, Pool: p.bufs, Poller: p.poller}, func(stats tunnel.Stats) {
			done()
			hold.End()
			v.BodyBytesSent = stats.UpstreamToClient
			v.BytesSent = head + stats.UpstreamToClient
			v.UpstreamResponseTime = v.UpstreamSince(start)
			log.Info("proxy: tunnel closed: "+stats.Reason, v.LogAttrs("upstream", target)...)
			finished()
		})
	}
	tunnelled = true
	if pr.Detach != nil {
		pr.Detach(run)
		return
	}
	closed := make(chan struct{})
	run(func() { close(closed) })
	<-closed
}

// tunnelKeepAlive is the TCP keep-alive period of a tunnel's upstream connection (Go's net.Dialer default is
// 15 s; sluice's was 30 s for every upstream connection).
const tunnelKeepAlive = 30 * time.Second

// handshake connects to addr and exchanges the upgrade request for the upstream's response head. connected
// is how long connecting took (0 when it failed: nothing was sent).
func (p *Proxy) handshake(ctx context.Context, pr *Request, t *target, out *http.Request, addr string, connectTimeout, readTimeout time.Duration) (conn net.Conn, br *bufio.Reader, resp *http.Response, connected time.Duration, err error) {
	start := time.Now()
	d := net.Dialer{Timeout: connectTimeout, KeepAlive: tunnelKeepAlive}
	if a := bindAddr(pr); a != nil {
		d.LocalAddr = a
	}
	conn, err = dialPeer(ctx, addr, d)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	connected = max(time.Since(start), time.Microsecond)
	if t.scheme == "https" {
		// the pool's TLS settings, so that a tunnel resumes the sessions of the location's requests
		tr, terr := p.transport(pr, t)
		if terr != nil {
			conn.Close()
			return nil, nil, nil, connected, terr
		}
		conn = tls.Client(conn, tr.TLS)
	}
	conn.SetDeadline(time.Now().Add(readTimeout))
	out.URL.Host = addr
	if err := out.Write(conn); err != nil {
		conn.Close()
		return nil, nil, nil, connected, err
	}
	br = bufio.NewReaderSize(conn, 4096)
	resp, err = http.ReadResponse(br, out)
	if err != nil {
		conn.Close()
		return nil, nil, nil, connected, err
	}
	return conn, br, resp, connected, nil
}

func upstreamName(t *target) string {
	if t.upstream != nil {
		return t.upstream.Name
	}
	return t.host
}

// peekAll returns a copy of what a reader has buffered.
func peekAll(br *bufio.Reader) []byte {
	n := br.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := br.Peek(n)
	return append([]byte(nil), b...)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// keepBody keeps a request body of at most client_body_buffer_size while it is sent, when a retry could use it
// (a chunked body: while it stays within the limit), and lets the retry policy hand the next try a copy.
func keepBody(pr *Request, out *http.Request, try *upstream.Try, rp *retryPolicy) {
	limit := pr.Conf.ClientBodyBufferSize.Get(config.ClientBodyBufferDefault)
	if out.ContentLength > limit || try.Left() <= 1 || !rp.mayResend() {
		return
	}
	pr.body.keepUpTo(int(limit))
	rp.rewind = func() bool {
		rc, ok := pr.body.rewind()
		if ok {
			out.Body = rc
		}
		return ok
	}
}

// setReason relays the upstream's reason phrase to an HTTP/1 client, as nginx relays the upstream's status
// line ("302 Found" stays "302 Found"); one holding a control byte is not relayed.
func setReason(w http.ResponseWriter, resp *http.Response) {
	rs, ok := w.(interface{ SetReason(string) })
	if !ok || len(resp.Status) < 5 {
		return
	}
	if r := resp.Status[4:]; httpsyntax.Value(r) {
		rs.SetReason(r)
	}
}

// countingWriter counts what goes through it to a buffered writer.
type countingWriter struct {
	w *bufio.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) WriteString(s string) (int, error) {
	n, err := c.w.WriteString(s)
	c.n += int64(n)
	return n, err
}
