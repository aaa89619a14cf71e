package e2e

import (
	"bufio"
	"compress/gzip"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGzipAsNginx checks on-the-fly compression over HTTP/1.1 and HTTP/2 for static files, proxied responses
// and built-in pages. What is compressed, and the head of a compressed response, are as nginx 1.22 answered
// the same requests on the same configuration: gzip_types plus text/html, at least gzip_min_length, statuses
// 200/403/404 only, no Content-Length, no Accept-Ranges, a weak ETag, Vary with gzip_vary also when the client
// takes no gzip, a Range request answered whole and compressed, HTTP/1.0 and proxied (Via) clients not
// compressed by default, HEAD with the compressed head.
func TestGzipAsNginx(t *testing.T) {
	t.Parallel()
	page := strings.Repeat("<p>compress me, compress me</p>\n", 400)
	api := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"items":[`+strings.Repeat(`"item",`, 2000)+`"last"]}`)
		case "/encoded":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "br")
			io.WriteString(w, "pretend brotli, long enough to be compressed otherwise")
		}
	}))
	port, tlsPort := freePort(t), freePort(t)
	s := start(t, fill(t, `events {}
http {
    types { text/html html; text/plain txt; image/png png; }
    log_format ratio "$request_method $uri $gzip_ratio";
    access_log logs/ratio.log ratio;
    server {
        listen {{PORT}};
        listen {{TLS}} ssl;
        http2 on;
        ssl_certificate self-signed;
        root html;
        gzip on;
        gzip_types text/plain application/json;
        gzip_vary on;
        location /api/ { proxy_pass http://127.0.0.1:{{API}}/; }
        location = /broken { return 500; }
        location /proxied-ok/ { alias html/; gzip_proxied any; }
    }
}
`, "PORT", port, "TLS", tlsPort, "API", api.Port),
		withFile("html/page.html", []byte(page)),
		withFile("html/tiny.txt", []byte("tiny")),
		withFile("html/pic.png", []byte(strings.Repeat("png", 100))),
		withFile("html/404.html", []byte(page)))

	type want struct {
		gzip bool
		vary bool
		code int
	}
	clients := map[string]struct {
		c    *http.Client
		base string
	}{
		"HTTP/1.1": {&http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: dialTo(addr(port)), DisableCompression: true}}, "http://gz.test"},
		"HTTP/2": {&http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true, DisableCompression: true,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}}, "https://" + addr(tlsPort)},
	}
	for proto, cl := range clients {
		t.Run(proto, func(t *testing.T) {
			for _, tc := range []struct {
				path, plain string
				hdr         []string
				want        want
			}{
				{"/page.html", page, nil, want{true, true, 200}},
				{"/page.html", page, []string{"Range", "bytes=0-10"}, want{true, true, 200}},
				{"/tiny.txt", "tiny", nil, want{false, false, 200}}, // shorter than gzip_min_length (20)
				{"/pic.png", strings.Repeat("png", 100), nil, want{false, false, 200}},
				{"/missing", page, nil, want{true, true, 404}}, // the 404 page (html/404.html is served by no error_page: nginx's own)
				{"/api/json", `{"items":[` + strings.Repeat(`"item",`, 2000) + `"last"]}`, nil, want{true, true, 200}},
				{"/api/encoded", "pretend brotli, long enough to be compressed otherwise", nil, want{false, false, 200}},
				{"/page.html", page, []string{"Via", "1.1 cache"}, want{false, true, 200}},
				{"/proxied-ok/page.html", page, []string{"Via", "1.1 cache"}, want{true, true, 200}},
			} {
				hdr := http.Header{"Accept-Encoding": {"gzip, deflate, br"}}
				for i := 0; i < len(tc.hdr); i += 2 {
					hdr.Set(tc.hdr[i], tc.hdr[i+1])
				}
				name := tc.path + " " + strings.Join(tc.hdr, ": ")
				r := get(t, cl.c, cl.base+tc.path, hdr)
				if r.StatusCode != tc.want.code {
					t.Errorf("%s: status %d, want %d", name, r.StatusCode, tc.want.code)
				}
				gz := r.Header.Get("Content-Encoding") == "gzip"
				if gz != tc.want.gzip {
					t.Errorf("%s: Content-Encoding %q, want gzip %v", name, r.Header.Get("Content-Encoding"), tc.want.gzip)
				}
				if vary := strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Accept-Encoding"); vary != tc.want.vary {
					t.Errorf("%s: Vary %q, want Accept-Encoding %v", name, r.Header.Values("Vary"), tc.want.vary)
				}
				body := r.Body
				if gz {
					zr, err := gzip.NewReader(strings.NewReader(r.Body))
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					b, err := io.ReadAll(zr)
					if err != nil {
						t.Fatalf("%s: a truncated gzip stream: %v", name, err)
					}
					body = string(b)
					if r.ContentLength != -1 && len(r.Body) >= len(body) || r.Header.Get("Accept-Ranges") != "" || r.Header.Get("Content-Range") != "" {
						t.Errorf("%s: compressed %d → %d bytes, Content-Length %d, Accept-Ranges %q, Content-Range %q", name, len(body), len(r.Body),
							r.ContentLength, r.Header.Get("Accept-Ranges"), r.Header.Get("Content-Range"))
					}
					if et := r.Header.Get("Etag"); tc.path == "/page.html" && !strings.HasPrefix(et, `W/"`) {
						t.Errorf("%s: ETag %q, want a weak one", name, et)
					}
				}
				if tc.path != "/missing" && body != tc.plain || tc.path == "/missing" && !strings.Contains(body, "404 Not Found") {
					t.Errorf("%s: body %.80q (%d bytes), want %.80q (%d)", name, body, len(body), tc.plain, len(tc.plain))
				}
			}
			// Vary with gzip_vary whether or not the client takes gzip; a 500 is never compressed
			r := get(t, cl.c, cl.base+"/page.html", http.Header{"Accept-Encoding": {"br"}})
			if r.Header.Get("Content-Encoding") != "" || r.Header.Get("Vary") != "Accept-Encoding" || r.Body != page {
				t.Errorf("no gzip accepted: Content-Encoding %q, Vary %q", r.Header.Get("Content-Encoding"), r.Header.Get("Vary"))
			}
			if r := get(t, cl.c, cl.base+"/broken", http.Header{"Accept-Encoding": {"gzip"}}); r.StatusCode != 500 || r.Header.Get("Content-Encoding") != "" {
				t.Errorf("500: %d, Content-Encoding %q", r.StatusCode, r.Header.Get("Content-Encoding"))
			}
			// HEAD gets the compressed head and no body
			req, _ := http.NewRequest("HEAD", cl.base+"/page.html", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			if r := do(t, cl.c, req); r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Content-Length") != "" || r.Body != "" {
				t.Errorf("HEAD: Content-Encoding %q, Content-Length %q, %d body bytes", r.Header.Get("Content-Encoding"), r.Header.Get("Content-Length"), len(r.Body))
			}
		})
	}
	t.Run("gzip_ratio", func(t *testing.T) {
		// a compressed response logs its ratio (the page compresses more than tenfold), another "-"
		get(t, clients["HTTP/1.1"].c, "http://gz.test/page.html?ratio", http.Header{"Accept-Encoding": {"gzip"}})
		get(t, clients["HTTP/1.1"].c, "http://gz.test/tiny.txt?ratio", http.Header{"Accept-Encoding": {"gzip"}})
		var log string
		eventually(5*time.Second, func() bool {
			b, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", "ratio.log"))
			log = string(b)
			return strings.Contains(log, "GET /tiny.txt")
		})
		var ratio float64
		for _, line := range strings.Split(log, "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[1] == "/page.html" {
				ratio, _ = strconv.ParseFloat(f[2], 64)
			}
		}
		if ratio < 10 || !strings.Contains(log, "GET /tiny.txt -\n") {
			t.Errorf("ratio log:\n%s", log)
		}
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		// gzip_http_version 1.1 (the default): an HTTP/1.0 client gets the file as it is
		r, _ := exchange(t, port, "GET /page.html HTTP/1.0\r\nHost: gz.test\r\nAccept-Encoding: gzip\r\n\r\n")
		if r == nil || r.Header.Get("Content-Encoding") != "" || r.Body != page {
			t.Errorf("HTTP/1.0: %v", r)
		}
	})
}

// TestGzipStreams checks a compressed response that streams (server-sent events) reaches the client event by
// event: each flush of the proxy is a sync flush of the gzip stream, so the client can decode what it has
// before the upstream sends more. A compressor that held its output until the end would stall this test.
func TestGzipStreams(t *testing.T) {
	t.Parallel()
	next := make(chan struct{}, 3)
	sse := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			io.WriteString(w, "data: event "+string(rune('a'+i))+" "+strings.Repeat("x", 100)+"\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-next: // the client decoded this event
			case <-time.After(10 * time.Second):
				return
			}
		}
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        gzip on;
        gzip_types text/event-stream;
        location / { proxy_pass http://127.0.0.1:{{SSE}}; }
    }
}
`, "PORT", port, "SSE", sse.Port))
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: dialTo(addr(port)), DisableCompression: true}}
	req, _ := http.NewRequest("GET", "http://sse.test/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(zr)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "data: event "+string(rune('a'+i))) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n') // the blank line that ends the event
		next <- struct{}{}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the events: %q %v (want a clean end of the gzip stream)", rest, err)
	}
}
