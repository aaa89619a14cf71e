// Package grpc is the grpc_pass content handler: nginx's ngx_http_grpc_module. A request from an HTTP/2 (or
// HTTP/3) client is passed to a gRPC server over HTTP/2, cleartext (grpc://, h2c) or TLS (grpcs://), with the
// request and response bodies streaming both ways at once (gRPC's bidirectional streams) and the server's
// trailers (grpc-status, grpc-message) relayed as the response's trailers.
//
// Connections to the servers are HTTP/2 and multiplexed: net/http's transport limited to HTTP/2 (h2c for
// grpc://), one per location, dialling the peer the upstream group chose (the balancing policy and passive health are the
// same as proxy_pass's).
package grpc

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/proxy"
	"github.com/sluice-proxy/sluice/internal/upstream"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// Handler passes requests to gRPC servers; it outlives requests (it holds the connections).
type Handler struct {
	Log *slog.Logger
	// Upstreams holds the upstream groups (balancing, passive health) shared with proxy_pass.
	Upstreams *upstream.Set

	transports sync.Map  // *config.LocConf → *http.Transport: per location, its timeouts and TLS settings
	bufs       sync.Pool // *[]byte response copy buffers
}

// NewHandler returns a handler with no connections yet.
func NewHandler(log *slog.Logger) *Handler {
	h := &Handler{Log: log}
	h.bufs.New = func() any { b := make([]byte, 16<<10); return &b }
	return h
}

// Request is one request to pass to a gRPC server.
type Request struct {
	W    http.ResponseWriter
	R    *http.Request
	V    *vars.Request
	Conf *config.LocConf
	// URIChanged: a rewrite changed the URI, so :path is $uri (escaped) and the arguments, not the request's
	// own target (nginx's valid_unparsed_uri).
	URIChanged bool
	// Error produces the special response for status (error_page or the default page).
	Error func(status int)
	// Intercept reports whether a status from the server should be replaced by an error page.
	Intercept func(status int) bool
	Log       *slog.Logger
}

// hiddenByDefault are the response fields nginx's grpc module does not pass unless grpc_pass_header names them.
var hiddenByDefault = []string{"Date", "Server", "X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset"}

// notForwarded are the client's fields nginx's grpc module never sends (its default grpc_set_header list): the
// connection's own, Host (it becomes :authority) and Content-Length (the transport frames the body).
var notForwarded = map[string]bool{"Host": true, "Connection": true, "Proxy-Connection": true, "Transfer-Encoding": true,
	"Keep-Alive": true, "Expect": true, "Upgrade": true, "Te": true, "Content-Length": true,
	"Http2-Settings": true, "Proxy-Authenticate": true, "Proxy-Authorization": true, "Trailer": true}

// CloseIdle closes the idle connections of every location's transport and forgets them: after a reload the
// locations are new, and requests still running on the old ones finish on their connections.
func (h *Handler) CloseIdle() {
	h.transports.Range(func(k, t any) bool {
		h.transports.Delete(k)
		t.(*http.Transport).CloseIdleConnections()
		return true
	})
}

