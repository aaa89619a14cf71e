package static

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestServe(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dir"), 0o755)
	os.MkdirAll(filepath.Join(root, "empty"), 0o755)
	os.MkdirAll(filepath.Join(root, ".git"), 0o755)
	os.MkdirAll(filepath.Join(root, ".well-known"), 0o755)
	os.WriteFile(filepath.Join(root, "index.html"), []byte("home"), 0o644)
	os.WriteFile(filepath.Join(root, "dir", "main.html"), []byte("dir main"), 0o644)
	os.WriteFile(filepath.Join(root, "style.css"), []byte("body{}"), 0o644)
	os.WriteFile(filepath.Join(root, "style.css.gz"), []byte("gzipped"), 0o644)
	os.WriteFile(filepath.Join(root, ".env"), []byte("SECRET=1"), 0o644)
	os.WriteFile(filepath.Join(root, ".git", "config"), []byte("[core]"), 0o644)
	os.WriteFile(filepath.Join(root, ".well-known", "acme"), []byte("token"), 0o644)
	os.Symlink(filepath.Join(root, "dir"), filepath.Join(root, "link"))
	os.Symlink(filepath.Join(root, "style.css"), filepath.Join(root, "linked.css"))
	// a regex location's alias names the file itself: it is Root and Path
	aliasFile := func(name string) func(*Request) {
		return func(r *Request) {
			r.NoSymlinks, r.Root, r.Path = true, filepath.Join(root, name), filepath.Join(root, name)
		}
	}
	types := map[string]string{"html": "text/html", "css": "text/css"}
	tests := []struct {
		name, method, uri string
		hdr               map[string]string
		mod               func(*Request)
		status            int    // returned status (0: written)
		code              int    // recorded code when written
		body, ctype       string // expected when written
		header            string // "Name: value" expected when written
	}{
		{"file", "GET", "/style.css", nil, nil, 0, 200, "body{}", "text/css", ""},
		{"head", "HEAD", "/style.css", nil, nil, 0, 200, "", "text/css", ""},
		{"missing", "GET", "/missing", nil, nil, 404, 0, "", "", ""},
		{"file as directory", "GET", "/style.css/x", nil, nil, 404, 0, "", "", ""},
		{"dir without index", "GET", "/empty/", nil, nil, 403, 0, "", "", ""},
		{"missing dir", "GET", "/nodir/", nil, nil, 404, 0, "", "", ""},
		{"dir without slash", "GET", "/dir", nil, nil, 301, 0, "", "", "Location: /dir/"},
		{"post", "POST", "/style.css", nil, nil, 405, 0, "", "", ""},
		{"dotfile", "GET", "/.env", nil, nil, 404, 0, "", "", ""},
		{"dot dir", "GET", "/.git/config", nil, nil, 404, 0, "", "", ""},
		{"dotfile allowed", "GET", "/.env", nil, func(r *Request) { r.Dotfiles = true }, 0, 200, "SECRET=1", "text/plain", ""},
		{"well-known", "GET", "/.well-known/acme", nil, nil, 0, 200, "token", "text/plain", ""},
		{"autoindex", "GET", "/dir/", nil, func(r *Request) { r.Autoindex = true }, 0, 200, "", "text/html", ""},
		{"range", "GET", "/style.css", map[string]string{"Range": "bytes=1-3"}, nil, 0, 206, "ody", "text/css", "Content-Range: bytes 1-3/6"},
		{"multi range", "GET", "/style.css", map[string]string{"Range": "bytes=0-0,5-5"}, nil, 0, 206, "", "", ""},
		{"bad range", "GET", "/style.css", map[string]string{"Range": "bytes=10-20"}, nil, 416, 0, "", "", ""},
		{"etag", "GET", "/style.css", nil, func(r *Request) { r.ETag = true }, 0, 200, "body{}", "text/css", ""},
		{"if-modified-since later", "GET", "/style.css", map[string]string{"If-Modified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, nil, 0, 200, "body{}", "", ""},
		{"if-modified-since later, before", "GET", "/style.css", map[string]string{"If-Modified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, func(r *Request) { r.IfModifiedSince = IMSBefore }, 0, 304, "", "", ""},
		{"gzip_static", "GET", "/style.css", map[string]string{"Accept-Encoding": "gzip, br"}, func(r *Request) { r.GzipStatic = GzipStaticOn }, 0, 200, "gzipped", "text/css", "Content-Encoding: gzip"},
		{"gzip_static refused q=0", "GET", "/style.css", map[string]string{"Accept-Encoding": "gzip;q=0"}, func(r *Request) { r.GzipStatic = GzipStaticOn }, 0, 200, "body{}", "text/css", ""},
		{"symlink followed", "GET", "/link/main.html", nil, nil, 0, 200, "dir main", "text/html", ""},
		{"symlink refused", "GET", "/link/main.html", nil, func(r *Request) { r.NoSymlinks = true }, 403, 0, "", "", ""},
		{"regex alias file", "GET", "/css/style.css", nil, aliasFile("style.css"), 0, 200, "body{}", "text/css", ""},
		{"regex alias file, a link, refused", "GET", "/css/linked.css", nil, aliasFile("linked.css"), 403, 0, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tt.method, tt.uri, nil)
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			req := Request{Root: root, URI: tt.uri, Types: types, DefaultType: "text/plain"}
			if tt.mod != nil {
				tt.mod(&req)
			}
			got := Serve(w, r, req)
			if got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
			if tt.header != "" {
				k, v, _ := strings.Cut(tt.header, ": ")
				if w.Header().Get(k) != v {
					t.Errorf("%s: %q, want %q", k, w.Header().Get(k), v)
				}
			}
			if got != 0 {
				return
			}
			if w.Code != tt.code || tt.body != "" && w.Body.String() != tt.body || tt.ctype != "" && w.Header().Get("Content-Type") != tt.ctype {
				t.Errorf("got %d %q %q", w.Code, w.Body.String(), w.Header().Get("Content-Type"))
			}
		})
	}
}

func TestETagConditional(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("abc"), 0o644)
	req := Request{Root: root, URI: "/a.txt", DefaultType: "text/plain", ETag: true}
	w := httptest.NewRecorder()
	Serve(w, httptest.NewRequest("GET", "/a.txt", nil), req)
	tag := w.Header().Get("ETag")
	if !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `-3"`) {
		t.Fatalf("ETag %q is not nginx's \"mtime-size\"", tag)
	}
	r := httptest.NewRequest("GET", "/a.txt", nil)
	r.Header.Set("If-None-Match", tag)
	w = httptest.NewRecorder()
	Serve(w, r, req)
	if w.Code != 304 {
		t.Errorf("If-None-Match with the current tag: %d, want 304", w.Code)
	}
}

