// Package tunnel carries upgraded connections (WebSocket and other HTTP/1.1
// protocol switches): it checks the upgrade handshake, copies bytes both ways
// with half-close and idle-timeout semantics, and tracks open tunnels so a
// shutdown or reload can end them.
//
// The HTTP side (dialling the upstream, forwarding the request, reading the
// 101 response, hijacking the client) belongs to the caller; this package
// starts once both connections are past the handshake.
package tunnel

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/sluice-proxy/sluice/internal/httpsyntax"
)

// websocketGUID is the fixed suffix of RFC 6455 §1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2).
func AcceptKey(key string) string {
	var buf [128]byte
	b := append(buf[:0], key...)
	b = append(b, websocketGUID...)
	sum := sha1.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// RequestedProtocol returns the upgrade protocol a client request asks for
// ("websocket", lower-cased) when the request is a valid HTTP/1.1 upgrade:
// Connection contains the token "upgrade" (comma lists, case-insensitive) and
// Upgrade is present. "h2c" is never honoured (returns "", false). HTTP/1.0 and
// HTTP/2 requests return false. When Upgrade lists several protocols the first
// one other than h2c is returned; CheckResponse accepts any of them.
func RequestedProtocol(h http.Header, protoMajor, protoMinor int) (string, bool) {
	return RequestedProtocolOf(h["Connection"], h["Upgrade"], protoMajor, protoMinor)
}

// RequestedProtocolOf is RequestedProtocol for a request's Connection and Upgrade values, for a caller that
// has them at hand (the proxy, which walks the request's fields anyway).
func RequestedProtocolOf(connection, upgrade []string, protoMajor, protoMinor int) (string, bool) {
	if protoMajor != 1 || protoMinor < 1 {
		return "", false
	}
	if !hasToken(connection, "upgrade") {
		return "", false
	}
	p := firstProtocol(upgrade)
	if p == "" {
		return "", false
	}
	if strings.EqualFold(p, "websocket") {
		return "websocket", true
	}
	return strings.ToLower(p), true
}

// CheckResponse verifies that an upstream really switched protocols for the
// request: status 101, Connection has "upgrade", Upgrade names a protocol the
// client asked for, and for websocket a Sec-WebSocket-Accept matching the
// client's Sec-WebSocket-Key (when the client sent one). The error says which
// check failed; it is meant for the error log.
func CheckResponse(reqHeader http.Header, resp *http.Response) error {
	if resp == nil {
		return fmt.Errorf("tunnel: no upstream response")
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("tunnel: upstream answered status %d to an upgrade request, want 101", resp.StatusCode)
	}
	if !hasToken(resp.Header["Connection"], "upgrade") {
		return fmt.Errorf("tunnel: upstream 101 response lacks \"Connection: upgrade\"")
	}
	got := strings.TrimSpace(resp.Header.Get("Upgrade"))
	if got == "" {
		return fmt.Errorf("tunnel: upstream 101 response lacks an Upgrade header")
	}
	if strings.EqualFold(got, "h2c") || !hasToken(reqHeader["Upgrade"], got) {
		return fmt.Errorf("tunnel: upstream switched to %q, client asked for %q", got, strings.Join(reqHeader["Upgrade"], ", "))
	}
	if strings.EqualFold(got, "websocket") {
		if key := reqHeader.Get("Sec-WebSocket-Key"); key != "" {
			accept := strings.TrimSpace(resp.Header.Get("Sec-WebSocket-Accept"))
			if accept == "" {
				return fmt.Errorf("tunnel: upstream 101 response lacks Sec-WebSocket-Accept")
			}
			if want := AcceptKey(key); accept != want {
				return fmt.Errorf("tunnel: upstream Sec-WebSocket-Accept %q does not match the client key (want %q)", accept, want)
			}
		}
	}
	return nil
}

// hasToken reports whether any comma-separated element of the header values
// equals tok, ignoring case and surrounding whitespace.
func hasToken(values []string, tok string) bool {
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(httpsyntax.TrimOWS(elem), tok) {
				return true
			}
		}
	}
	return false
}

// firstProtocol returns the first Upgrade element that is not h2c, or "".
func firstProtocol(values []string) string {
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			if elem = httpsyntax.TrimOWS(elem); elem != "" && !strings.EqualFold(elem, "h2c") {
				return elem
			}
		}
	}
	return ""
}
