package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stalledClient dials port with a small receive buffer, sends raw and never reads until the caller does.
func stalledClient(t *testing.T, port int, raw string) net.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		// pipelined requests may fill the server's receive buffer while it is stuck writing: never block the test
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, raw)
	}()
	return c
}

// sendTimeoutLine is nginx's log line for a client that stopped reading for send_timeout.
var sendTimeoutLine = regexp.MustCompile(`\[info\] .*client timed out \(110: Connection timed out\) while sending response to client, client: 127\.0\.0\.1`)

// bigBackend answers every request with size bytes, written in 64 KiB pieces until the client stops taking them.
func bigBackend(t *testing.T, size int) *backend {
	return newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		chunk := bytes.Repeat([]byte("u"), 64<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
}

// TestSendTimeout: a client that asks for responses and stops reading is disconnected once a write to it has
// waited send_timeout, with nginx's "client timed out" at info, whether the write that stalls is the handler's
// (a large static file, a large proxied body) or net/http's flush after the handler returned (small pipelined
// responses, each written whole into net/http's buffer: a static file, and a `return` answered in the rewrite
// phase); and the server goes on serving.
func TestSendTimeout(t *testing.T) {
	t.Parallel()
	const bigSize = 32 << 20
	small := strings.Repeat("s", 1000)
	up := bigBackend(t, bigSize)
	port, s := semStart(t, `events {}
error_log stderr info;
http {
    send_timeout 1s;
    keepalive_requests 100000;
    server {
        listen {{PORT}};
        root html;
        location = /small { return 200 "{{SMALL}}"; }
        location /up { proxy_pass http://127.0.0.1:{{UP}}; }
        location = /stub { stub_status; }
    }
}
`, []option{withFile("html/big.bin", bytes.Repeat([]byte("b"), bigSize)), withFile("html/small.txt", []byte(small))},
		"UP", up.Port, "SMALL", small)
	const pipelined = 20000
	cases := []struct {
		name, raw string
		full      int // bytes of a complete answer (at least)
	}{
		{"large static file", "GET /big.bin HTTP/1.1\r\nHost: h.test\r\n\r\n", bigSize},
		{"large proxied response", "GET /up HTTP/1.1\r\nHost: h.test\r\n\r\n", bigSize},
		{"flush after the handler: pipelined small files", strings.Repeat("GET /small.txt HTTP/1.1\r\nHost: h.test\r\n\r\n", pipelined), pipelined * len(small)},
		{"flush after the handler: pipelined returns", strings.Repeat("GET /small HTTP/1.1\r\nHost: h.test\r\n\r\n", pipelined), pipelined * len(small)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logged := strings.Count(s.Log(), "client timed out")
			c := stalledClient(t, port, tc.raw)
			if !eventually(15*time.Second, func() bool { return strings.Count(s.Log(), "client timed out") > logged }) {
				t.Fatalf("no \"client timed out\" logged within 15s of a client that stopped reading (send_timeout 1s)")
			}
			// what the kernel holds arrives, then the end: the connection was closed, not merely paused
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			n, err := io.Copy(io.Discard, c)
			if isTimeout(err) {
				t.Fatalf("the connection stayed open after %d bytes", n)
			}
			if n >= int64(tc.full) {
				t.Errorf("the whole answer (%d bytes) arrived: the stalled write was not cut off", n)
			}
		})
	}
	// the server goes on serving, and no connection is left writing
	if r := semGet(t, port, "/small", ""); r.StatusCode != 200 || r.Body != small {
		t.Fatalf("GET /small after the timeouts: %d", r.StatusCode)
	}
	writing := regexp.MustCompile(`Writing: (\d+)`)
	if !eventually(5*time.Second, func() bool {
		m := writing.FindStringSubmatch(semGet(t, port, "/stub", "").Body)
		return m != nil && m[1] == "1" // this request
	}) {
		t.Errorf("connections still writing after the timeouts: %s", semGet(t, port, "/stub", "").Body)
	}
	if !sendTimeoutLine.MatchString(s.Log()) {
		t.Errorf("no nginx-style log line for the timeout:\n%s", s.Log())
	}
}

// TestSendTimeoutHTTP2: an HTTP/2 client that stops reading (and so stops granting flow-control window) gets
// the stream reset once a write to it has waited send_timeout, and the same nginx line as HTTP/1 is logged,
// for a static file and a proxied body; the connection goes on serving other streams.
func TestSendTimeoutHTTP2(t *testing.T) {
	t.Parallel()
	const bigSize = 32 << 20
	up := bigBackend(t, bigSize)
	port, s := semStart(t, `events {}
error_log stderr info;
http {
    send_timeout 1s;
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        http2 on;
        ssl_certificate self-signed;
        root html;
        location = /small { return 200 "small"; }
        location /up { proxy_pass http://127.0.0.1:{{UP}}; }
    }
}
`, []option{withFile("html/big.bin", bytes.Repeat([]byte("b"), bigSize))}, "UP", up.Port)
	tr := h2Transport(addr(port), &tls.Config{InsecureSkipVerify: true})
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	for _, path := range []string{"/big.bin", "/up"} {
		t.Run(path, func(t *testing.T) {
			logged := len(sendTimeoutLine.FindAllString(s.Log(), -1))
			resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d%s", port, path))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
				t.Fatalf("got %s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
			}
			// not reading: the client's stream window (4 MiB) fills and the server's write waits
			if !eventually(15*time.Second, func() bool { return len(sendTimeoutLine.FindAllString(s.Log(), -1)) > logged }) {
				t.Fatalf("no nginx-style \"client timed out\" line within 15s of an HTTP/2 client that stopped reading (send_timeout 1s):\n%s", s.Log())
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil || n >= bigSize {
				t.Errorf("read %d bytes, %v; want the stream reset before the whole answer", n, err)
			}
		})
	}
	r, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/small", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || string(body) != "small" {
		t.Fatalf("GET /small after the timeouts: %d %q", r.StatusCode, body)
	}
}
