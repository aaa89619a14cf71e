package fastcgi

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/netutil"
	"github.com/sluice-proxy/sluice/internal/proxy"
	"github.com/sluice-proxy/sluice/internal/static"
	"github.com/sluice-proxy/sluice/internal/upstream"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// Handler is the fastcgi_pass, uwsgi_pass and scgi_pass content handler; it outlives requests (it holds the
// FastCGI connection pool). They differ only in the wire protocol, the Transport a request's gateway uses.
type Handler struct {
	Client *Client
	UWSGI  *UWSGIClient
	SCGI   *SCGIClient
	Log    *slog.Logger
	// TempDir holds spooled chunked request bodies ("" = the system's temporary directory).
	TempDir string

	// Upstreams holds the upstream groups (balancing, passive health) shared with proxy_pass.
	Upstreams *upstream.Set

	bufs      sync.Pool // response body copy buffers
	paramBufs sync.Pool // *paramBuf
}

// paramBuf holds a request's encoded PARAMS and the scratch space for evaluating one value, reused across
// requests (each keeps what it grew to).
type paramBuf struct{ enc, tmp []byte }

// NewHandler returns a handler with a connection pool sized for php-fpm.
func NewHandler(log *slog.Logger) *Handler {
	h := &Handler{Client: &Client{MaxIdle: 32, IdleTimeout: 10 * time.Second}, UWSGI: &UWSGIClient{}, SCGI: &SCGIClient{}, Log: log}
	h.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	h.paramBufs.New = func() any { return &paramBuf{enc: make([]byte, 0, 2048), tmp: make([]byte, 0, 256)} }
	return h
}

// Request is one request to pass to the application.
type Request struct {
	W    http.ResponseWriter
	R    *http.Request
	V    *vars.Request
	Conf *config.LocConf
	// Error produces the special response for status (error_page or the default page).
	Error func(status int)
	// Intercept reports whether a status from the application should be replaced by an error page.
	Intercept func(status int) bool
	// Redirect performs an internal redirect (X-Accel-Redirect from the application).
	Redirect func(target string)
	Log      *slog.Logger
	// Cache is the zone of the location's fastcgi_cache; nil without one.
	Cache *cache.Zone
	// CacheBG is the request's part in *_cache_background_update (cache.Background).
	CacheBG cache.Background

	cr *cache.Request // this request's use of Cache, once it goes to the application
	gw gateway
}

// Transport runs one call on an application's address and reads the response header: the FastCGI Client or
// the UWSGIClient or the SCGIClient.
type Transport interface {
	Do(ctx context.Context, t Target, call *Call) (*Response, error)
}

// gateway is what a request's protocol decides: its directives (fastcgi_*, uwsgi_* or scgi_*), its pass, the transport
// and how parameters are encoded.
type gateway struct {
	name string // "fastcgi", "uwsgi" or "scgi": log lines and the scheme of their upstream
	opts *config.Gateway
	pass *config.GatewayPass
	tr   Transport
	pl   paramEnc
}

// gateway picks the protocol of the location's handler.
func (h *Handler) gateway(c *config.LocConf) gateway {
	switch c.Handler {
	case config.HandlerUWSGI:
		return gateway{name: "uwsgi", opts: &c.UWSGIOpts, pass: c.UWSGI, tr: h.UWSGI, pl: uwsgiEnc}
	case config.HandlerSCGI:
		return gateway{name: "scgi", opts: &c.SCGIOpts, pass: c.SCGI, tr: h.SCGI, pl: scgiEnc}
	}
	return gateway{name: "fastcgi", opts: &c.FastCGIOpts, pass: c.FastCGI, tr: h.Client, pl: fcgiEnc}
}

// hiddenByDefault are response headers nginx's fastcgi module does not pass unless fastcgi_pass_header names
// them (Status is consumed as the response status).
var hiddenByDefault = []string{"Status", "X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset"}

