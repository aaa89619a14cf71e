package server

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/access"
	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/certs"
	"github.com/sluice-proxy/sluice/internal/compress"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/fastcgi"
	"github.com/sluice-proxy/sluice/internal/grpc"
	"github.com/sluice-proxy/sluice/internal/h1"
	"github.com/sluice-proxy/sluice/internal/metrics"
	"github.com/sluice-proxy/sluice/internal/proxy"
	"github.com/sluice-proxy/sluice/internal/route"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// request is one request's state on its way through the phases. It is pooled: see getRequest and putRequest.
type request struct {
	requestState

	// Storage the state's pointers point into, so one pooled object carries a request's whole state.
	vars   vars.Request
	writer respWriter
	proxy  proxy.Request
	bound  boundFuncs
	// the proxy's storage, made on the first proxied request and kept across requests (not inside the
	// request, so that a tunnel, which keeps its request for its whole life, can drop it: see detach)
	proxyState *proxy.State
	// the metrics series the last request recorded in, kept across requests: most requests a pooled request
	// serves in a row go to the same location and peer
	series seriesCache
	peer   metrics.PeerCache
}

// seriesCache is the metrics series of one server and location in one snapshot.
type seriesCache struct {
	snap *snapshot
	srv  *config.Server
	loc  *config.Location
	m    *metrics.Location
}

// requestState is the part of a request that starts zero for every request.
type requestState struct {
	s    *Server
	snap *snapshot
	w    *respWriter
	r    *http.Request
	v    *vars.Request
	ci   *connInfo
	log  *slog.Logger

	srv        *config.Server
	loc        *config.Location // nil when no location matched
	conf       *config.LocConf  // the location's settings (or the server's)
	uriChanged bool
	rewritten  bool // a rewrite without a flag changed the URI in the current location's rewrite phase
	// rewriteBreak: rewrite … break changed the URI in this location (nginx's valid_location off): proxy_pass
	// sends that URI whole instead of putting its URI part in place of the location's prefix
	rewriteBreak bool
	detached     func(finished func()) // a tunnel to start once ServeHTTP has returned
	redirects    int                   // internal redirects (rewrite last, error_page), bounded as nginx does
	errorPage    bool
	internal     bool // reached by an internal redirect: `internal` locations may serve it
	subrequest   bool // an auth_request subrequest: no access phase of its own, not logged
	// cacheUpdate: this subrequest updates an expired cache entry in the background (proxy_cache_background_update)
	cacheUpdate *cache.Update

	// access phase state
	cors      *access.CORS // the CORS policy that applies to the response
	preflight bool         // answering a CORS preflight
	limited   bool         // limit_req/limit_conn already counted this request
	// served: the phases returned, without a panic (return 444 panics to close the connection unanswered): only
	// then may the log phase complete the HTTP/1 response
	served bool
	// headBytes is what $bytes_sent counts beside the body where the writer cannot report it: a tunnel's 101
	// head (detach), an HTTP/2 or HTTP/3 head's estimated size (bytesSent)
	headBytes int64
	releases  []func() // limit_conn slots held until the request (or its tunnel) ends
}

// boundFuncs are the request's method values handed to content handlers, made once per pooled request
// instead of once per request.
type boundFuncs struct {
	special    func(status int)
	intercepts func(status int) bool
	detach     func(start func(finished func()))
	redirect   func(uri string)
	absolute   func(target string) string
	update     func(*cache.Update) bool
}

// newRequest is the pool's constructor.
func newRequest() any {
	rq := &request{}
	rq.bound = boundFuncs{
		special:    rq.special,
		intercepts: rq.intercepts,
		detach:     func(start func(func())) { rq.detached = start },
		update:     rq.startCacheUpdate,
		redirect:   rq.accelRedirect,
		absolute:   rq.absolute,
	}
	return rq
}

// getRequest takes a request from the pool, with its state pointers set and everything else zero.
func (s *Server) getRequest() *request {
	rq := s.requests.Get().(*request)
	rq.v, rq.w = &rq.vars, &rq.writer
	return rq
}

