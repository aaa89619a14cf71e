package e2e

import (
	"bytes"
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

// TestConditionalAsNginx sends conditional and range requests for static files over HTTP/1.1 and HTTP/2. Every
// expected answer was observed from nginx 1.22 on the same configuration and files: If-Modified-Since compares
// exactly (if_modified_since), a 412 and a 416 are error pages error_page can answer (the 416 keeps
// `Content-Range: bytes */N`), a 304 keeps the validators and add_header, a 206 has no Accept-Ranges, other
// units are ignored, max_ranges 0 turns ranges off, and multipart/byteranges is nginx's layout.
func TestConditionalAsNginx(t *testing.T) {
	t.Parallel()
	port, tlsPort := freePort(t), freePort(t)
	big := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz\n"), 3000) // 111,000 bytes: past the small-file buffer
	s := start(t, fill(t, `events {}
http {
    types { text/plain txt; text/html html; application/javascript js; }
    server {
        listen {{PORT}};
        listen {{TLS}} ssl;
        http2 on;
        ssl_certificate self-signed;
        root html;
        location /ep/ { alias html/; error_page 412 /412.html; error_page 416 /416.html; }
        location /ah/ { alias html/; add_header X-St $status; add_header X-Always $status always; }
        location /before/ { alias html/; if_modified_since before; }
        location /off/ { alias html/; if_modified_since off; }
        location /mr0/ { alias html/; max_ranges 0; }
        location /mr1/ { alias html/; max_ranges 1; }
        location /gz/ { alias html/; gzip_static on; }
    }
}
`, "PORT", port, "TLS", tlsPort),
		withFile("html/f.txt", []byte("0123456789abcdefghijklmnopqrstuvwxyz")),
		withFile("html/big.bin", big),
		withFile("html/app.js", []byte("plain js")),
		withFile("html/app.js.gz", []byte("\x1f\x8b pretend gzip")),
		withFile("html/412.html", []byte("<p>precond page</p>\n")),
		withFile("html/416.html", []byte("<p>range page</p>\n")),
	)
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, f := range []string{"f.txt", "big.bin", "app.js", "app.js.gz"} {
		if err := os.Chtimes(filepath.Join(s.Prefix, "html", f), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	const (
		lm      = "Tue, 02 Jan 2024 03:04:05 GMT"
		later   = "Wed, 03 Jan 2024 03:04:05 GMT"
		earlier = "Mon, 01 Jan 2024 03:04:05 GMT"
		et      = `"65937d25-24"`
		all     = "0123456789abcdefghijklmnopqrstuvwxyz"
	)
	cases := []struct {
		path string
		hdr  []string
		code int
		body string // "" with want412/416 pages: checked by prefix below
		want string // "Name: value" lines ("Name: " for absent), separated by "|"
	}{
		{"/f.txt", []string{"If-Modified-Since", lm}, 304, "", "Last-Modified: " + lm + "|Etag: " + et + "|Content-Type: |Accept-Ranges: "},
		{"/f.txt", []string{"If-Modified-Since", later}, 200, all, "Accept-Ranges: bytes"},
		{"/before/f.txt", []string{"If-Modified-Since", later}, 304, "", ""},
		{"/off/f.txt", []string{"If-Modified-Since", lm}, 200, all, ""},
		{"/f.txt", []string{"If-None-Match", "W/" + et}, 304, "", ""},
		{"/f.txt", []string{"If-None-Match", et, "If-Modified-Since", earlier}, 200, all, ""},
		{"/f.txt", []string{"If-Match", `"x"`}, 412, "<html>", "Content-Type: text/html|Etag: |Last-Modified: "},
		{"/f.txt", []string{"If-Unmodified-Since", "garbage"}, 412, "<html>", ""},
		{"/ep/f.txt", []string{"If-Match", `"x"`}, 412, "<p>precond page</p>\n", "Content-Type: text/html"},
		{"/ah/f.txt", []string{"If-None-Match", et}, 304, "", "X-St: 304|X-Always: 304|Etag: " + et},
		{"/ah/f.txt", []string{"If-Match", `"x"`}, 412, "<html>", "X-St: |X-Always: 412"},
		{"/f.txt", []string{"Range", "bytes=0-4"}, 206, "01234", "Content-Range: bytes 0-4/36|Accept-Ranges: |Etag: " + et + "|Last-Modified: " + lm},
		{"/f.txt", []string{"Range", "bytes=-0"}, 416, "<html>", "Content-Range: bytes */36|Content-Type: text/html|Etag: "},
		{"/ep/f.txt", []string{"Range", "bytes=5-2"}, 416, "<p>range page</p>\n", "Content-Range: bytes */36|Content-Type: text/html"},
		{"/f.txt", []string{"Range", "items=0-5"}, 200, all, "Accept-Ranges: bytes"},
		{"/f.txt", []string{"If-Range", `"x"`, "Range", "bytes=1-2"}, 200, all, ""},
		{"/f.txt", []string{"If-Range", lm, "Range", "bytes=1-2"}, 206, "12", ""},
		{"/mr0/f.txt", []string{"Range", "bytes=1-2"}, 200, all, "Accept-Ranges: "},
		{"/mr1/f.txt", []string{"Range", "bytes=1-2,4-5"}, 200, all, ""},
		{"/big.bin", []string{"Range", "bytes=70000-70009"}, 206, string(big[70000:70010]), "Content-Range: bytes 70000-70009/111000"},
		{"/big.bin", []string{"Range", "bytes=-40000"}, 206, string(big[71000:]), "Content-Length: 40000"},
		{"/gz/app.js", []string{"Accept-Encoding", "gzip", "If-None-Match", `"65937d25-f"`}, 304, "", "Content-Encoding: |Vary: Accept-Encoding|Etag: \"65937d25-f\""},
		{"/gz/app.js", []string{"Accept-Encoding", "gzip", "Range", "bytes=0-1"}, 206, "\x1f\x8b", "Content-Encoding: gzip|Content-Range: bytes 0-1/15"},
	}
	clients := map[string]struct {
		c    *http.Client
		base string
	}{
		"HTTP/1.1": {httpClient(addr(port), nil), "http://cond.test"},
		"HTTP/2": {&http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}}, "https://" + addr(tlsPort)},
	}
	for proto, cl := range clients {
		t.Run(proto, func(t *testing.T) {
			for _, tc := range cases {
				hdr := http.Header{}
				for i := 0; i < len(tc.hdr); i += 2 {
					hdr.Set(tc.hdr[i], tc.hdr[i+1])
				}
				r := get(t, cl.c, cl.base+tc.path, hdr)
				if r.ProtoMajor != int(proto[5]-'0') {
					t.Fatalf("%s: answered over %s", proto, r.Proto)
				}
				name := tc.path + " " + strings.Join(tc.hdr, ": ")
				if r.StatusCode != tc.code || !strings.HasPrefix(r.Body, tc.body) || tc.code != 412 && tc.code != 416 && r.Body != tc.body {
					t.Errorf("%s: %d %.60q, want %d %.60q", name, r.StatusCode, r.Body, tc.code, tc.body)
				}
				if tc.want == "" {
					continue
				}
				for _, line := range strings.Split(tc.want, "|") {
					k, v, _ := strings.Cut(line, ": ")
					if got := strings.Join(r.Header.Values(k), ", "); got != v {
						t.Errorf("%s: %s %q, want %q", name, k, got, v)
					}
				}
			}
			// multipart/byteranges, byte for byte as nginx lays it out (only the boundary's number differs)
			r := get(t, cl.c, cl.base+"/f.txt", http.Header{"Range": {"bytes=0-4,10-12"}})
			_, boundary, _ := strings.Cut(r.Header.Get("Content-Type"), "multipart/byteranges; boundary=")
			want := "\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-4/36\r\n\r\n01234" +
				"\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-12/36\r\n\r\nabc\r\n--B--\r\n"
			if r.StatusCode != 206 || len(boundary) != 20 || strings.ReplaceAll(r.Body, boundary, "B") != want {
				t.Errorf("multipart: %d %q %q", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
			}
		})
	}
}

// TestProxyForceRanges: proxy_force_ranges answers a single range of a proxied 200 itself, as nginx 1.22
// answered the same requests (an upstream that ignores Range): 206 with Content-Range for one range, the
// whole body with Accept-Ranges for two, 416 with "bytes */N" for none that fits, If-Range against the
// upstream's ETag or Last-Modified; without the directive the upstream's 200 passes as it is. (The chunked
// case, a body without a length sent whole and without Accept-Ranges, follows nginx's range filter's code.)
func TestProxyForceRanges(t *testing.T) {
	t.Parallel()
	const all = "0123456789abcdefghijklmnopqrstuvwxyz"
	big := strings.Repeat("0123456789", 10000)
	app := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Tue, 02 Jan 2024 03:04:05 GMT")
		w.Header().Set("Accept-Ranges", "none")
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			io.WriteString(w, big)
			return
		case "/chunked":
			io.WriteString(w, all)
			w.(http.Flusher).Flush() // no length: nginx's range filter leaves such a body whole
			return
		}
		io.WriteString(w, all)
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /fr/ { proxy_force_ranges on; proxy_pass http://127.0.0.1:{{APP}}/; }
        location /plain/ { proxy_pass http://127.0.0.1:{{APP}}/; }
    }
}
`, "PORT", port, "APP", app.Port))
	c := httpClient(addr(port), nil)
	for _, tc := range []struct {
		path string
		hdr  []string
		code int
		body string
		want string
	}{
		{"/fr/f", nil, 200, all, "Accept-Ranges: bytes"},
		{"/fr/f", []string{"Range", "bytes=1-2"}, 206, "12", "Content-Range: bytes 1-2/36|Content-Length: 2|Accept-Ranges: "},
		{"/fr/f", []string{"Range", "bytes=-3"}, 206, "xyz", "Content-Range: bytes 33-35/36"},
		{"/fr/f", []string{"Range", "bytes=1-2,4-5"}, 200, all, "Accept-Ranges: bytes"},
		{"/fr/f", []string{"Range", "bytes=5-2"}, 416, "", "Content-Range: bytes */36"},
		{"/fr/f", []string{"If-Range", `"v1"`, "Range", "bytes=1-2"}, 206, "12", ""},
		{"/fr/f", []string{"If-Range", "Tue, 02 Jan 2024 03:04:05 GMT", "Range", "bytes=1-2"}, 206, "12", ""},
		{"/fr/f", []string{"If-Range", "Wed, 03 Jan 2024 03:04:05 GMT", "Range", "bytes=1-2"}, 200, all, ""},
		{"/fr/f", []string{"If-Range", `"x"`, "Range", "bytes=1-2"}, 200, all, ""},
		{"/fr/big", []string{"Range", "bytes=70000-70009"}, 206, big[70000:70010], "Content-Range: bytes 70000-70009/100000"},
		{"/fr/chunked", []string{"Range", "bytes=1-2"}, 200, all, "Accept-Ranges: "},
		{"/plain/f", []string{"Range", "bytes=1-2"}, 200, all, "Accept-Ranges: none"},
	} {
		hdr := http.Header{}
		for i := 0; i < len(tc.hdr); i += 2 {
			hdr.Set(tc.hdr[i], tc.hdr[i+1])
		}
		name := tc.path + " " + strings.Join(tc.hdr, ": ")
		r := get(t, c, "http://fr.test"+tc.path, hdr)
		if r.StatusCode != tc.code || tc.code != 416 && r.Body != tc.body {
			t.Errorf("%s: %d %.40q, want %d %.40q", name, r.StatusCode, r.Body, tc.code, tc.body)
		}
		for _, line := range strings.Split(tc.want, "|") {
			if k, v, ok := strings.Cut(line, ": "); ok && strings.Join(r.Header.Values(k), ", ") != v {
				t.Errorf("%s: %s %q, want %q", name, k, r.Header.Values(k), v)
			}
		}
	}
}
