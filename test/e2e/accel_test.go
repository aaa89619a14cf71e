package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestProxyAccelRedirect: a proxied response with X-Accel-Redirect is replaced by an internal redirect, as
// nginx does for proxy_pass (not only FastCGI). Every answer was observed from nginx 1.22 with the same upstream
// and configuration: the file or location named answers with the upstream's Content-Type, Content-Disposition,
// Set-Cookie and Cache-Control and none of its other fields; a URI target turns a POST into a GET, a named one
// keeps it; arguments go with the target; an unsafe, relative or empty target is 404; proxy_ignore_headers
// X-Accel-Redirect passes the response as it is (without the header).
func TestProxyAccelRedirect(t *testing.T) {
	t.Parallel()
	app := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		target, ok := map[string]string{"/dl": "/protected/file.txt", "/named": "@named", "/unsafe": "/protected/%2e%2e/x",
			"/args": "/echo?x=1&y=2", "/rel": "protected/file.txt", "/empty": ""}[r.URL.Path]
		h := w.Header()
		h.Set("Content-Type", "application/x-custom")
		h.Set("Content-Disposition", `attachment; filename="f.txt"`)
		h.Set("X-Other", "yes")
		h.Set("Set-Cookie", "a=b")
		h.Set("Cache-Control", "private")
		if ok {
			h["X-Accel-Redirect"] = []string{target}
		}
		io.WriteString(w, "upstream body "+r.URL.Path)
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    types { text/plain txt; }
    server {
        listen {{PORT}};
        root html;
        location /protected/ { internal; }
        location @named { return 200 "named $request_method\n"; }
        location = /echo { return 200 "echo $request_method $args\n"; }
        location /ign/ { proxy_pass http://127.0.0.1:{{APP}}/; proxy_ignore_headers X-Accel-Redirect; }
        location / { proxy_pass http://127.0.0.1:{{APP}}; }
    }
}
`, "PORT", port, "APP", app.Port), withFile("html/protected/file.txt", []byte("protected file\n")))
	kept := "Content-Type: application/x-custom|Content-Disposition: attachment; filename=\"f.txt\"|Set-Cookie: a=b|Cache-Control: private|X-Other: |X-Accel-Redirect: "
	for _, tc := range []struct {
		method, path string
		code         int
		body, want   string
	}{
		{"GET", "/dl", 200, "protected file\n", kept},
		{"POST", "/dl", 200, "protected file\n", kept},
		{"GET", "/named", 200, "named GET\n", kept},
		{"POST", "/named", 200, "named POST\n", kept},
		{"GET", "/args", 200, "echo GET x=1&y=2\n", kept},
		{"GET", "/unsafe", 404, "", "Content-Type: text/html"},
		{"GET", "/rel", 404, "", "Content-Type: text/html"},
		{"GET", "/empty", 404, "", "Content-Type: text/html"},
		{"GET", "/ign/dl", 200, "upstream body /dl", "X-Other: yes|X-Accel-Redirect: "},
		{"GET", "/protected/file.txt", 404, "", ""},
	} {
		r, _ := exchange(t, port, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\n\r\nx")
		if r == nil {
			t.Fatalf("%s %s: no response", tc.method, tc.path)
		}
		if r.StatusCode != tc.code || tc.body != "" && r.Body != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, r.StatusCode, r.Body, tc.code, tc.body)
		}
		for _, line := range strings.Split(tc.want, "|") {
			if line == "" {
				continue
			}
			k, v, _ := strings.Cut(line, ": ")
			if got := r.Header.Get(k); got != v {
				t.Errorf("%s %s: %s %q, want %q", tc.method, tc.path, k, got, v)
			}
		}
	}
}

// TestProxyAccelRedirectReleasesPeer: the upstream's share of its peer (max_conns, least_conn) ends when it has
// answered with X-Accel-Redirect, not when the file it named has been sent: a client that downloads slowly
// must not make the peer look busy (it answered 502 "no live upstreams" to the next request).
func TestProxyAccelRedirectReleasesPeer(t *testing.T) {
	t.Parallel()
	app := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Accel-Redirect", "/files/big.bin")
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    upstream app { server 127.0.0.1:{{APP}} max_conns=1; }
    server {
        listen {{PORT}};
        root html;
        location /files/ { internal; }
        location / { proxy_pass http://app; }
    }
}
`, "PORT", port, "APP", app.Port), withFile("html/files/big.bin", bytes.Repeat([]byte("x"), 32<<20)))
	slow, err := net.DialTimeout("tcp", addr(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET /dl HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if _, err := io.ReadFull(slow, make([]byte, 64)); err != nil { // the download has begun; it is not read further
		t.Fatal(err)
	}
	c := httpClient(addr(port), nil)
	for i := range 2 {
		req, _ := http.NewRequest("HEAD", "http://a.test/dl", nil)
		if r := do(t, c, req); r.StatusCode != 200 {
			t.Errorf("request %d during a slow download: %d", i+1, r.StatusCode)
		}
	}
}