// putRequest returns a finished request to the pool. Only a request nothing can reach any more may come back:
// not one that panicked, started a tunnel, was hijacked or had a body (the upstream transport may still be
// reading a body after the handler returned).
func (s *Server) putRequest(rq *request) {
	rq.requestState = requestState{}
	rq.vars.Reset() // keeps its scratch buffers
	rq.writer = respWriter{}
	rq.proxy = proxy.Request{}
	if ps := rq.proxyState; ps != nil {
		if ps.Reusable() {
			ps.Reset()
		} else {
			rq.proxyState = nil // still in use by the transport's sending goroutine: the next request makes its own
		}
	}
	s.requests.Put(rq)
}

// ServeHTTP is the request path, top-down: connection checks → server selection → real client address →
// URI normalisation → server rewrite phase → location selection → location rewrite phase → access phase
// (limits, allow/deny, CORS, auth) → content handler → log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ci, _ := r.Context().Value(connInfoKey{}).(*connInfo)
	if ci == nil {
		ci = &connInfo{}
	}
	if r.TLS == nil {
		r.TLS = ci.tls // HTTP/1.x over TLS arrives inside the framing guard
	}
	snap := s.snap.Load()
	if snap.acmeMgr != nil && r.TLS == nil && snap.acmeMgr.HandleHTTPChallenge(w, r) {
		return // an ACME CA validating a name (HTTP-01)
	}
	rq := s.getRequest()
	rq.s, rq.snap, rq.r, rq.ci, rq.log = s, snap, r, ci, s.log
	s.initVars(rq.v, r, ci)
	rq.v.NoUpstreamTimes = snap.noUpstreamTimes
	rq.v.RequestLength = requestLength(r)
	rq.w.ResponseWriter, rq.w.rq, rq.w.rc = w, rq, *http.NewResponseController(w)
	rq.w.sendTimeout = defaultSendTimeout // until a server or location has its own
	s.stats.requests.Add(1)
	// HTTP/1 gives a request without a body NoBody; HTTP/2 and HTTP/3 give a stream body, empty when its length is 0
	noBody := r.Body == nil || r.Body == http.NoBody || (r.ProtoMajor >= 2 && r.ContentLength == 0)
	reuse := false // set once the handler returned normally and nothing else holds the request
	defer func() {
		if rq.detached != nil {
			// an upgraded connection: log when the tunnel closes, holding only what the log needs
			start := rq.detached
			rq.detach()
			start(rq.finish) // returns at once; an idle tunnel holds no goroutine
			return
		}
		if rq.conf != nil && rq.conf.Linger != nil && r.ProtoMajor == 1 {
			rq.setLinger(w)
		}
		rq.finish()
		if reuse {
			s.putRequest(rq)
		}
	}()
	rq.serve()
	if rq.v.Status == 499 && !rq.w.wroteHeader && !rq.w.hijacked && rq.detached == nil {
		// the client left before an answer (nginx's 499): the connection closes unanswered, so a client that
		// only half-closed does not read an empty 200 made up for it
		panic(http.ErrAbortHandler)
	}
	if err := rq.w.endFilters(true); err != nil {
		// the gzip body the upstream sent was cut short or corrupt (or the client went away while it was
		// decompressed): the response is cut, as nginx cuts it
		if errors.Is(err, compress.ErrGunzip) {
			rq.log.Error(err.Error()+" on response end", rq.v.LogAttrs()...)
		}
		panic(http.ErrAbortHandler)
	}
	rq.served = true
	reuse = noBody && rq.detached == nil && !rq.w.hijacked
}

// setLinger hands the HTTP/1 connection the lingering_* settings of the location that answered, which decide
// how it closes if it closes after this response (as nginx's ngx_http_finalize_connection reads them).
func (rq *request) setLinger(w http.ResponseWriter) {
	if lw, ok := w.(interface{ SetLinger(*h1.Linger) }); ok {
		lw.SetLinger(rq.conf.Linger)
	}
}

