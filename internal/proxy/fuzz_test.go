package proxy

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// FuzzReadResponse feeds arbitrary upstream bytes to the response reader of the upstream transport: it must
// never panic, a parsed header never carries CR or LF in a name or value, and the hop-by-hop names it takes
// from Connection come from the header block (never from the body).
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nConnection: X-A, close\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 200 OK\nConnection: x-b\nContent-Length: 24\n\nbody\r\nConnection: x-c\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "HTTP/1.0 200\r\n\r\n", "junk\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
		req, _ := http.NewRequest("GET", "http://u/", nil)
		resp, tokens, err := readResponse(br, req, nil)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			for _, v := range append([]string{k}, vs...) {
				if strings.ContainsAny(v, "\r\n") {
					t.Fatalf("header %q: %q carries CR/LF", k, v)
				}
			}
		}
		if strings.Count(raw, "HTTP/") != 1 {
			return // interim responses: the final header block is not the first
		}
		end := len(raw)
		for _, sep := range []string{"\r\n\r\n", "\n\n"} {
			if i := strings.Index(raw, sep); i >= 0 && i < end {
				end = i
			}
		}
		head := strings.ToLower(raw[:end])
		for _, tok := range tokens {
			if !strings.Contains(head, strings.ToLower(tok)) {
				t.Fatalf("hop-by-hop token %q is not in the header block %q", tok, raw[:end])
			}
		}
	})
}

// FuzzParseHead holds the upstream transport's own response-head parser to http.ReadResponse: whatever it
// accepts, ReadResponse reads the same way (status, protocol, header map, length, keep-alive, body bytes and
// where the next response starts); whatever ReadResponse rejects, it leaves to ReadResponse.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1",
		"HTTP/1.1 204 No Content\r\nconnection: X-A, close\r\nx-a: 1\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: \"x\"\r\n\r\n",
		"HTTP/1.1 200 OK\nSet-Cookie: a=1\nSet-Cookie: b=2\ncontent-length: 0\n\nrest",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: \t v \t\r\n\r\nab",
		"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: \xff\x7f\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		req, _ := http.NewRequest(method, "http://u/", nil)
		br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
		block, n, err := peekHeader(br)
		if err != nil {
			return
		}
		full, _ := br.Peek(n)
		got, tokens := parseHead(full, br, req, nil)
		if got == nil {
			return
		}
		br.Discard(n)
		wbr := bufio.NewReaderSize(strings.NewReader(raw), 4096)
		want, err := http.ReadResponse(wbr, req)
		if err != nil {
			t.Fatalf("parseHead accepted what ReadResponse rejects (%v): %q", err, raw)
		}
		if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
			got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor || got.ContentLength != want.ContentLength ||
			got.Close != want.Close || want.TransferEncoding != nil || want.Trailer != nil {
			t.Fatalf("%q:\nparseHead   %q %d %q %d.%d len=%d close=%v\nReadResponse %q %d %q %d.%d len=%d close=%v te=%v", raw,
				got.Status, got.StatusCode, got.Proto, got.ProtoMajor, got.ProtoMinor, got.ContentLength, got.Close,
				want.Status, want.StatusCode, want.Proto, want.ProtoMajor, want.ProtoMinor, want.ContentLength, want.Close, want.TransferEncoding)
		}
		if !reflect.DeepEqual(got.Header, want.Header) {
			t.Fatalf("%q: header\n%q\nReadResponse\n%q", raw, got.Header, want.Header)
		}
		gb, gerr := io.ReadAll(got.Body)
		wb, werr := io.ReadAll(want.Body)
		if string(gb) != string(wb) || (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: body %q (%v), ReadResponse %q (%v)", raw, gb, gerr, wb, werr)
		}
		grest, _ := io.ReadAll(br)
		wrest, _ := io.ReadAll(wbr)
		if string(grest) != string(wrest) {
			t.Fatalf("%q: next response starts at %q, ReadResponse %q", raw, grest, wrest)
		}
		if ct := connectionTokens(block); !reflect.DeepEqual(tokens, ct) && (len(tokens) != 0 || len(ct) != 0) {
			t.Fatalf("%q: Connection tokens %q, from the raw block %q", raw, tokens, ct)
		}
	})
}
