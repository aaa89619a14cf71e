package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialTo returns a dialer that connects to target whatever address it is
// asked for: the test's stand-in for DNS resolving abc.com to 127.0.0.1.
func dialTo(target string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, target)
	}
}

// httpClient returns a client whose connections all go to target; tlsCfg
// (may be nil) is used for https URLs.
func httpClient(target string, tlsCfg *tls.Config) *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			DialContext:       dialTo(target),
			TLSClientConfig:   tlsCfg,
			DisableKeepAlives: false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// wsDialer returns a WebSocket dialer whose connections all go to target.
func wsDialer(target string, tlsCfg *tls.Config) *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   dialTo(target),
		TLSClientConfig:  tlsCfg,
		HandshakeTimeout: 5 * time.Second,
	}
}

// dialWS opens a WebSocket to url through target and fails the test if the
// handshake does not succeed.
func dialWS(t *testing.T, d *websocket.Dialer, url string, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := d.Dial(url, hdr)
	if err != nil {
		status := "no response"
		if resp != nil {
			body, _ := io.ReadAll(resp.Body)
			status = resp.Status + ": " + string(body)
		}
		t.Fatalf("WebSocket dial %s: %v (%s)", url, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoOnce sends msg with message type mt and fails unless the same comes back.
func echoOnce(t *testing.T, c *websocket.Conn, mt int, msg string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(mt, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	gotType, got, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read echo of %q: %v", msg, err)
	}
	if gotType != mt || string(got) != msg {
		t.Fatalf("echo = (type %d) %q, want (type %d) %q", gotType, got, mt, msg)
	}
	c.SetReadDeadline(time.Time{})
	c.SetWriteDeadline(time.Time{})
}

// rawConn dials target over TCP, or over TLS when tlsCfg is not nil.
func rawConn(t *testing.T, target string, tlsCfg *tls.Config) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if tlsCfg != nil {
		c, err = tls.DialWithDialer(d, "tcp", target, tlsCfg)
	} else {
		c, err = d.Dial("tcp", target)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// response is a fully read HTTP response.
type response struct {
	*http.Response
	Body string
}

// readResponse reads one response to a request with the given method from br.
func readResponse(t *testing.T, c net.Conn, br *bufio.Reader, method string) response {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	return response{resp, string(body)}
}

// rawExchange writes raw (one or more requests, in one write) and reads one
// response per method in methods.
func rawExchange(t *testing.T, c net.Conn, raw string, methods ...string) []response {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	br := bufio.NewReader(c)
	var out []response
	for _, m := range methods {
		out = append(out, readResponse(t, c, br, m))
	}
	return out
}

// decodeSeen parses an http-echo backend's JSON answer.
func decodeSeen(t *testing.T, body string) seenRequest {
	t.Helper()
	var s seenRequest
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("response is not the http-echo backend's JSON: %v\nbody: %q", err, body)
	}
	return s
}

// get does a GET with c and returns the response with its body read.
func get(t *testing.T, c *http.Client, url string, hdr http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return do(t, c, req)
}

// do sends req with c and returns the response with its body read.
func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return response{resp, string(body)}
}

// hasToken reports whether the comma-separated header value v lists tok.
func hasToken(v, tok string) bool {
	for _, f := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(f), tok) {
			return true
		}
	}
	return false
}

// wsUpgradeRequest is a raw WebSocket handshake request for path and host.
func wsUpgradeRequest(path, host string) string {
	return "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
}