// serve runs the phases up to the content handler (everything but the log phase).
func (rq *request) serve() {
	r, ci, snap := rq.r, rq.ci, rq.snap

	// 1. A plain HTTP request on a TLS port gets nginx's answer.
	if ci.onTLSPort {
		rq.conf = &config.LocConf{}
		rq.w.Header().Set("Connection", "close")
		rq.plainOnTLS()
		return
	}

	// 2. Server selection by Host (or :authority) among the servers on this address.
	g := snap.groupFor(addrOf(ci), ci.localKey)
	if g != nil && g.altSvc != "" {
		rq.w.Header()["Alt-Svc"] = []string{g.altSvc}
	}
	if g == nil {
		rq.conf = &config.LocConf{}
		rq.special(http.StatusMisdirectedRequest)
		return
	}
	host, ok := route.CleanHost(r.Host)
	if r.Host == "" && r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		host, ok = "", true // HTTP/1.0 without Host (health checks): the default server answers, as in nginx
	}
	if !ok {
		srv, _, _ := g.index.Select("")
		rq.useServer(srv)
		rq.log.Info("client sent invalid host header", rq.v.LogAttrs()...)
		rq.special(http.StatusBadRequest)
		return
	}
	srv, caps, names := g.index.SelectClean(host)
	rq.useServer(srv)
	if caps != nil {
		rq.v.Captures, rq.v.CaptureNames = caps, names
	}
	if r.Method == http.MethodTrace || r.Method == http.MethodConnect && !isExtendedConnect(r) {
		// refused before any location sees them, as nginx does: sluice is no forward proxy, and TRACE would
		// echo credentials back (HTTP/2 and HTTP/3 extended CONNECT, RFC 8441, are WebSockets and go on)
		rq.log.Info("client sent "+r.Method+" method", rq.v.LogAttrs()...)
		if r.ProtoMajor == 1 {
			rq.w.Header().Set("Connection", "close")
		}
		rq.special(http.StatusMethodNotAllowed)
		return
	}
	if n := rq.conf.KeepaliveRequests.Get(1000); n > 0 && ci.requests.Add(1) >= int64(n) ||
		r.ProtoMajor == 1 && !ci.accepted.IsZero() && rq.v.Start.Sub(ci.accepted) > rq.conf.KeepaliveTime.Get(time.Hour) {
		// keepalive_requests, keepalive_time: this is the connection's last request
		rq.w.Header().Set("Connection", "close")
	}
	if len(r.TransferEncoding) > 0 && r.ProtoMajor == 1 {
		// net/http frames a request carrying both Transfer-Encoding and Content-Length by the former and drops
		// the latter without trace; RFC 9112 §6.3 requires closing the connection after such a request, so every
		// chunked request closes it (nothing a front proxy framed differently is ever read as a next request).
		rq.w.Header().Set("Connection", "close")
	}

	// 3. The client address: a trusted proxy may report the real one (set_real_ip_from, real_ip_header).
	rq.realIP()

	// 4. The URI is decoded and normalised before matching; what is matched is what is sent upstream.
	uri, err := route.Normalize(rawPath(r))
	if err == nil && hasDotParam(uri) {
		err = route.ErrBadPath
	}
	if err != nil {
		rq.log.Info("client sent invalid request URI "+strconv.Quote(r.RequestURI), rq.v.LogAttrs()...)
		rq.special(http.StatusBadRequest)
		return
	}
	rq.v.URI, rq.v.Args = uri, r.URL.RawQuery

	// 5. The client certificate, where the server wants one (ssl_verify_client).
	if srv.Srv.SSL.VerifyClient.V != certs.VerifyOff && r.TLS != nil && !rq.clientCertOK(host) {
		return
	}

	// 6. Server-level rewrite statements.
	if rq.exec(srv.Ops) == flowDone {
		return
	}
	rq.findAndServe()
}

// maxRedirects is how many times a request may search a location (rewrite … last, internal redirects, error
// pages) before it gets 500, as nginx's NGX_HTTP_MAX_URI_CHANGES; past it no error_page runs either.
const maxRedirects = 10

// clientCertOK applies the server's ssl_verify_client to the connection's client certificate as nginx does
// after reading the request head: the Host must name the server the SNI name chose (else 421: the certificate
// was asked for and checked by that server's rules), a certificate that failed verification gets 495, a
// missing required one 496 (both sent as 400 with their pages, or answered by error_page).
func (rq *request) clientCertOK(host string) bool {
	if sni := rq.r.TLS.ServerName; sni != "" && !strings.EqualFold(strings.TrimSuffix(sni, "."), host) {
		rq.log.Info("client attempted to request the server name different from the one that was negotiated", rq.v.LogAttrs()...)
		if rq.r.ProtoMajor == 1 {
			rq.w.Header().Set("Connection", "close")
		}
		rq.special(http.StatusMisdirectedRequest)
		return false
	}
	switch rq.ci.client.Reject(rq.srv.Srv.SSL.VerifyClient.V) {
	case 495:
		rq.log.Info("client SSL certificate verify error: ("+rq.ci.client.Reason()+")", rq.v.LogAttrs()...)
		rq.special(495)
		return false
	case 496:
		rq.log.Info("client sent no required SSL certificate", rq.v.LogAttrs()...)
		rq.special(496)
		return false
	}
	return true
}

