package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// proxy_read_timeout is the longest silence between two reads from the upstream, on a pooled keep-alive
// connection as on a fresh one: a silent upstream gets 504 and the nginx-worded log line, a body that keeps
// coming in pieces closer together than the timeout passes whole however long it takes, and a body that stalls
// is cut off (never presented as complete). The upstream's silences last until sluice gives up on it (it closes
// the connection), and the trickle's pieces come ten times closer than the timeout, so a loaded machine's
// scheduling delays cannot turn a pass into a timeout or the reverse.
func TestProxyReadTimeout(t *testing.T) {
	t.Parallel()
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent": // until sluice closes the connection
			waitGone(r)
			io.WriteString(w, "late")
		case "/trickle": // 3 s in all (more than the timeout), a piece every 200 ms
			w.Header().Set("Content-Length", "15")
			for i := 0; i < 15; i++ {
				io.WriteString(w, "x")
				w.(http.Flusher).Flush()
				time.Sleep(200 * time.Millisecond)
			}
		case "/stall":
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "12345")
			w.(http.Flusher).Flush()
			waitGone(r)
			io.WriteString(w, "67890")
		default:
			io.WriteString(w, "ok")
		}
	}))
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    upstream app { server 127.0.0.1:{{UP}}; keepalive 8; }
    server {
        listen {{PORT}};
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 2s;
        }
    }
}
`, "PORT", port, "UP", up.Port))
	c := httpClient(addr(port), nil)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	// warm the pool: later requests go out on a kept-alive connection, idle longer than the timeout
	if r := get(t, c, url+"/", nil); r.StatusCode != 200 || r.Body != "ok" {
		t.Fatalf("GET / = %d %q", r.StatusCode, r.Body)
	}
	time.Sleep(2500 * time.Millisecond) // idle longer than the timeout: the condition under test, not a wait
	if r := get(t, c, url+"/", nil); r.StatusCode != 200 || r.Body != "ok" {
		t.Fatalf("GET / on a connection idle past the timeout = %d %q", r.StatusCode, r.Body)
	}
	if r := get(t, c, url+"/trickle", nil); r.StatusCode != 200 || r.Body != strings.Repeat("x", 15) {
		t.Errorf("GET /trickle = %d %q, want 200 and 15 x (every read came within the timeout)", r.StatusCode, r.Body)
	}
	if r := get(t, c, url+"/silent", nil); r.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("GET /silent = %d, want 504", r.StatusCode)
	}
	if !eventually(15*time.Second, func() bool {
		return strings.Contains(s.Log(), "upstream timed out (proxy_read_timeout)")
	}) {
		t.Errorf("no \"upstream timed out\" line in the error log:\n%s", s.Log())
	}
	resp, err := c.Get(url + "/stall")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("GET /stall read %q to a clean end; a body cut off by the read timeout must not look complete", b)
	}
	if r := get(t, c, url+"/", nil); r.StatusCode != 200 || r.Body != "ok" {
		t.Errorf("GET / after the timeouts = %d %q", r.StatusCode, r.Body)
	}
}

// waitGone blocks an upstream handler until the proxy closes the connection of r (at most a minute, so a
// proxy that never gives up fails the test rather than hanging it).
func waitGone(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(time.Minute):
	}
}
