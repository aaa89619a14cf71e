package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// checkAgainstReadRequest parses data with parseHead and, when the fast path takes it, checks that
// http.ReadRequest accepts it too with the same Request, the same body and the same bytes left over. It
// reports whether the fast path took it.
func checkAgainstReadRequest(t *testing.T, data []byte) bool {
	t.Helper()
	br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
	var got http.Request
	if parseHead(br, &got, 0, new(reqStore)) == 0 { // the storage the server passes
		return false
	}
	want, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(data), 64<<10))
	if err != nil {
		t.Fatalf("fast path took %q, http.ReadRequest refuses it: %v", data, err)
	}
	type view struct {
		Method, URL, Path, RawPath, RawQuery, Proto, Host, RequestURI string
		Major, Minor                                                  int
		Header                                                        http.Header
		ContentLength                                                 int64
		Close, NoBody                                                 bool
		TE                                                            []string
	}
	see := func(r *http.Request) view {
		return view{r.Method, r.URL.String(), r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Proto, r.Host, r.RequestURI,
			r.ProtoMajor, r.ProtoMinor, r.Header, r.ContentLength, r.Close, r.Body == nil || r.Body == http.NoBody, r.TransferEncoding}
	}
	g, w := see(&got), see(want)
	g.NoBody = got.ContentLength == 0 // the connection gives the fast path's request its body
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("for %q\nfast path:        %+v\nhttp.ReadRequest: %+v", data, g, w)
	}
	// the body and what follows it are the same bytes either way
	rest, _ := io.ReadAll(br)
	wantBody, err := io.ReadAll(want.Body)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("body of %q: %v", data, err)
	}
	if int64(len(wantBody)) > int64(len(rest)) || !bytes.Equal(rest[:len(wantBody)], wantBody) {
		t.Fatalf("for %q the fast path left %q, the body is %q", data, rest, wantBody)
	}
	return true
}

// manyFields is n header lines of distinct names, repeated once each (a second value per name).
func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-F%d: a\r\n", i)
	}
	for i := range n {
		fmt.Fprintf(&b, "X-F%d: b\r\n", i)
	}
	return b.String()
}

// headSeeds are heads the fast path takes (true) or leaves to net/http (false).
var headSeeds = []struct {
	head string
	fast bool
}{
	{"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", true},
	{"GET /index.html?a=1&b=%20x HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n", true},
	{"POST /api/v1/items HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":\"hello\"}GET / HTTP/1.1\r\n\r\n", true},
	{"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", true},
	{"GET / HTTP/1.0\r\n\r\n", true},
	{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
	{"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", true},
	{"GET / HTTP/1.1\r\nhost: h\r\naccept-encoding: gzip\r\nx-forwarded-for: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\r\n", true},
	{"GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n", true},
	{"GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Spaces: \t a b \t\r\nX_Under: 1\r\n\r\n", true},
	{"GET /a%2Fb/c%20d HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"GET /x HTTP/1.1\r\nHost: h\r\nCookie: a=\xc3\xa9\r\n\r\n", true},
	{"GET http://example.com/x HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", false},
	{"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false},
	{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", false},
	{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\nx", false},
	{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", false},
	{"GET / HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n b\r\n\r\n", false},
	{"GET / HTTP/1.1\nHost: h\n\n", false},
	{"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", false},
	{"GET / HTTP/2.0\r\nHost: h\r\n\r\n", false},
	{"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"GET /#frag HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", false},
	{"GET / HTTP/1.1\r\n: x\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nHost: h\r\n", false},
	{"GET /a!b'c(d)e*f HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET /x? HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET //a//b HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET /a;b=c/@:$&+,=~ HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET /q?a=%zz&b=[1]|{x} HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET /p[1]|{x}^` HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET / HTTP/1.1\r\nHost: h\r\n" + manyFields(32) + "\r\n", true}, // as many names as the fast path gathers
	{"GET / HTTP/1.1\r\nHost: h\r\n" + manyFields(33) + "\r\n", false},
	{"GET / HTTP/1.1\r\nPragma: no-cache\r\ncache-control: max-age=0\r\nConnection: close\r\nconnection: x\r\n\r\n", true},
}

// TestParseHead: the ordinary heads take the fast path, with the Request http.ReadRequest makes; the others
// are left to http.ReadRequest, with nothing consumed.
func TestParseHead(t *testing.T) {
	for _, seed := range headSeeds {
		s := seed.head
		took := checkAgainstReadRequest(t, []byte(s))
		if took != seed.fast {
			t.Errorf("fast path took=%v, want %v: %q", took, seed.fast, s)
		}
		if !took {
			br := bufio.NewReaderSize(strings.NewReader(s), 4096)
			var r http.Request
			parseHead(br, &r, 0, nil)
			if rest, _ := io.ReadAll(br); string(rest) != s {
				t.Errorf("a head left to net/http was consumed: %q left of %q", rest, s)
			}
		}
	}
	// a head longer than the buffer goes to net/http
	long := "GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + strings.Repeat("a", 5000) + "\r\n\r\n"
	if checkAgainstReadRequest(t, []byte(long)) {
		t.Error("the fast path took a head longer than its buffer")
	}
}

// FuzzParseHead: whatever the fast path takes, http.ReadRequest takes too, with the same Request.
func FuzzParseHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s.head))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstReadRequest(t, data)
	})
}

func BenchmarkParseHead(b *testing.B) {
	head := []byte("GET /index.html?a=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nConnection: keep-alive\r\n\r\n")
	rd := bytes.NewReader(head)
	br := bufio.NewReaderSize(rd, 4096)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(head)
			br.Reset(rd)
			var r http.Request
			if parseHead(br, &r, 0, nil) == 0 {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(head)
			br.Reset(rd)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