// Serve runs the request through the application and streams its answer to the client. With fastcgi_cache a
// fresh entry answers instead, and a cacheable answer is stored as it streams (cache.Request).
func (h *Handler) Serve(ctx context.Context, fr *Request) {
	c, v := fr.Conf, fr.V
	fr.gw = h.gateway(c)
	g := fr.gw.opts
	if fr.gw.name == "fastcgi" {
		h.scriptName(fr)
	}
	if fr.Cache != nil {
		cr, hit := cache.Begin(ctx, fr.Cache, g.CacheConf, v, fr.R, fr.CacheBG)
		if cr != nil {
			defer cr.Finish()
			if hit != nil {
				h.serveEntry(fr, hit)
				return
			}
			fr.cr = cr
		}
	}

	// the body: a known length streams; a chunked one is spooled so CONTENT_LENGTH can be sent
	var body io.Reader
	var length int64
	var rewind func() error
	if g.PassReqBody.Get(true) && fr.R.Body != nil && fr.R.Body != http.NoBody {
		if fr.R.ContentLength >= 0 {
			body, length = fr.R.Body, fr.R.ContentLength
		} else {
			sp, err := spool(fr.R.Body, c.ClientBodyBufferSize.Get(config.ClientBodyBufferDefault), h.TempDir)
			if err != nil {
				if sp != nil {
					sp.Close()
				}
				fr.Log.Error(fr.gw.name+": reading the client request body failed: "+err.Error(), v.LogAttrs()...)
				fr.Error(proxy.ClientBodyStatus(err))
				return
			}
			defer sp.Close()
			body, length, rewind = sp, sp.size, sp.rewind
			fr.R.ContentLength = length
			fr.R.Header.Set("Content-Length", strconv.FormatInt(length, 10))
		}
	}

	pb := h.paramBufs.Get().(*paramBuf)
	defer h.paramBufs.Put(pb)
	params, ok := h.params(pb, fr)
	if !ok {
		fr.Error(http.StatusForbidden)
		return
	}
	if fr.gw.name == "uwsgi" && len(params) > 0xffff {
		// checked before a peer is chosen, as nginx's create_request: no peer is blamed for it
		fr.Log.Error(ErrUWSGITooBig.Error()+": "+strconv.Itoa(len(params)), v.LogAttrs()...)
		fr.Error(http.StatusInternalServerError)
		return
	}

	var caught atomic.Bool
	headerDone := false
	catch := c.FastCGICatchStderr.V
	stderr := func(msg []byte) {
		s := strings.TrimRight(string(msg), "\r\n")
		if !headerDone {
			for _, pat := range catch {
				if strings.Contains(s, pat) {
					caught.Store(true)
				}
			}
		}
		fr.Log.Error("FastCGI sent in stderr: "+strconv.Quote(s), v.LogAttrs("upstream", "fastcgi://"+v.UpstreamAddr)...)
	}

	creq := &Call{Params: params, Body: body, ContentLength: length, Stderr: stderr, Rewind: rewind,
		NonIdempotent: fr.R.Method == http.MethodPost || fr.R.Method == http.MethodPatch || fr.R.Method == "LOCK",
		Modifier1:     byte(c.UWSGIModifier1.V), Modifier2: byte(c.UWSGIModifier2.V)}
	start := time.Now()
	resp, hold, err := h.send(ctx, fr, creq)
	defer hold.End()
	headerDone = true
	v.UpstreamHeaderTime = v.UpstreamSince(start)
	if err != nil {
		v.UpstreamResponseTime = v.UpstreamHeaderTime
		h.fail(fr, err)
		return
	}
	defer resp.Body.Close()
	v.UpstreamHeader = resp.Header
	bad := ""
	if caught.Load() {
		bad = "fastcgi: upstream's stderr matched fastcgi_catch_stderr"
	} else if cl := resp.Header["Content-Length"]; !oneLength(cl) {
		// the client's framing comes from it: two different values (or a malformed one) would reach the client
		// as they are, where a cache or proxy in front that reads the other value desynchronises
		bad = fr.gw.name + ": upstream sent invalid \"Content-Length\" header: \"" + strings.Join(cl, ", ") + "\""
	} else if len(cl) > 1 {
		resp.Header["Content-Length"] = cl[:1]
	}
	if bad != "" {
		fr.Log.Error(bad, v.LogAttrs("upstream", fr.gw.name+"://"+v.UpstreamAddr)...)
		v.UpstreamStatus = "502"
		if e := fr.cr.UseStale(cache.FailInvalidHeader, 0); e != nil {
			v.UpstreamCacheStatus = cache.StatusStale
			h.serveEntry(fr, e)
			return
		}
		fr.Error(http.StatusBadGateway)
		return
	}
	if fr.cr != nil {
		fields := make([]cache.Field, 0, len(resp.Header))
		for _, k := range slices.Sorted(maps.Keys(resp.Header)) { // (the order they came is not known)
			fields = append(fields, cache.Field{Name: k, Values: resp.Header[k]})
		}
		if e := fr.cr.Response(v, resp.Status, fields, func(msg string) { fr.Log.Error(fr.gw.name+": cache: "+msg, v.LogAttrs()...) }); e != nil {
			resp.Body.Close()
			h.serveEntry(fr, e)
			return
		}
	}
	ignore := g.IgnoreHeaders.V
	if target, ok := resp.Header["X-Accel-Redirect"]; ok && fr.Redirect != nil && ignore&config.IgnoreAccelRedirect == 0 {
		// nginx's X-Accel-Redirect: the application chose a file or location to serve instead; these of its
		// headers go with the final response
		for _, k := range proxy.AccelKept {
			if vv, ok := resp.Header[k]; ok {
				fr.W.Header()[k] = vv
			}
		}
		resp.Body.Close()
		fr.Redirect(httpsyntax.FirstOf(target))
		return
	}
	if fr.Intercept != nil && resp.Status >= 300 && fr.Intercept(resp.Status) {
		fr.Error(resp.Status)
		return
	}

	// X-Accel-Buffering is read before copyHeader hides it
	unbuffered := !g.Buffering.Get(true) || ignore&config.IgnoreAccelBuffering == 0 && strings.EqualFold(resp.Header.Get("X-Accel-Buffering"), "no")
	h.copyHeader(fr, resp.Header)
	flushEach := unbuffered || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	status := resp.Status
	if fr.cr.Storing() && status == http.StatusOK {
		// nginx's not_modified filter answers a cacheable response's conditional request (the application saw
		// none of the client's conditions); the body still fills the entry
		switch st := cache.Precondition(fr.R, c.IMS.Get(static.IMSExact), fr.W.Header()); st {
		case http.StatusPreconditionFailed:
			fr.Error(st)
			return
		case http.StatusNotModified:
			status, fr.cr.NoBody = st, true
		}
	}
	var src io.Reader = resp.Body
	if status == http.StatusOK && g.ForceRanges.V && fr.cr == nil {
		hdr := fr.W.Header()
		length, err := strconv.ParseInt(httpsyntax.FirstOf(hdr["Content-Length"]), 10, 64)
		if err != nil {
			length = -1
		}
		switch st, skip, n := proxy.ForceRange(fr.R, v, c, hdr, length); st {
		case http.StatusRequestedRangeNotSatisfiable:
			fr.Error(st)
			return
		case http.StatusPartialContent:
			status = st
			if fr.R.Method != http.MethodHead {
				if _, err := io.CopyN(io.Discard, src, skip); err != nil {
					fr.Log.Error(fr.gw.name+": upstream response body failed: "+err.Error(), v.LogAttrs("upstream", fr.gw.name+"://"+v.UpstreamAddr)...)
					fr.Error(http.StatusBadGateway)
					return
				}
				src = io.LimitReader(src, n) // the rest is not read: the connection is not kept
			}
		}
	}
	bodyless := fr.R.Method == http.MethodHead || status == http.StatusNotModified || status == http.StatusNoContent
	if rate := g.LimitRate.V; rate > 0 && !unbuffered && !bodyless {
		// as nginx, only while the response is buffered, and not for a body that is read only to be dropped
		src = proxy.NewRateLimited(src, rate)
	}
	if rs, ok := fr.W.(interface{ SetReason(string) }); ok && status == resp.Status && resp.Reason != "" && httpsyntax.Value(resp.Reason) {
		rs.SetReason(resp.Reason) // the application's "Status: 299 Custom Thing", as nginx relays it
	}
	fr.W.WriteHeader(status)
	var tee *cache.Tee
	if fr.cr.Storing() {
		tee = fr.cr.Tee(src)
		src = tee
	}
	var sp *proxy.Spool  // the spool a long response took
	var cacheMsg *string // a failed early commit of the entry
	if bodyless {
		// read to END_REQUEST so the connection can be kept (and the entry filled: a failure leaves it unfilled)
		io.Copy(io.Discard, src)
		err = nil
	} else {
		var spool func() *proxy.Spool // (a long response only: the closure does not escape)
		if !unbuffered {
			spool = func() *proxy.Spool {
				sc := &g.Spool
				sp = &proxy.Spool{Mem: sc.Mem(), MaxFile: sc.MaxFile(), Dir: sc.Dir(), Bufs: &h.bufs, Done: hold.End, FileError: func(err error) {
					fr.Log.Error(fr.gw.name+": temporary file: "+err.Error(), v.LogAttrs()...)
				}}
				if tee != nil {
					// the entry is committed once the application's part is in, not once a slow client has it
					cacheMsg = proxy.CommitEarly(sp, fr.cr, tee)
				}
				return sp
			}
		}
		err = h.stream(fr.W, src, flushEach, spool)
	}
	if cacheMsg != nil && *cacheMsg != "" {
		fr.Log.Error(fr.gw.name+": cache: "+*cacheMsg, v.LogAttrs()...)
	}
	if tee != nil {
		fr.cr.End(tee, err, func(msg string) { fr.Log.Error(fr.gw.name+": cache: "+msg, v.LogAttrs()...) })
	}
	if sp == nil || sp.Ended.IsZero() {
		v.UpstreamResponseTime = v.UpstreamSince(start)
	} else if !v.NoUpstreamTimes {
		v.UpstreamResponseTime = vars.Seconds(sp.Ended.Sub(start)) // the application's part, as nginx
	}
	if err != nil {
		fr.Log.Error(fr.gw.name+": upstream response body failed: "+err.Error(), v.LogAttrs("upstream", fr.gw.name+"://"+v.UpstreamAddr)...)
		panic(http.ErrAbortHandler) // never present a cut-off body as complete
	}
}