// findAndServe selects the location for the current URI, runs its rewrite phase and its content handler.
func (rq *request) findAndServe() {
	for {
		rq.redirects++
		if rq.redirects > maxRedirects {
			rq.log.Error("rewrite or internal redirection cycle while processing "+strconv.Quote(rq.v.URI), rq.v.LogAttrs()...)
			rq.special(http.StatusInternalServerError)
			return
		}
		rq.loc, rq.conf = nil, rq.srv.Loc
		if m, ok := rq.srv.Matcher.Match(rq.v.URI); ok {
			if m.Redirect {
				// nginx's automatic redirect: "/app" for a proxied prefix location "/app/"
				target := rq.v.URI + "/"
				if rq.v.Args != "" {
					target += "?" + rq.v.Args
				}
				rq.redirect(http.StatusMovedPermanently, target)
				return
			}
			rq.loc, rq.conf = m.Loc.Value, m.Loc.Value.Conf
			if rq.loc.Internal && !rq.internal {
				rq.special(http.StatusNotFound)
				return
			}
			if m.Captures != nil {
				rq.v.Captures, rq.v.CaptureNames = m.Captures, m.Names
			}
		}
		rq.enterLocation()
		if !rq.locationPhase() {
			return
		}
	}
}

// serveLocation runs a location chosen without matching (a named location of error_page): its rewrite
// statements, then its content handler.
func (rq *request) serveLocation(l *config.Location) {
	rq.loc, rq.conf = l, l.Conf
	rq.enterLocation()
	if rq.locationPhase() {
		rq.findAndServe() // rewrite … last: search again with the new URI
	}
}

// locationPhase runs the current location's rewrite statements and, unless they answered or changed the URI
// with `last`, its access phase and content handler. It reports whether the location must be searched again.
func (rq *request) locationPhase() (again bool) {
	rq.rewriteBreak = false
	var ops []config.Op
	if rq.loc != nil {
		ops = rq.loc.Ops
	}
	if le := rq.conf.LimitExcept; le != nil && le.Restricts(rq.limitMethod()) {
		// nginx: a method limit_except does not list takes the block's configuration, which has the block's
		// access rules and neither the location's rewrite statements nor its try_files
		rq.conf, ops = le.Conf, nil
	}
	if len(ops) > 0 {
		rq.rewritten = false
		switch rq.exec(ops) {
		case flowDone:
			return false
		case flowLast:
			return true
		case flowNext:
			if rq.rewritten {
				return true // a rewrite without a flag: the phase is over, search with the new URI
			}
		}
	}
	if rq.access() {
		rq.content()
	}
	return false
}

