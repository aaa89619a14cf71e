package static

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestConditionalAsNginx serves one file to conditional and range requests; every expected answer was observed
// from nginx 1.22 serving the same file (36 bytes, modified 2024-01-02 03:04:05 UTC, ETag "65937d25-24").
func TestConditionalAsNginx(t *testing.T) {
	root := t.TempDir()
	const content = "0123456789abcdefghijklmnopqrstuvwxyz"
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, data := range map[string]string{"f.txt": content, "empty.txt": ""} {
		p := filepath.Join(root, name)
		os.WriteFile(p, []byte(data), 0o644)
		os.Chtimes(p, mtime, mtime)
	}
	const (
		lm      = "Tue, 02 Jan 2024 03:04:05 GMT"
		later   = "Wed, 03 Jan 2024 03:04:05 GMT"
		earlier = "Mon, 01 Jan 2024 03:04:05 GMT"
		et      = `"65937d25-24"`
	)
	noETag := func(r *Request) { r.ETag = false }
	for _, tt := range []struct {
		name   string
		hdr    []string // name, value, …
		mod    func(*Request)
		status int    // returned for the caller's error page (0: written)
		code   int    // written
		body   string // written
		want   string // "Name: value" lines of the written head ("Name: " for absent), in any order
	}{
		{"IMS same", []string{"If-Modified-Since", lm}, nil, 0, 304, "", "Last-Modified: " + lm + "|Etag: " + et + "|Content-Type: |Content-Length: |Accept-Ranges: "},
		{"IMS later (exact)", []string{"If-Modified-Since", later}, nil, 0, 200, content, "Accept-Ranges: bytes"},
		{"IMS earlier", []string{"If-Modified-Since", earlier}, nil, 0, 200, content, ""},
		{"IMS garbage", []string{"If-Modified-Since", "garbage"}, nil, 0, 200, content, ""},
		{"IMS same, off", []string{"If-Modified-Since", lm}, func(r *Request) { r.IfModifiedSince = IMSOff }, 0, 200, content, ""},
		{"IMS later, before", []string{"If-Modified-Since", later}, func(r *Request) { r.IfModifiedSince = IMSBefore }, 0, 304, "", "Etag: " + et},
		{"IMS earlier, before", []string{"If-Modified-Since", earlier}, func(r *Request) { r.IfModifiedSince = IMSBefore }, 0, 200, content, ""},
		{"INM", []string{"If-None-Match", et}, nil, 0, 304, "", "Last-Modified: " + lm + "|Etag: " + et},
		{"INM weak", []string{"If-None-Match", "W/" + et}, nil, 0, 304, "", ""},
		{"INM star", []string{"If-None-Match", "*"}, nil, 0, 304, "", ""},
		{"INM list", []string{"If-None-Match", `"x", ` + et}, nil, 0, 304, "", ""},
		{"INM blanks before comma", []string{"If-None-Match", et + ` , "y"`}, nil, 0, 304, "", ""},
		{"INM other", []string{"If-None-Match", `"x"`}, nil, 0, 200, content, ""},
		{"INM trailing quote", []string{"If-None-Match", et + `"`}, nil, 0, 200, content, ""},
		{"INM prefix", []string{"If-None-Match", `"65937d25"`}, nil, 0, 200, content, ""},
		{"INM, etag off", []string{"If-None-Match", et}, noETag, 0, 200, content, "Etag: "},
		{"INM star, etag off", []string{"If-None-Match", "*"}, noETag, 0, 304, "", ""},
		{"IM", []string{"If-Match", et}, nil, 0, 200, content, ""},
		{"IM weak", []string{"If-Match", "W/" + et}, nil, 412, 0, "", "Etag: |Last-Modified: "},
		{"IM other", []string{"If-Match", `"x"`}, nil, 412, 0, "", ""},
		{"IM star", []string{"If-Match", "*"}, nil, 0, 200, content, ""},
		{"IM star, etag off", []string{"If-Match", "*"}, noETag, 0, 200, content, ""},
		{"IM, etag off", []string{"If-Match", et}, noETag, 412, 0, "", ""},
		{"IUS same", []string{"If-Unmodified-Since", lm}, nil, 0, 200, content, ""},
		{"IUS earlier", []string{"If-Unmodified-Since", earlier}, nil, 412, 0, "", ""},
		{"IUS garbage", []string{"If-Unmodified-Since", "garbage"}, nil, 412, 0, "", ""},
		{"INM matches, IMS earlier", []string{"If-None-Match", et, "If-Modified-Since", earlier}, nil, 0, 200, content, ""},
		{"INM other, IMS same", []string{"If-None-Match", `"x"`, "If-Modified-Since", lm}, nil, 0, 200, content, ""},
		{"IM fails before INM", []string{"If-Match", `"x"`, "If-None-Match", et}, nil, 412, 0, "", ""},
		{"IUS fails before INM", []string{"If-Unmodified-Since", earlier, "If-None-Match", et}, nil, 412, 0, "", ""},

		{"range", []string{"Range", "bytes=0-4"}, nil, 0, 206, "01234", "Content-Range: bytes 0-4/36|Content-Length: 5|Accept-Ranges: |Etag: " + et + "|Last-Modified: " + lm},
		{"suffix", []string{"Range", "bytes=-5"}, nil, 0, 206, "vwxyz", "Content-Range: bytes 31-35/36"},
		{"open", []string{"Range", "bytes=30-"}, nil, 0, 206, "uvwxyz", "Content-Range: bytes 30-35/36"},
		{"from 0", []string{"Range", "bytes=0-"}, nil, 0, 206, content, "Content-Range: bytes 0-35/36"},
		{"past the end", []string{"Range", "bytes=30-99"}, nil, 0, 206, "uvwxyz", "Content-Range: bytes 30-35/36"},
		{"blanks", []string{"Range", "bytes= 1 - 2 "}, nil, 0, 206, "12", ""},
		{"unit case", []string{"Range", "BYTES=1-2"}, nil, 0, 206, "12", ""},
		{"reversed", []string{"Range", "bytes=5-2"}, nil, 416, 0, "", "Content-Range: bytes */36|Etag: |Last-Modified: "},
		{"suffix 0", []string{"Range", "bytes=-0"}, nil, 416, 0, "", "Content-Range: bytes */36"},
		{"start past the end", []string{"Range", "bytes=100-"}, nil, 416, 0, "", "Content-Range: bytes */36"},
		{"malformed second", []string{"Range", "bytes=1-2,x"}, nil, 416, 0, "", "Content-Range: bytes */36"},
		{"other unit", []string{"Range", "items=0-5"}, nil, 0, 200, content, "Accept-Ranges: bytes"},
		{"no set", []string{"Range", "bytes="}, nil, 0, 200, content, ""},
		{"more than the file", []string{"Range", "bytes=0-40,0-40"}, nil, 0, 200, content, ""},
		{"If-Range tag", []string{"If-Range", et, "Range", "bytes=1-2"}, nil, 0, 206, "12", ""},
		{"If-Range other tag", []string{"If-Range", `"x"`, "Range", "bytes=1-2"}, nil, 0, 200, content, ""},
		{"If-Range weak tag", []string{"If-Range", "W/" + et, "Range", "bytes=1-2"}, nil, 0, 200, content, ""},
		{"If-Range date", []string{"If-Range", lm, "Range", "bytes=1-2"}, nil, 0, 206, "12", ""},
		{"If-Range later date", []string{"If-Range", later, "Range", "bytes=1-2"}, nil, 0, 200, content, ""},
		{"If-Range garbage", []string{"If-Range", "garbage", "Range", "bytes=1-2"}, nil, 0, 200, content, ""},
		{"If-Range tag, reversed", []string{"If-Range", et, "Range", "bytes=5-2"}, nil, 416, 0, "", ""},
		{"If-Range other, reversed", []string{"If-Range", `"x"`, "Range", "bytes=5-2"}, nil, 0, 200, content, ""},
		{"If-Range tag, etag off", []string{"If-Range", et, "Range", "bytes=1-2"}, noETag, 0, 200, content, ""},
		{"INM before range", []string{"If-None-Match", et, "Range", "bytes=1-2"}, nil, 0, 304, "", ""},
		{"INM other, range", []string{"If-None-Match", `"x"`, "Range", "bytes=1-2"}, nil, 0, 206, "12", ""},
		{"IM, reversed", []string{"If-Match", et, "Range", "bytes=5-2"}, nil, 416, 0, "", ""},
		{"max_ranges 1, two", []string{"Range", "bytes=1-2,4-5"}, func(r *Request) { r.MaxRanges = 1 }, 0, 200, content, "Accept-Ranges: bytes"},
		{"max_ranges 1, one", []string{"Range", "bytes=1-2"}, func(r *Request) { r.MaxRanges = 1 }, 0, 206, "12", ""},
		{"max_ranges 0", []string{"Range", "bytes=1-2"}, func(r *Request) { r.MaxRanges = -1 }, 0, 200, content, "Accept-Ranges: "},
		{"error page", []string{"If-None-Match", et, "Range", "bytes=1-2"}, func(r *Request) { r.NoConditions = true }, 0, 200, content, ""},
		{"empty file", []string{"Range", "bytes=0-1"}, func(r *Request) { r.URI = "/empty.txt" }, 0, 200, "", "Accept-Ranges: bytes|Content-Length: 0"},
		{"empty file, suffix", []string{"Range", "bytes=-1"}, func(r *Request) { r.URI = "/empty.txt" }, 0, 200, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/f.txt", nil)
			for i := 0; i < len(tt.hdr); i += 2 {
				r.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			req := Request{Root: root, URI: "/f.txt", DefaultType: "text/plain", ETag: true}
			if tt.mod != nil {
				tt.mod(&req)
			}
			w := httptest.NewRecorder()
			if got := Serve(w, r, req); got != tt.status {
				t.Fatalf("returned %d, want %d", got, tt.status)
			}
			if tt.status == 0 && (w.Code != tt.code || w.Body.String() != tt.body) {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body.String(), tt.code, tt.body)
			}
			if tt.want == "" {
				return
			}
			for _, line := range strings.Split(tt.want, "|") {
				k, v, _ := strings.Cut(line, ": ")
				if got := strings.Join(w.Header()[http.CanonicalHeaderKey(k)], ", "); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestMultipartAsNginx checks a multi-range answer byte for byte against nginx 1.22's, and that the boundary
// counts up as nginx's does.
func TestMultipartAsNginx(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f.txt"), []byte("0123456789abcdefghijklmnopqrstuvwxyz"), 0o644)
	req := Request{Root: root, URI: "/f.txt", DefaultType: "text/plain"}
	serve := func(method string) *httptest.ResponseRecorder {
		req.Parts = new(atomic.Uint64)
		req.Parts.Store(4)
		r := httptest.NewRequest(method, "/f.txt", nil)
		r.Header.Set("Range", "bytes=0-4,10-12")
		w := httptest.NewRecorder()
		if got := Serve(w, r, req); got != 0 || w.Code != 206 {
			t.Fatalf("%s: returned %d, wrote %d", method, got, w.Code)
		}
		return w
	}
	const want = "\r\n--00000000000000000005\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-4/36\r\n\r\n01234" +
		"\r\n--00000000000000000005\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-12/36\r\n\r\nabc" +
		"\r\n--00000000000000000005--\r\n"
	for _, method := range []string{"GET", "HEAD"} {
		w := serve(method)
		h := w.Header()
		if ct := h.Get("Content-Type"); ct != "multipart/byteranges; boundary=00000000000000000005" {
			t.Errorf("%s: Content-Type %q", method, ct)
		}
		if cl := h.Get("Content-Length"); cl != "204" { // nginx's, for this request
			t.Errorf("%s: Content-Length %s, want 204", method, cl)
		}
		if method == "GET" && w.Body.String() != want {
			t.Errorf("body\n%q\nwant\n%q", w.Body.String(), want)
		}
		if method == "HEAD" && w.Body.Len() != 0 {
			t.Errorf("HEAD: %d body bytes", w.Body.Len())
		}
	}
}

// TestParseRanges covers what TestConditionalAsNginx does not: overflow, and large offsets.
func TestParseRanges(t *testing.T) {
	for _, tt := range []struct {
		set  string
		size int64
		max  int
		want []byteRange
		res  int
	}{
		{"0-9223372036854775807", 100, 10, []byteRange{{0, 100}}, rangeOK},
		{"0-9223372036854775808", 100, 10, nil, rangeNotSatisfiable},
		{"99999999999999999999-", 100, 10, nil, rangeNotSatisfiable},
		{"-200", 100, 10, []byteRange{{0, 100}}, rangeOK},
		{"0-0,-1", 100, 10, []byteRange{{0, 1}, {99, 100}}, rangeOK},
		{"0-0,1-1,2-2", 100, 2, nil, rangeDeclined},
		{"0-0,1-1", 100, 2, []byteRange{{0, 1}, {1, 2}}, rangeOK},
		{"5-2,1-1", 100, 10, []byteRange{{1, 2}}, rangeOK},
		{"0-", 0, 10, nil, rangeDeclined},
		{"1-2 3", 100, 10, nil, rangeNotSatisfiable},
		{"1-2,", 100, 10, nil, rangeNotSatisfiable},
	} {
		got, res := parseRanges(tt.set, tt.size, tt.max)
		if res != tt.res || len(got) != len(tt.want) {
			t.Errorf("%q of %d: %v %d, want %v %d", tt.set, tt.size, got, res, tt.want, tt.res)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%q of %d: %v, want %v", tt.set, tt.size, got, tt.want)
			}
		}
	}
}
