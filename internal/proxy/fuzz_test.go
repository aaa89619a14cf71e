package proxy

import (
	"bufio"
	"net/http"
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
		resp, tokens, err := readResponse(br, req)
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
