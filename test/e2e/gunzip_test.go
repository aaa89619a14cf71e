package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gzipped compresses s as one gzip member.
func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

const gunzipConf = `events {}
http {
    proxy_cache_path {{CACHE}} keys_zone=gz:1m;
    server {
        listen {{PORT}};
        location /g/ { gunzip on; proxy_pass http://127.0.0.1:{{UP}}/; }
        location /gv/ { gunzip on; gzip_vary on; proxy_pass http://127.0.0.1:{{UP}}/; }
        location /gz/ { gunzip on; gzip on; gzip_vary on; gzip_min_length 1; proxy_pass http://127.0.0.1:{{UP}}/; }
        location /off/ { proxy_pass http://127.0.0.1:{{UP}}/; }
        location /sub/ { gunzip on; sub_filter gunzip GUNZIP; proxy_pass http://127.0.0.1:{{UP}}/; }
        location /buf/ { gunzip on; gunzip_buffers 2 16; proxy_pass http://127.0.0.1:{{UP}}/; }
        location /c/ { gunzip on; proxy_cache gz; proxy_pass http://127.0.0.1:{{UP}}/; }
        location /gs/ { alias html/; gzip_static always; gunzip on; }
    }
}
`

// TestGunzipAsNginx checks gunzip on proxied and cached responses. The expected answers were observed from
// nginx 1.22 with the same configuration and upstream: a gzip-encoded response goes to a client without
// Accept-Encoding: gzip (or through a proxy, by gzip_proxied's default) decompressed, without Content-Encoding
// and Accept-Ranges, with a weak ETag, and to one that takes gzip as it is; gzip_vary gives Vary: Accept-Encoding
// once, whether or not the body was decompressed; other codings pass; several gzip members are one body;
// sub_filter sees the decompressed body; a cached gzip entry is decompressed for a client that does not take
// gzip, sent whole to a Range; a file that gzip_static always serves only as .gz is decompressed likewise; a body that is not gzip, or is cut short, cuts the response; and the body
// streams (a part the upstream flushed arrives while the upstream still holds the rest). A gzip-encoded 304
// passes with the decompressed head (nginx 1.22 closes the connection unanswered: a deliberate difference).
func TestGunzipAsNginx(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("hello gunzip world\n", 50)
	ok := gzipped(text)
	variants := map[string][]byte{
		"ok":      ok,
		"trunc":   ok[:len(ok)/2],
		"multi":   append(gzipped("part one\n"), gzipped("part two\n")...),
		"garbage": append(append([]byte{}, ok...), "GARBAGE"...),
		"notgz":   []byte("plain text, not gzip\n"),
	}
	release := make(chan struct{})
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html")
		h.Set("Content-Encoding", "gzip")
		if ce := r.URL.Query().Get("ce"); ce != "" {
			h.Set("Content-Encoding", ce)
		}
		h.Set("ETag", `"abc"`)
		h.Set("Accept-Ranges", "bytes")
		h.Set("Cache-Control", "max-age=60")
		if r.URL.Query().Get("status") == "304" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		if name == "slow" {
			zw := gzip.NewWriter(w)
			io.WriteString(zw, "first part\n")
			zw.Flush()
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
			io.WriteString(zw, "second part\n")
			zw.Close()
			return
		}
		w.Write(variants[name])
	}))
	port := freePort(t)
	start(t, fill(t, gunzipConf, "PORT", port, "UP", up.Port, "CACHE", t.TempDir()), withFile("html/only.html.gz", ok))
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	base := "http://" + addr(port)

	tests := []struct {
		path string
		hdr  []string // request header, name and value pairs
		body string   // the body expected
		want []string // response header: "Name: value", or "Name" for absent; "Vary: X" is every Vary line joined
	}{
		{"/g/ok", nil, text, []string{"Content-Encoding", "Accept-Ranges", `Etag: W/"abc"`, "Vary"}},
		{"/g/ok", []string{"Accept-Encoding", "gzip"}, string(ok), []string{"Content-Encoding: gzip", `Etag: "abc"`, "Accept-Ranges: bytes", "Vary"}},
		{"/g/ok", []string{"Accept-Encoding", "gzip", "Via", "1.1 proxy"}, text, []string{"Content-Encoding", `Etag: W/"abc"`}},
		{"/g/ok?ce=GZIP", nil, text, []string{"Content-Encoding"}},
		{"/g/ok?ce=x-gzip", nil, string(ok), []string{"Content-Encoding: x-gzip", `Etag: "abc"`}},
		{"/g/ok?ce=gzip,%20br", nil, string(ok), []string{"Content-Encoding: gzip, br"}},
		{"/g/ok?status=304", nil, "", []string{"Content-Encoding", `Etag: W/"abc"`}}, // (nginx 1.22: no answer)
		{"/g/multi", nil, "part one\npart two\n", []string{"Content-Encoding"}},
		{"/gv/ok", nil, text, []string{"Vary: Accept-Encoding"}},
		{"/gv/ok", []string{"Accept-Encoding", "gzip"}, string(ok), []string{"Vary: Accept-Encoding", "Content-Encoding: gzip"}},
		{"/gz/ok", nil, text, []string{"Vary: Accept-Encoding", "Content-Encoding"}},
		{"/off/ok", nil, string(ok), []string{"Content-Encoding: gzip", "Vary"}},
		{"/sub/ok", nil, strings.Replace(text, "gunzip", "GUNZIP", 1), []string{"Content-Encoding", "Etag"}},
		{"/buf/ok", nil, text, []string{"Content-Encoding"}},
		{"/c/ok", []string{"Accept-Encoding", "gzip"}, string(ok), []string{"Content-Encoding: gzip"}},
		{"/c/ok", nil, text, []string{"Content-Encoding", `Etag: W/"abc"`}},
		{"/c/ok", []string{"Range", "bytes=0-3"}, text, []string{"Content-Encoding", "Content-Range"}},
		{"/gs/only.html", nil, text, []string{"Content-Encoding", "Accept-Ranges"}},
		// a Range for a .gz that gunzip decompresses: the whole body (nginx 1.22: 200), not a range of its
		// compressed bytes that cannot be decompressed
		{"/gs/only.html", []string{"Range", "bytes=0-3"}, text, []string{"Content-Encoding", "Content-Range", "Accept-Ranges"}},
		{"/gs/only.html", []string{"Range", "bytes=10-20"}, text, []string{"Content-Encoding", "Content-Range"}},
		{"/gs/only.html", []string{"Accept-Encoding", "gzip"}, string(ok), []string{"Content-Encoding: gzip"}},
		{"/c/ok", []string{"Accept-Encoding", "gzip", "Range", "bytes=0-3"}, string(ok[:4]), []string{"Content-Encoding: gzip", "Content-Range: bytes 0-3/" + strconv.Itoa(len(ok))}},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(http.MethodGet, base+tc.path, nil)
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			req.Header.Set(tc.hdr[i], tc.hdr[i+1])
		}
		r := do(t, client, req)
		if et := r.Header.Get("Etag"); r.Header.Get("Content-Encoding") == "" && et != "" && !strings.HasPrefix(et, "W/") {
			t.Errorf("%s %v: a decompressed body with the strong Etag %s", tc.path, tc.hdr, et)
		}
		if r.Body != tc.body {
			t.Errorf("%s %v: body %q, want %q", tc.path, tc.hdr, trim(r.Body), trim(tc.body))
		}
		for _, w := range tc.want {
			name, val, has := strings.Cut(w, ": ")
			got := strings.Join(r.Header.Values(name), ", ")
			if has && got != val || !has && got != "" {
				t.Errorf("%s %v: %s: %q, want %q", tc.path, tc.hdr, name, got, val)
			}
		}
		if cl := r.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(r.Body)) {
			t.Errorf("%s %v: Content-Length %s for a body of %d bytes", tc.path, tc.hdr, cl, len(r.Body))
		}
	}

	// a gzip stream that is cut short, or followed by garbage, or no gzip at all: the response is cut
	for _, p := range []string{"/g/trunc", "/g/garbage", "/g/notgz"} {
		resp, err := client.Get(base + p)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Errorf("%s: a whole response, want it cut", p)
		}
	}

	// the part the upstream flushed is sent on before the rest exists
	resp, err := client.Get(base + "/g/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("first part\n"))
	got := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, first); got <- err }()
	select {
	case err := <-got:
		if err != nil || string(first) != "first part\n" {
			t.Fatalf("first part: %q %v", first, err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the flushed first part did not arrive while the upstream held the rest")
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second part\n" {
		t.Errorf("rest: %q %v", rest, err)
	}
}

func trim(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
