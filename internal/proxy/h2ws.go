package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/tunnel"
)

// ExtendedConnect returns the protocol (lower-cased) of an HTTP/2 or HTTP/3 extended CONNECT request
// (RFC 8441, RFC 9220: CONNECT with a :protocol pseudo-header), the way browsers open WebSockets on such
// connections. Its request body is the client's half of the tunnel and is never limited like a body.
func ExtendedConnect(r *http.Request) (string, bool) {
	if r.Method != http.MethodConnect || r.ProtoMajor < 2 {
		return "", false
	}
	p := r.Header.Get(":protocol") // net/http's HTTP/2 server
	if r.ProtoMajor == 3 && r.Proto != "HTTP/3.0" {
		p = r.Proto // quic-go's HTTP/3 server puts :protocol in Proto
	}
	if p == "" {
		return "", false
	}
	return strings.ToLower(p), true
}

// asWebSocketUpgrade turns the upstream request built from an extended CONNECT into the HTTP/1.1 WebSocket
// handshake (RFC 8441 §5): GET with Upgrade: websocket and a fresh Sec-WebSocket-Key, which CheckResponse then
// verifies the upstream's Accept against. Sec-WebSocket-Version, -Protocol and -Extensions pass as the client
// sent them.
func asWebSocketUpgrade(out *http.Request, hl *headerList) {
	out.Method = http.MethodGet
	hl.del(":protocol")
	var key [16]byte
	rand.Read(key[:])
	hl.set("Sec-Websocket-Key", []string{base64.StdEncoding.EncodeToString(key[:])})
	if v, _ := hl.get("Sec-Websocket-Version"); len(v) == 0 || v[0] == "" {
		hl.set("Sec-Websocket-Version", []string{"13"})
	}
}

// serveStreamTunnel answers an extended CONNECT whose upstream switched protocols with 200 and tunnels bytes
// between the HTTP/2 stream and the upstream connection until either ends. It runs on the handler's goroutine:
// the stream lives as long as the handler.
func (p *Proxy) serveStreamTunnel(pr *Request, t *target, conn net.Conn, resp *http.Response, upstreamBuffered []byte, start time.Time, peer string) {
	h := pr.W.Header()
	p.copyResponseHeader(h, resp.Header, nil, pr)
	h.Del("Sec-Websocket-Accept") // HTTP/1.1 handshake detail; an HTTP/2 client has no key to check it against
	h.Del("Content-Length")
	if pr.Header != nil {
		pr.Header(http.StatusOK)
	}
	pr.W.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(pr.W)
	if err := rc.Flush(); err != nil {
		conn.Close()
		return
	}
	pr.V.Status = http.StatusOK

	c := pr.Conf
	idle := c.ProxyTunnelTimeout.Get(config.ProxyDefaults.TunnelTimeout)
	if c.ProxyReadTimeout.Set && c.ProxyReadTimeout.V < idle {
		idle = c.ProxyReadTimeout.V
	}
	stream := &streamConn{body: pr.R.Body, w: pr.W, rc: rc}
	tctx, done := p.Tracker.Track(context.Background(), tunnel.Meta{Location: pr.Loc.Name(), Upstream: upstreamName(t), Peer: peer})
	stats := tunnel.Run(tctx, stream, conn, nil, upstreamBuffered, tunnel.Options{IdleTimeout: idle, Pool: p.bufs})
	done()
	pr.V.BodyBytesSent = stats.UpstreamToClient
	pr.V.UpstreamResponseTime = pr.V.UpstreamSince(start)
	pr.Log.Info("proxy: tunnel closed: "+stats.Reason, pr.V.LogAttrs("upstream", "http://"+pr.V.UpstreamAddr+t.uri)...)
}

// streamConn is the client side of an HTTP/2 (or HTTP/3) extended CONNECT stream as a net.Conn: reads come from
// the request body, writes go to the response and are flushed at once. The server's flow control applies to
// both (a read returns window to the client; a write waits for the client's window). Close ends reading; the
// stream itself ends when the handler returns.
type streamConn struct {
	body io.ReadCloser
	w    http.ResponseWriter
	rc   *http.ResponseController
}

func (s *streamConn) Read(b []byte) (int, error) { return s.body.Read(b) }

func (s *streamConn) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	if err != nil {
		return n, err
	}
	return n, s.rc.Flush()
}

func (s *streamConn) Close() error { return s.body.Close() }

func (s *streamConn) LocalAddr() net.Addr  { return streamAddr{} }
func (s *streamConn) RemoteAddr() net.Addr { return streamAddr{} }

func (s *streamConn) SetDeadline(t time.Time) error {
	s.rc.SetReadDeadline(t)
	return s.rc.SetWriteDeadline(t)
}
func (s *streamConn) SetReadDeadline(t time.Time) error  { return s.rc.SetReadDeadline(t) }
func (s *streamConn) SetWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }

type streamAddr struct{}

func (streamAddr) Network() string { return "http2-stream" }
func (streamAddr) String() string  { return "http2-stream" }