// content runs the location's content handler.
func (rq *request) content() {
	c := rq.conf
	_, stream := proxy.ExtendedConnect(rq.r) // the body is a tunnel's client half, not a request body
	if max := c.MaxBodySize.Get(1 << 20); max > 0 && !stream {
		if rq.r.ContentLength > max {
			rq.log.Error("client intended to send too large body: "+strconv.FormatInt(rq.r.ContentLength, 10)+" bytes", rq.v.LogAttrs()...)
			rq.w.Header().Set("Connection", "close")
			rq.special(http.StatusRequestEntityTooLarge)
			return
		}
		if rq.r.ContentLength < 0 {
			rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, max)
		}
	}
	if d := c.ClientBodyTimeout.Get(60 * time.Second); d > 0 && rq.r.Body != nil && rq.r.Body != http.NoBody && !stream {
		tb := &timedBody{ReadCloser: rq.r.Body, rc: rq.w.rc, d: d, done: &rq.w.finished}
		rq.r.Body = tb
		defer func() {
			// net/http cancels the request's context inside the body read that times out, so a handler can see
			// the cancellation before the timeout error and give up without an answer; nginx answers 408
			if tb.expired() && !rq.w.wroteHeader && !rq.w.hijacked {
				rq.v.Status = 0
				rq.log.Info("client timed out reading the request body", rq.v.LogAttrs()...)
				rq.special(http.StatusRequestTimeout)
			}
		}()
	}
	if ms := c.Mirrors.V; len(ms) > 0 && !rq.subrequest && !rq.startMirrors(ms) {
		return
	}
	if c.Handler == config.HandlerFastCGI {
		fastcgi.SetScriptName(rq.v, c) // try_files may test $fastcgi_script_name
	}
	if c.TryFiles.Set && rq.cacheUpdate == nil && rq.tryFiles() { // (a cache update continues at the content handler)
		return
	}
	if c.Alias.Set && rq.loc != nil {
		rq.v.DocumentRoot = strings.TrimSuffix(c.Alias.V.Eval(rq.v), "/")
		rq.v.RequestFilename = rq.filename(rq.v.URI)
	}
	switch c.Handler {
	case config.HandlerProxy:
		if rq.proxyState == nil {
			rq.proxyState = new(proxy.State)
		}
		rq.proxy = proxy.Request{
			W: rq.w, R: rq.r, V: rq.v, Loc: rq.loc, Conf: c, URIChanged: rq.rewriteBreak,
			Error:     rq.bound.special,
			Intercept: rq.bound.intercepts,
			Detach:    rq.bound.detach,
			Absolute:  rq.bound.absolute,
			Redirect:  rq.bound.redirect,
			Log:       rq.log,
			State:     rq.proxyState,
		}
		if cc := c.ProxyCacheConf; cc != nil {
			rq.proxy.Cache, rq.proxy.CacheBG = rq.snap.caches[cc.Zone], rq.cacheBackground()
		}
		rq.s.proxy.Serve(rq.r.Context(), &rq.proxy)
	case config.HandlerFastCGI, config.HandlerUWSGI, config.HandlerSCGI:
		fr := &fastcgi.Request{
			W: rq.w, R: rq.r, V: rq.v, Conf: c, Log: rq.log,
			Error:     rq.bound.special,
			Intercept: rq.bound.intercepts,
			Redirect:  rq.bound.redirect,
		}
		cc := c.FastCGIOpts.CacheConf
		switch c.Handler {
		case config.HandlerUWSGI:
			cc = c.UWSGIOpts.CacheConf
		case config.HandlerSCGI:
			cc = c.SCGIOpts.CacheConf
		}
		if cc != nil {
			fr.Cache, fr.CacheBG = rq.snap.caches[cc.Zone], rq.cacheBackground()
		}
		rq.s.fastcgi.Serve(rq.r.Context(), fr)
	case config.HandlerGRPC:
		rq.s.grpc.Serve(rq.r.Context(), &grpc.Request{
			W: rq.w, R: rq.r, V: rq.v, Conf: c, Log: rq.log,
			URIChanged: rq.rewriteBreak || rq.v.URI != rq.r.URL.Path,
			Error:      rq.bound.special,
			Intercept:  rq.bound.intercepts,
		})
	case config.HandlerWebSocketEcho:
		rq.s.websocketEcho(rq)
	case config.HandlerWelcome:
		rq.welcome()
	case config.HandlerMetrics:
		rq.s.metrics.Handler().ServeHTTP(rq.w, rq.r)
	case config.HandlerStubStatus:
		rq.stubStatus()
	case config.HandlerEmptyGIF:
		rq.emptyGIF()
	case config.HandlerStatusPage:
		rq.s.status.ServeHTTP(rq.w, rq.r)
	default:
		rq.serveStatic()
	}
}

// enterLocation sets the variables that depend on the chosen location ($document_root, and for fastcgi_pass
// $fastcgi_script_name and $fastcgi_path_info, which `set` in the location may read) and its send_timeout,
// which bounds every response from here on (return and rewrite redirects included).
func (rq *request) enterLocation() {
	rq.v.DocumentRoot, rq.v.RequestFilename = rq.root(), ""
	rq.v.Alias, rq.v.AliasFrom, rq.v.AliasTo = false, "", ""
	if a := rq.conf.Alias; a.Set && rq.loc != nil {
		// $request_filename and $document_root follow the alias from the rewrite phase on (if -e
		// $request_filename), as in nginx
		to := a.V.Eval(rq.v)
		rq.v.DocumentRoot, rq.v.Alias, rq.v.AliasTo = strings.TrimSuffix(to, "/"), true, to
		switch rq.loc.Modifier {
		case route.Regex, route.RegexCaseless:
		default:
			rq.v.AliasFrom = rq.loc.Pattern
		}
	}
	rq.w.sendTimeout = rq.conf.SendTimeout.Get(defaultSendTimeout)
	rq.v.Referers, rq.v.SecureLink = rq.conf.ValidReferers.V, rq.conf.SecureLink
	if rq.conf.Handler == config.HandlerFastCGI {
		fastcgi.SetScriptName(rq.v, rq.conf)
	}
}

