//lint:file-ignore SA1019 x/net's HTTP/2 transport is the client that can send extended CONNECT (:protocol)

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"context"
	"crypto/rand"
	"crypto/tls"
	"github.com/chromedp/chromedp"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"golang.org/x/net/http2"
)

// h2Transport is an HTTP/2-only client whose connections all go to target. It is x/net's: net/http's
// transport does not let a request carry :protocol.
func h2Transport(target string, tlsCfg *tls.Config) *http2.Transport {
	cfg := tlsCfg.Clone()
	cfg.NextProtos = []string{"h2"}
	return &http2.Transport{
		TLSClientConfig: cfg,
		DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
			d := tls.Dialer{Config: cfg}
			return d.DialContext(ctx, network, target)
		},
	}
}

// h2WebSocket opens a WebSocket over HTTP/2 (RFC 8441 extended CONNECT) to url; the returned ReadWriter carries
// WebSocket frames. A non-200 answer returns the response with a nil ReadWriter.
func h2WebSocket(t *testing.T, tr *http2.Transport, url string) (io.ReadWriter, *http.Response, error) {
	t.Helper()
	return h2WebSocketFrom(t, tr, url, "https://ws.test")
}

// h2WebSocketFrom is h2WebSocket with the page's Origin ("" sends none).
func h2WebSocketFrom(t *testing.T, tr *http2.Transport, url, origin string) (io.ReadWriter, *http.Response, error) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodConnect, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		pw.Close()
		return nil, nil, err
	}
	t.Cleanup(func() { pw.Close(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		return nil, resp, nil
	}
	return struct {
		io.Reader
		io.Writer
	}{resp.Body, pw}, resp, nil
}

// TestWebSocketOverHTTP2 opens WebSockets over HTTP/2 through sluice to an HTTP/1.1 WebSocket backend
// (RFC 8441 bridged to RFC 6455) and exchanges 1 MiB messages both ways.
func TestWebSocketOverHTTP2(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	echo := newWSEcho(t)
	refuser := newRefuser(t)
	port, offPort := freePort(t), freePort(t)
	conf := fill(t, `events {}
http {
    ssl_certificate     ws.pem;
    ssl_certificate_key ws.key.pem;
    server {
        listen {{PORT}} ssl;
        http2 on;
        server_name ws.test;
        location /ws { proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /refuse { proxy_pass http://127.0.0.1:{{REFUSER}}; }
        location /noupgrade { proxy_websocket off; proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /get-only { limit_except GET { deny all; } proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /post-only { limit_except POST { deny all; } proxy_pass http://127.0.0.1:{{ECHO}}; }
        location / { return 200 "plain\n"; }
    }
    server {
        listen {{OFF}} ssl;
        http2 on;
        http2_extended_connect off;
        server_name ws.test;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "PORT", port, "OFF", offPort, "ECHO", echo.Port, "REFUSER", refuser.Port)
	start(t, conf, ca.certFiles(t, "ws", ecdsaP256, "ws.test")...)
	tr := h2Transport(addr(port), ca.clientTLS("ws.test"))
	defer tr.CloseIdleConnections()

	t.Run("limit_except takes it for the GET of its HTTP/1.1 form", func(t *testing.T) {
		if rw, resp, err := h2WebSocket(t, tr, "https://ws.test/get-only/chat"); err != nil || rw == nil {
			t.Errorf("limit_except GET: %v %+v", err, resp)
		}
		if _, resp, err := h2WebSocket(t, tr, "https://ws.test/post-only/chat"); err != nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("limit_except POST: %v %+v, want 403", err, resp)
		}
	})

	t.Run("1 MiB messages both ways", func(t *testing.T) {
		rw, resp, err := h2WebSocket(t, tr, "https://ws.test/ws/chat")
		if err != nil || rw == nil {
			t.Fatalf("extended CONNECT: %v %+v", err, resp)
		}
		if resp.ProtoMajor != 2 {
			t.Fatalf("response over HTTP/%d, want 2", resp.ProtoMajor)
		}
		if v := resp.Header.Get("Sec-WebSocket-Accept"); v != "" {
			t.Errorf("HTTP/2 response carries the HTTP/1.1 Sec-WebSocket-Accept %q", v)
		}
		for i := 0; i < 3; i++ {
			msg := make([]byte, 1<<20)
			rand.Read(msg)
			werr := make(chan error, 1)
			go func() { werr <- wsutil.WriteClientMessage(rw, ws.OpBinary, msg) }()
			got, op, err := wsutil.ReadServerData(rw)
			if err != nil {
				t.Fatalf("message %d: reading the echo: %v", i, err)
			}
			if err := <-werr; err != nil {
				t.Fatalf("message %d: writing: %v", i, err)
			}
			if op != ws.OpBinary || !bytes.Equal(got, msg) {
				t.Fatalf("message %d: echo differs (op %v, %d bytes, want %d)", i, op, len(got), len(msg))
			}
		}
		// The backend saw an ordinary HTTP/1.1 WebSocket handshake with a key sluice made up.
		seen := echo.all()
		if len(seen) == 0 {
			t.Fatal("backend saw no request")
		}
		s := seen[len(seen)-1]
		if s.Method != http.MethodGet || s.URI != "/ws/chat" || !hasToken(strings.Join(s.Header["Upgrade"], ","), "websocket") ||
			len(s.Header["Sec-Websocket-Key"]) != 1 || len(s.Header[":protocol"]) != 0 {
			t.Errorf("backend saw %s %s with headers %v, want GET /ws/chat with Upgrade: websocket and a key", s.Method, s.URI, s.Header)
		}
	})

	t.Run("two streams on one connection", func(t *testing.T) {
		a, _, errA := h2WebSocket(t, tr, "https://ws.test/ws/a")
		b, _, errB := h2WebSocket(t, tr, "https://ws.test/ws/b")
		if errA != nil || errB != nil || a == nil || b == nil {
			t.Fatalf("opening two WebSockets: %v, %v", errA, errB)
		}
		for _, c := range []struct {
			rw  io.ReadWriter
			msg string
		}{{b, "to b"}, {a, "to a"}} {
			if err := wsutil.WriteClientMessage(c.rw, ws.OpText, []byte(c.msg)); err != nil {
				t.Fatal(err)
			}
			got, _, err := wsutil.ReadServerData(c.rw)
			if err != nil || string(got) != c.msg {
				t.Fatalf("echo of %q: %q, %v", c.msg, got, err)
			}
		}
		// ordinary requests share the connection meanwhile
		req, _ := http.NewRequest(http.MethodGet, "https://ws.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET / beside the tunnels: %v %v", resp, err)
		}
		resp.Body.Close()
	})

	t.Run("upstream refusal relayed", func(t *testing.T) {
		rw, resp, err := h2WebSocket(t, tr, "https://ws.test/refuse/426")
		if err != nil || rw != nil {
			t.Fatalf("got a tunnel or error (%v) from a refusing upstream", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusUpgradeRequired || string(body) != "need-upgrade-426" || resp.Header.Get("X-Refused") != "426" {
			t.Errorf("refusal relayed as %d %q %v, want 426 need-upgrade-426", resp.StatusCode, body, resp.Header)
		}
	})

	t.Run("upgrades disabled: 501, nothing sent upstream", func(t *testing.T) {
		before := len(echo.all())
		_, resp, err := h2WebSocket(t, tr, "https://ws.test/noupgrade")
		if err != nil || resp == nil || resp.StatusCode != http.StatusNotImplemented {
			t.Fatalf("got %v, %v; want 501", resp, err)
		}
		if n := len(echo.all()); n != before {
			t.Errorf("backend saw %d new requests, want none", n-before)
		}
	})

	t.Run("off: not advertised", func(t *testing.T) {
		off := h2Transport(addr(offPort), ca.clientTLS("ws.test"))
		defer off.CloseIdleConnections()
		_, _, err := h2WebSocket(t, off, "https://ws.test/ws")
		if err == nil || !strings.Contains(err.Error(), "extended connect not supported") {
			t.Fatalf("extended CONNECT on an `http2_extended_connect off` listener: %v, want refused by the client for lack of the setting", err)
		}
		// plain HTTP/2 still works there, and WebSocket over HTTP/1.1 too
		req, _ := http.NewRequest(http.MethodGet, "https://ws.test/", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := off.RoundTrip(req.WithContext(ctx))
		if err != nil {
			t.Fatalf("GET over HTTP/2 on the off listener: %v", err)
		}
		resp.Body.Close()
		c := dialWS(t, wsDialer(addr(offPort), ca.clientTLS("ws.test")), "wss://ws.test/ws", nil)
		defer c.Close()
		echoOnce(t, c, 1, "over http/1.1")
	})
}

// TestBrowserWebSocketOverHTTP2 loads a page over HTTPS with HTTP/2 in Chromium, whose `new WebSocket('wss://…')`
// to the same origin must echo through sluice to an HTTP/1.1 backend: over HTTP/2 (extended CONNECT, which
// Chromium uses when the connection offers it) with http2_extended_connect on, over HTTP/1.1 with it off.
func TestBrowserWebSocketOverHTTP2(t *testing.T) {
	for _, tc := range []struct {
		setting, wantLine string
	}{
		{"on", `"CONNECT /ws HTTP/2.0" 200`},
		{"off", `"GET /ws HTTP/1.1" 101`},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			ctx := chromiumContext(t)
			echo := newWSEcho(t)
			port := freePort(t)
			conf := fill(t, `events {}
http {
    include mime.types;
    log_format proto '"$request" $status';
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        http2 on;
        http2_extended_connect {{SETTING}};
        server_name 127.0.0.1;
        ssl_certificate self-signed;
        access_log logs/ws.log proto;
        root html;
        location /ws { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "PORT", port, "ECHO", echo.Port, "SETTING", tc.setting)
			page := []byte(`<!doctype html><title>ws</title><p id="status">waiting</p><script>
var s = document.getElementById("status");
var ws = new WebSocket("wss://" + location.host + "/ws");
ws.onopen = function() { ws.send("ping over " + location.protocol); };
ws.onmessage = function(e) { s.textContent = "echo: " + e.data; ws.close(); };
ws.onerror = function() { s.textContent = "error"; };
</script>`)
			sl := start(t, conf, withFile("html/index.html", page))
			const expr = `(function(){ var e = document.getElementById("status"); return e ? e.textContent : "waiting"; })()`
			var status string
			err := chromedp.Run(ctx,
				chromedp.Navigate(fmt.Sprintf("https://127.0.0.1:%d/", port)),
				chromedp.Poll(expr+` !== "waiting"`, nil, chromedp.WithPollingTimeout(20*time.Second)),
				chromedp.Evaluate(expr, &status),
			)
			logPath := filepath.Join(sl.Prefix, "logs", "ws.log")
			if err != nil || status != "echo: ping over https:" {
				chromedp.Run(ctx, chromedp.Evaluate(expr, &status))
				log, _ := os.ReadFile(logPath)
				t.Fatalf("WebSocket from the page: %q, %v; access log:\n%s", status, err, log)
			}
			var log []byte
			eventually(5*time.Second, func() bool {
				log, _ = os.ReadFile(logPath)
				return bytes.Contains(log, []byte(`"GET / HTTP/2.0" 200`))
			})
			// The tunnel is logged when it closes; the page closes its WebSocket after the echo.
			if !eventually(10*time.Second, func() bool {
				log, _ = os.ReadFile(logPath)
				return bytes.Contains(log, []byte(tc.wantLine))
			}) {
				t.Fatalf("access log lacks %s:\n%s", tc.wantLine, log)
			}
		})
	}
}