// dialError marks a failure to connect: nothing of the request was sent, so another peer may be tried.
type dialError struct {
	err     error
	timeout bool
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// transport is the location's HTTP/2 client transport, made on first use.
func (h *Handler) transport(c *config.LocConf) (*http.Transport, error) {
	if t, ok := h.transports.Load(c); ok {
		return t.(*http.Transport), nil
	}
	gp := c.GRPC
	var tlsConf *tls.Config
	if gp.TLS {
		name := hostOf(gp)
		if tp := c.GRPCSSL.Name.V; tp != nil {
			name = tp.Eval(nil) // (no variables: grpc_ssl_name is read once per location)
		}
		tc, err := proxy.UpstreamTLS(&c.GRPCSSL, name)
		if err != nil {
			return nil, err
		}
		tc.NextProtos = []string{"h2"}
		tlsConf = tc
	}
	connect := c.GRPCConnectTimeout.Get(60 * time.Second)
	// the address in the request's URL is the peer to dial (see peerHost)
	dial := func(ctx context.Context, host string) (net.Conn, error) {
		network, addr := dialAddr(host)
		d := net.Dialer{Timeout: connect}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			var ne net.Error
			return nil, &dialError{err: err, timeout: errors.As(err, &ne) && ne.Timeout()}
		}
		return conn, nil
	}
	var protos http.Protocols
	t := &http.Transport{
		Protocols:          &protos,
		DisableCompression: true, // the body goes through as the server framed it
		HTTP2:              &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
		IdleConnTimeout:    5 * time.Minute,
		// a head larger than this is a 502 (nginx: larger than grpc_buffer_size, 4k or 8k)
		MaxResponseHeaderBytes: 64 << 10,
	}
	if tlsConf == nil {
		protos.SetUnencryptedHTTP2(true) // grpc:// is h2c with prior knowledge
		t.DialContext = func(ctx context.Context, _, host string) (net.Conn, error) { return dial(ctx, host) }
	} else {
		protos.SetHTTP2(true)
		t.DialTLSContext = func(ctx context.Context, _, host string) (net.Conn, error) {
			conn, err := dial(ctx, host)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, tlsConf)
			hctx, cancel := context.WithTimeout(ctx, connect)
			defer cancel()
			if err := tc.HandshakeContext(hctx); err != nil {
				conn.Close()
				return nil, &dialError{err: errors.New("SSL handshake failed: " + err.Error()), timeout: hctx.Err() != nil}
			}
			return tc, nil
		}
	}
	if prev, loaded := h.transports.LoadOrStore(c, t); loaded {
		return prev.(*http.Transport), nil // another request made the location's first
	}
	return t, nil
}

// peerHost is the URL host that names a peer to DialTLSContext: its host:port, or a unix socket's path in hex
// (a path is not a host).
func peerHost(network, addr string) string {
	if network == "unix" {
		return "unix-" + hex.EncodeToString([]byte(addr)) + ".invalid:1"
	}
	return addr
}

// dialAddr undoes peerHost.
func dialAddr(host string) (network, addr string) {
	if h, ok := strings.CutPrefix(host, "unix-"); ok {
		if p, err := hex.DecodeString(strings.TrimSuffix(h, ".invalid:1")); err == nil {
			return "unix", string(p)
		}
	}
	return "tcp", host
}

// hostOf is :authority when grpc_set_header Host does not set it: grpc_pass's host and port as written (an
// upstream group's name; "localhost" for a unix socket), as in nginx.
func hostOf(gp *config.GRPCPass) string {
	if gp.Network == "unix" {
		return "localhost"
	}
	return gp.Addr
}

