// Package proxy forwards requests to upstream servers with nginx's proxy_* semantics: URI rewriting, header
// rules, timeouts, and WebSocket (and other HTTP/1.1) upgrades that become byte tunnels only after the upstream
// really switched protocols.
package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/certs"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/route"
	"github.com/sluice-proxy/sluice/internal/tunnel"
	"github.com/sluice-proxy/sluice/internal/upstream"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// Proxy holds what outlives one request: connection pools to upstreams and the tunnel tracker.
type Proxy struct {
	Tracker *tunnel.Tracker
	Log     *slog.Logger

	bufs     *tunnel.BufferPool
	poller   *tunnel.Poller // parks idle tunnels' directions (nil where the platform has none)
	copyBufs sync.Pool
	ups      *upstream.Set
	mu       sync.Mutex
	pools    map[poolKey]*Transport
	varPools map[poolKey]*Transport // pools whose keys requests make (bounded: maxPools)
	gen      atomic.Uint64          // counts SetUpstreams: a route kept from before is stale
}

type poolKey struct {
	upstream *config.Upstream
	scheme   string
	connect  time.Duration
	send     time.Duration
	tls      *config.LocConf
	name     string // proxy_ssl_name for https pools
	bind     string // proxy_bind's address ("": none)
	keep     bool   // proxy_socket_keepalive
}

// New returns a Proxy that tracks tunnels in tr.
func New(tr *tunnel.Tracker, log *slog.Logger) *Proxy {
	p := &Proxy{Tracker: tr, Log: log, bufs: tunnel.NewBufferPool(0), poller: tunnel.NewPoller(), pools: map[poolKey]*Transport{}, varPools: map[poolKey]*Transport{}, ups: upstream.NewSet(log)}
	p.copyBufs.New = func() any { b := make([]byte, 32<<10); return &b }
	return p
}

// Close releases what tunnels share; tunnels still open go on without parking.
func (p *Proxy) Close() { p.poller.Close() }

// SetUpstreams installs the upstream blocks of a new configuration; peers that stay keep their state.
// Pools of the previous configuration are closed: their settings may have changed and their idle
// connections would otherwise linger.
func (p *Proxy) SetUpstreams(u map[string]*config.Upstream) {
	for _, d := range p.ups.Update(u) {
		// proxy_tunnel_drain_timeout: the peer gets no new requests; its tunnels end when the time is up,
		// unless a later reload has put it back
		time.AfterFunc(d.Timeout, func() {
			if p.ups.Serving(d.Upstream, d.Addr) {
				return
			}
			n := p.Tracker.CloseMatching(func(m tunnel.Meta) bool { return m.Upstream == d.Upstream && m.Peer == d.Addr })
			if n > 0 {
				p.Log.Info("proxy_tunnel_drain_timeout passed: closed "+strconv.Itoa(n)+" tunnels to a drained peer", "upstream", d.Upstream, "peer", d.Addr)
			}
		})
	}
	p.mu.Lock()
	old, oldVar := p.pools, p.varPools
	p.pools, p.varPools = map[poolKey]*Transport{}, map[poolKey]*Transport{}
	p.mu.Unlock()
	p.gen.Add(1) // the routes that States keep are stale
	for _, tr := range old {
		tr.CloseIdle()
	}
	for _, tr := range oldVar {
		tr.CloseIdle()
	}
}

// Upstreams is the upstream state (peers, failures, connections), for metrics and status pages.
func (p *Proxy) Upstreams() *upstream.Set { return p.ups }

