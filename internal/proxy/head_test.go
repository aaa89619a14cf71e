package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// writeHead must put on the wire exactly what (*http.Request).Write does, or leave the request to it.
func TestWriteHeadMatchesRequestWrite(t *testing.T) {
	type hdr = http.Header
	for _, tc := range []struct {
		name   string
		method string
		uri    string
		host   string
		close  bool
		h      hdr
		fast   bool
	}{
		{"plain GET", "GET", "/x?a=1", "app", false, hdr{"Accept": {"*/*"}, "User-Agent": {"curl/8"}, "X-Real-Ip": {"1.2.3.4"}}, true},
		{"no user agent", "GET", "/", "app:8080", false, hdr{"User-Agent": {""}, "Zeta": {"1"}, "Alpha": {"2", "3"}}, true},
		{"default user agent", "HEAD", "/", "app", false, hdr{}, true},
		{"empty method", "", "/", "app", false, hdr{"User-Agent": {""}}, true},
		{"values with CR LF and spaces", "GET", "/", "app", false, hdr{"X-A": {" a\r\nb \t"}, "User-Agent": {"u\nv "}}, true},
		{"excluded names", "GET", "/", "app", false, hdr{"Host": {"evil"}, "Content-Length": {"5"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"}, "User-Agent": {""}}, true},
		{"invalid name dropped", "GET", "/", "app", false, hdr{"Bad Name": {"1"}, "Ok": {"2"}, "User-Agent": {""}}, true},
		{"close", "GET", "/", "app", true, hdr{"User-Agent": {""}}, true},
		{"close already in Connection", "GET", "/", "app", true, hdr{"Connection": {"keep-alive, Close"}, "User-Agent": {""}}, true},
		{"POST without body", "POST", "/f", "app", false, hdr{"User-Agent": {""}}, true},
		{"PUT without body", "PUT", "/f", "app", false, hdr{"User-Agent": {""}}, true},
		{"DELETE without body", "DELETE", "/f", "app", false, hdr{"User-Agent": {""}}, true},
		{"invalid Host", "GET", "/", "a b", false, hdr{"User-Agent": {""}}, false},
		{"IPv6 Host", "GET", "/", "[::1]:80", false, hdr{"User-Agent": {""}}, false},
		{"non-ASCII Host", "GET", "/", "bücher.example", false, hdr{"User-Agent": {""}}, false},
		{"control byte in target", "GET", "/a\x01", "app", false, hdr{"User-Agent": {""}}, false},
		// longer than the writer's free space: the lines go out part by part
		{"long target and value", "GET", "/" + strings.Repeat("a", 5000), "app", false, hdr{"X-Long": {strings.Repeat("v", 5000)}, "User-Agent": {strings.Repeat("u", 4100)}}, true},
		{"many headers", "GET", "/", "app", false, func() hdr {
			h := hdr{"User-Agent": {""}}
			for i := 0; i < 40; i++ {
				h["X-H"+string(rune('A'+i%26))+string(rune('a'+i/26))] = []string{"v"}
			}
			return h
		}(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{Method: tc.method, URL: &url.URL{Scheme: "http", Host: "10.0.0.1:80", Opaque: tc.uri}, Host: tc.host,
				Header: tc.h, Close: tc.close, Body: http.NoBody, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
			var want bytes.Buffer
			werr := req.Write(&want)
			var got bytes.Buffer
			bw := bufio.NewWriter(&got)
			fast := writeHead(bw, req, nil)
			bw.Flush()
			if fast != tc.fast {
				t.Fatalf("fast path = %v, want %v", fast, tc.fast)
			}
			if !fast {
				if got.Len() != 0 {
					t.Fatalf("wrote %q before giving up", got.String())
				}
				return
			}
			if werr != nil {
				t.Fatalf("Request.Write failed (%v) where writeHead wrote %q", werr, got.String())
			}
			if got.String() != want.String() {
				t.Fatalf("writeHead wrote\n%q\nRequest.Write\n%q", got.String(), want.String())
			}
			// the same request with its header as a list (as the proxy builds it) is written the same
			var hl headerList
			for k, v := range tc.h {
				hl.add(k, v)
			}
			got.Reset()
			bw.Reset(&got)
			if !writeHead(bw, req, &hl) {
				t.Fatal("fast path refused the header list")
			}
			bw.Flush()
			if got.String() != want.String() {
				t.Fatalf("writeHead from a list wrote\n%q\nRequest.Write\n%q", got.String(), want.String())
			}
		})
	}
}
