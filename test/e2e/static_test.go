package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const staticConf = `events {}
http {
    include mime.types;
    server {
        listen {{PORT}};
        root html;
        error_page 404 /404.html;
        error_page 500 502 503 504 /50x.html;

        location / { }
        location /auto/ { autoindex on; }
        location /img/ { alias pictures/; expires 1h; }
        location /gz/ { gzip_static on; }
        location /app/ { try_files $uri $uri/ @fallback; }
        location @fallback { return 200 "fallback $uri"; }
        location /gone/ { try_files $uri =410; }
        location = /fail { return 502; }
        location /protected/ { internal; }
        location /dl/ { try_files $uri /protected/file.txt; }
        location /nolinks/ { disable_symlinks on; }
        location /nltry/ { disable_symlinks on; try_files $uri /nolinks/real.txt; }
    }
}
`

func TestStatic(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz\n"), 60000) // 2.2 MB
	gz := []byte("\x1f\x8b pretend gzip bytes")
	port := freePort(t)
	s := start(t, fill(t, staticConf, "PORT", port),
		withFile("html/style.css", []byte("body{color:red}")),
		withFile("html/page.html", []byte("<p>page</p>")),
		withFile("html/big.bin", big),
		withFile("html/404.html", []byte("custom not found\n")),
		withFile("html/50x.html", []byte("custom 50x\n")),
		withFile("html/.env", []byte("SECRET=1")),
		withFile("html/auto/one.txt", []byte("1")),
		withFile("html/auto/two.txt", []byte("2")),
		withFile("html/auto/.hidden", []byte("h")),
		withFile("html/gz/app.js", []byte("plain js")),
		withFile("html/gz/app.js.gz", gz),
		withFile("html/app/real.txt", []byte("real")),
		withFile("pictures/cat.txt", []byte("meow")),
		withFile("html/protected/file.txt", []byte("members only")),
		withFile("html/nolinks/real.txt", []byte("real")),
		withFile("html/nolinks/sub/in.txt", []byte("in")),
	)
	html := filepath.Join(s.Prefix, "html")
	for link, target := range map[string]string{
		"followed.txt":     "style.css",
		"nolinks/link.txt": "real.txt",
		"nolinks/linkdir":  "sub",
		"nolinks/conf.txt": filepath.Join(s.Prefix, "conf", "sluice.conf"),
		"nltry":            "nolinks",
	} {
		if err := os.Symlink(target, filepath.Join(html, link)); err != nil {
			t.Fatal(err)
		}
	}
	c := httpClient(addr(port), nil)
	base := "http://static.test"
	hget := func(path string, hdr http.Header) response {
		t.Helper()
		return get(t, c, base+path, hdr)
	}

	t.Run("types and validators", func(t *testing.T) {
		r := hget("/style.css", nil)
		if r.StatusCode != 200 || r.Body != "body{color:red}" || r.Header.Get("Content-Type") != "text/css" {
			t.Fatalf("%d %q %q", r.StatusCode, r.Body, r.Header.Get("Content-Type"))
		}
		if r.Header.Get("ETag") == "" || r.Header.Get("Last-Modified") == "" || r.Header.Get("Accept-Ranges") != "bytes" {
			t.Errorf("validators: %v", r.Header)
		}
		if ct := hget("/page.html", nil).Header.Get("Content-Type"); ct != "text/html" {
			t.Errorf("page.html: %q", ct)
		}
		r2 := hget("/style.css", http.Header{"If-None-Match": {r.Header.Get("ETag")}})
		if r2.StatusCode != 304 || r2.Body != "" {
			t.Errorf("If-None-Match: %d %q", r2.StatusCode, r2.Body)
		}
		r2 = hget("/style.css", http.Header{"If-Modified-Since": {r.Header.Get("Last-Modified")}})
		if r2.StatusCode != 304 {
			t.Errorf("If-Modified-Since: %d", r2.StatusCode)
		}
	})

	t.Run("ranges", func(t *testing.T) {
		r := hget("/big.bin", http.Header{"Range": {"bytes=10-19"}})
		if r.StatusCode != 206 || r.Body != string(big[10:20]) || r.Header.Get("Content-Range") != "bytes 10-19/2220000" {
			t.Fatalf("%d %q %q", r.StatusCode, r.Body, r.Header.Get("Content-Range"))
		}
		r = hget("/big.bin", http.Header{"Range": {"bytes=0-0,-1"}})
		if r.StatusCode != 206 || !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/byteranges") || !strings.Contains(r.Body, "Content-Range: bytes 0-0/2220000") {
			t.Errorf("multiple ranges: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
		}
		r = hget("/big.bin", http.Header{"Range": {"bytes=99999999-"}})
		if r.StatusCode != 416 {
			t.Errorf("unsatisfiable: %d", r.StatusCode)
		}
	})

	t.Run("whole file byte-exact, HEAD", func(t *testing.T) {
		r := hget("/big.bin", nil)
		if r.StatusCode != 200 || r.Body != string(big) {
			t.Fatalf("%d, %d bytes of %d", r.StatusCode, len(r.Body), len(big))
		}
		req, _ := http.NewRequest("HEAD", base+"/big.bin", nil)
		h := do(t, c, req)
		if h.StatusCode != 200 || h.Body != "" || h.ContentLength != int64(len(big)) {
			t.Errorf("HEAD: %d len %d body %d", h.StatusCode, h.ContentLength, len(h.Body))
		}
	})

	t.Run("autoindex", func(t *testing.T) {
		r := hget("/auto/", nil)
		if r.StatusCode != 200 || !strings.Contains(r.Body, `href="one.txt"`) || !strings.Contains(r.Body, `href="two.txt"`) || strings.Contains(r.Body, ".hidden") {
			t.Fatalf("%d %q", r.StatusCode, r.Body)
		}
	})

	t.Run("error_page and dotfiles", func(t *testing.T) {
		for _, p := range []string{"/missing.html", "/.env", "/auto/.hidden"} {
			r := hget(p, nil)
			if r.StatusCode != 404 || r.Body != "custom not found\n" {
				t.Errorf("%s: %d %q", p, r.StatusCode, r.Body)
			}
		}
		r := hget("/fail", nil)
		if r.StatusCode != 502 || r.Body != "custom 50x\n" {
			t.Errorf("/fail: %d %q", r.StatusCode, r.Body)
		}
	})

	t.Run("alias and expires", func(t *testing.T) {
		r := hget("/img/cat.txt", nil)
		if r.StatusCode != 200 || r.Body != "meow" || r.Header.Get("Cache-Control") != "max-age=3600" || r.Header.Get("Expires") == "" {
			t.Fatalf("%d %q %v", r.StatusCode, r.Body, r.Header)
		}
	})

	t.Run("gzip_static", func(t *testing.T) {
		r := hget("/gz/app.js", http.Header{"Accept-Encoding": {"gzip"}})
		if r.Body != string(gz) || r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Vary") != "Accept-Encoding" || r.ContentLength != int64(len(gz)) {
			t.Errorf("with gzip: %q %v", r.Body, r.Header)
		}
		r = hget("/gz/app.js", http.Header{"Accept-Encoding": {"identity"}})
		if r.Body != "plain js" || r.Header.Get("Content-Encoding") != "" {
			t.Errorf("without gzip: %q %v", r.Body, r.Header)
		}
	})

	t.Run("try_files", func(t *testing.T) {
		if r := hget("/app/real.txt", nil); r.Body != "real" {
			t.Errorf("existing file: %q", r.Body)
		}
		if r := hget("/app/route/x", nil); r.StatusCode != 200 || r.Body != "fallback /app/route/x" {
			t.Errorf("@named: %d %q", r.StatusCode, r.Body)
		}
		if r := hget("/gone/x", nil); r.StatusCode != 410 {
			t.Errorf("=410: %d", r.StatusCode)
		}
	})

	t.Run("internal location", func(t *testing.T) {
		if r := hget("/protected/file.txt", nil); r.StatusCode != 404 || r.Body != "custom not found\n" {
			t.Errorf("direct: %d %q", r.StatusCode, r.Body)
		}
		if r := hget("/dl/anything", nil); r.StatusCode != 200 || r.Body != "members only" {
			t.Errorf("through try_files: %d %q", r.StatusCode, r.Body)
		}
	})

	t.Run("disable_symlinks", func(t *testing.T) {
		for path, want := range map[string]string{
			"/followed.txt": "200 body{color:red}", "/nolinks/real.txt": "200 real", "/nolinks/sub/in.txt": "200 in",
			"/nolinks/link.txt": "403", "/nolinks/linkdir/in.txt": "403", "/nolinks/conf.txt": "403",
			"/nltry/sub/in.txt": "200 real", // try_files passes over a file reached through a link, as nginx
		} {
			r := hget(path, nil)
			got := strconv.Itoa(r.StatusCode)
			if r.StatusCode == 200 {
				got += " " + r.Body
			}
			if got != want {
				t.Errorf("%s: %q, want %q", path, got, want)
			}
		}
	})

	t.Run("traversal refused", func(t *testing.T) {
		for _, p := range []string{"/../conf/sluice.conf", "/%2e%2e/conf/sluice.conf", "/img/..%2f..%2fconf/sluice.conf", "/style.css%00.txt", "/img../conf/sluice.conf"} {
			resp := rawExchange(t, rawConn(t, addr(port), nil), "GET "+p+" HTTP/1.1\r\nHost: static.test\r\nConnection: close\r\n\r\n", "GET")[0]
			if resp.StatusCode == 200 || strings.Contains(resp.Body, "listen") {
				t.Errorf("%s: %d %q", p, resp.StatusCode, resp.Body)
			}
		}
	})
}

// TestStaticBuiltinTypes: without a types block or include mime.types, nginx still knows html, gif and jpg and
// gives everything else default_type; a site that forgot the include serves its pages as pages.
func TestStaticBuiltinTypes(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        root html;
    }
}
`, "PORT", port),
		withFile("html/index.html", []byte("<p>home</p>")),
		withFile("html/cat.jpg", []byte("jpeg")),
		withFile("html/style.css", []byte("body{}")),
	)
	c := httpClient(addr(port), nil)
	for path, want := range map[string]string{"/": "text/html", "/index.html": "text/html", "/cat.jpg": "image/jpeg", "/style.css": "text/plain"} {
		r := get(t, c, "http://types.test"+path, nil)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != want {
			t.Errorf("%s: %d %q, want 200 %q", path, r.StatusCode, r.Header.Get("Content-Type"), want)
		}
	}
}
