package e2e

import (
	"bufio"
	"compress/gzip"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"strconv"
	"strings"
	"testing"
	"time"
)

// piecesBackend answers with the body given as ?parts=a|b|c, each piece flushed on its own after ?delay=ms,
// with the head given by ?type= (default text/html), ?status=, ?ce= (Content-Encoding), ?etag=, ?lm=
// (Last-Modified), ?ar= (Accept-Ranges), ?xa= (X-Accel-Charset) and ?cl=1 (a Content-Length).
func piecesBackend(t *testing.T) *backend {
	return newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		parts := strings.Split(q.Get("parts"), "|")
		delay, _ := strconv.Atoi(q.Get("delay"))
		h := w.Header()
		h.Set("Content-Type", "text/html")
		for k, name := range map[string]string{"type": "Content-Type", "ce": "Content-Encoding", "etag": "Etag", "lm": "Last-Modified", "ar": "Accept-Ranges", "xa": "X-Accel-Charset"} {
			if v := q.Get(k); v != "" {
				h.Set(name, v)
			}
		}
		if q.Get("cl") == "1" {
			h.Set("Content-Length", strconv.Itoa(len(strings.Join(parts, ""))))
		}
		status := http.StatusOK
		if s := q.Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		w.WriteHeader(status)
		for i, p := range parts {
			if i > 0 {
				time.Sleep(time.Duration(delay) * time.Millisecond)
			}
			io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
	}))
}

const subFilterConf = `events {}
http {
    types { text/html html; text/plain txt; }
    server {
        listen {{PORT}}; listen {{TLS}} ssl; http2 on; ssl_certificate self-signed;
        root html;
        location /p/ { proxy_pass http://127.0.0.1:{{UP}}/; sub_filter hello HI; sub_filter foo BAR; }
        location /poff/ { proxy_pass http://127.0.0.1:{{UP}}/; sub_filter hello HI; sub_filter foo BAR; sub_filter_once off; }
        location /plm/ { proxy_pass http://127.0.0.1:{{UP}}/; sub_filter hello HI; sub_filter_last_modified on; }
        location /ptypes/ { proxy_pass http://127.0.0.1:{{UP}}/; sub_filter hello HI; sub_filter_types text/plain; }
        location /pgz/ { proxy_pass http://127.0.0.1:{{UP}}/; gzip on; gzip_min_length 1; sub_filter hello HI; sub_filter_once off; }
        location /pvar/ { proxy_pass http://127.0.0.1:{{UP}}/; sub_filter $arg_s "<$arg_r>"; sub_filter_once off; }
        location /pov/ { proxy_pass http://127.0.0.1:{{UP}}/; sub_filter ab X; sub_filter abc Y; sub_filter_once off; }
        location /pov2/ { proxy_pass http://127.0.0.1:{{UP}}/; sub_filter abc Y; sub_filter ab X; sub_filter_once off; }
        location /ah/ { proxy_pass http://127.0.0.1:{{UP}}/; add_header ETag '"added"'; add_header X-A 1; sub_filter hello HI; }
        location /sse/ { proxy_pass http://127.0.0.1:{{UP}}/; proxy_buffering off; sub_filter hello HI; sub_filter_once off; sub_filter_types text/event-stream; }
        location /pany/ { proxy_pass http://127.0.0.1:{{UP}}/; sub_filter hello HI; sub_filter_types *; }
        location /sany/ { alias html/; sub_filter hello HI; sub_filter_types *; }
        location /raw/ { alias html/; }
        location /s/ { alias html/; sub_filter hello HI; sub_filter_types text/plain; }
        location /ret { sub_filter hello HI; default_type text/html; return 200 "hello hello"; }
        location /rempty { sub_filter hello HI; default_type text/html; return 200 ""; }
        location /ret404 { sub_filter Found LOST; return 404; }
        location /r301 { sub_filter Moved GONE; return 301 /x; }
        location /fc { include fastcgi_params; fastcgi_pass 127.0.0.1:{{FC}}; sub_filter hello HI; sub_filter_once off; }
    }
}
`

