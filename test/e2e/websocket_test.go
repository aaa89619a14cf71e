package e2e

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestWebSocketWithoutProxySetHeader(t *testing.T) {
	t.Parallel()
	ws := newWSEcho(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /ws {
            proxy_pass http://127.0.0.1:{{WSPORT}};
        }
        location /nows {
            proxy_pass http://127.0.0.1:{{WSPORT}};
            proxy_websocket off;
        }
    }
}
`, "PORT", port, "WSPORT", ws.Port))
	d := wsDialer(addr(port), nil)

	t.Run("tunnels by default", func(t *testing.T) {
		c := dialWS(t, d, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
		echoOnce(t, c, websocket.TextMessage, "magic-free")
		echoOnce(t, c, websocket.BinaryMessage, "\x00bin\xff")
	})

	t.Run("proxy_websocket off", func(t *testing.T) {
		c, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/nows", port), nil)
		if err == nil {
			c.Close()
			t.Fatal("WebSocket dial to a proxy_websocket off location succeeded; want the backend's non-101 answer")
		}
		if resp == nil {
			t.Fatalf("dial failed without an HTTP response (%v); want the backend's 400", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("dial got %s %q; want the backend's 400", resp.Status, body)
		}
		var found bool
		for _, r := range ws.all() {
			if strings.HasPrefix(r.URI, "/nows") {
				found = true
				if u := r.Header.Get("Upgrade"); u != "" {
					t.Errorf("backend saw Upgrade %q for /nows; want no Upgrade header", u)
				}
				if hasToken(r.Header.Get("Connection"), "upgrade") {
					t.Errorf("backend saw Connection %q for /nows; want no upgrade token", r.Header.Get("Connection"))
				}
			}
		}
		if !found {
			t.Error("backend never saw the /nows request")
		}
	})
}

func TestRefusedUpgrade(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	refuser, bad, echo := newRefuser(t), newBadAccept(t), newHTTPEcho(t)
	port := freePort(t)
	conf := fill(t, `events {}
