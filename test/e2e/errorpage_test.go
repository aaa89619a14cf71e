package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBuiltinResponsesAsNginx: `return CODE;` gets nginx 1.22's status line and built-in page, as observed from
// nginx itself: its reason phrases ("Gateway Time-out", "Not Allowed", none for 418), its page titles ("302
// Found", "401 Authorization Required"), a 400 page for its own codes 494–497, and an empty body for codes it
// has no page for.
func TestBuiltinResponsesAsNginx(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code       int
		statusLine string
		title      string // "": no page, an empty body
	}{
		{200, "200 OK", ""},
		{203, "203 ", ""},
		{302, "302 Moved Temporarily", "302 Found"},
		{401, "401 Unauthorized", "401 Authorization Required"},
		{405, "405 Not Allowed", "405 Not Allowed"},
		{407, "407 ", ""},
		{413, "413 Request Entity Too Large", "413 Request Entity Too Large"},
		{414, "414 Request-URI Too Large", "414 Request-URI Too Large"},
		{416, "416 Requested Range Not Satisfiable", "416 Requested Range Not Satisfiable"},
		{418, "418 ", ""},
		{422, "422 ", ""},
		{494, "400 Bad Request", "400 Request Header Or Cookie Too Large"},
		{497, "400 Bad Request", "400 The plain HTTP request was sent to HTTPS port"},
		{503, "503 Service Temporarily Unavailable", "503 Service Temporarily Unavailable"},
		{504, "504 Gateway Time-out", "504 Gateway Time-out"},
		{506, "506 ", ""},
		{507, "507 Insufficient Storage", "507 Insufficient Storage"},
	}
	var locs strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&locs, "        location = /%d { return %d; }\n", c.code, c.code)
	}
	port := freePort(t)
	start(t, fill(t, "events {}\nhttp {\n    server {\n        listen {{PORT}};\n{{LOCS}}    }\n}\n", "PORT", port, "LOCS", locs.String()))
	titleRE := regexp.MustCompile(`<title>([^<]*)</title>`)
	for _, c := range cases {
		t.Run(fmt.Sprint(c.code), func(t *testing.T) {
			conn := rawConn(t, addr(port), nil)
			fmt.Fprintf(conn, "GET /%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", c.code)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(conn)
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSuffix(line, "\r\n"); got != "HTTP/1.1 "+c.statusLine {
				t.Errorf("status line %q, want %q", got, "HTTP/1.1 "+c.statusLine)
			}
			resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\n"), br)), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			title := ""
			if m := titleRE.FindSubmatch(body); m != nil {
				title = string(m[1])
			}
			if title != c.title {
				t.Errorf("page title %q, want %q (body %q)", title, c.title, body)
			}
			if c.title == "" && (len(body) != 0 || resp.Header.Get("Content-Length") != "0") {
				t.Errorf("body %q (Content-Length %q), want none", body, resp.Header.Get("Content-Length"))
			}
		})
	}
}

