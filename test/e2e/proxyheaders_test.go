package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestProxyHeadersAsNginx: request and response headers around proxy_pass as nginx 1.22 sends them: a
// header set twice goes out twice, an emptied User-Agent goes out not at all (no Go default), a decoded path
// is escaped as nginx escapes it, and proxy_pass_header Server passes the upstream's Server header on.
func TestProxyHeadersAsNginx(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	named := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "upstream-server/1.0")
		io.WriteString(w, "ok")
	}))
	port, port2 := freePort(t), freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /dup/ { proxy_set_header X-Dup a; proxy_set_header X-Dup b; proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /noua/ { proxy_set_header User-Agent ""; proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /uri/ { proxy_pass http://127.0.0.1:{{ECHO}}/dst/; }
        location /passsrv/ { proxy_pass_header Server; proxy_pass http://127.0.0.1:{{NAMED}}; }
        location /hidesrv/ { proxy_pass http://127.0.0.1:{{NAMED}}; }
    }
    server {
        listen {{PORT2}};
        underscores_in_headers on;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "PORT", port, "PORT2", port2, "ECHO", echo.Port, "NAMED", named.Port))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(path string, h http.Header) (*http.Response, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	_, body := get("/dup/x", nil)
	if got := decodeSeen(t, body).Header.Values("X-Dup"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("proxy_set_header twice: the upstream got X-Dup %q, want [a b]", got)
	}
	_, body = get("/noua/x", http.Header{"User-Agent": {"curl/8"}})
	if got, ok := decodeSeen(t, body).Header["User-Agent"]; ok {
		t.Errorf("proxy_set_header User-Agent \"\": the upstream got User-Agent %q, want none", got)
	}
	_, body = get("/uri/a%22b%7Cc", nil)
	if got := decodeSeen(t, body).URI; got != "/dst/a%22b%7Cc" {
		t.Errorf("the upstream got %q, want /dst/a%%22b%%7Cc", got)
	}
	resp, _ := get("/passsrv/x", nil)
	if got := resp.Header.Get("Server"); got != "upstream-server/1.0" {
		t.Errorf("proxy_pass_header Server: the client got Server %q", got)
	}
	resp, _ = get("/hidesrv/x", nil)
	if got := resp.Header.Get("Server"); got == "upstream-server/1.0" {
		t.Errorf("without proxy_pass_header the upstream's Server %q reached the client", got)
	}
	// a header name with "_" is dropped unless underscores_in_headers is on (as nginx)
	_, body = get("/dup/x", http.Header{"Api_key": {"k1"}})
	if got := decodeSeen(t, body).Header.Get("Api_key"); got != "" {
		t.Errorf("underscores_in_headers off: the upstream got Api_key %q", got)
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/x", port2), nil)
	req.Header["Api_key"] = []string{"k2"}
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if got := decodeSeen(t, string(b2)).Header.Get("Api_key"); got != "k2" {
		t.Errorf("underscores_in_headers on: the upstream got Api_key %q, want k2", got)
	}
}

// TestProxySendTimeout: an upstream that stops reading the request body answers the client 504 after
// proxy_send_timeout, as nginx ("upstream timed out … while sending request"); it was a 502.
func TestProxySendTimeout(t *testing.T) {
	t.Parallel()
	// an upstream that accepts and never reads
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	up := rawUpstream(t, func(net.Conn) { <-done })
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    client_max_body_size 64m;
    server {
        listen {{PORT}};
        location / { proxy_send_timeout 1s; proxy_read_timeout 30s; proxy_pass http://{{UP}}; }
    }
}
`, "PORT", port, "UP", up))
	body := bytes.NewReader(make([]byte, 48<<20)) // far more than the socket buffers hold
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/", port), "application/octet-stream", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", resp.StatusCode)
	}
}

// TestLingeringClose: the answer to an upload sluice will not read (413 for a body over client_max_body_size)
// reaches a client that is still sending it: the connection lingers, reading and dropping the rest, instead of
// closing with unread bytes, which makes the kernel reset it and can destroy the response (nginx's
// lingering_close).
func TestLingeringClose(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        client_max_body_size 1k;
        location / { return 200 "ok"; }
        location /up { proxy_pass http://127.0.0.1:1; }
    }
}
`, "PORT", port))
	// a client that sent part of its body and waits: the 413 comes at once, not after the body's timeout
	c := rawConn(t, addr(port), nil)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"+strings.Repeat("x", 1000))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("partial upload: %v %v, want a 413 at once", resp, err)
	}
	for i := range 5 {
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/up", port), "application/octet-stream", bytes.NewReader(make([]byte, 16<<20)))
		if err != nil {
			t.Fatalf("upload %d: %v (the 413 was lost)", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("upload %d: status %d, want 413", i, resp.StatusCode)
		}
	}
}

// TestLingeringDirectives: lingering_close, lingering_time and lingering_timeout, set at http, server and
// location level, decide how a connection that closes after its response reads and drops what the client still
// sends. Each case sends a request, reads the answer, then sends 512 bytes every 50 ms and measures how long
// the server took them (its socket resets the writes once it has closed). The answers were observed from
// nginx 1.22 on the same configuration (upload /on 2.02s, /off 2.02s, /long 4s+, /on with a 2.5s pause
// 2.55s, /patient with the pause 4s+, GET /always 1.38s (nginx counts lingering_time in whole seconds), GET
// /geton 50ms, a refused head with bytes after it 1.97s on the default server with on and 50ms with off, a
// refused head alone 50ms): an upload's unread body is read and dropped for lingering_time even with
// lingering_close off (nginx discards the body of a request it answered), lingering_timeout ends a linger
// the client pauses in, always lingers after any response, on only when more than the request was sent, and a
// request refused before a server was chosen follows the default server's settings.
func TestLingeringDirectives(t *testing.T) {
	t.Parallel()
	port, off := freePort(t), freePort(t)
	start(t, fill(t, `events {}
http {
    access_log off;
    client_max_body_size 1k;
    lingering_timeout 1s;
    lingering_time 2s;
    server {
        listen {{PORT}};
        location /on { proxy_pass http://127.0.0.1:1; }
        location /off { lingering_close off; proxy_pass http://127.0.0.1:1; }
        location /long { lingering_time 30s; proxy_pass http://127.0.0.1:1; }
        location /patient { lingering_timeout 10s; lingering_time 30s; proxy_pass http://127.0.0.1:1; }
        location /always { lingering_close always; return 200 "always"; }
        location /geton { return 200 "on"; }
    }
    server {
        listen {{OFF}};
        lingering_close off;
        location / { return 200; }
    }
}
`, "PORT", port, "OFF", off))
	upload := func(path string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("y", 2000)
	}
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" }
	const refused = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	const limit = 4 * time.Second
	const (
		closes  = iota // at once (under 500 ms)
		lingers        // past 500 ms, and closed by lingering_time (2s) before the limit
		stays          // still reading at the limit (4s)
	)
	for _, tc := range []struct {
		name   string
		port   int
		raw    string
		pause  time.Duration
		status int
		want   int
	}{
		{"upload, on", port, upload("/on"), 0, 413, lingers},
		{"upload, off: the body is still discarded", port, upload("/off"), 0, 413, lingers},
		{"upload, lingering_time 30s", port, upload("/long"), 0, 413, stays},
		{"upload, a pause past lingering_timeout", port, upload("/on"), 2500 * time.Millisecond, 413, lingers},
		{"upload, a pause within lingering_timeout 10s", port, upload("/patient"), 2500 * time.Millisecond, 413, stays},
		{"always", port, get("/always"), 0, 200, lingers},
		{"on, nothing more sent", port, get("/geton"), 0, 200, closes},
		{"refused head with more, default server on", port, refused, 0, 400, lingers},
		{"refused head with more, default server off", off, refused, 0, 400, closes},
		{"refused head alone, default server on", port, "GET / HTTP/1.1\r\n\r\n", 0, 400, closes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, kept := lingerProbe(t, tc.port, tc.raw, tc.pause, limit)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			got := lingers
			switch {
			case kept < 500*time.Millisecond:
				got = closes
			case kept >= limit:
				got = stays
			}
			if got != tc.want {
				t.Errorf("the server took the client's bytes for %v, want %v", kept, []string{"a close at once", "a linger of lingering_time", "a linger past 4s"}[tc.want])
			}
		})
	}
}

// lingerProbe sends raw on a new connection and reads the answer, then, after pause, sends 512 bytes every
// 50 ms until a write fails or for limit; it returns the status and how long the server took the bytes.
func lingerProbe(t *testing.T, port int, raw string, pause, limit time.Duration) (int, time.Duration) {
	t.Helper()
	c := rawConn(t, addr(port), nil)
	io.WriteString(c, raw)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	time.Sleep(pause)
	chunk := strings.Repeat("x", 512)
	for time.Since(start) < limit {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(c, chunk); err != nil {
			return resp.StatusCode, time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return resp.StatusCode, limit
}

// TestProxyPassVariablesNeedResolver: proxy_pass with variables connects to a host name made at request time
// (here from the client's Host) only where a resolver is configured, as nginx: without one the answer is 502
// ("no resolver defined"), so a client cannot steer sluice to any name it likes; an IP address needs none.
func TestProxyPassVariablesNeedResolver(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /byhost/ { proxy_pass http://$host:{{ECHO}}; }
        location /byip/ { set $up 127.0.0.1; proxy_pass http://$up:{{ECHO}}; }
        location /resolved/ { resolver 127.0.0.1; proxy_pass http://$host:{{ECHO}}; }
    }
}
`, "PORT", port, "ECHO", echo.Port))
	for path, want := range map[string]int{"/byhost/x": 502, "/byip/x": 200, "/resolved/x": 200} {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		req.Host = "localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s with Host: localhost: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(s.Log(), "no resolver defined to resolve localhost") }) {
		t.Errorf("no log line for the refused name:\n%s", s.Log())
	}
}

// TestProxyPassURIAfterChanges: a proxy_pass URI part replaces the location's prefix also after an internal
// redirect or a rewrite that searched the locations again; only rewrite … break sends the changed URI whole
// (answers observed from nginx 1.22).
func TestProxyPassURIAfterChanges(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /ep2/ { error_page 404 /pe2/page; return 404; }
        location /pe2/ { proxy_pass http://127.0.0.1:{{ECHO}}/dst/; }
        location /rb/ { rewrite ^/rb/(.*)$ /changed/$1 break; proxy_pass http://127.0.0.1:{{ECHO}}/dst/; }
        location /fl/ { rewrite ^/fl/(.*)$ /pe2/$1; }
    }
}
`, "PORT", port, "ECHO", echo.Port))
	for path, want := range map[string]string{"/ep2/x": "/dst/page", "/rb/x": "/changed/x", "/fl/abc": "/dst/abc"} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := decodeSeen(t, string(b)).URI; got != want {
			t.Errorf("%s: the upstream got %q, want %q", path, got, want)
		}
	}
}

// TestProxyCookieRewrite: proxy_cookie_domain and proxy_cookie_path rewrite the upstream's Set-Cookie
// attributes as nginx 1.22 does (every expected value below was observed from it on the same configuration).
func TestProxyCookieRewrite(t *testing.T) {
	t.Parallel()
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Set-Cookie"] = []string{"a=1; Domain=Backend.Internal; Path=/two/x; HttpOnly",
			"b=2; path=/TWO/y; domain=.backend.internal", "c=3; Path=/other"}
		io.WriteString(w, "ok")
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /d/ { proxy_cookie_domain backend.internal example.org; proxy_cookie_path /two/ /; proxy_pass http://127.0.0.1:{{UP}}; }
        location /re/ { proxy_cookie_domain ~^(.+)\.internal$ $1.example.com; proxy_cookie_path ~*^/two/(.*)$ /app/$1; proxy_pass http://127.0.0.1:{{UP}}; }
        location /off/ { proxy_cookie_path off; proxy_pass http://127.0.0.1:{{UP}}; }
    }
}
`, "PORT", port, "UP", up.Port))
	for path, want := range map[string][]string{
		"/d/x": {"a=1; Domain=example.org; Path=/x; HttpOnly", "b=2; path=/TWO/y; domain=.example.org", "c=3; Path=/other"},
		"/re/x": {"a=1; Domain=Backend.example.com; Path=/app/x; HttpOnly", "b=2; path=/app/y; domain=.backend.example.com",
			"c=3; Path=/other"},
		"/off/x": {"a=1; Domain=Backend.Internal; Path=/two/x; HttpOnly", "b=2; path=/TWO/y; domain=.backend.internal", "c=3; Path=/other"},
	} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header["Set-Cookie"]; strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: Set-Cookie\n%s\nwant\n%s", path, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
