package server

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-proxy/sluice/internal/h1"
	"github.com/sluice-proxy/sluice/internal/h1guard"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
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

// refuseHead answers a refused request head as nginx does (its error page, Connection: close) and logs it at
// info, as nginx logs client errors. The page and Server header carry no version (server_tokens is a
// per-server setting and no server is chosen yet).
func (s *Server) refuseHead(c net.Conn, v h1guard.Violation) {
	body, _ := errorPage(v.Status, false)
	status := v.Status
	if status == 494 {
		status = http.StatusBadRequest // nginx's "Request Header Or Cookie Too Large" goes out as a 400
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("HTTP/1.1 " + strconv.Itoa(status) + " " + httpsyntax.Reason(status) + "\r\nServer: sluice\r\nDate: " +
		time.Now().UTC().Format(http.TimeFormat) + "\r\nContent-Type: text/html\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body))
	s.log.Info("client sent " + v.Reason + " while reading client request headers, client: " + c.RemoteAddr().String())
}

// refuse answers a request head the HTTP/1 server refused after parsing it (two Host headers, an unknown
// transfer coding, …) as refuseHead does.
func (s *Server) refuse(c net.Conn, r h1.Refusal) {
	s.refuseHead(c, h1guard.Violation{Status: r.Status, Reason: r.Reason})
}