// copyHeader passes the application's response fields src to the client's header, as nginx's fastcgi module
// does: without hop-by-hop fields, the ones hidden by default (unless fastcgi_pass_header) and
// fastcgi_hide_header's, which are deleted from src.
func (h *Handler) copyHeader(fr *Request, src http.Header) {
	g := fr.gw.opts
	// the X-Accel fields that act on the response are read before they are hidden from the client
	ignore := g.IgnoreHeaders.V
	if lr := src.Get("X-Accel-Limit-Rate"); lr != "" && ignore&config.IgnoreAccelLimitRate == 0 {
		proxy.AccelLimitRate(fr.V, lr)
	}
	if ignore&config.IgnoreAccelCharset == 0 {
		fr.V.AccelCharset = src.Get("X-Accel-Charset")
	}
	proxy.RemoveHopHeaders(src)
	for _, name := range hiddenByDefault {
		if !httpsyntax.ContainsFold(g.PassHeaders.V, name) {
			src.Del(name)
		}
	}
	for _, name := range g.HideHeaders.V {
		src.Del(name)
	}
	hdr := fr.W.Header()
	for k, vv := range src {
		hdr[k] = vv
	}
	if ct := src["Content-Type"]; len(ct) == 0 || ct[0] == "" {
		hdr["Content-Type"] = nil // none (an empty one is none, as in nginx), and no type invented by sniffing
	}
}