// Request is one request to proxy.
type Request struct {
	W    http.ResponseWriter
	R    *http.Request
	V    *vars.Request
	Loc  *config.Location
	Conf *config.LocConf
	// URIChanged is true when rewrite … break changed $uri in this location (nginx then passes the changed URI
	// whole; after other changes, which search the locations again, a URI part replaces the prefix as usual).
	URIChanged bool
	// Error produces the special response for status (error_page or the default page). It is not called once
	// response headers were sent.
	Error func(status int)
	// Intercept reports whether an upstream status should be replaced by an error page (proxy_intercept_errors).
	Intercept func(status int) bool
	// Absolute, if set, makes a Location that proxy_redirect rewrote to a path absolute, as nginx's header
	// filter does (absolute_redirect, port_in_redirect); an upstream's own relative Location stays as sent.
	Absolute func(target string) string
	// Redirect performs an internal redirect to target (X-Accel-Redirect from the upstream); nil: not followed.
	Redirect func(target string)
	// Header applies the location's add_header set before the response headers are written.
	Header func(status int)
	// Detach, when set, takes an established tunnel to start after the handler has returned, so the HTTP
	// server's per-connection state and the handler's stack are freed for the tunnel's whole life. start
	// returns at once; finished runs when the tunnel has closed.
	Detach func(start func(finished func()))
	Log    *slog.Logger
	// State, when set, is storage kept by the caller across requests (see State); nil allocates it.
	State *State
	// Cache is the zone of the location's proxy_cache; nil without one.
	Cache *cache.Zone
	// CacheBG is the request's part in *_cache_background_update (cache.Background).
	CacheBG cache.Background

	body *clientBody // the client's body as sent upstream, to tell client errors from upstream ones
}

// clientBody records the first error reading the client's request body, so a failed exchange is blamed on the
// client (413, 408, 400) rather than on the upstream (502). A body up to keepUpTo's limit is also kept as it is
// read, so that proxy_next_upstream can send a copy to the next peer once a try has consumed it (nginx buffers
// every body; here a larger one streams and is not sent twice). A failed try's sending goroutine may still make
// a last read (net/http checks for bytes past Content-Length) while the request's goroutine rewinds, hence the
// lock, and each rewind hands out a reader of its own, so no late read moves another try's position.
type clientBody struct {
	io.ReadCloser
	progress func() // upload progress counts as activity for proxy_read_timeout

	mu    sync.Mutex
	err   error
	limit int    // keep the body while it is at most this long; 0: do not keep it
	kept  []byte // what has been read, while within limit
	over  bool   // more than limit was read: it cannot be sent again
	eof   bool   // the client's body has been read to its end: kept no longer changes
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.progress != nil {
		b.progress()
	}
	b.mu.Lock()
	if n > 0 && b.limit > 0 && !b.over {
		if len(b.kept)+n <= b.limit {
			b.kept = append(b.kept, p[:n]...)
		} else {
			b.over, b.kept = true, nil
		}
	}
	if errors.Is(err, io.EOF) {
		b.eof = true
	} else if err != nil && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	return n, err
}

// readErr is the first error reading the client's body; nil if none, or if there is no body (b nil).
func (b *clientBody) readErr() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// keepUpTo keeps a body of at most limit bytes as it is read, for rewind.
func (b *clientBody) keepUpTo(limit int) { b.limit = limit }

// rewind returns a new reader of the whole body, for the next try; false when it was not kept whole (too long,
// not kept, or not yet read to its end by the client's upload).
func (b *clientBody) rewind() (io.ReadCloser, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit == 0 || b.over || !b.eof || b.err != nil {
		return nil, false
	}
	return io.NopCloser(bytes.NewReader(b.kept)), true
}

// ClientBodyStatus maps a request body error to nginx's status.
func ClientBodyStatus(err error) int {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout
	}
	return http.StatusBadRequest
}

// errReadTimeout marks an upstream that went silent longer than proxy_read_timeout.
var errReadTimeout = errors.New("upstream timed out (proxy_read_timeout)")

// target is where one request goes.
type target struct {
	scheme   string
	host     string // Host value for $proxy_host (as written in proxy_pass)
	group    *upstream.Group
	upstream *config.Upstream // the upstream block, nil for a proxy_pass address
	uri      string           // request target sent upstream
	rt       *resolved        // the route kept for this location (proxy_pass without variables), when kept
}

