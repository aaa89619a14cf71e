package server

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/h1"
	"github.com/sluice-proxy/sluice/internal/h1guard"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/route"
)

// guard wraps a plain HTTP/1.x connection in the request-framing guard: heads with ambiguous framing
// (Content-Length with Transfer-Encoding, obs-fold, bare CR/LF, …) are refused before net/http, which would
// repair them, parses them.
func (s *Server) guard(c net.Conn, g *group) net.Conn {
	maxHead := http.DefaultMaxHeaderBytes
	if g != nil {
		maxHead = g.maxHeaderBytes
	}
	gc := h1guard.Wrap(c, maxHead)
	gc.OnWriteTimeout = s.sendTimedOut
	return gc
}

// sendTimedOut logs a write to the client that waited send_timeout, as nginx does (the connection then closes).
func (s *Server) sendTimedOut(c net.Conn) { s.logSendTimeout(c.RemoteAddr().String()) }

// logSendTimeout logs nginx's line for a response write to client that waited send_timeout.
func (s *Server) logSendTimeout(client string) {
	s.log.Info("client timed out (110: Connection timed out) while sending response to client, client: " + client)
}

// refuse answers a request head refused before a server was chosen (by the framing guard, or by the HTTP/1
// server after parsing it: two Host headers, an unknown transfer coding, …) as nginx does (its error page,
// Connection: close), logs it at info in the error log and writes its access log line. As in nginx, the server
// is the one the Host header chose when it came before the refusal, else the default server of the address:
// its server_tokens and access_log apply.
func (s *Server) refuse(ctx context.Context, c net.Conn, r h1.Refusal) {
	ci, _ := ctx.Value(connInfoKey{}).(*connInfo)
	req := refusedRequest(r, ci)
	snap := s.snap.Load()
	var srv *config.Server
	if ci != nil {
		if g := snap.groupFor(addrOf(ci), ci.localKey); g != nil {
			srv, _, _ = g.index.Select("")
			if host, ok := route.CleanHost(req.Host); ok && req.Host != "" {
				srv, _, _ = g.index.SelectClean(host)
			}
		}
	}
	tokens := srv == nil || srv.Loc.ServerTokens.Get(true)
	body, _ := errorPage(r.Status, tokens)
	status := r.Status
	if status == 494 {
		status = http.StatusBadRequest // nginx's "Request Header Or Cookie Too Large" goes out as a 400
	}
	sh := s.serverHeader[0][0]
	if tokens {
		sh = s.serverHeader[1][0]
	}
	head := "HTTP/1.1 " + strconv.Itoa(status) + " " + httpsyntax.Reason(status) + "\r\nServer: " + sh + "\r\nDate: " +
		time.Now().UTC().Format(http.TimeFormat) + "\r\nContent-Type: text/html\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n"
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	n, _ := c.Write([]byte(head + body))
	s.log.Info("client sent " + r.Reason + " while reading client request headers, client: " + c.RemoteAddr().String())
	if srv != nil {
		s.logRefused(snap, srv, ci, req, r.Line, status, int64(n), int64(max(n-len(head), 0)))
	}
}

// refusedRequest is what is known of a refused request: the parts of its request line, when it has three, and
// the header fields read before the refusal.
func refusedRequest(r h1.Refusal, ci *connInfo) *http.Request {
	req := &http.Request{Header: r.Header, ProtoMajor: 1, ProtoMinor: 1}
	if ci != nil {
		req.TLS = ci.tls
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if method, rest, ok := strings.Cut(r.Line, " "); ok {
		if target, proto, ok := strings.Cut(rest, " "); ok && !strings.Contains(proto, " ") {
			req.Method, req.RequestURI, req.Proto = method, target, proto
		}
	}
	if hosts := req.Header["Host"]; len(hosts) > 0 {
		req.Host = hosts[0]
	}
	return req
}

// logRefused writes the access log line of a refused request, as nginx does: in the access log of its server
// (see refuse), with what is known of the request (the request line as read, the header fields before the
// refusal), the status and the bytes sent.
func (s *Server) logRefused(snap *snapshot, srv *config.Server, ci *connInfo, req *http.Request, line string, status int, sent, body int64) {
	rq := s.getRequest()
	defer s.putRequest(rq)
	rq.s, rq.snap, rq.r, rq.ci, rq.log = s, snap, req, ci, s.log
	s.initVars(rq.v, req, ci)
	rq.useServer(srv)
	rq.v.RequestLine = line
	rq.v.Status, rq.v.BytesSent, rq.v.BodyBytesSent = status, sent, body
	s.stats.requests.Add(1) // nginx counts them
	rq.writeAccessLog()
}