// serveEntry answers from a fastcgi_cache entry: its fields pass copyHeader as the application's would, and
// cache.Sender answers conditions and ranges and sends the body.
func (h *Handler) serveEntry(fr *Request, e *cache.Entry) {
	src := make(http.Header, len(e.Fields))
	for _, f := range e.Fields {
		src[f.Name] = f.Values
	}
	fr.V.UpstreamHeader = src
	h.copyHeader(fr, src.Clone()) // ($upstream_http_* keeps the hidden fields)
	s := cache.Sender{W: fr.W, R: fr.R, IMS: fr.Conf.IMS.Get(static.IMSExact), ForceRanges: fr.gw.opts.ForceRanges.V, Gzip: fr.Conf.GzipFilter, Gunzip: fr.Conf.GunzipFilter, Error: fr.Error}
	if err := s.Serve(e); err != nil {
		fr.Log.Info(fr.gw.name+": cache: sending entry: "+err.Error(), fr.V.LogAttrs()...)
	}
}

// fail answers an exchange that produced no response header, with nginx's status choice and log wording.
func (h *Handler) fail(fr *Request, err error) {
	v := fr.V
	if IsBodyError(err) {
		fr.Log.Error(fr.gw.name+": reading the client request body failed: "+err.Error(), v.LogAttrs()...)
		fr.Error(proxy.ClientBodyStatus(err))
		return
	}
	if fr.R.Context().Err() != nil {
		fr.Log.Info(fr.gw.name+": client closed connection while waiting for upstream", v.LogAttrs()...)
		v.Status = 499
		return
	}
	if errors.Is(err, ErrUWSGITooBig) {
		fr.Log.Error(err.Error(), v.LogAttrs()...)
		fr.Error(http.StatusInternalServerError)
		return
	}
	status, fail := http.StatusBadGateway, cache.FailError
	var fe *Error
	switch {
	case errors.As(err, &fe) && fe.Timeout:
		status, fail = http.StatusGatewayTimeout, cache.FailTimeout
	case netutil.IsBindError(err):
		status = http.StatusInternalServerError // *_bind to an address this host cannot bind: nginx's 500
	}
	if v.UpstreamStatus == "" {
		v.UpstreamStatus = httpsyntax.Status(status)
	}
	fr.Log.Error(upstreamError(err), v.LogAttrs("upstream", fr.gw.name+"://"+v.UpstreamAddr)...)
	if e := fr.cr.UseStale(fail, 0); e != nil {
		v.UpstreamCacheStatus = cache.StatusStale // (fastcgi_cache_use_stale)
		h.serveEntry(fr, e)
		return
	}
	fr.Error(status)
}

