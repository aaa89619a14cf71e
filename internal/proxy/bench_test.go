package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// BenchmarkTransportKeepAlive measures one pooled keep-alive exchange of the upstream transport (request head
// out, response head and a 100-byte body in) against a minimal upstream that answers from a canned buffer.
// Compare allocs/op and ns/op between changes; the upstream's own cost is small and constant.
func BenchmarkTransportKeepAlive(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	reply := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Tue, 01 Dec 2026 06:00:00 GMT\r\nContent-Length: 100\r\n\r\n" + string(bytes.Repeat([]byte("x"), 100)))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// a request without a body ends at the first empty line
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	tr := &Transport{DialTimeout: time.Second, MaxIdle: 4, SendTimeout: time.Minute, ReadTimeout: time.Minute}
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/x", nil)
	req.URL.Opaque = "/x" // as the proxy sends it (setTargetURL)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
		resp.Body.Close()
	}
}

// BenchmarkParseHead is the upstream response head parser on a usual small head (what echoback and most
// application servers send for a small body).
func BenchmarkParseHead(b *testing.B) {
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Tue, 01 Dec 2026 06:00:00 GMT\r\nContent-Length: 100\r\n\r\n")
	req, _ := http.NewRequest("GET", "http://u/", nil)
	br := bufio.NewReader(bytes.NewReader(nil))
	var st respStore
	b.ReportAllocs()
	for b.Loop() {
		if resp, _ := parseHead(head, br, req, &st); resp == nil {
			b.Fatal("not parsed")
		}
	}
}