// Serve proxies pr and writes the response. It never panics on a bad upstream and always logs why a request
// failed.
func (p *Proxy) Serve(ctx context.Context, pr *Request) {
	var o *outgoing
	if st := pr.State; st != nil && !st.used {
		st.used = true // the first proxying of a request only: an error page proxied from inside it gets its own
		o = &st.out
	} else {
		o = new(outgoing)
	}
	t := &o.t
	if err := p.resolve(pr, t); err != nil {
		pr.Log.Error("proxy: "+err.Error(), pr.V.LogAttrs()...)
		status := http.StatusInternalServerError
		if _, ok := err.(errNoResolver); ok {
			status = http.StatusBadGateway // nginx's answer
		}
		pr.Error(status)
		return
	}
	pr.V.ProxyHost = t.host
	port := ""
	if pp := pr.Conf.Proxy; pp.Template == nil {
		port = pp.Port // known since the configuration was read ("" when proxy_pass names none)
	} else if _, pt, err := net.SplitHostPort(t.host); err == nil {
		port = pt
	}
	if port == "" {
		port = "80"
		if t.scheme == "https" {
			port = "443"
		}
	}
	pr.V.ProxyPort = port

	out, upgrade := p.outRequest(pr, o)
	if mt := pr.Conf.ProxyMethod.V; mt != nil {
		// proxy_method; a value from variables that is no method is not sent (nginx would send it as it is)
		if out.Method = mt.Eval(pr.V); !httpsyntax.Token(out.Method) {
			pr.Log.Error("proxy: invalid proxy_method "+strconv.Quote(out.Method), pr.V.LogAttrs()...)
			pr.Error(http.StatusInternalServerError)
			return
		}
	}
	if st := pr.State; st != nil && o == &st.out && out.Body != nil && out.Body != http.NoBody {
		st.sent = true
	}
	if _, ok := ExtendedConnect(pr.R); ok && upgrade == "" {
		// only WebSockets are bridged, and only where upgrades may pass: never send a CONNECT upstream
		pr.Log.Info("proxy: extended CONNECT for "+strconv.Quote(pr.R.Header.Get(":protocol"))+" refused", pr.V.LogAttrs()...)
		pr.Error(http.StatusNotImplemented)
		return
	}
	if upgrade != "" {
		p.serveUpgrade(ctx, pr, t, out)
		return
	}
	if pr.Cache != nil {
		p.serveCache(ctx, pr, o)
		return
	}
	p.serveHTTP(ctx, pr, o, nil)
}

// State is the storage a proxied request fills: the request sent upstream and the upstream's response, with
// their header maps. The caller keeps it with its own per-request state and reuses it, so that a request
// allocates none of it; it calls Reset once nothing can reach the request any more (the access log is
// written, no tunnel, no body still being sent).
type State struct {
	used bool // a Serve of this request has it
	// sent: the request went upstream with a body (proxy_set_body on a bodiless request, too), which the
	// transport writes from its own goroutine; that goroutine may outlive the request, so s is not reused
	sent bool
	out  outgoing
	rt   resolved // kept across requests
}

// resolved is what the proxy_pass (without variables) of one location resolves to under one set of upstreams:
// its peer group and, for plain HTTP, its pooled transport. A State keeps the last one, so a request to the
// location its state served before skips two locked map lookups.
type resolved struct {
	gen   uint64 // Proxy.gen when it was found (the transports)
	ugen  uint64 // the upstream Set's Gen (the groups)
	conf  *config.LocConf
	group *upstream.Group
	up    *config.Upstream
	tr    *Transport // nil until found (https transports are not kept: proxy_ssl_name may vary)
}

// kept returns pr's kept route when it is the one for pr's location and still current, else nil.
func (p *Proxy) kept(pr *Request) *resolved {
	if st := pr.State; st != nil && st.rt.conf == pr.Conf && st.rt.group != nil && st.rt.gen == p.gen.Load() && st.rt.ugen == p.ups.Gen() {
		return &st.rt
	}
	return nil
}

// Reusable reports whether s may serve another request (after Reset): not when a goroutine of the transport
// may still be sending its request.
func (s *State) Reusable() bool { return !s.sent }

// Reset makes s ready for the next request, keeping its header list and map cleared unless they grew large,
// and its route. Only a Reusable State may be reset.
func (s *State) Reset() {
	hl, vals, k, rt := s.out.hl, s.out.vals, s.out.body.st.kept(), s.rt
	*s = State{} // (State{rt: s.rt} built a second State and copied it: twice the work)
	s.rt = rt
	if cap(hl.kv) <= 64 && cap(vals) <= 64 {
		hl.reset()
		clear(vals)
		s.out.hl, s.out.vals = hl, vals[:0]
	}
	k.hdr = small(k.hdr)
	if cap(k.fields.kv) <= maxFields {
		k.fields.reset()
	} else {
		k.fields = headerList{}
	}
	s.out.body.st.restore(k)
}