// upstreamError words a failed exchange as nginx's error log does: "connect() failed (111: Connection
// refused) while connecting to upstream", "upstream timed out (110: Connection timed out) while reading
// response header from upstream", "upstream prematurely closed connection while …".
func upstreamError(err error) string {
	var fe *Error
	if !errors.As(err, &fe) {
		return err.Error()
	}
	while := map[string]string{"connect": "connecting to upstream", "send": "sending request to upstream",
		"read header": "reading response header from upstream", "read body": "reading upstream"}[fe.Op]
	if while == "" {
		return err.Error()
	}
	switch {
	case fe.Timeout:
		return "upstream timed out (110: Connection timed out) while " + while
	case fe.Op == "connect":
		return "connect() failed (" + netutil.ErrnoText(fe.Err) + ") while " + while
	case errors.Is(fe.Err, io.ErrUnexpectedEOF) || errors.Is(fe.Err, io.EOF):
		return "upstream prematurely closed connection while " + while
	}
	return fe.Err.Error() + " while " + while
}

// stream is proxy.Stream through one of h's pooled buffers: flushing after every read when flushEach, and
// otherwise whenever the application has nothing more ready (the body's Ready); a long buffered response is
// read ahead of the client through spool.
func (h *Handler) stream(w http.ResponseWriter, b io.Reader, flushEach bool, spool func() *proxy.Spool) error {
	bp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bp)
	_, err := proxy.Stream(w, b, *bp, flushEach, -1, spool)
	return err
}

