package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSSEStreamingUnbuffered(t *testing.T) {
	t.Parallel()
	const events = 8
	sse := newSSE(t, events, 200*time.Millisecond)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /events {
            proxy_pass http://127.0.0.1:{{SSE}};
            proxy_buffering off;
        }
    }
}
`, "PORT", port, "SSE", sse.Port))

	resp, err := httpClient(addr(port), nil).Get(fmt.Sprintf("http://127.0.0.1:%d/events", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events = %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q, want text/event-stream", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	begin := time.Now()
	var arrivals []time.Duration
	next := 1
	for sc.Scan() && next <= events {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		if want := fmt.Sprintf("data: event %d", next); line != want {
			t.Fatalf("got %q, want %q", line, want)
		}
		if next == 1 && sse.finished.Load() {
			t.Fatalf("first event arrived only after the backend had sent all %d events: the response was buffered", events)
		}
		arrivals = append(arrivals, time.Since(begin))
		next++
	}
	if next <= events {
		t.Fatalf("stream ended after %d of %d events: %v", next-1, events, sc.Err())
	}
	t.Logf("event arrival times: %v", arrivals)
	// Events were written 200 ms apart; unbuffered delivery spreads them out.
	if spread := arrivals[len(arrivals)-1] - arrivals[0]; spread < 700*time.Millisecond {
		t.Errorf("events arrived within %v of each other; the backend spread them over ~%v", spread, time.Duration(events-1)*200*time.Millisecond)
	}
}

func TestH2CUpgradeNeverForwarded(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /plain { proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /tutorial {
            proxy_pass http://127.0.0.1:{{ECHO}};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}
`, "PORT", port, "ECHO", echo.Port))

	for _, path := range []string{"/plain", "/tutorial"} {
		t.Run(path, func(t *testing.T) {
			c := rawConn(t, addr(port), nil)
			rs := rawExchange(t, c, "GET "+path+"/x HTTP/1.1\r\nHost: h2c.test\r\n"+
				"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"+
				"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", "GET")
			r := rs[0]
			if r.StatusCode != http.StatusOK {
				t.Fatalf("h2c upgrade request: got %s %q; want 200 served over HTTP/1.1", r.Status, r.Body)
			}
			seen := decodeSeen(t, r.Body)
			if u := seen.Header.Get("Upgrade"); u != "" {
				t.Errorf("backend saw Upgrade %q; h2c must never be forwarded", u)
			}
			if s := seen.Header.Get("HTTP2-Settings"); s != "" {
				t.Errorf("backend saw HTTP2-Settings %q; want it dropped", s)
			}
		})
	}
}