func (rq *request) useServer(srv *config.Server) {
	rq.srv, rq.conf = srv, srv.Loc
	rq.w.sendTimeout = srv.Loc.SendTimeout.Get(defaultSendTimeout) // a return or redirect before any location
	rq.v.Referers, rq.v.SecureLink = srv.Loc.ValidReferers.V, srv.Loc.SecureLink
	if len(srv.Names) > 0 {
		rq.v.ServerName = srv.Names[0]
	}
}

func (rq *request) root() string {
	if t := rq.conf.Root.V; t != nil {
		return strings.TrimSuffix(t.Eval(rq.v), "/")
	}
	return rq.snap.defaultRoot
}

func (rq *request) indexFiles() []string {
	ts := rq.conf.Index.V
	if ts == nil {
		return []string{"index.html"}
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Eval(rq.v)
	}
	return out
}

// intercepts reports whether proxy_intercept_errors (fastcgi_intercept_errors) should turn an upstream status into an error page.
func (rq *request) intercepts(status int) bool {
	on := rq.conf.ProxyInterceptErrors.Get(false)
	switch rq.conf.Handler {
	case config.HandlerFastCGI:
		on = rq.conf.FastCGIOpts.InterceptErrors.Get(false)
	case config.HandlerUWSGI:
		on = rq.conf.UWSGIOpts.InterceptErrors.Get(false)
	case config.HandlerSCGI:
		on = rq.conf.SCGIOpts.InterceptErrors.Get(false)
	}
	if !on {
		return false
	}
	for _, ep := range rq.conf.ErrorPages.V {
		for _, c := range ep.Codes {
			if c == status {
				return true
			}
		}
	}
	return false
}

// initVars fills the (zero) per-request variable state v from the request and its connection.
func (s *Server) initVars(v *vars.Request, r *http.Request, ci *connInfo) {
	v.HTTP, v.Start, v.ConnID, v.Hostname, v.TLS, v.HTTP2 = r, time.Now(), ci.id, s.host, r.TLS, r.ProtoMajor == 2
	v.ConnRequests = int(ci.requests.Load()) + 1
	v.ProxyProtocolAddr, v.ClientCert = ci.proxied, ci.client
	if ci.remote.IsValid() {
		v.RemoteAddr = ci.remote
	} else if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		v.RemoteAddr = unmapped(ap)
	}
	v.LocalAddr = ci.local
}

func addrOf(ci *connInfo) string {
	if ci.listener == nil {
		return ""
	}
	return ci.listener.addr
}

// rawPath is the path as the client sent it, before Go's decoding.
func rawPath(r *http.Request) string {
	if u := r.RequestURI; u != "" && u[0] == '/' {
		p, _, _ := strings.Cut(u, "?")
		return p
	}
	if r.URL.Path == "" && r.URL.RawPath == "" {
		return "/"
	}
	return r.URL.EscapedPath()
}

// hasDotParam reports a "." or ".." segment carrying a ";" parameter ("/..;/admin"): Tomcat and Jetty read it as a
// dot segment, so it would reach a path location matching never saw. Such requests get 400.
func hasDotParam(uri string) bool {
	if strings.IndexByte(uri, ';') < 0 {
		return false // most URIs: one quick scan, not two searches
	}
	return strings.Contains(uri, "/..;") || strings.Contains(uri, "/.;")
}

// limitMethod is the method limit_except judges: a WebSocket over HTTP/2 or HTTP/3 (extended CONNECT) counts as
// the GET of its HTTP/1.1 form.
func (rq *request) limitMethod() string {
	if rq.r.Method == http.MethodConnect && isExtendedConnect(rq.r) {
		return http.MethodGet
	}
	return rq.r.Method
}

// isExtendedConnect reports whether r is an HTTP/2 or HTTP/3 extended CONNECT (a WebSocket on such a connection).
func isExtendedConnect(r *http.Request) bool {
	_, ok := proxy.ExtendedConnect(r)
	return ok
}