// scriptName sets $fastcgi_script_name and $fastcgi_path_info for the current URI.
func (h *Handler) scriptName(fr *Request) { SetScriptName(fr.V, fr.Conf) }

// SetScriptName sets $fastcgi_script_name and $fastcgi_path_info from $uri, fastcgi_split_path_info and
// fastcgi_index, as nginx does. The server calls it before try_files, which may test $fastcgi_script_name.
func SetScriptName(v *vars.Request, c *config.LocConf) {
	script, info := v.URI, ""
	if re := c.FastCGISplitPathInfo.V; re != nil {
		if m := re.FindStringSubmatch(v.URI); m != nil {
			script, info = m[1], m[2]
		}
	}
	if idx := c.FastCGIIndex.V; idx != "" && strings.HasSuffix(script, "/") {
		script += idx
	}
	if script == "" {
		script = "/"
	}
	v.FastCGIScriptName, v.FastCGIPathInfo = script, info
}

// params encodes fastcgi_param (uwsgi_param) values and the request headers as HTTP_* (except Proxy: httpoxy) into pb.enc. A
// SCRIPT_FILENAME with a NUL or a ".." segment is refused: it would name a file outside the document root.
// Values are evaluated into pb's scratch buffer and header names converted there, so nothing is allocated per
// parameter.
func (h *Handler) params(pb *paramBuf, fr *Request) ([]byte, bool) {
	c, v, r := fr.Conf, fr.V, fr.R
	dst, val := pb.enc[:0], pb.tmp[:0]
	defer func() { pb.enc, pb.tmp = dst[:0], val[:0] }()
	// the fastcgi_param names a request header must not repeat (usually none: fastcgi_params sets no HTTP_*)
	var setBuf [4]string
	set := setBuf[:0]
	pl := fr.gw.pl
	for _, p := range fr.gw.opts.Params.V {
		val = p.Value.Append(val[:0], v)
		if p.IfNotEmpty && len(val) == 0 {
			continue
		}
		if p.Name == "SCRIPT_FILENAME" && fr.gw.name == "fastcgi" && !safeFilename(val) {
			fr.Log.Error("fastcgi: refusing SCRIPT_FILENAME "+strconv.Quote(string(val)), v.LogAttrs()...)
			return dst, false
		}
		if strings.HasPrefix(p.Name, "HTTP_") {
			set = append(set, p.Name)
		}
		dst = appendParamIn(pl, dst, p.Name, val)
	}
	if !fr.gw.opts.PassReqHeaders.Get(true) {
		return dst, true
	}
	if fr.cr != nil {
		// fastcgi_cache_revalidate: the expired entry's validators, as nginx's $upstream_cache_last_modified
		// and $upstream_cache_etag
		if ims, inm := fr.cr.Revalidate(); ims != "" || inm != "" {
			if ims != "" && !slices.Contains(set, "HTTP_IF_MODIFIED_SINCE") {
				dst = appendParamIn(pl, dst, "HTTP_IF_MODIFIED_SINCE", ims)
			}
			if inm != "" && !slices.Contains(set, "HTTP_IF_NONE_MATCH") {
				dst = appendParamIn(pl, dst, "HTTP_IF_NONE_MATCH", inm)
			}
		}
	}
	if h, ok := vars.HostHeader(r); ok && !slices.Contains(set, "HTTP_HOST") {
		dst = appendParamIn(pl, dst, "HTTP_HOST", h)
	}
	underscores := c.UnderscoresInHeaders.Get(false)
	for k, vals := range r.Header {
		// Proxy: httpoxy; a name with an underscore is dropped as nginx does (underscores_in_headers off), or
		// X_Forwarded_For would reach the application as HTTP_X_FORWARDED_FOR
		if k == "Proxy" || len(vals) == 0 || !underscores && strings.IndexByte(k, '_') >= 0 ||
			fr.cr != nil && slices.Contains(cache.Fields[:], k) { // (a response cached is for every client)
			continue
		}
		val = appendHeaderParam(val[:0], k)
		if string(val) == "HTTP_HOST" || len(set) > 0 && slices.Contains(set, string(val)) {
			continue
		}
		sep := ", "
		if k == "Cookie" {
			sep = "; "
		}
		dst = appendParamJoined(pl, dst, val, vals, sep)
	}
	return dst, true
}