func TestAutoindexEscapes(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "<b>.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, ".secret"), []byte("x"), 0o644)
	w := httptest.NewRecorder()
	Serve(w, httptest.NewRequest("GET", "/", nil), Request{Root: root, URI: "/", Autoindex: true})
	b := w.Body.String()
	if strings.Contains(b, "<b>") || !strings.Contains(b, "&lt;b&gt;.txt") || strings.Contains(b, ".secret") {
		t.Errorf("listing:\n%s", b)
	}
}

func TestFindIndex(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.php"), nil, 0o644)
	os.MkdirAll(filepath.Join(root, "index.html"), 0o755) // a directory is not an index file
	for _, tt := range []struct {
		names []string
		want  string
	}{
		{[]string{"index.html", "index.php"}, "index.php"},
		{[]string{"index.htm"}, ""},
		{[]string{"index.htm", "/fallback.php"}, "/fallback.php"},
	} {
		if got := FindIndex(root, tt.names); got != tt.want {
			t.Errorf("FindIndex(%v) = %q, want %q", tt.names, got, tt.want)
		}
	}
}

func TestFIFONeverRead(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Skip(err)
	}
	done := make(chan int, 1)
	go func() {
		done <- Serve(httptest.NewRecorder(), httptest.NewRequest("GET", "/pipe", nil), Request{Root: root, URI: "/pipe"})
	}()
	select {
	case got := <-done:
		if got != 403 {
			t.Errorf("FIFO: %d, want 403", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serving a FIFO blocked")
	}
}

// TestPlainHeaders checks the direct path (no range, no precondition) answers with the headers nginx sends,
// for a small file (read into a buffer), a large one (copied from the file) and HEAD.
func TestPlainHeaders(t *testing.T) {
	root := t.TempDir()
	small, large := "0123456789", strings.Repeat("x", SmallFile+1)
	os.WriteFile(filepath.Join(root, "small.txt"), []byte(small), 0o644)
	os.WriteFile(filepath.Join(root, "large.txt"), []byte(large), 0o644)
	mtime := time.Date(2024, 2, 29, 7, 8, 9, 0, time.UTC)
	os.Chtimes(filepath.Join(root, "small.txt"), mtime, mtime)
	os.Chtimes(filepath.Join(root, "large.txt"), mtime, mtime)
	for _, tt := range []struct{ method, uri, body string }{
		{"GET", "/small.txt", small},
		{"GET", "/large.txt", large},
		{"HEAD", "/small.txt", ""},
		{"HEAD", "/large.txt", ""},
	} {
		size := len(small)
		if tt.uri == "/large.txt" {
			size = len(large)
		}
		w := httptest.NewRecorder()
		if got := Serve(w, httptest.NewRequest(tt.method, tt.uri, nil), Request{Root: root, URI: tt.uri, DefaultType: "text/plain", ETag: true}); got != 0 {
			t.Fatalf("%s %s: status %d", tt.method, tt.uri, got)
		}
		want := map[string]string{
			"Content-Length": strconv.Itoa(size),
			"Last-Modified":  "Thu, 29 Feb 2024 07:08:09 GMT",
			"Accept-Ranges":  "bytes",
			"Etag":           `"` + strconv.FormatInt(mtime.Unix(), 16) + "-" + strconv.FormatInt(int64(size), 16) + `"`,
			"Content-Type":   "text/plain",
		}
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s %s: %s %q, want %q", tt.method, tt.uri, k, got, v)
			}
		}
		if w.Code != 200 || w.Body.String() != tt.body {
			t.Errorf("%s %s: %d, %d body bytes, want 200 and %d", tt.method, tt.uri, w.Code, w.Body.Len(), len(tt.body))
		}
	}
}

func TestAppendHTTPTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Unix(0, 0), time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2026, 1, 4, 0, 0, 0, 0, time.FixedZone("x", 3600)),
		time.Now(), time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, want := string(appendHTTPTime(nil, tm)), tm.UTC().Format(http.TimeFormat); got != want {
			t.Errorf("appendHTTPTime(%v) = %q, want %q", tm, got, want)
		}
	}
}

// BenchmarkServe is a 1 KiB file answered whole (the benchmark's static row, without the connection).
func BenchmarkServe(b *testing.B) {
	root := b.TempDir()
	os.WriteFile(filepath.Join(root, "index.html"), []byte(strings.Repeat("<p>sluice bench</p>\n", 50)), 0o644)
	bufs := &sync.Pool{New: func() any { b := make([]byte, SmallFile); return &b }}
	req := Request{Root: root, URI: "/index.html", Path: filepath.Join(root, "index.html"), Types: map[string]string{"html": "text/html"},
		ETag: true, Bufs: bufs, Validators: new(Validators)} // Path and the pools as the server passes them
	r := httptest.NewRequest("GET", "/index.html", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		if Serve(w, r, req) != 0 {
			b.Fatal("not served")
		}
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// TestRangesRead checks ranges and revalidation of a small file, served from the file on demand: each range
// gets its bytes, a multipart answer has every part, and a 304 has no body.
func TestRangesRead(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("0123456789"), 0o644)
	serve := func(hdr, val string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/a.txt", nil)
		r.Header.Set(hdr, val)
		w := httptest.NewRecorder()
		if got := Serve(w, r, Request{Root: root, URI: "/a.txt", DefaultType: "text/plain"}); got != 0 {
			t.Fatalf("%s: %s: status %d", hdr, val, got)
		}
		return w
	}
	for _, tt := range []struct{ rng, body string }{{"bytes=2-4", "234"}, {"bytes=-3", "789"}, {"bytes=7-", "789"}, {"bytes=0-", "0123456789"}} {
		if w := serve("Range", tt.rng); w.Code != 206 || w.Body.String() != tt.body {
			t.Errorf("%s: %d %q, want 206 %q", tt.rng, w.Code, w.Body.String(), tt.body)
		}
	}
	w := serve("Range", "bytes=0-1,8-9")
	_, params, err := mime.ParseMediaType(w.Header().Get("Content-Type"))
	if w.Code != 206 || err != nil {
		t.Fatalf("multiple ranges: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var parts []string
	mr := multipart.NewReader(w.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, p.Header.Get("Content-Range")+" "+string(b))
	}
	if got := strings.Join(parts, ", "); got != "bytes 0-1/10 01, bytes 8-9/10 89" {
		t.Errorf("multiple ranges: parts %q", got)
	}
	fi, _ := os.Stat(filepath.Join(root, "a.txt"))
	if w := serve("If-Modified-Since", fi.ModTime().UTC().Format(http.TimeFormat)); w.Code != 304 || w.Body.Len() != 0 {
		t.Errorf("If-Modified-Since: %d with %d body bytes, want 304 and none", w.Code, w.Body.Len())
	}
}

// TestGzipStatic checks name.gz answers in the file's place with its own length and validators, for whole,
// HEAD, conditional and range requests, also without name (as nginx), and that a .gz that is not a regular file
// is never read, nor under disable_symlinks a linked one (the file itself answers, as in nginx).
func TestGzipStatic(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "app.js"), []byte("plain javascript"), 0o644)
	os.WriteFile(filepath.Join(root, "app.js.gz"), []byte("gzipped js"), 0o644)
	os.WriteFile(filepath.Join(root, "dir.js"), []byte("plain"), 0o644)
	os.MkdirAll(filepath.Join(root, "dir.js.gz"), 0o755)
	os.WriteFile(filepath.Join(root, "pipe.js"), []byte("plain"), 0o644)
	fifo := syscall.Mkfifo(filepath.Join(root, "pipe.js.gz"), 0o644) == nil
	os.WriteFile(filepath.Join(root, "link.js"), []byte("plain"), 0o644)
	os.WriteFile(filepath.Join(root, "only.js.gz"), []byte("only gzipped"), 0o644)
	outside := filepath.Join(t.TempDir(), "secret.gz")
	os.WriteFile(outside, []byte("outside the root"), 0o644)
	os.Symlink(outside, filepath.Join(root, "link.js.gz"))
	os.Symlink(outside, filepath.Join(root, "linkonly.js.gz"))
	mtime := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	os.Chtimes(filepath.Join(root, "app.js.gz"), mtime, mtime)
	gzTag := `"` + strconv.FormatInt(mtime.Unix(), 16) + `-a"`
	for _, tt := range []struct {
		name, method, uri string
		hdr               map[string]string
		noSymlinks        bool
		status            int // returned status (0: written)
		code              int
		body              string
		want              map[string]string // response headers ("" = absent)
	}{
		{"whole", "GET", "/app.js", nil, false, 0, 200, "gzipped js", map[string]string{"Content-Encoding": "gzip", "Content-Length": "10",
			"Vary": "Accept-Encoding", "Etag": gzTag, "Last-Modified": "Tue, 04 Mar 2025 05:06:07 GMT", "Content-Type": "application/javascript"}},
		{"head", "HEAD", "/app.js", nil, false, 0, 200, "", map[string]string{"Content-Encoding": "gzip", "Content-Length": "10"}},
		{"not accepted", "GET", "/app.js", map[string]string{"Accept-Encoding": "br"}, false, 0, 200, "plain javascript",
			map[string]string{"Content-Encoding": "", "Vary": "", "Content-Length": "16"}},
		{"revalidated", "GET", "/app.js", map[string]string{"If-None-Match": gzTag}, false, 0, 304, "", map[string]string{"Etag": gzTag}},
		{"range", "GET", "/app.js", map[string]string{"Range": "bytes=0-6"}, false, 0, 206, "gzipped", map[string]string{"Content-Encoding": "gzip"}},
		{"directory .gz", "GET", "/dir.js", nil, false, 0, 200, "plain", map[string]string{"Content-Encoding": ""}},
		{"fifo .gz", "GET", "/pipe.js", nil, false, 0, 200, "plain", map[string]string{"Content-Encoding": ""}},
		{"symlinked .gz followed", "GET", "/link.js", nil, false, 0, 200, "outside the root", map[string]string{"Content-Encoding": "gzip"}},
		{"without the original", "GET", "/only.js", nil, false, 0, 200, "only gzipped", map[string]string{"Content-Encoding": "gzip"}},
		{"without the original, not accepted", "GET", "/only.js", map[string]string{"Accept-Encoding": "identity"}, false, 404, 0, "", nil},
		// nginx passes a .gz it may not open over and serves the file itself (which disable_symlinks checks)
		{"symlinked .gz passed over", "GET", "/link.js", nil, true, 0, 200, "plain", map[string]string{"Content-Encoding": "", "Vary": ""}},
		{"symlinked .gz without the original", "GET", "/linkonly.js", nil, true, 404, 0, "", map[string]string{"Content-Encoding": ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uri == "/pipe.js" && !fifo {
				t.Skip("no FIFO")
			}
			r := httptest.NewRequest(tt.method, tt.uri, nil)
			r.Header.Set("Accept-Encoding", "gzip, deflate")
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			req := Request{Root: root, URI: tt.uri, Types: map[string]string{"js": "application/javascript"}, ETag: true, GzipStatic: GzipStaticOn,
				NoSymlinks: tt.noSymlinks}
			if got := Serve(w, r, req); got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
			if tt.status == 0 && (w.Code != tt.code || w.Body.String() != tt.body) {
				t.Errorf("%d %q, want %d %q", w.Code, w.Body.String(), tt.code, tt.body)
			}
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestOpenBelow checks disable_symlinks' open: no symbolic link between the root and the file, whether a
// directory or the file itself, while the root may be reached through one; and the check of kernels without
// openat2 (noLinks) agrees.
func TestOpenBelow(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "www")
	os.MkdirAll(filepath.Join(root, "dir"), 0o755)
	os.WriteFile(filepath.Join(root, "dir", "a.txt"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(base, "outside.txt"), []byte("outside"), 0o644)
	os.Symlink(filepath.Join(root, "dir"), filepath.Join(root, "linkdir"))
	os.Symlink(filepath.Join(root, "dir", "a.txt"), filepath.Join(root, "link.txt"))
	os.Symlink(filepath.Join(base, "outside.txt"), filepath.Join(root, "out.txt"))
	os.Symlink(root, filepath.Join(base, "rootlink"))
	os.Symlink("dir", filepath.Join(root, "rellink")) // relative: stays below the root
	for _, tt := range []struct {
		name, root, path string
		err              error // nil: opened
	}{
		{"file", root, root + "/dir/a.txt", nil},
		{"directory", root, root + "/dir", nil},
		{"root through a link", base + "/rootlink", base + "/rootlink/dir/a.txt", nil},
		{"the root itself", root + "/dir/a.txt", root + "/dir/a.txt", nil},
		{"the root itself, a link", root + "/link.txt", root + "/link.txt", syscall.ELOOP}, // a regex location's alias
		{"linked directory", root, root + "/linkdir/a.txt", syscall.ELOOP},
		{"linked file", root, root + "/link.txt", syscall.ELOOP},
		{"relative link", root, root + "/rellink/a.txt", syscall.ELOOP},
		{"link out of the root", root, root + "/out.txt", syscall.ELOOP},
		{"missing", root, root + "/dir/missing.txt", syscall.ENOENT},
		{"outside the root", root, base + "/outside.txt", syscall.EXDEV},
		{"sibling with the root's prefix", root, root + "2/a.txt", syscall.EXDEV},
		{"dot-dot", root, root + "/dir/../../outside.txt", syscall.EXDEV},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fd, err := openBelow(tt.root, tt.path, syscall.O_RDONLY|syscall.O_CLOEXEC)
			if err == nil {
				syscall.Close(fd)
			}
			if !errors.Is(err, tt.err) && !(tt.err == nil && err == nil) {
				t.Errorf("openBelow: %v, want %v", err, tt.err)
			}
			if tt.err != syscall.EXDEV {
				if got, want := noLinks(tt.root, tt.path), tt.err != syscall.ELOOP; got != want {
					t.Errorf("noLinks: %v, want %v", got, want)
				}
			}
		})
	}
}

func TestExists(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dir"), 0o755)
	os.WriteFile(filepath.Join(root, "dir", "a.txt"), []byte("a"), 0o644)
	os.Symlink("dir", filepath.Join(root, "linkdir"))
	fifo := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644) == nil
	for _, tt := range []struct {
		name            string
		noSymlinks      bool
		wantDir, wantOK bool
	}{
		{"/dir/a.txt", false, false, true},
		{"/dir", false, true, true},
		{"/dir/", true, true, true},
		{"/", true, true, true},
		{"/missing", false, false, false},
		{"/linkdir/a.txt", false, false, true},
		{"/linkdir/a.txt", true, false, false},
		{"/linkdir", true, false, false},
		{"/pipe", true, false, fifo}, // not opened for reading: no hang
	} {
		isDir, ok := Exists(root, root+tt.name, tt.noSymlinks)
		if tt.name == "/linkdir" && tt.noSymlinks {
			// a regex location's alias: the root is the name itself
			if isDir, ok := Exists(root+tt.name, root+tt.name, true); isDir || ok {
				t.Errorf("Exists(%s as its own root) = %v, %v; want false, false", tt.name, isDir, ok)
			}
		}
		if isDir != tt.wantDir || ok != tt.wantOK {
			t.Errorf("Exists(%s, noSymlinks %v) = %v, %v; want %v, %v", tt.name, tt.noSymlinks, isDir, ok, tt.wantDir, tt.wantOK)
		}
	}
}

// TestIsConditional: a request with any of the headers the not_modified and range filters read is
// conditional, among few fields or many.
func TestIsConditional(t *testing.T) {
	many := func(extra ...string) http.Header {
		h := http.Header{}
		for i := range 8 {
			h.Set("X-Field-"+strconv.Itoa(i), "v")
		}
		for _, k := range extra {
			h.Set(k, "v")
		}
		return h
	}
	for _, tc := range []struct {
		name string
		req  http.Header
		want bool
	}{
		{"few, none", http.Header{"Accept": {"*/*"}, "If-Unknown": {"x"}}, false},
		{"few, Range", http.Header{"Range": {"bytes=0-1"}}, true},
		{"few, If-None-Match", http.Header{"Accept": {"*/*"}, "If-None-Match": {`"x"`}}, true},
		{"few, If-Unmodified-Since", http.Header{"If-Unmodified-Since": {"x"}}, true},
		{"many, none", many("If-Unknown"), false},
		{"many, If-Range", many("If-Range"), true},
		{"many, If-Modified-Since", many("If-Modified-Since"), true},
	} {
		if got := isConditional(tc.req); got != tc.want {
			t.Errorf("%s: isConditional = %v, want %v", tc.name, got, tc.want)
		}
	}
}