// small clears h and returns it, or nil when it grew past the usual number of fields (a map keeps its size).
func small(h http.Header) http.Header {
	if len(h) > 32 {
		return nil
	}
	clear(h)
	return h
}

// outgoing is what Serve builds for one request, allocated in one piece: where it goes, what is sent, the
// walk over the upstream's peers and the response body's wrapper.
type outgoing struct {
	hl   headerList // req's header (req.Header is made from it only where net/http writes the request)
	vals []string   // storage of proxy_set_header's values
	t    target
	url  url.URL
	req  http.Request
	try  upstream.Try
	body body
}

// errNoResolver is a proxy_pass target whose host name, made from variables, would need a lookup where no
// resolver directive applies.
type errNoResolver struct{ host string }

func (e errNoResolver) Error() string { return "no resolver defined to resolve " + e.host }

// resolve computes the upstream peers and the URI to send into t.
func (p *Proxy) resolve(pr *Request, t *target) error {
	pp := pr.Conf.Proxy
	*t = target{scheme: pp.Scheme, host: pp.Host, upstream: pp.Upstream}
	hasURI, uri := pp.HasURI, pp.URI
	var gen, ugen uint64
	if pp.Template != nil {
		u, err := url.Parse(pp.Template.Eval(pr.V))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("invalid proxy_pass target %q", pp.Template.Eval(pr.V))
		}
		t.scheme, t.host = u.Scheme, u.Host
		hasURI, uri = u.RawPath != "" || u.Path != "", u.RequestURI()
		if g := p.ups.Group(u.Host); g != nil {
			t.group, t.upstream = g, g.Conf
		} else if _, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err != nil && !pr.Conf.HasResolver.Get(false) {
			// as nginx: a name made at request time (often from the client's Host) is looked up only where a
			// resolver is configured
			return errNoResolver{u.Hostname()}
		}
		if hasURI {
			// with variables, a URI in proxy_pass is the complete URI sent (nginx)
			t.uri = uri
		}
	} else if kept := p.kept(pr); kept != nil {
		t.group, t.upstream, t.rt = kept.group, kept.up, kept
	} else {
		gen, ugen = p.gen.Load(), p.ups.Gen() // before the lookups: a change during them leaves the route stale
		if t.upstream != nil {
			t.group = p.ups.Group(t.upstream.Name)
		}
	}
	if t.group == nil {
		t.upstream = nil
		t.group = p.ups.Implicit(config.PeerAddr(t.scheme, t.host), pp.Template == nil)
	}
	if t.rt == nil && pp.Template == nil && pr.State != nil {
		pr.State.rt = resolved{gen: gen, ugen: ugen, conf: pr.Conf, group: t.group, up: t.upstream}
		t.rt = &pr.State.rt
	}
	// nginx omits the default port from $proxy_host
	if pp.Template == nil {
		t.host = pp.ProxyHost
	} else if h, port, err := net.SplitHostPort(t.host); err == nil && ((t.scheme == "http" && port == "80") || (t.scheme == "https" && port == "443")) {
		t.host = h
	}
	if t.uri == "" {
		t.uri = requestURI(pr, hasURI, uri)
	}
	return nil
}

// requestURI applies nginx's proxy_pass URI rules: with a URI part, the matched location prefix of the
// normalised URI is replaced by it; without one, the client's URI passes unchanged. When rewrite changed the
// URI, the changed URI passes whole. What is sent is always the URI that location matching saw.
func requestURI(pr *Request, hasURI bool, uri string) string {
	v := pr.V
	args := v.Args
	var path string
	switch {
	case pr.URIChanged:
		path = route.EscapePath(v.URI)
	case hasURI && pr.Loc != nil && (pr.Loc.Modifier == route.Prefix || pr.Loc.Modifier == route.PrefixNoRegex || pr.Loc.Modifier == route.Exact):
		rest := strings.TrimPrefix(v.URI, pr.Loc.Pattern)
		path = uri + route.EscapePath(rest)
		if rest == "" {
			path = uri
		}
	case hasURI:
		path = uri
	default:
		raw := pr.R.URL.EscapedPath()
		if pr.R.RequestURI != "" && pr.R.RequestURI[0] == '/' {
			raw, _, _ = strings.Cut(pr.R.RequestURI, "?")
		}
		if canonical(raw, v.URI) {
			path = raw
		} else {
			path = route.EscapePath(v.URI)
		}
	}
	if args != "" {
		return path + "?" + args
	}
	return path
}

