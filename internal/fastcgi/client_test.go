package fastcgi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"strconv"
	"testing"
	"time"
)

// startApp runs Go's own FastCGI responder (net/http/fcgi) on a loopback socket: a real peer speaking the
// protocol, independent of our client code.
func startApp(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go fcgi.Serve(ln, h)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func params(kv ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = appendParam(b, kv[i], kv[i+1])
	}
	return b
}

func TestClientAgainstGoResponder(t *testing.T) {
	addr := startApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			sum := sha256.New()
			n, _ := io.Copy(sum, r.Body)
			w.Header().Set("X-Len", itoa(n))
			w.Write([]byte(hex.EncodeToString(sum.Sum(nil))))
		case "/big":
			w.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<16)) // 1 MiB
		case "/missing":
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusNotFound)
		case "/redirect":
			w.Header().Set("Location", "/elsewhere") // net/http/fcgi always sends Status, so this is 200 + Location
		}
	}))
	c := &Client{MaxIdle: 4, IdleTimeout: time.Minute}
	target := Target{Network: "tcp", Addr: addr, KeepConn: true, ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second, SendTimeout: 5 * time.Second}
	do := func(uri string, body []byte) (*Response, []byte) {
		t.Helper()
		call := &Call{Params: params("REQUEST_METHOD", "POST", "REQUEST_URI", uri, "SCRIPT_NAME", uri, "SERVER_PROTOCOL", "HTTP/1.1", "CONTENT_LENGTH", itoa(int64(len(body))))}
		if body != nil {
			call.Body, call.ContentLength = bytes.NewReader(body), int64(len(body))
		}
		resp, err := c.Do(context.Background(), target, call)
		if err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s body: %v", uri, err)
		}
		return resp, b
	}

	payload := bytes.Repeat([]byte("sluice"), 50000) // 300 kB: several STDIN records
	sum := sha256.Sum256(payload)
	resp, b := do("/echo", payload)
	if string(b) != hex.EncodeToString(sum[:]) || resp.Header.Get("X-Len") != "300000" {
		t.Fatalf("echo: %q len %s", b, resp.Header.Get("X-Len"))
	}
	if resp.Reused {
		t.Error("first request reported a reused connection")
	}
	if c.Idle() != 1 {
		t.Fatalf("after a complete response %d idle connections, want 1", c.Idle())
	}
	resp, b = do("/big", nil)
	if len(b) != 1<<20 || !resp.Reused {
		t.Fatalf("big: %d bytes, reused %v", len(b), resp.Reused)
	}
	resp, _ = do("/missing", nil)
	if resp.Status != 404 || resp.Header.Get("Status") != "" {
		t.Errorf("status %d, Status header %q", resp.Status, resp.Header.Get("Status"))
	}

	// a body closed before its end must not put the connection back
	call := &Call{Params: params("REQUEST_METHOD", "GET", "REQUEST_URI", "/big", "SCRIPT_NAME", "/big", "SERVER_PROTOCOL", "HTTP/1.1")}
	r2, err := c.Do(context.Background(), target, call)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r2.Body.Read(make([]byte, 10)); n != 10 {
		t.Fatalf("read %d bytes of /big", n)
	}
	r2.Body.Close()
	if c.Idle() != 0 {
		t.Errorf("an abandoned response left %d idle connections", c.Idle())
	}
}

func TestClientErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c := &Client{}
	_, err := c.Do(context.Background(), Target{Network: "tcp", Addr: addr, ConnectTimeout: time.Second}, &Call{})
	if fe, ok := err.(*Error); !ok || fe.Op != "connect" {
		t.Fatalf("refused connection: %v", err)
	}

	// an application that accepts and never answers: read timeout
	ln, _ = net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, conn)
		}
	}()
	_, err = c.Do(context.Background(), Target{Network: "tcp", Addr: ln.Addr().String(), ConnectTimeout: time.Second, ReadTimeout: 200 * time.Millisecond}, &Call{})
	if fe, ok := err.(*Error); !ok || !fe.Timeout || fe.Op != "read header" {
		t.Fatalf("silent application: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