// Serve passes the request to the gRPC server and streams its answer, trailers included, to the client.
func (h *Handler) Serve(ctx context.Context, gr *Request) {
	c, v, r := gr.Conf, gr.V, gr.R
	tr, err := h.transport(c)
	if err != nil {
		gr.Log.Error("grpc: "+err.Error(), v.LogAttrs()...)
		gr.Error(http.StatusInternalServerError)
		return
	}
	out, ok := h.outRequest(gr)
	if !ok {
		gr.Error(http.StatusInternalServerError)
		return
	}
	// the request's own context ends the stream to the server when the client goes (RST_STREAM both ways);
	// grpc_read_timeout ends it when the server is silent too long
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	silent := newReadTimer(c.GRPCReadTimeout.Get(60*time.Second), cancel, out.Body == nil)
	defer silent.t.Stop()
	if out.Body != nil {
		out.Body = sentBody{out.Body, silent}
	}

	start := time.Now()
	resp, hold, err := h.roundTrip(sctx, gr, tr, out)
	defer hold.End()
	v.UpstreamHeaderTime = v.UpstreamSince(start)
	if err != nil {
		v.UpstreamResponseTime = v.UpstreamHeaderTime
		timedOut := silent.fired.Load() && ctx.Err() == nil
		h.fail(gr, err, timedOut)
		return
	}
	defer resp.Body.Close()
	v.UpstreamHeader = resp.Header
	if gr.Intercept != nil && resp.StatusCode >= 300 && c.GRPCInterceptErrors.Get(false) && gr.Intercept(resp.StatusCode) {
		gr.Error(resp.StatusCode)
		return
	}
	hdr := gr.W.Header()
	proxy.RemoveHopHeaders(resp.Header)
	for _, name := range hiddenByDefault {
		if !httpsyntax.ContainsFold(c.GRPCPassHeaders.V, name) {
			delete(resp.Header, name)
		}
	}
	for _, name := range c.GRPCHideHeaders.V {
		resp.Header.Del(name)
	}
	for k, vv := range resp.Header {
		hdr[k] = vv
	}
	gr.W.WriteHeader(resp.StatusCode)
	err = h.stream(gr.W, resp.Body, silent)
	v.UpstreamResponseTime = v.UpstreamSince(start)
	if err != nil {
		if ctx.Err() != nil {
			gr.Log.Info("grpc: client closed stream while the upstream was sending the response", v.LogAttrs()...)
			v.Status = 499
		} else if sctx.Err() != nil {
			gr.Log.Error("grpc: upstream timed out (grpc_read_timeout) while reading upstream", v.LogAttrs("upstream", upstreamURL(c.GRPC, v.UpstreamAddr))...)
		} else {
			gr.Log.Error("grpc: upstream response failed: "+err.Error(), v.LogAttrs("upstream", upstreamURL(c.GRPC, v.UpstreamAddr))...)
		}
		panic(http.ErrAbortHandler) // the stream is reset: never present a cut-off response as complete
	}
	// the trailers (grpc-status and grpc-message): HTTP/1.x clients get none (sluice's HTTP/1 writer sends no
	// trailers; gRPC needs HTTP/2)
	if r.ProtoMajor >= 2 {
		for k, vv := range resp.Trailer {
			hdr[http.TrailerPrefix+k] = vv
		}
	}
}

// outRequest is the request sent to the server, without its URL's host (the peer, set per try).
func (h *Handler) outRequest(gr *Request) (*http.Request, bool) {
	c, v, r := gr.Conf, gr.V, gr.R
	path := r.RequestURI
	if gr.URIChanged || path == "" || path[0] != '/' {
		path = (&url.URL{Path: v.URI}).EscapedPath()
		if v.Args != "" {
			path += "?" + v.Args
		}
	}
	scheme := "http"
	if c.GRPC.TLS {
		scheme = "https"
	}
	out := &http.Request{
		Method: r.Method, Proto: "HTTP/2.0", ProtoMajor: 2,
		URL:    &url.URL{Scheme: scheme, Opaque: path},
		Header: make(http.Header, len(r.Header)),
		Host:   hostOf(c.GRPC),
	}
	underscores := c.UnderscoresInHeaders.Get(false)
	for k, vv := range r.Header {
		if notForwarded[k] || !underscores && strings.IndexByte(k, '_') >= 0 {
			continue
		}
		out.Header[k] = vv
	}
	if conn := r.Header["Connection"]; conn != nil {
		for _, v := range conn {
			for _, name := range strings.Split(v, ",") {
				delete(out.Header, textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name)))
			}
		}
	}
	// TE: trailers goes on when the client sent it (nginx's $grpc_internal_trailers); gRPC servers want it
	for _, te := range r.Header["Te"] {
		if slices.ContainsFunc(strings.Split(te, ","), func(t string) bool { return strings.EqualFold(strings.TrimSpace(t), "trailers") }) {
			out.Header["Te"] = []string{"trailers"}
		}
	}
	for _, hs := range c.GRPCSetHeaders.V {
		val := hs.Value.Eval(v)
		if hs.Key == "Host" {
			if val != "" {
				out.Host = val
			}
			continue
		}
		if !hs.Again {
			delete(out.Header, hs.Key)
		}
		if val != "" {
			out.Header[hs.Key] = append(out.Header[hs.Key], val)
		}
	}
	if !httpguardValid(out.Host) {
		gr.Log.Error("grpc: invalid :authority "+strconv.Quote(out.Host), v.LogAttrs()...)
		return nil, false
	}
	if r.Body != nil && r.Body != http.NoBody {
		// the transport closes a body it failed to send, which would end the client's body before another
		// peer could be tried; the server closes the client's body when the request ends
		out.Body, out.ContentLength = io.NopCloser(r.Body), r.ContentLength
		if out.ContentLength == 0 {
			out.ContentLength = -1 // unknown (an HTTP/2 request without content-length)
		}
	}
	return out, true
}