// TestSubFilterAsNginx checks sub_filter over HTTP/1.1 and HTTP/2 on proxied (bodies in pieces with pauses),
// FastCGI, static, return and built-in responses. Every expected answer was observed from nginx 1.22 on the
// same configuration and backends: matching without case, each string once (sub_filter_once on) or every
// match, the string configured first winning at one place, a match split across upstream reads replaced, a
// possible match pending at the end sent as it is; any status (404, 500, 201, 302, nginx's own pages), and a
// Content-Encoding is no exemption; no Content-Length, no Last-Modified and no ETag (add_header's included), or
// with sub_filter_last_modified a weak ETag; an upstream's Accept-Ranges kept, a static file sent whole to a
// Range request without Accept-Ranges; a 304 (which has no type) keeps its validators unless the types are "*";
// a type not listed, a known empty body or a search variable that is empty leave the response as it was.
func TestSubFilterAsNginx(t *testing.T) {
	t.Parallel()
	up := piecesBackend(t)
	fl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	go fcgi.Serve(fl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("ETag", `"f"`)
		io.WriteString(w, "fcgi hel")
		w.(http.Flusher).Flush()
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "lo hello")
	}))
	port, tlsPort := freePort(t), freePort(t)
	start(t, fill(t, subFilterConf, "PORT", port, "TLS", tlsPort, "UP", up.Port, "FC", fl.Addr().(*net.TCPAddr).Port),
		withFile("html/page.html", []byte("hello world, Hello again, HELLO. foo foo\n")),
		withFile("html/t.txt", []byte("hello text\n")))

	const lm = "Mon,%2001%20Jan%202024%2000:00:00%20GMT"
	tests := []struct {
		path   string
		hdr    []string // request header, name and value pairs
		status int
		body   string
		want   []string // response header: "Name: value", or "Name" for absent; "-Content-Length": absent or the body's
	}{
		{"/p/?parts=xx%20hel|lo%20foo%20HeLLo%20FOO%20fo|o&delay=50&cl=1", nil, 200, "xx HI BAR HeLLo FOO foo", []string{"Content-Length"}},
		{"/poff/?parts=xx%20hel|lo%20foo%20HeLLo%20FOO%20fo|o&delay=50", nil, 200, "xx HI BAR HI BAR BAR", []string{"Content-Length"}},
		{"/p/?parts=hello&status=404", nil, 404, "HI", nil},
		{"/p/?parts=hello&status=500", nil, 500, "HI", nil},
		{"/p/?parts=hello&status=201", nil, 201, "HI", nil},
		{"/p/?parts=hello&status=302", nil, 302, "HI", nil},
		{"/p/?parts=hello&ce=gzip&cl=1", nil, 200, "HI", []string{"Content-Encoding: gzip", "-Content-Length"}},
		{"/p/?parts=hello&etag=%22e1%22&lm=" + lm + "&cl=1", nil, 200, "HI", []string{"Etag", "Last-Modified", "-Content-Length"}},
		{"/plm/?parts=hello&etag=%22e1%22&lm=" + lm, nil, 200, "HI", []string{`Etag: W/"e1"`, "Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT"}},
		{"/p/?parts=hello&status=304&etag=%22e%22&lm=" + lm, nil, 304, "", []string{`Etag: "e"`, "Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT"}},
		{"/pany/?parts=hello&status=304&etag=%22e%22&lm=" + lm, nil, 304, "", []string{"Etag", "Last-Modified"}},
		{"/s/page.html", []string{"If-Modified-Since", "{{MTIME}}"}, 304, "", []string{"Etag: {{ETAG}}", "Last-Modified: {{MTIME}}"}},
		{"/sany/page.html", []string{"If-Modified-Since", "{{MTIME}}"}, 304, "", []string{"Etag", "Last-Modified"}},
		{"/p/?parts=hello&type=text/plain&cl=1&etag=%22e%22", nil, 200, "hello", []string{"Content-Length: 5", `Etag: "e"`}},
		{"/ptypes/?parts=hello&type=text/plain", nil, 200, "HI", nil},
		{"/ptypes/?parts=hello&type=text/html", nil, 200, "HI", nil},
		{"/p/?parts=hello&type=TEXT/HTML", nil, 200, "HI", nil},
		{"/p/?parts=&cl=1&etag=%22e%22", nil, 200, "", []string{"Content-Length: 0", `Etag: "e"`}},
		{"/p/?parts=hello&ar=bytes&cl=1", []string{"Range", "bytes=0-1"}, 200, "HI", []string{"Accept-Ranges: bytes"}},
		{"/ah/?parts=hello", nil, 200, "HI", []string{"Etag", "X-A: 1"}},
		{"/pov/?parts=xabcx%20ab%20abd", nil, 200, "xXcx X Xd", nil},
		{"/pov2/?parts=xabcx%20ab%20abd", nil, 200, "xYx X Xd", nil},
		{"/pov2/?parts=xab", nil, 200, "xab", nil},
		{"/pov2/?parts=xa|b|c&delay=50", nil, 200, "xY", nil},
		{"/pov2/?parts=xab|d&delay=50", nil, 200, "xXd", nil},
		{"/pvar/?parts=one%20TWO%20two&s=Two&r=$uri", nil, 200, "one <$uri> <$uri>", nil},
		{"/pvar/?parts=one%20TWO%20two&s=&r=x&cl=1", nil, 200, "one TWO two", []string{"Content-Length: 11"}},
		{"/fc", nil, 200, "fcgi HI HI", []string{"Etag"}},
		{"/s/page.html", nil, 200, "HI world, Hello again, HELLO. foo foo\n", []string{"Etag", "Last-Modified", "Accept-Ranges", "-Content-Length"}},
		{"/s/page.html", []string{"Range", "bytes=0-3"}, 200, "HI world, Hello again, HELLO. foo foo\n", []string{"Accept-Ranges", "Content-Range"}},
		{"/s/t.txt", nil, 200, "HI text\n", nil},
		{"/ret", nil, 200, "HI hello", nil},
		{"/rempty", nil, 200, "", []string{"Content-Length: 0"}},
		{"/ret404", nil, 404, "<head><title>404 Not LOST</title></head>", nil},
		{"/r301", nil, 301, "<head><title>301 GONE Permanently</title></head>", nil},
	}
	clients := map[string]struct {
		c    *http.Client
		base string
	}{
		"HTTP/1.1": {&http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: dialTo(addr(port)), DisableCompression: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, "http://sub.test"},
		"HTTP/2": {&http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true, DisableCompression: true,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, "https://" + addr(tlsPort)},
	}
	for proto, cl := range clients {
		t.Run(proto, func(t *testing.T) {
			raw := get(t, cl.c, cl.base+"/raw/page.html", nil) // the file's validators, without sub_filter
			validators := strings.NewReplacer("{{MTIME}}", raw.Header.Get("Last-Modified"), "{{ETAG}}", raw.Header.Get("Etag"))
			for _, tc := range tests {
				h := http.Header{}
				for i := 0; i+1 < len(tc.hdr); i += 2 {
					h.Set(tc.hdr[i], validators.Replace(tc.hdr[i+1]))
				}
				r := get(t, cl.c, cl.base+tc.path, h)
				body := r.Body
				if strings.HasPrefix(tc.body, "<head>") {
					_, body, _ = strings.Cut(body, "\r\n") // a built-in page: its title line
					body, _, _ = strings.Cut(body, "\r\n")
				}
				if r.StatusCode != tc.status || body != tc.body {
					t.Errorf("%s %v: %d %q, want %d %q", tc.path, tc.hdr, r.StatusCode, body, tc.status, tc.body)
				}
				for _, w := range tc.want {
					name, val, set := strings.Cut(validators.Replace(w), ": ")
					got, present := r.Header[http.CanonicalHeaderKey(strings.TrimPrefix(name, "-"))]
					switch {
					case strings.HasPrefix(name, "-"):
						// sluice gives a short complete body its own length where nginx chunks it (as with gzip)
						if present && got[0] != strconv.Itoa(len(r.Body)) {
							t.Errorf("%s: %s %q for a %d-byte body", tc.path, name[1:], got, len(r.Body))
						}
					case !set && present:
						t.Errorf("%s %v: %s %q, want none", tc.path, tc.hdr, name, got)
					case set && (!present || got[0] != val):
						t.Errorf("%s %v: %s %q, want %q", tc.path, tc.hdr, name, got, val)
					}
				}
			}
			// HEAD: the head a GET gets, without Content-Length
			for _, p := range []string{"/s/page.html", "/p/?parts=hello&cl=1"} {
				req, _ := http.NewRequest(http.MethodHead, cl.base+p, nil)
				if r := do(t, cl.c, req); r.StatusCode != 200 || r.Header.Get("Content-Length") != "" || r.Header.Get("Last-Modified") != "" {
					t.Errorf("HEAD %s: %d, Content-Length %q, Last-Modified %q", p, r.StatusCode, r.Header.Get("Content-Length"), r.Header.Get("Last-Modified"))
				}
			}
			// sub_filter runs before gzip: the substituted body is compressed
			r := get(t, cl.c, cl.base+"/pgz/?parts=hello%20hel|lo%20x&delay=50", http.Header{"Accept-Encoding": {"gzip"}})
			zr, err := gzip.NewReader(strings.NewReader(r.Body))
			if err != nil || r.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("/pgz/: Content-Encoding %q: %v", r.Header.Get("Content-Encoding"), err)
			}
			if plain, _ := io.ReadAll(zr); string(plain) != "HI HI x" {
				t.Errorf("/pgz/: %q, want %q", plain, "HI HI x")
			}
		})
	}
}

