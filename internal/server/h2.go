//lint:file-ignore SA1019 x/net/http2 is deprecated for net/http's server, which offers no per-connection choice of the extended CONNECT setting

package server

import (
	"context"
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"

	_ "github.com/sluice-proxy/sluice/internal/h2xconnect" // lets http2 accept extended CONNECT (RFC 8441)
)

// configureHTTP2 serves HTTP/2 on the listener's TLS connections with golang.org/x/net/http2 (the package net/http
// bundles, used directly so each connection can be set up on its own): connections whose address has
// http2_extended_connect off do not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL, so browsers open their WebSockets
// over HTTP/1.1 there instead of over HTTP/2.
//
// The limits are set explicitly rather than left to the package's defaults, so they are visible and tested
// (test/e2e h2_test.go): concurrent streams (http2_max_concurrent_streams), header list size (hs.MaxHeaderBytes,
// from large_client_header_buffers), HPACK table sizes, frame size and receive windows. x/net/http2 also bounds
// handlers queued by streams reset before they finish (rapid reset) and header bytes across CONTINUATION frames.
func (hs *httpServer) configureHTTP2(g *group, errLog *log.Logger) error {
	hs.base = &http.Server{MaxHeaderBytes: g.maxHeaderBytes, ErrorLog: errLog}
	hs.h2 = &http2.Server{
		MaxConcurrentStreams:         uint32(g.h2MaxStreams),
		MaxReadFrameSize:             16 << 10, // the protocol's minimum: larger frames from a client are a FRAME_SIZE_ERROR
		MaxDecoderHeaderTableSize:    4 << 10,
		MaxEncoderHeaderTableSize:    4 << 10,
		MaxUploadBufferPerConnection: 1 << 20,
		MaxUploadBufferPerStream:     256 << 10,
		WriteByteTimeout:             60 * time.Second, // a client that stops reading (zero window) is dropped
		PingTimeout:                  15 * time.Second,
	}
	return http2.ConfigureServer(hs.base, hs.h2) // registers h2's graceful shutdown (GOAWAY) with base
}

// serveH2 serves an HTTP/2 connection (ALPN h2, or h2c with prior knowledge) until it closes; ctx carries the
// connection's connInfo.
func (l *listener) serveH2(c net.Conn, ctx context.Context) {
	hs := l.hs
	if hs.h2 == nil {
		c.Close()
		return
	}
	conn := c
	if tc, ok := c.(*tls.Conn); ok {
		if g := l.srv.snap.Load().groupFor(l.addr, c.LocalAddr().String()); g == nil || !g.extConnect {
			conn = &hideXConnect{Conn: tc}
		}
	}
	hs.h1.Hand(c, func() {
		l.srv.connState(c, -1, http.StateNew)
		l.srv.connState(c, http.StateNew, http.StateActive)
		defer l.srv.connState(c, http.StateActive, http.StateClosed)
		hs.h2.ServeConn(conn, &http2.ServeConnOpts{Context: ctx, Handler: l.srv, BaseConfig: hs.base})
	})
}

// HTTP/2 frame constants for hideXConnect (RFC 9113 §4.1, §6.5; RFC 8441 §3).
const (
	frameHeaderLen          = 9
	frameSettings           = 0x4
	flagSettingsAck         = 0x1
	settingEnableConnectPro = 0x8
)

// hideXConnect removes SETTINGS_ENABLE_CONNECT_PROTOCOL from the server's first SETTINGS frame, the only place
// it is sent. The HTTP/2 server still parses a :protocol a client sends without having been offered it;
// such a request is refused by the proxy (it is not a WebSocket upgrade sluice offered).
type hideXConnect struct {
	*tls.Conn // keeps ConnectionState for the HTTP/2 server
	done      bool
	pending   []byte
}

func (c *hideXConnect) Write(p []byte) (int, error) {
	if c.done {
		return c.Conn.Write(p)
	}
	// The server's first write holds its whole SETTINGS frame; collect until it is complete all the same.
	c.pending = append(c.pending, p...)
	if len(c.pending) < frameHeaderLen {
		return len(p), nil
	}
	n := int(c.pending[0])<<16 | int(c.pending[1])<<8 | int(c.pending[2])
	if len(c.pending) < frameHeaderLen+n {
		return len(p), nil
	}
	c.done = true
	out := stripXConnect(c.pending, n)
	c.pending = nil
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// stripXConnect returns b (a SETTINGS frame of payload length n followed by anything) without the
// ENABLE_CONNECT_PROTOCOL parameter; any other first frame is returned unchanged.
func stripXConnect(b []byte, n int) []byte {
	streamID := uint32(b[5]&0x7f)<<24 | uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8])
	if b[3] != frameSettings || b[4]&flagSettingsAck != 0 || streamID != 0 || n%6 != 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	out = append(out, b[:frameHeaderLen]...)
	payload := b[frameHeaderLen : frameHeaderLen+n]
	for i := 0; i < n; i += 6 {
		if uint16(payload[i])<<8|uint16(payload[i+1]) == settingEnableConnectPro {
			continue
		}
		out = append(out, payload[i:i+6]...)
	}
	m := len(out) - frameHeaderLen
	out[0], out[1], out[2] = byte(m>>16), byte(m>>8), byte(m)
	return append(out, b[frameHeaderLen+n:]...)
}