// appendHeaderParam appends the CGI name of a request header: "X-Forwarded-For" -> "HTTP_X_FORWARDED_FOR".
func appendHeaderParam(dst []byte, k string) []byte {
	dst = append(dst, "HTTP_"...)
	for i := 0; i < len(k); i++ {
		ch := k[i]
		switch {
		case ch == '-':
			ch = '_'
		case ch >= 'a' && ch <= 'z':
			ch -= 'a' - 'A'
		}
		dst = append(dst, ch)
	}
	return dst
}

func safeFilename(p []byte) bool {
	if bytes.IndexByte(p, 0) >= 0 {
		return false
	}
	return !bytes.Contains(p, []byte("/../")) && !bytes.HasSuffix(p, []byte("/..")) && !bytes.HasPrefix(p, []byte("../"))
}

// send runs the call on fastcgi_pass's address, or on the peers of its upstream group as the group's balancing
// and passive health decide, going on to the next peer only when connecting failed (nothing was sent) and
// fastcgi_next_upstream allows it. The hold is on the chosen peer's connection count.
func (h *Handler) send(ctx context.Context, fr *Request, call *Call) (*Response, upstream.Hold, error) {
	c, v, o := fr.Conf, fr.V, fr.gw.opts
	t := Target{KeepConn: fr.gw.name == "fastcgi" && c.FastCGIKeepConn.Get(true),
		ConnectTimeout: o.ConnectTimeout.Get(config.GatewayDefaults.ConnectTimeout),
		SendTimeout:    o.SendTimeout.Get(config.GatewayDefaults.SendTimeout),
		ReadTimeout:    o.ReadTimeout.Get(config.GatewayDefaults.ReadTimeout),
		KeepAlive:      o.SocketKeepalive.Get(false)}
	if b := o.Bind.V; b != nil {
		var invalid string
		if t.Local, invalid = b.Local(v); invalid != "" {
			fr.Log.Error(fr.gw.name+": invalid local address "+strconv.Quote(invalid), v.LogAttrs()...)
		}
		// connections made from an address a request chose are not pooled: its values are unbounded
		t.KeepConn = t.KeepConn && b.Template == nil
	}
	fp := fr.gw.pass
	var g *upstream.Group
	if fp.Upstream != nil && h.Upstreams != nil {
		g = h.Upstreams.Group(fp.Upstream.Name)
	}
	// an earlier upstream pass of this request (before an internal redirect) stays in front, " : " between
	prevAddr, prevStatus := v.UpstreamAddr, v.UpstreamStatus
	if prevAddr != "" {
		prevStatus = cmp.Or(prevStatus, "-") // (a pass that got no status)
	}
	chain := vars.AfterPass
	if g == nil {
		t.Network, t.Addr = fp.Network, fp.Addr
		if v.UpstreamAddr = fp.Addr; fp.Network == "unix" {
			v.UpstreamAddr = "unix:" + fp.Addr // as nginx writes it (peers of an upstream block keep it too)
		}
		resp, err := fr.gw.tr.Do(ctx, t, call)
		if err == nil {
			v.UpstreamStatus = chain(prevStatus, strconv.Itoa(resp.Status))
		} else if prevAddr != "" {
			v.UpstreamStatus = chain(prevStatus, "-")
		}
		v.UpstreamAddr = chain(prevAddr, v.UpstreamAddr)
		return resp, upstream.Hold{}, err
	}
	next := o.NextUpstream.Get([]string{"error", "timeout"})
	tries, timeout := o.NextTries.Get(0), o.NextTimeout.Get(0)
	var start time.Time
	if timeout > 0 {
		start = time.Now() // a clock read only for *_next_upstream_timeout
	}
	try := g.Begin(upstream.Key{Client: v.RemoteAddr.Addr()})
	var addrs, statuses []string
	defer func() {
		v.UpstreamAddr, v.UpstreamStatus = chain(prevAddr, strings.Join(addrs, ", ")), chain(prevStatus, strings.Join(statuses, ", "))
	}()
	for {
		peer := try.Next()
		if peer == nil {
			addrs = append(addrs, fp.Upstream.Name)
			statuses = append(statuses, "502")
			return nil, upstream.Hold{}, &Error{Op: "connect", Err: errors.New("no live upstreams")}
		}
		t.Network, t.Addr = peer.Network()
		addrs = append(addrs, peer.Addr)
		v.UpstreamAddr = peer.Addr // for stderr lines logged during the call
		resp, err := fr.gw.tr.Do(ctx, t, call)
		if err == nil {
			statuses = append(statuses, strconv.Itoa(resp.Status))
			return resp, try.Done(upstream.Success), nil
		}
		var fe *Error
		connect := errors.As(err, &fe) && fe.Op == "connect"
		if IsBodyError(err) || ctx.Err() != nil {
			try.Done(upstream.Success).End()
			return nil, upstream.Hold{}, err
		}
		if netutil.IsBindError(err) {
			// *_bind's address cannot be bound: this host's error, answered 500 without another peer or blame
			try.Done(upstream.Next).End()
			return nil, upstream.Hold{}, err
		}
		try.Done(upstream.Failed).End()
		statuses = append(statuses, "502")
		retry := connect && (fe.Timeout && httpsyntax.ContainsFold(next, "timeout") || !fe.Timeout && httpsyntax.ContainsFold(next, "error"))
		if !retry || try.Left() == 0 || tries > 0 && len(addrs) >= tries || timeout > 0 && time.Since(start) >= timeout {
			return nil, upstream.Hold{}, err
		}
		fr.Log.Error(upstreamError(err), v.LogAttrs("upstream", fr.gw.name+"://"+peer.Addr)...)
	}
}