// httpguardValid reports whether s can be sent as :authority.
func httpguardValid(s string) bool {
	return s != "" && httpsyntax.Value(s) && !strings.ContainsAny(s, " \t/?#@")
}

// roundTrip sends out to the location's server, or to the peers of its upstream group in turn, going on to
// the next only when connecting failed (nothing was sent) and grpc_next_upstream allows it. The hold is on the
// chosen peer's connection count.
func (h *Handler) roundTrip(ctx context.Context, gr *Request, tr *http.Transport, out *http.Request) (*http.Response, upstream.Hold, error) {
	c, v := gr.Conf, gr.V
	gp := c.GRPC
	prevAddr, prevStatus := v.UpstreamAddr, v.UpstreamStatus
	if prevAddr != "" {
		prevStatus = cmp.Or(prevStatus, "-") // (a pass that got no status)
	}
	chain := vars.AfterPass
	var g *upstream.Group
	if gp.Upstream != nil && h.Upstreams != nil {
		g = h.Upstreams.Group(gp.Upstream.Name)
	}
	out = out.WithContext(ctx)
	if g == nil {
		out.URL.Host = peerHost(gp.Network, gp.Addr)
		addr := gp.Addr
		if gp.Network == "unix" {
			addr = "unix:" + gp.Addr
		}
		v.UpstreamAddr = chain(prevAddr, addr)
		resp, err := tr.RoundTrip(out)
		if err == nil {
			v.UpstreamStatus = chain(prevStatus, strconv.Itoa(resp.StatusCode))
		} else if prevAddr != "" {
			v.UpstreamStatus = chain(prevStatus, "-")
		}
		return resp, upstream.Hold{}, err
	}
	nu := c.GRPCNextUpstream.Get(config.NextUpstream{Error: true, Timeout: true})
	k := upstream.Key{Client: v.RemoteAddr.Addr()}
	if gp.Upstream.HashKey != nil {
		k.Hash = gp.Upstream.HashKey.Eval(v)
	}
	try := g.Begin(k)
	tries := c.GRPCNextTries.Get(0)
	var addrs, statuses []string
	defer func() {
		v.UpstreamAddr, v.UpstreamStatus = chain(prevAddr, strings.Join(addrs, ", ")), chain(prevStatus, strings.Join(statuses, ", "))
	}()
	for {
		peer := try.Next()
		if peer == nil {
			addrs = append(addrs, gp.Upstream.Name)
			statuses = append(statuses, "502")
			return nil, upstream.Hold{}, errors.New("no live upstreams")
		}
		network, addr := peer.Network()
		o := *out
		u := *out.URL
		u.Host = peerHost(network, addr)
		o.URL = &u
		addrs = append(addrs, peer.Addr)
		resp, err := tr.RoundTrip(&o)
		if err == nil {
			statuses = append(statuses, strconv.Itoa(resp.StatusCode))
			return resp, try.Done(upstream.Success), nil
		}
		var de *dialError
		if !errors.As(err, &de) {
			// sent, or the client went: the server is not to blame, and nothing is retried
			statuses = append(statuses, "502")
			try.Done(upstream.Success).End()
			return nil, upstream.Hold{}, err
		}
		try.Done(upstream.Failed).End()
		statuses = append(statuses, "502")
		if !(de.timeout && nu.Timeout || !de.timeout && nu.Error) || try.Left() == 0 || tries > 0 && len(addrs) >= tries || ctx.Err() != nil {
			return nil, upstream.Hold{}, err
		}
		gr.Log.Error("grpc: connect() to "+peer.Addr+" failed, trying next upstream: "+err.Error(), v.LogAttrs()...)
	}
}