http {
    server {
        listen {{PORT}} ssl;
        server_name refuse.test;
        ssl_certificate     site.pem;
        ssl_certificate_key site.key.pem;
        location /r400 { proxy_pass http://127.0.0.1:{{REFUSE}}; }
        location /r426 { proxy_pass http://127.0.0.1:{{REFUSE}}; }
        location /bad  { proxy_pass http://127.0.0.1:{{BAD}}; }
        location /plain { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "PORT", port, "REFUSE", refuser.Port, "BAD", bad.Port, "ECHO", echo.Port)
	start(t, conf, ca.certFiles(t, "site", ecdsaP256, "refuse.test")...)
	target := addr(port)
	tlsCfg := ca.clientTLS("refuse.test")

	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/r400", http.StatusBadRequest, "refused-400"},
		{"/r426", http.StatusUpgradeRequired, "need-upgrade-426"},
	} {
		t.Run(tc.path+" then pipelined GET", func(t *testing.T) {
			c := rawConn(t, target, tlsCfg)
			raw := wsUpgradeRequest(tc.path, "refuse.test") +
				"GET /plain/after HTTP/1.1\r\nHost: refuse.test\r\n\r\n"
			rs := rawExchange(t, c, raw, "GET", "GET")
			if rs[0].StatusCode != tc.status || rs[0].Body != tc.body {
				t.Errorf("upgrade to %s: got %s %q; want %d %q from the backend", tc.path, rs[0].Status, rs[0].Body, tc.status, tc.body)
			}
			if rs[1].StatusCode != http.StatusOK || rs[1].Header.Get("X-Backend") != "http-echo" {
				t.Fatalf("pipelined GET /plain/after: got %s (X-Backend %q) %q; want 200 from the /plain backend",
					rs[1].Status, rs[1].Header.Get("X-Backend"), rs[1].Body)
			}
			if seen := decodeSeen(t, rs[1].Body); seen.URI != "/plain/after" {
				t.Errorf("pipelined request reached the backend as %q, want /plain/after", seen.URI)
			}
		})
	}

	t.Run("wrong Sec-WebSocket-Accept", func(t *testing.T) {
		d := wsDialer(target, tlsCfg)
		c, resp, err := d.Dial("wss://refuse.test/bad", nil)
		if err == nil {
			c.Close()
			t.Fatal("WebSocket dial succeeded although the backend's Sec-WebSocket-Accept is wrong")
		}
		if resp == nil || resp.StatusCode != http.StatusBadGateway {
			status := "no response"
			if resp != nil {
				status = resp.Status
			}
			t.Fatalf("dial: %v, status %s; want 502", err, status)
		}

		// The same on a raw connection: after the 502 nothing of the
		// backend's post-101 bytes may arrive.
		rc := rawConn(t, target, tlsCfg)
		rs := rawExchange(t, rc, wsUpgradeRequest("/bad", "refuse.test"), "GET")
		if rs[0].StatusCode != http.StatusBadGateway {
			t.Fatalf("raw upgrade to /bad: got %s, want 502", rs[0].Status)
		}
		rc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		rest, _ := io.ReadAll(rc)
		if bytes.Contains(rest, []byte("leak")) {
			t.Errorf("after the 502 the client received the backend's tunnel bytes: %q", rest)
		}
	})
}

// largeConf proxies /ws magic-free on an HTTPS port.
const largeConf = `events {}
http {
    server {
        listen {{PORT}} ssl;
        server_name big.test;
        ssl_certificate     site.pem;
        ssl_certificate_key site.key.pem;
        location /ws { proxy_pass http://127.0.0.1:{{WSPORT}}; }
    }
}
`

func TestWebSocketLargeAndManyMessages(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	ws := newWSEcho(t)
	port := freePort(t)
	start(t, fill(t, largeConf, "PORT", port, "WSPORT", ws.Port), ca.certFiles(t, "site", rsa2048, "big.test")...)
	d := wsDialer(addr(port), ca.clientTLS(""))

	for _, tc := range []struct {
		name string
		mt   int
		size int64
	}{
		{"1MiB text", websocket.TextMessage, 1 << 20},
		{"1MiB binary", websocket.BinaryMessage, 1 << 20},
		{"64MiB text", websocket.TextMessage, 64 << 20},
		{"64MiB binary", websocket.BinaryMessage, 64 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWS(t, d, "wss://big.test/ws", nil)
			echoLarge(t, c, tc.mt, tc.size, uint64(tc.size)+uint64(tc.mt))
		})
	}

	t.Run("10000 small messages in order", func(t *testing.T) {
		c := dialWS(t, d, "wss://big.test/ws", nil)
		const n = 10000
		errc := make(chan error, 1)
		go func() {
			for i := range n {
				mt := websocket.TextMessage
				if i%2 == 1 {
					mt = websocket.BinaryMessage
				}
				if err := c.WriteMessage(mt, fmt.Appendf(nil, "msg-%05d", i)); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		for i := range n {
			mt, got, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("reading echo %d of %d: %v", i, n, err)
			}
			want := fmt.Sprintf("msg-%05d", i)
			wantType := websocket.TextMessage
			if i%2 == 1 {
				wantType = websocket.BinaryMessage
			}
			if string(got) != want || mt != wantType {
				t.Fatalf("echo %d = (type %d) %q; want (type %d) %q", i, mt, got, wantType, want)
			}
		}
		if err := <-errc; err != nil {
			t.Fatalf("writing: %v", err)
		}
	})
}

// echoLarge streams one message of size bytes (pseudo-random from seed;
// letters for text messages) and checks the echo's type, length and sha256.
func echoLarge(t *testing.T, c *websocket.Conn, mt int, size int64, seed uint64) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(90 * time.Second))
	c.SetWriteDeadline(time.Now().Add(90 * time.Second))
	type result struct {
		sum [32]byte
		err error
	}
	sent := make(chan result, 1)
	go func() {
		h := sha256.New()
		w, err := c.NextWriter(mt)
		if err != nil {
			sent <- result{err: err}
			return
		}
		rng := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)}))
		buf := make([]byte, 64<<10)
		for left := size; left > 0; {
			chunk := buf[:min(int64(len(buf)), left)]
			for i := range chunk {
				chunk[i] = byte(rng.Uint32())
				if mt == websocket.TextMessage {
					chunk[i] = 'a' + chunk[i]%26
				}
			}
			h.Write(chunk)
			if _, err := w.Write(chunk); err != nil {
				sent <- result{err: err}
				return
			}
			left -= int64(len(chunk))
		}
		var r result
		r.err = w.Close()
		copy(r.sum[:], h.Sum(nil))
		sent <- r
	}()

	gotType, rd, err := c.NextReader()
	if err != nil {
		t.Fatalf("reading echo: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rd)
	if err != nil {
		t.Fatalf("reading echo after %d bytes: %v", n, err)
	}
	s := <-sent
	if s.err != nil {
		t.Fatalf("writing message: %v", s.err)
	}
	if gotType != mt {
		t.Errorf("echo message type %d, want %d", gotType, mt)
	}
	if n != size {
		t.Fatalf("echo is %d bytes, want %d", n, size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, s.sum[:]) {
		t.Fatalf("echo sha256 %x, sent %x", got, s.sum)
	}
}

func TestIdleTunnelTimeouts(t *testing.T) {
	t.Parallel()
	ws := newWSEcho(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    client_header_timeout 1s;
    keepalive_timeout 1s;
    send_timeout 1s;
    server {
        listen {{PORT}};
        location /ws { proxy_pass http://127.0.0.1:{{WSPORT}}; }
        location /tunnel2 {
            proxy_pass http://127.0.0.1:{{WSPORT}};
            proxy_tunnel_timeout 2s;
        }
        location /read2 {
            proxy_pass http://127.0.0.1:{{WSPORT}};
            proxy_read_timeout 2s;
        }
    }
}
`, "PORT", port, "WSPORT", ws.Port))
	d := wsDialer(addr(port), nil)
	url := func(path string) string { return fmt.Sprintf("ws://127.0.0.1:%d%s", port, path) }

	t.Run("no proxy_read_timeout: idle 5s survives", func(t *testing.T) {
		t.Parallel()
		c := dialWS(t, d, url("/ws"), nil)
		echoOnce(t, c, websocket.TextMessage, "before idle")
		time.Sleep(5 * time.Second)
		echoOnce(t, c, websocket.TextMessage, "after 5s idle")
	})

	for _, path := range []string{"/tunnel2", "/read2"} {
		t.Run(path+" closes idle tunnel after 2s", func(t *testing.T) {
			t.Parallel()
			c := dialWS(t, d, url(path), nil)
			echoOnce(t, c, websocket.TextMessage, "before idle")
			idleSince := time.Now()
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, msg, err := c.ReadMessage()
			elapsed := time.Since(idleSince)
			if err == nil {
				t.Fatalf("idle tunnel delivered %q; want it closed", msg)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("idle tunnel still open after %v; want it closed after ~2s", elapsed.Round(time.Millisecond))
			}
			if elapsed < 1500*time.Millisecond || elapsed > 6*time.Second {
				t.Errorf("idle tunnel closed after %v (%v); want ~2s", elapsed.Round(time.Millisecond), err)
			}
			t.Logf("closed after %v: %v", elapsed.Round(time.Millisecond), err)
		})
	}
}
