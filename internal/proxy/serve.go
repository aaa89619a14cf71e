package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/tunnel"
)

// serveHTTP forwards an ordinary request through the pooled transport and streams the response back.
func (p *Proxy) serveHTTP(ctx context.Context, pr *Request, t *target, out *http.Request) {
	tr, err := p.transport(pr, t)
	if err != nil {
		pr.Log.Error("proxy: upstream TLS settings: "+err.Error(), pr.V.LogAttrs()...)
		pr.Error(http.StatusInternalServerError)
		return
	}
	readTimeout := pr.Conf.ProxyReadTimeout.Get(config.ProxyDefaults.ReadTimeout)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(readTimeout, func() { cancel(errReadTimeout) })
	defer timer.Stop()
	if pr.body != nil {
		pr.body.progress = func() { timer.Reset(readTimeout) }
	}
	out = out.WithContext(ctx)

	var resp *http.Response
	var addrs, statuses, times []string
	start := time.Now()
	peers := p.pick(t)
	for i, peer := range peers {
		out.URL.Host = peer
		tried := time.Now()
		resp, err = tr.RoundTrip(out)
		addrs = append(addrs, peer)
		if err == nil {
			statuses = append(statuses, itoa3(resp.StatusCode))
			times = append(times, fmtDur(time.Since(tried)))
			break
		}
		statuses = append(statuses, itoa3(statusFor(err)))
		times = append(times, fmtDur(time.Since(tried)))
		// only a connection that was never made is retried: nothing was sent (nginx's "error" condition)
		if !isDialError(err) || i == len(peers)-1 || (out.Body != nil && out.Body != http.NoBody) {
			break
		}
		pr.Log.Warn("proxy: connect() to "+peer+" failed, trying next upstream: "+err.Error(), pr.V.LogAttrs()...)
	}
	pr.V.UpstreamAddr = strings.Join(addrs, ", ")
	pr.V.UpstreamStatus = strings.Join(statuses, ", ")
	pr.V.UpstreamHeaderTime = fmtDur(time.Since(start))
	if err != nil {
		pr.V.UpstreamResponseTime = strings.Join(times, ", ")
		if cause := context.Cause(ctx); cause != nil && errors.Is(cause, errReadTimeout) {
			err = errReadTimeout
		}
		if pr.body != nil && pr.body.err != nil {
			status := clientBodyStatus(pr.body.err)
			pr.Log.Error("proxy: reading the client request body failed: "+pr.body.err.Error(), pr.V.LogAttrs()...)
			pr.Error(status)
			return
		}
		if pr.R.Context().Err() != nil {
			pr.Log.Info("proxy: client closed connection while waiting for upstream", pr.V.LogAttrs("upstream", out.URL.String())...)
			pr.V.Status = 499
			return
		}
		status := statusFor(err)
		pr.Log.Error("proxy: upstream request failed: "+err.Error(), pr.V.LogAttrs("upstream", t.scheme+"://"+pr.V.UpstreamAddr+t.uri)...)
		pr.Error(status)
		return
	}
	defer resp.Body.Close()
	pr.V.UpstreamHeader = resp.Header

	if pr.Intercept != nil && resp.StatusCode >= 300 && pr.Intercept(resp.StatusCode) {
		pr.Error(resp.StatusCode)
		return
	}

	h := pr.W.Header()
	p.copyResponseHeader(h, resp.Header, pr)
	if resp.ContentLength >= 0 && resp.Header.Get("Content-Length") == "" && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified && pr.R.Method != http.MethodHead {
		h.Set("Content-Length", itoa(resp.ContentLength))
	}
	if pr.Header != nil {
		pr.Header(resp.StatusCode)
	}
	pr.W.WriteHeader(resp.StatusCode)

	flushEach := !pr.Conf.ProxyBuffering.Get(true) || resp.Header.Get("X-Accel-Buffering") == "no" ||
		strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || resp.ContentLength == -1
	if strings.EqualFold(resp.Header.Get("X-Accel-Buffering"), "yes") {
		flushEach = false
	}
	_, err = p.stream(pr.W, resp.Body, flushEach, timer, readTimeout)
	pr.V.UpstreamResponseTime = fmtDur(time.Since(start))
	if err != nil && !errors.Is(err, io.EOF) {
		if context.Cause(ctx) != nil && errors.Is(context.Cause(ctx), errReadTimeout) {
			err = errReadTimeout
		}
		pr.Log.Error("proxy: upstream response body failed: "+err.Error(), pr.V.LogAttrs("upstream", t.scheme+"://"+pr.V.UpstreamAddr+t.uri)...)
		// the client must not take a truncated body for a whole one: abort the connection/stream
		panic(http.ErrAbortHandler)
	}
}

