package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkProxyKeepAlive measures the whole request path (accept loop, routing, variables, proxy, access log
// off) for a keep-alive client against a keep-alive upstream, over loopback. Compare allocs/op between changes.
func BenchmarkProxyKeepAlive(b *testing.B) {
	body := strings.Repeat("x", 100)
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go http.Serve(up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer up.Close()
	port := freePort(b)
	startServer(b, b.TempDir(), `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:`+itoa(port)+`;
        location / { proxy_pass http://`+up.Addr().String()+`; }
    }
}
`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	url := "http://127.0.0.1:" + itoa(port) + "/x"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkProxyKeepAliveServer is BenchmarkProxyKeepAlive with a raw client and a raw upstream that allocate
// nothing per request, so allocs/op and B/op are sluice's own (server, routing, variables, proxy transport);
// log=combined adds an access log line per request.
func BenchmarkProxyKeepAliveServer(b *testing.B) {
	b.Run("log=off", func(b *testing.B) { benchProxyServer(b, "off", "") })
	b.Run("log=combined", func(b *testing.B) { benchProxyServer(b, b.TempDir()+"/access.log", "") })
	b.Run("forwarded", func(b *testing.B) { benchProxyServer(b, "off", forwardedHeaders) })
}

// forwardedHeaders is the usual set of request headers a reverse proxy configuration adds.
const forwardedHeaders = `proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;`

func benchProxyServer(b *testing.B, accessLog, directives string) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Date: Tue, 01 Dec 2026 06:00:00 GMT\r\n\r\n" + strings.Repeat("x", 100))
	up := rawUpstream(b, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			if _, err := readHead(br); err != nil {
				return
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
	port := benchServer(b, `access_log `+accessLog+`;
        keepalive_requests 100000000;
        location / { proxy_pass http://`+up+`; `+directives+` }`)
	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 4096)
	body := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := roundTrip(c, br, req, body); err != nil {
			b.Fatal(err)
		}
	}
}

// benchServer starts sluice with one server whose body is server, returning its port.
func benchServer(b *testing.B, server string) int {
	port := freePort(b)
	startServer(b, b.TempDir(), `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:`+itoa(port)+`;
        `+server+`
    }
}
`)
	return port
}

// roundTrip writes a raw request on c and reads the response (head and Content-Length body, into body) from br,
// allocating nothing.
func roundTrip(c net.Conn, br *bufio.Reader, req, body []byte) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	n, err := readHead(br)
	if err != nil {
		return err
	}
	_, err = io.ReadFull(br, body[:n])
	return err
}

// rawClient connects to the server on port for a raw keep-alive client: the connection (closed when b ends),
// its reader and a body buffer for roundTrip.
func rawClient(b *testing.B, port int) (net.Conn, *bufio.Reader, []byte) {
	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c, bufio.NewReaderSize(c, 4096), make([]byte, 4096)
}

// readHead reads an HTTP message head without allocating and returns its Content-Length (0 when absent).
func readHead(br *bufio.Reader) (int, error) {
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			return n, nil
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
}

// BenchmarkReturnKeepAlive is a keep-alive client (raw, allocating nothing) against `return` locations: the
// request path without a content handler's costs (routing, a regex location with captures, normalisation).
func BenchmarkReturnKeepAlive(b *testing.B) {
	port := benchServer(b, `keepalive_requests 100000000;
        location / { return 200 "ok"; }
        location /api/ { return 200 "api"; }
        location ~ ^/img/(?<name>[a-z]+)\.(png|jpg)$ { add_header X-Name $name; return 200 "img $1 $name"; }
        location = /exact { return 200 "exact"; }
        location ^~ /static/ { return 200 "static"; }`)
	c, br, body := rawClient(b, port)
	for _, bc := range []struct{ name, path string }{{"prefix", "/x"}, {"regex", "/img/cat.png"}, {"normalised", "/a/b/../c/%7Euser/./d"}} {
		b.Run(bc.name, func(b *testing.B) {
			req := []byte("GET " + bc.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := roundTrip(c, br, req, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