// fail answers an exchange that produced no response header, with nginx's status choice and log wording.
func (h *Handler) fail(gr *Request, err error, timedOut bool) {
	v := gr.V
	if gr.R.Context().Err() != nil {
		gr.Log.Info("grpc: client closed stream while waiting for upstream", v.LogAttrs()...)
		v.Status = 499
		return
	}
	var de *dialError
	status := http.StatusBadGateway
	switch {
	case timedOut:
		status, err = http.StatusGatewayTimeout, errors.New("upstream timed out (grpc_read_timeout) while reading response header from upstream")
	case errors.As(err, &de) && de.timeout:
		status, err = http.StatusGatewayTimeout, errors.New("upstream timed out (grpc_connect_timeout) while connecting to upstream")
	case errors.As(err, &de):
		err = errors.New("connect() failed: " + de.err.Error())
	}
	if v.UpstreamStatus == "" {
		v.UpstreamStatus = httpsyntax.Status(status)
	}
	gr.Log.Error("grpc: "+err.Error(), v.LogAttrs("upstream", upstreamURL(gr.Conf.GRPC, v.UpstreamAddr))...)
	gr.Error(status)
}

func upstreamURL(gp *config.GRPCPass, addr string) string {
	if gp.TLS {
		return "grpcs://" + addr
	}
	return "grpc://" + addr
}

// readTimer is grpc_read_timeout: how long the server may be silent. As nginx's read timer it runs once the
// request body has been sent whole (a client stream may be sent for as long as the client likes, and a server
// may answer only at its end), and starts again after every read of the response.
type readTimer struct {
	t     *time.Timer
	d     time.Duration
	sent  atomic.Bool // the request body has been sent whole
	fired atomic.Bool
}

func newReadTimer(d time.Duration, cancel func(), sent bool) *readTimer {
	rt := &readTimer{d: d}
	rt.sent.Store(sent)
	rt.t = time.AfterFunc(d, func() {
		rt.fired.Store(true)
		cancel()
	})
	if !sent {
		rt.t.Stop()
	}
	return rt
}

// rearm starts the timer again from now, once the request body has been sent.
func (rt *readTimer) rearm() {
	if rt.sent.Load() {
		rt.t.Reset(rt.d)
	}
}

// sentBody is the request body as the transport reads it: its end starts the read timer.
type sentBody struct {
	io.ReadCloser
	rt *readTimer
}

func (b sentBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.rt.sent.Swap(true) {
		b.rt.t.Reset(b.rt.d)
	}
	return n, err
}

// stream copies the response body to the client as it comes, flushing a chunk at once unless the next one is
// already there: a stream's messages reach the client when the server sends them, and a unary call's message
// goes out with its trailers in one write (each flush is a system call of its own). A goroutine reads the body
// so that the copy can tell whether more is ready; each read re-arms the read timer.
func (h *Handler) stream(w http.ResponseWriter, body io.Reader, silent *readTimer) error {
	type chunk struct {
		buf *[]byte
		n   int
		err error
	}
	chunks := make(chan chunk, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			bp := h.bufs.Get().(*[]byte)
			silent.rearm()
			n, err := body.Read(*bp)
			silent.t.Stop() // (the wait for the client to take the chunk is not the server's silence)
			select {
			case chunks <- chunk{bp, n, err}:
			case <-done:
				h.bufs.Put(bp)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	rc := http.NewResponseController(w)
	c := <-chunks
	for {
		if c.n > 0 {
			_, werr := w.Write((*c.buf)[:c.n])
			if werr != nil {
				h.bufs.Put(c.buf)
				return werr
			}
		}
		h.bufs.Put(c.buf)
		if c.err == io.EOF {
			return nil // (the server flushes what is left, with the trailers, when the handler returns)
		}
		if c.err != nil {
			return c.err
		}
		select {
		case c = <-chunks:
			continue // more is there: written with this one
		default:
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		c = <-chunks
	}
}