// TestSubFilterStreams checks a rewritten response streams: with proxy_buffering off, each server-sent event
// reaches the client before the upstream sends the next, and a match split across the two is replaced (nginx
// 1.22 sends "data: x hel" at once less the possible match "hel", then "lo" completes it).
func TestSubFilterStreams(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, p := range []string{"data: one hello\n\ndata: x hel", "lo\n\n", "data: hello end\n\n"} {
			if i > 0 {
				select {
				case _, ok := <-next:
					if !ok {
						return
					}
				case <-time.After(10 * time.Second):
					return
				}
			}
			io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
	}))
	port := freePort(t)
	start(t, fill(t, subFilterConf, "PORT", port, "TLS", freePort(t), "UP", up.Port, "FC", 1))
	c, err := net.Dial("tcp", addr(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, "GET /sse/ HTTP/1.1\r\nHost: sub.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" || resp.ContentLength != -1 {
		t.Errorf("Transfer-Encoding %q, Content-Length %d, want chunked", resp.TransferEncoding, resp.ContentLength)
	}
	read := func(want string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second)) // the upstream waits twice as long for the next step
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != want {
			t.Fatalf("read %q (%v), want %q before the upstream sends more", buf, err, want)
		}
	}
	read("data: one HI\n\ndata: x ")
	next <- struct{}{}
	read("HI\n\n")
	next <- struct{}{}
	read("data: HI end\n\n")
	close(next)
}
