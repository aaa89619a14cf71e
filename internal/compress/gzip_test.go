package compress

import (
	"net/http"
	"testing"
)

// TestAcceptsGzip: whether nginx 1.22 compressed a response to each Accept-Encoding (observed side by side,
// gzip on); no allocation.
func TestAcceptsGzip(t *testing.T) {
	for _, tt := range []struct {
		ae   string
		want bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"br, gzip", true},
		{" br ,\tgzip ", false}, // a tab before gzip is no separator to nginx
		{"gzip,", true},
		{"gzip;q=0", false},
		{"gzip; q = 0.000", false}, // "=" must follow q at once
		{"gzip;\tq=0.0", false},
		{"gzip;q=0.0000", false}, // more than three decimals
		{"gzip;q=0.5", true},
		{"gzip;q=0;x=1", false},
		{"gzip;q=0, gzip", false},
		{"x-gzip", false},
		{"deflate, br", false},
		{"gzipx", false},
		{"br,gzip;q=0.001", true},
		{"gzip ; q=1", true},
		{"gzip;q=1.000", true},
		{"gzip;q=1.001", false},
		{"gzip;Q=0.3", true},
		{"gzip;level=1", false},
		{"br;gzip", false},
		{"*", false},
		{"identity, gzip;q=0.9 ", true},
		{"gzip;q=", false},
		{"gzip;q=0.", false},
		{"gzip;q=.5", false},
	} {
		if got := AcceptsGzip(tt.ae); got != tt.want {
			t.Errorf("AcceptsGzip(%q) = %v, want %v", tt.ae, got, tt.want)
		}
		if n := testing.AllocsPerRun(10, func() { AcceptsGzip(tt.ae) }); n != 0 {
			t.Errorf("AcceptsGzip(%q): %v allocations", tt.ae, n)
		}
	}
}

// TestAccepts covers the request side besides Accept-Encoding, as nginx 1.22 answered: HTTP/1.0 only with
// gzip_http_version 1.0, a request with Via only as gzip_proxied allows, old MSIE under gzip_disable msie6,
// gzip_disable regexes without case.
func TestAccepts(t *testing.T) {
	const msie6UA = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"
	g := func(mod func(*Gzip)) *Gzip {
		z := NewGzip(nil)
		if mod != nil {
			mod(z)
		}
		return z
	}
	req := func(minor int, hdr ...string) *http.Request {
		r := &http.Request{ProtoMajor: 1, ProtoMinor: minor, Header: http.Header{"Accept-Encoding": {"gzip"}}}
		for i := 0; i < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	for _, tt := range []struct {
		name string
		g    *Gzip
		r    *http.Request
		resp http.Header
		want bool
	}{
		{"plain", g(nil), req(1), nil, true},
		{"HTTP/1.0", g(nil), req(0), nil, false},
		{"HTTP/1.0, 1.0", g(func(z *Gzip) { z.HTTP10 = true }), req(0), nil, true},
		{"via, off", g(nil), req(1, "Via", "1.1 x"), nil, false},
		{"via, any", g(func(z *Gzip) { z.Proxied = ProxiedAny }), req(1, "Via", "1.1 x"), nil, true},
		{"via, expired, past", g(func(z *Gzip) { z.Proxied = ProxiedExpired }), req(1, "Via", "1.1 x"), http.Header{"Expires": {"Thu, 01 Jan 1970 00:00:01 GMT"}}, true},
		{"via, expired, none", g(func(z *Gzip) { z.Proxied = ProxiedExpired }), req(1, "Via", "1.1 x"), http.Header{}, true},
		{"via, no-cache", g(func(z *Gzip) { z.Proxied = ProxiedNoCache }), req(1, "Via", "1.1 x"), http.Header{"Cache-Control": {"max-age=0, No-Cache"}}, true},
		{"via, no-cache, other", g(func(z *Gzip) { z.Proxied = ProxiedNoCache }), req(1, "Via", "1.1 x"), http.Header{"Cache-Control": {"public"}}, false},
		{"via, no_etag", g(func(z *Gzip) { z.Proxied = ProxiedNoETag }), req(1, "Via", "1.1 x"), http.Header{"Etag": {`"x"`}}, false},
		{"via, auth", g(func(z *Gzip) { z.Proxied = ProxiedAuth }), req(1, "Via", "1.1 x", "Authorization", "Basic eA=="), nil, true},
		{"msie6", g(func(z *Gzip) { z.MSIE6 = true }), req(1, "User-Agent", msie6UA), nil, false},
		{"msie6 SV1", g(func(z *Gzip) { z.MSIE6 = true }), req(1, "User-Agent", "Mozilla/4.0 (compatible; MSIE 6.0; SV1)"), nil, true},
		{"msie6 not disabled", g(nil), req(1, "User-Agent", msie6UA), nil, true},
	} {
		if got := tt.g.Accepts(tt.r, tt.resp); got != tt.want {
			t.Errorf("%s: Accepts = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestCompressible: statuses 200, 403 and 404 only, no Content-Encoding, at least gzip_min_length, a listed
// type (text/html always, parameters and case aside, or "*").
func TestCompressible(t *testing.T) {
	g := NewGzip([]string{"application/javascript"})
	any := NewGzip([]string{"*"})
	for _, tt := range []struct {
		name   string
		g      *Gzip
		status int
		h      http.Header
		want   bool
	}{
		{"html", g, 200, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, true},
		{"listed", g, 200, http.Header{"Content-Type": {"application/javascript"}, "Content-Length": {"20"}}, true},
		{"case", g, 404, http.Header{"Content-Type": {"Application/JavaScript"}}, true},
		{"too short", g, 200, http.Header{"Content-Type": {"text/html"}, "Content-Length": {"19"}}, false},
		{"not listed", g, 200, http.Header{"Content-Type": {"image/png"}}, false},
		{"no type", g, 200, http.Header{}, false},
		{"any", any, 403, http.Header{"Content-Type": {"image/png"}}, true},
		{"206", g, 206, http.Header{"Content-Type": {"text/html"}}, false},
		{"500", g, 500, http.Header{"Content-Type": {"text/html"}}, false},
		{"encoded", g, 200, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"br"}}, false},
		{"empty encoding", g, 200, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {""}}, true},
	} {
		if got := tt.g.Compressible(tt.status, tt.h); got != tt.want {
			t.Errorf("%s: Compressible = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestWeakETag(t *testing.T) {
	for _, tt := range []struct{ in, want string }{{`"a"`, `W/"a"`}, {`W/"a"`, `W/"a"`}, {"bare", ""}} {
		h := http.Header{"Etag": {tt.in}}
		WeakETag(h)
		if got := h.Get("Etag"); got != tt.want {
			t.Errorf("WeakETag(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