// TestProxiedStatusLine: a proxied response keeps its upstream's reason phrase, as nginx relays the upstream's
// status line, and $status is the status being sent when add_header evaluates it.
func TestProxiedStatusLine(t *testing.T) {
	t.Parallel()
	// raw answers every request with a reason phrase net/http cannot write
	raw := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 Fine Thing\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/"), "%d", &code)
		w.WriteHeader(code) // net/http's phrases: "Found", "Service Unavailable"
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        add_header X-St $status always;
        location / { proxy_pass http://127.0.0.1:{{UP}}; }
        location = /ret { return 200 "x"; }
        location /ep/ { error_page 404 /pe/x; return 404; }
        location /pe/ { proxy_pass http://127.0.0.1:{{UP}}/200/; }
        location /fine/ { proxy_pass http://{{RAW}}; }
    }
}
`, "PORT", port, "UP", up.Port, "RAW", raw))
	for _, tc := range []struct{ path, line, st string }{
		{"/302", "HTTP/1.1 302 Found", "302"},
		{"/503", "HTTP/1.1 503 Service Unavailable", "503"},
		{"/ret", "HTTP/1.1 200 OK", "200"},
		{"/fine/x", "HTTP/1.1 200 Fine Thing", "200"},
		// an error_page that proxies: the page's status with nginx's phrase, not the upstream's (and the
		// proxy_pass URI part replaces the prefix after the internal redirect, as nginx)
		{"/ep/x", "HTTP/1.1 404 Not Found", "404"},
	} {
		conn := rawConn(t, addr(port), nil)
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", tc.path)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(conn)
		line, _ := br.ReadString('\n')
		if got := strings.TrimSuffix(line, "\r\n"); got != tc.line {
			t.Errorf("%s: status line %q, want %q", tc.path, got, tc.line)
		}
		resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\n"), br)), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-St"); got != tc.st {
			t.Errorf("%s: add_header $status %q, want %q", tc.path, got, tc.st)
		}
	}
}

// TestStaticMethodsAsNginx: the static handler refuses methods in nginx's order (PUT at once, POST only for a
// file that exists, so a POST to a missing one is a 404 that error_page answers), and a 500 ends the connection
// as nginx ends it, also when an error_page answers it.
func TestStaticMethodsAsNginx(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        root html;
        error_page 404 /404.html;
        location = /boom { return 500; }
        location = /boom-page { error_page 500 /404.html; return 500; }
        location = /custom.txt { add_header ETag '"custom"'; add_header Last-Modified ""; }
    }
}
`, "PORT", port), withFile("html/there.txt", []byte("there\n")), withFile("html/404.html", []byte("custom 404\n")),
		withFile("html/custom.txt", []byte("custom\n")))
	// add_header ETag and Last-Modified replace the file's own; an empty value removes it (as nginx)
	if r, _ := exchange(t, port, "GET /custom.txt HTTP/1.1\r\nHost: x\r\n\r\n"); r == nil || len(r.Header.Values("Etag")) != 1 ||
		r.Header.Get("Etag") != `"custom"` || r.Header.Get("Last-Modified") != "" {
		t.Errorf("add_header ETag/Last-Modified: %v", r)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
		closed       bool
	}{
		{"POST", "/missing", 404, "custom 404\n", false},
		{"POST", "/there.txt", 405, "", false},
		{"PUT", "/missing", 405, "", false},
		{"GET", "/there.txt", 200, "there\n", false},
		{"GET", "/boom", 500, "", true},
		{"GET", "/boom-page", 500, "custom 404\n", true},
	} {
		r, closed := exchange(t, port, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		if r == nil {
			t.Fatalf("%s %s: no response", tc.method, tc.path)
		}
		if r.StatusCode != tc.status || tc.body != "" && r.Body != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, r.StatusCode, r.Body, tc.status, tc.body)
		}
		if closed != tc.closed {
			t.Errorf("%s %s: connection closed %v, want %v", tc.method, tc.path, closed, tc.closed)
		}
		if tc.status != 200 && (r.Header.Get("Last-Modified") != "" || r.Header.Get("Accept-Ranges") != "") {
			t.Errorf("%s %s: a %d with Last-Modified %q, Accept-Ranges %q (nginx sends them with 200s)", tc.method, tc.path,
				tc.status, r.Header.Get("Last-Modified"), r.Header.Get("Accept-Ranges"))
		}
	}
}

// TestRecursiveErrorPages: without recursive_error_pages the first error page is the last (its target's
// failure gets the built-in page, with the failure's status even after `=200`); with it, the location where
// each error occurs decides whether its error_page runs, chains end at the redirection limit with a built-in
// 500, and the status is the last error's unless an `=code` changed it. Observed from nginx 1.22.
func TestRecursiveErrorPages(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        location /a { error_page 404 /b/x; }
        location /b { error_page 404 /c/x; }
        location /c { return 200 "c"; }
        location /r { recursive_error_pages on; error_page 404 /b/x; }
        location /t { recursive_error_pages on; error_page 404 = /rt/x; }
        location /rt { recursive_error_pages on; error_page 404 =410 /c/x; }
        location /loop { recursive_error_pages on; error_page 404 /loop/again; error_page 500 /c/x; }
        location /v { recursive_error_pages on; error_page 403 /vv/x; deny all; }
        location /vv { recursive_error_pages on; error_page 404 @named; }
        location @named { return 202 "named"; }
        location /w { error_page 404 =200 /nothing/x; }
    }
    server {
        listen {{PORT}};
        server_name srv.test;
        recursive_error_pages on;
        error_page 404 /b/x;
        location /b { error_page 404 /c/x; }
        location /c { return 200 "c"; }
    }
}
`, nil)
	for _, tc := range []struct {
		host, path string
		status     int
		body       string // "": nginx's built-in page for the status
	}{
		{"", "/a/m", 404, ""},
		{"", "/r/m", 404, "c"},
		{"", "/t/m", 410, "c"},
		{"", "/loop/m", 500, ""},
		{"", "/v/m", 404, "named"},
		{"", "/w/m", 404, ""},
		{"srv.test", "/zz", 404, "c"},
	} {
		r := semGet(t, port, tc.path, tc.host)
		want := tc.body
		if want == "" {
			want = fmt.Sprintf("<title>%d %s</title>", tc.status, http.StatusText(tc.status))
		}
		if r.StatusCode != tc.status || !strings.Contains(r.Body, want) {
			t.Errorf("%s%s: %d %q, want %d %q", tc.host, tc.path, r.StatusCode, r.Body, tc.status, want)
		}
	}
}