func TestHopByHopHeaders(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	rawResponse := func(connection string) string {
		return "HTTP/1.1 200 OK\r\n" +
			"Connection: " + connection + "\r\n" +
			"X-Foo: secret-foo\r\n" +
			"Keep-Alive: timeout=5\r\n" +
			"X-Kept: yes\r\n" +
			"Content-Type: text/plain\r\n" +
			"Content-Length: 2\r\n\r\nok"
	}
	rawClose := newRawBackend(t, rawResponse("close, X-Foo"))
	rawKeep := newRawBackend(t, rawResponse("X-Foo"))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /echo {
            proxy_pass http://127.0.0.1:{{ECHO}};
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Custom fixed-value;
        }
        location /close { proxy_pass http://127.0.0.1:{{RAWCLOSE}}; }
        location /keep { proxy_pass http://127.0.0.1:{{RAWKEEP}}; }
    }
}
`, "PORT", port, "ECHO", echo.Port, "RAWCLOSE", rawClose.Port, "RAWKEEP", rawKeep.Port))

	t.Run("request", func(t *testing.T) {
		c := rawConn(t, addr(port), nil)
		rs := rawExchange(t, c, "GET /echo/x HTTP/1.1\r\nHost: hop.test\r\n"+
			"Connection: X-Secret, X-Real-IP, X-Custom, keep-alive\r\n"+
			"X-Secret: 1\r\n"+
			"Keep-Alive: timeout=100\r\n"+
			"TE: trailers, deflate\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"X-Normal: stays\r\n\r\n", "GET")
		if rs[0].StatusCode != http.StatusOK {
			t.Fatalf("GET /echo/x = %s %q", rs[0].Status, rs[0].Body)
		}
		h := decodeSeen(t, rs[0].Body).Header
		for _, name := range []string{"X-Secret", "Keep-Alive", "TE", "Proxy-Connection"} {
			if v, ok := h[http.CanonicalHeaderKey(name)]; ok {
				t.Errorf("backend saw hop-by-hop header %s: %q", name, v)
			}
		}
		if hasToken(h.Get("Connection"), "X-Secret") {
			t.Errorf("backend saw the client's Connection header %q", h.Get("Connection"))
		}
		if got := h.Get("X-Normal"); got != "stays" {
			t.Errorf("backend saw X-Normal %q, want stays", got)
		}
		if got := h.Get("X-Real-IP"); got != "127.0.0.1" {
			t.Errorf("backend saw X-Real-IP %q, want 127.0.0.1: proxy_set_header must survive the client's Connection header", got)
		}
		if got := h.Get("X-Custom"); got != "fixed-value" {
			t.Errorf("backend saw X-Custom %q, want fixed-value: proxy_set_header must survive the client's Connection header", got)
		}
	})

	for _, path := range []string{"/close", "/keep"} {
		t.Run("response "+path, func(t *testing.T) {
			c := rawConn(t, addr(port), nil)
			rs := rawExchange(t, c, "GET "+path+"/x HTTP/1.1\r\nHost: hop.test\r\n\r\n", "GET")
			r := rs[0]
			if r.StatusCode != http.StatusOK || r.Body != "ok" {
				t.Fatalf("GET %s/x = %s %q", path, r.Status, r.Body)
			}
			if v := r.Header.Values("X-Foo"); len(v) != 0 {
				t.Errorf("client got X-Foo %q, which the backend listed in Connection", v)
			}
			if v := r.Header.Get("Keep-Alive"); v == "timeout=5" {
				t.Errorf("client got the backend's Keep-Alive %q", v)
			}
			if hasToken(r.Header.Get("Connection"), "X-Foo") {
				t.Errorf("client got the backend's Connection %q", r.Header.Get("Connection"))
			}
			if got := r.Header.Get("X-Kept"); got != "yes" {
				t.Errorf("client got X-Kept %q, want yes", got)
			}
		})
	}
}

// nginxLogLine matches "YYYY/MM/DD HH:MM:SS [level] pid#tid: msg".
var nginxLogLine = regexp.MustCompile(`(?m)^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[(error|crit|alert|emerg|warn)\] \d+#\d+: .+`)

func TestBadGatewayAndErrorLogFormat(t *testing.T) {
	t.Parallel()
	dead := freePort(t) // nothing listens here
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location / { proxy_pass http://127.0.0.1:{{DEAD}}; }
    }
}
`, "PORT", port, "DEAD", dead))
	r := get(t, httpClient(addr(port), nil), fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	if r.StatusCode != http.StatusBadGateway {
		t.Errorf("GET to a dead upstream = %s, want 502", r.Status)
	}
	if !eventually(3*time.Second, func() bool { return nginxLogLine.MatchString(s.Log()) }) {
		t.Errorf("no error-log line in nginx format (YYYY/MM/DD HH:MM:SS [level] pid#tid: msg) on stderr after a failed upstream connect")
	}
}

// TestChunkedTransferEncodingOff: with chunked_transfer_encoding off, a proxied response of unknown length goes
// to an HTTP/1.1 client without chunking, ended by closing the connection (nginx 1.22's head: no
// Transfer-Encoding, Connection: close); where it is on, the same response is chunked.
func TestChunkedTransferEncodingOff(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello ")
		w.(http.Flusher).Flush() // no Content-Length: the upstream's response is chunked
		io.WriteString(w, "world")
	}))
	t.Cleanup(up.Close)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /off { chunked_transfer_encoding off; proxy_pass {{UP}}; }
        location /on { proxy_pass {{UP}}; }
    }
}
`, "PORT", port, "UP", up.URL))
	for _, tc := range []struct {
		path, te string
		close    bool
	}{
		{"/off", "", true},
		{"/on", "chunked", false},
	} {
		c, err := net.Dial("tcp", addr(port))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", tc.path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		c.Close()
		if te := strings.Join(resp.TransferEncoding, ","); te != tc.te || resp.Close != tc.close || string(body) != "hello world" || err != nil {
			t.Errorf("%s: Transfer-Encoding %q, Connection: close %v, body %q (%v); want %q, %v", tc.path, te, resp.Close, body, err, tc.te, tc.close)
		}
	}
}