// canonical reports whether the raw path as the client sent it means exactly the normalised one (it differs
// only in harmless escaping), so it can be sent as is.
func canonical(raw, norm string) bool {
	if raw == norm {
		return true
	}
	if strings.Contains(raw, "//") || strings.Contains(raw, "/.") {
		return false
	}
	lower := strings.ToLower(raw)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%2e") || strings.Contains(lower, "%5c") {
		return false
	}
	dec, err := url.PathUnescape(raw)
	return err == nil && dec == norm
}

// outRequest builds the request sent upstream (o.req, for the target o.t) and says which protocol it upgrades
// to ("" for none).
func (p *Proxy) outRequest(pr *Request, o *outgoing) (*http.Request, string) {
	r, c, t := pr.R, pr.Conf, &o.t
	setTargetURL(&o.url, t)
	o.req = http.Request{
		Method:     r.Method,
		URL:        &o.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Host:       t.host,
	}
	out, hl := &o.req, &o.hl
	hl.reset()
	var conn, upg []string // the client's Connection and Upgrade values
	if c.ProxyPassReqHeaders.Get(true) {
		underscores := c.UnderscoresInHeaders.Get(false)
		for k, v := range r.Header {
			// hop-by-hop headers stay behind, and Expect: 100-continue is answered by sluice's own server when
			// the body is read; nginx's underscores_in_headers off: X_Real_IP must not pose as X-Real-IP to
			// CGI-style upstreams
			if isHop(k) || k == "Expect" || !underscores && strings.IndexByte(k, '_') >= 0 {
				switch k {
				case "Connection":
					conn = v
				case "Upgrade":
					upg = v
				}
				continue
			}
			hl.add(k, v)
		}
		if conn != nil {
			hl.removeNamed(conn) // the fields it names go too, found now that all are in the list
		}
	} else {
		conn, upg = r.Header["Connection"], r.Header["Upgrade"]
	}
	// the upstream sees "User-Agent" only when the client sent one
	if _, ok := hl.get("User-Agent"); !ok {
		hl.add("User-Agent", []string{""})
	}

	upgrade := ""
	if proto, ok := tunnel.RequestedProtocolOf(conn, upg, r.ProtoMajor, r.ProtoMinor); ok && p.mayUpgrade(pr) {
		upgrade = proto
	} else if proto, ok := ExtendedConnect(r); ok && proto == "websocket" && p.mayUpgrade(pr) {
		upgrade = proto
		asWebSocketUpgrade(out, hl)
	}
	host := t.host
	sets := c.ProxySetHeaders.V
	vals := o.vals[:0] // the values set, one backing array for all (kept for the next request)
	for _, hs := range sets {
		name := hs.Key
		switch name {
		case "Connection", "Upgrade", "Keep-Alive", "Te", "Transfer-Encoding", "Proxy-Connection":
			// hop-by-hop: sluice decides these (see docs/nginx-differences.md)
			continue
		case "Host":
			if val := hs.Value.Eval(pr.V); val != "" {
				host = val
			}
			continue
		}
		val := hs.Value.Eval(pr.V)
		again := hs.Again // a second line for a name adds a field, as in nginx
		switch {
		case val == "" && again:
		case val == "" && name == "User-Agent":
			hl.set(name, []string{""}) // present and empty: no default User-Agent is written either
		case val == "":
			hl.del(name)
		case again:
			vals = append(vals, val)
			hl.add(name, vals[len(vals)-1:len(vals):len(vals)])
		default:
			vals = append(vals, val)
			hl.set(name, vals[len(vals)-1:len(vals):len(vals)])
		}
	}
	o.vals = vals
	out.Host = host
	if upgrade != "" {
		hl.set("Connection", []string{"Upgrade"})
		hl.set("Upgrade", []string{upgrade}) // only the protocol chosen: never pass h2c along
	} else if c.ProxyHTTPVersion.Get("1.1") == "1.0" {
		out.Close = true
	}

	switch {
	case c.ProxySetBody.Set && c.ProxySetBody.V != nil:
		body := c.ProxySetBody.V.Eval(pr.V)
		out.Body = io.NopCloser(strings.NewReader(body))
		out.ContentLength = int64(len(body))
		hl.del("Transfer-Encoding")
	case !c.ProxyPassReqBody.Get(true) || upgrade != "":
		out.Body = http.NoBody
		out.ContentLength = 0
		hl.del("Content-Length")
	case r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0:
		pr.body = &clientBody{ReadCloser: r.Body}
		out.Body = pr.body
		out.ContentLength = r.ContentLength
	default:
		out.Body = http.NoBody
	}
	if out.ContentLength > 0 {
		hl.del("Content-Length") // the transport writes it from ContentLength
	}
	if upgrade != "" {
		out.Header = hl.header() // the handshake is written by net/http
	}
	return out, upgrade
}