// spooled is a chunked request body read whole before the request is sent: in memory up to a limit, the rest
// in an unlinked temporary file.
type spooled struct {
	mem  *bytes.Reader
	file *os.File
	r    io.Reader
	size int64
}

func spool(body io.Reader, memLimit int64, dir string) (*spooled, error) {
	if memLimit <= 0 {
		memLimit = 16 << 10
	}
	var mem bytes.Buffer
	n, err := io.Copy(&mem, io.LimitReader(body, memLimit))
	if err != nil {
		return nil, err
	}
	sp := &spooled{mem: bytes.NewReader(mem.Bytes()), size: n}
	if n == memLimit {
		f, err := os.CreateTemp(dir, "sluice-body-")
		if err != nil {
			return nil, err
		}
		os.Remove(f.Name()) // the open file stays; nothing is left behind on a crash
		sp.file = f
		m, err := io.Copy(f, body)
		sp.size += m
		if err != nil {
			return sp, err
		}
	}
	return sp, sp.rewind()
}

func (s *spooled) rewind() error {
	s.mem.Seek(0, io.SeekStart)
	if s.file == nil {
		s.r = s.mem
		return nil
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	s.r = io.MultiReader(s.mem, s.file)
	return nil
}

func (s *spooled) Read(p []byte) (int, error) { return s.r.Read(p) }

func (s *spooled) Close() error {
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}

// oneLength reports whether the Content-Length values of a response are absent, or one valid length however
// many times repeated.
func oneLength(vals []string) bool {
	for _, v := range vals {
		if _, ok := httpsyntax.Length(v); !ok || v != vals[0] {
			return false
		}
	}
	return true
}