// stream copies the upstream body to the client through one pooled buffer, flushing every chunk when
// flushEach, and otherwise whenever the upstream has nothing more ready; it never holds more than one buffer.
func (p *Proxy) stream(w http.ResponseWriter, body io.Reader, flushEach bool, timer *time.Timer, readTimeout time.Duration) (int64, error) {
	bp := p.copyBufs.Get().(*[]byte)
	defer p.copyBufs.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	var total int64
	for {
		n, err := body.Read(buf)
		timer.Reset(readTimeout)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, nil // client went away; nothing to report upstream-side
			}
			total += int64(n)
			if flushEach || n < len(buf) {
				if ferr := rc.Flush(); ferr != nil {
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

// copyResponseHeader copies upstream response headers minus hop-by-hop and hidden ones, applying proxy_redirect.
func (p *Proxy) copyResponseHeader(dst, src http.Header, pr *Request) {
	hdr := src.Clone()
	removeHopHeaders(hdr)
	pass := pr.Conf.ProxyPassHeaders.V
	for _, name := range hiddenByDefault {
		if !containsFold(pass, name) {
			hdr.Del(name)
		}
	}
	for _, name := range pr.Conf.ProxyHideHeaders.V {
		hdr.Del(name)
	}
	for k, v := range hdr {
		dst[k] = v
	}
	if _, ok := hdr["Content-Type"]; !ok {
		dst["Content-Type"] = nil // as nginx: no type invented (net/http would sniff one, e.g. text/html)
	}
	if loc := dst.Get("Location"); loc != "" {
		dst.Set("Location", p.redirect(pr, loc))
	}
	if ref := dst.Get("Refresh"); ref != "" {
		dst.Set("Refresh", p.redirect(pr, ref))
	}
}

// redirect applies proxy_redirect to a Location/Refresh value.
func (p *Proxy) redirect(pr *Request, v string) string {
	rules := pr.Conf.ProxyRedirect
	if rules.Set && len(rules.V) == 0 {
		return v // off
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
				return to + v[len(from):]
			}
		case r.FromRe != nil:
			if m := r.FromRe.FindStringSubmatchIndex(v); m != nil {
				return string(r.FromRe.ExpandString(nil, r.To.Eval(pr.V), v, m))
			}
		default:
			if strings.HasPrefix(v, r.From) {
				return r.To.Eval(pr.V) + v[len(r.From):]
			}
		}
	}
	return v
}

// serveUpgrade dials the upstream, forwards the upgrade request, and opens a tunnel only when the upstream
// answered a valid 101; any other answer is relayed as a normal response and the client connection stays HTTP.
func (p *Proxy) serveUpgrade(ctx context.Context, pr *Request, t *target, out *http.Request) {
	c := pr.Conf
	connectTimeout := c.ProxyConnectTimeout.Get(config.ProxyDefaults.ConnectTimeout)
	readTimeout := c.ProxyReadTimeout.Get(config.ProxyDefaults.ReadTimeout)
	peers := p.pick(t)
	var conn net.Conn
	var err error
	var addrs []string
	start := time.Now()
	for _, peer := range peers {
		addrs = append(addrs, peer)
		d := net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
		conn, err = d.DialContext(ctx, "tcp", peer)
		if err == nil {
			break
		}
		pr.Log.Warn("proxy: connect() to "+peer+" failed: "+err.Error(), pr.V.LogAttrs()...)
	}
	pr.V.UpstreamAddr = strings.Join(addrs, ", ")
	pr.V.UpstreamConnectTime = fmtDur(time.Since(start))
	if err != nil {
		pr.V.UpstreamStatus = itoa3(statusFor(err))
		pr.Error(statusFor(err))
		return
	}
	if t.scheme == "https" {
		tc, terr := upstreamTLS(c, sslName(pr, t))
		if terr != nil {
			conn.Close()
			pr.Log.Error("proxy: upstream TLS settings: "+terr.Error(), pr.V.LogAttrs()...)
			pr.Error(http.StatusInternalServerError)
			return
		}
		tconn := tls.Client(conn, tc)
		conn = tconn
	}
	conn.SetDeadline(time.Now().Add(readTimeout))
	out.URL.Host = addrs[len(addrs)-1]
	if err := out.Write(conn); err != nil {
		conn.Close()
		pr.Log.Error("proxy: sending upgrade request failed: "+err.Error(), pr.V.LogAttrs()...)
		pr.V.UpstreamStatus = itoa3(statusFor(err))
		pr.Error(statusFor(err))
		return
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, out)
	if err != nil {
		conn.Close()
		pr.Log.Error("proxy: upstream sent an invalid response to the upgrade: "+err.Error(), pr.V.LogAttrs()...)
		pr.V.UpstreamStatus = itoa3(statusFor(err))
		pr.Error(statusFor(err))
		return
	}
	pr.V.UpstreamStatus = itoa3(resp.StatusCode)
	pr.V.UpstreamHeaderTime = fmtDur(time.Since(start))
	pr.V.UpstreamHeader = resp.Header

	if resp.StatusCode != http.StatusSwitchingProtocols {
		// a refusal: relay it as an ordinary response; the client connection goes on as HTTP
		defer conn.Close()
		defer resp.Body.Close()
		h := pr.W.Header()
		p.copyResponseHeader(h, resp.Header, pr)
		if resp.ContentLength >= 0 {
			h.Set("Content-Length", itoa(resp.ContentLength))
		}
		if pr.Header != nil {
			pr.Header(resp.StatusCode)
		}
		pr.W.WriteHeader(resp.StatusCode)
		conn.SetDeadline(time.Time{}) // the timer below bounds each read instead
		timer := time.AfterFunc(readTimeout, func() { conn.Close() })
		defer timer.Stop()
		if _, err := p.stream(pr.W, resp.Body, true, timer, readTimeout); err != nil {
			pr.Log.Error("proxy: upstream response body failed: "+err.Error(), pr.V.LogAttrs()...)
			panic(http.ErrAbortHandler) // never present a cut-off body as complete
		}
		return
	}
	if err := tunnel.CheckResponse(out.Header, resp); err != nil {
		conn.Close()
		pr.Log.Error("proxy: upstream's 101 rejected: "+err.Error(), pr.V.LogAttrs("upstream", "http://"+pr.V.UpstreamAddr+t.uri)...)
		pr.V.UpstreamStatus = "101"
		pr.Error(http.StatusBadGateway)
		return
	}
	conn.SetDeadline(time.Time{})

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
		if !containsFold(pr.Conf.ProxyPassHeaders.V, name) {
			hdr.Del(name)
		}
	}
	hdr.Set("Connection", "upgrade")
	hdr.Set("Upgrade", resp.Header.Get("Upgrade"))
	if pr.Header != nil {
		// add_header applies to the 101 only with always; let the server decide on the writer's header map
		rw := pr.W.Header()
		for k, v := range rw {
			if _, exists := hdr[k]; !exists {
				hdr[k] = v
			}
		}
	}
	bw := brw.Writer
	bw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	hdr.Write(bw)
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
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
	run := func() {
		stats := tunnel.Run(tctx, client, conn, clientBuffered, upstreamBuffered, tunnel.Options{IdleTimeout: idle, Pool: p.bufs})
		done()
		v.BodyBytesSent = stats.UpstreamToClient
		v.UpstreamResponseTime = fmtDur(time.Since(start))
		log.Info("proxy: tunnel closed: "+stats.Reason, v.LogAttrs("upstream", target)...)
	}
	if pr.Detach != nil {
		pr.Detach(run)
		return
	}
	run()
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

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func itoa3(n int) string { return strconv.Itoa(n) }