// setTargetURL makes u the upstream URL. The request target is kept verbatim in Opaque, except that a target
// starting with "//" would be written as an absolute-form request line (http://evil/...), so it goes in Path
// instead.
func setTargetURL(u *url.URL, t *target) {
	*u = url.URL{Scheme: t.scheme, Host: t.host, Opaque: t.uri}
	if strings.HasPrefix(t.uri, "//") {
		path, query, _ := strings.Cut(t.uri, "?")
		dec, err := url.PathUnescape(path)
		if err != nil {
			dec = path
		}
		u.Opaque, u.Path, u.RawPath, u.RawQuery = "", dec, path, query
	}
}

// mayUpgrade: sluice tunnels upgrades by default (proxy_websocket on); with it off, the nginx magic lines
// (proxy_set_header Upgrade …) still enable it, as they do in nginx.
func (p *Proxy) mayUpgrade(pr *Request) bool {
	if pr.Conf.ProxyWebsocket.Get(true) {
		return true
	}
	for _, hs := range pr.Conf.ProxySetHeaders.V {
		if strings.EqualFold(hs.Name, "Upgrade") && hs.Value.Eval(pr.V) != "" {
			return true
		}
	}
	return false
}

// transport returns the pooled transport for a target: one per upstream group (or direct address scheme)
// and connect timeout; https pools are per location, since proxy_ssl_* may differ.
func (p *Proxy) transport(pr *Request, t *target) (*Transport, error) {
	c := pr.Conf
	if t.rt != nil && t.rt.tr != nil {
		return t.rt.tr, nil // the route kept for this location (see resolve) knows its transport
	}
	key := poolKey{scheme: t.scheme, upstream: t.upstream, connect: c.ProxyConnectTimeout.Get(config.ProxyDefaults.ConnectTimeout),
		send: c.ProxySendTimeout.Get(config.ProxyDefaults.SendTimeout)}
	if t.scheme == "https" {
		key.tls, key.name = c, sslName(pr, t)
	}
	key.keep = c.ProxySocketKeepalive.Get(false)
	var local *net.TCPAddr
	keep := t.rt != nil && t.scheme == "http" // the transport can be the location's route's
	if b := c.ProxyBind.V; b != nil {
		local = bindAddr(pr)
		if local != nil {
			key.bind = local.String()
		}
		keep = keep && b.Template == nil // with variables it is the request's
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if tr, ok := p.pools[key]; ok {
		if keep {
			t.rt.tr = tr
		}
		return tr, nil
	}
	if tr, ok := p.varPools[key]; ok {
		if keep {
			t.rt.tr = tr
		}
		return tr, nil
	}
	tr := &Transport{
		DialTimeout: key.connect,
		SendTimeout: key.send,
		MaxIdle:     128, // at least the client concurrency we expect: a smaller pool churns connections
		IdleTimeout: 60 * time.Second,
		MaxRequests: 1000,
		KeepAlive:   key.keep,
		LocalAddr:   local,
	}
	if u := t.upstream; u != nil {
		if u.Keepalive > 0 {
			tr.MaxIdle = u.Keepalive
		}
		if u.KeepaliveTimeout > 0 {
			tr.IdleTimeout = u.KeepaliveTimeout
		}
		tr.MaxRequests = u.KeepaliveRequests
	}
	if t.scheme == "https" {
		tc, err := UpstreamTLS(&c.ProxySSL, key.name)
		if err != nil {
			return nil, err
		}
		if c.ProxySSLSessionReuse.Get(true) {
			tc.ClientSessionCache = tls.NewLRUClientSessionCache(0) // the pool's connections resume its sessions
		}
		tr.TLS = tc
	}
	pools := p.pools
	if t.rt == nil || key.bind != "" && c.ProxyBind.V.Template != nil {
		// a key made from the request (proxy_pass, proxy_bind or proxy_ssl_name with variables) can take as
		// many values as clients choose: such pools are kept apart and start over past maxPools, leaving the
		// configuration's own pools alone (a transport still in use keeps working; idle connections close)
		pools = p.varPools
		if len(pools) >= maxPools {
			p.Log.Warn("proxy: more than " + strconv.Itoa(maxPools) + " upstream connection pools made from variables; closing their idle connections")
			for _, old := range pools {
				old.CloseIdle()
			}
			clear(pools)
		}
	}
	pools[key] = tr
	if keep {
		t.rt.tr = tr
	}
	return tr, nil
}

// maxPools bounds the transports p keeps (see transport).
const maxPools = 256

// bindAddr is proxy_bind's address for pr, nil for none: off, an empty value, or one that is no address (logged
// as nginx logs it, and the connection is made from no particular address).
func bindAddr(pr *Request) *net.TCPAddr {
	a, invalid := pr.Conf.ProxyBind.V.Local(pr.V)
	if invalid != "" {
		pr.Log.Error("proxy: invalid local address "+strconv.Quote(invalid), pr.V.LogAttrs()...)
	}
	return a
}

// sslName is proxy_ssl_name for this request (default $proxy_host without a port).
func sslName(pr *Request, t *target) string {
	if tp := pr.Conf.ProxySSL.Name.V; tp != nil {
		return tp.Eval(pr.V)
	}
	if h, _, err := net.SplitHostPort(t.host); err == nil {
		return h
	}
	return t.host
}

// UpstreamTLS builds the client TLS configuration for https:// (proxy_ssl_*) or grpcs:// (grpc_ssl_*)
// upstreams: the certificate is verified (verify on) for name, which is sent as SNI only with server_name on —
// as in nginx, where the two are separate (Go ties them together through ServerName, so verification is done
// here).
func UpstreamTLS(c *config.UpstreamSSL, name string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, CipherSuites: c.Ciphers.V}
	if c.ServerName.Get(false) && net.ParseIP(name) == nil {
		tc.ServerName = name
	}
	var roots *x509.CertPool
	if f := c.Trusted.V; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificates", f)
		}
	}
	if c.Verify.Get(false) {
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("upstream sent no certificate")
			}
			opts := x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			chains, err := cs.PeerCertificates[0].Verify(opts)
			if err != nil {
				return err
			}
			return checkChains(chains, c.VerifyDepth, c.CRL.V)
		}
	}
	if c.Certificate.V != "" {
		cert, err := certs.Load(c.Certificate.V, c.CertificateKey.V, c.Passwords.V)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{*cert}
	}
	return tc, nil
}

// checkChains applies *_ssl_verify_depth (when set) and *_ssl_crl to the chains a certificate verified
// through: one of them must pass both, else the failure of the last is the error.
func checkChains(chains [][]*x509.Certificate, depth config.Opt[int], crls certs.CRLs) error {
	if !depth.Set && crls == nil {
		return nil
	}
	var err error
	for _, ch := range chains {
		// a chain is the leaf, its intermediates and the trust anchor
		if depth.Set && len(ch)-2 > depth.V {
			err = certs.ErrChainTooDeep
			continue
		}
		if err = crls.Check(ch, time.Now()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("upstream SSL certificate verify error: (%w)", err)
}

func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
