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
	"sync/atomic"
	"syscall"
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

// rawApp is a FastCGI application written against the wire format alone: it answers each request on a
// connection with "ok" (keeping the connection), except that answer(n) false (n counting the requests of the
// connection from 1) reads the whole request and then closes the connection without an answer, as a worker
// that crashed or was killed mid-request does. It counts every request it read whole.
func rawApp(t *testing.T, answer func(n int) bool) (addr string, seen *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	seen = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for n := 1; ; n++ {
					// records until the empty STDIN that ends the request
					for {
						var h [8]byte
						if _, err := io.ReadFull(c, h[:]); err != nil {
							return
						}
						clen, pad := int(h[4])<<8|int(h[5]), int(h[6])
						if _, err := io.CopyN(io.Discard, c, int64(clen+pad)); err != nil {
							return
						}
						if h[1] == 5 && clen == 0 { // STDIN, empty
							break
						}
					}
					seen.Add(1)
					if !answer(n) {
						return
					}
					out := "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok"
					rec := func(typ byte, content string) []byte {
						return append([]byte{1, typ, 0, 1, byte(len(content) >> 8), byte(len(content)), 0, 0}, content...)
					}
					var b []byte
					b = append(b, rec(6, out)...)
					b = append(b, rec(6, "")...)
					b = append(b, rec(3, "\x00\x00\x00\x00\x00\x00\x00\x00")...)
					if _, err := c.Write(b); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), seen
}

// TestClientNeverResendsNonIdempotent: a POST never rides a kept connection (php-fpm may be closing it), and a
// POST whose worker then dies without an answer is not sent again, as nginx never repeats a non-idempotent
// request that may have reached the upstream; a GET on a kept connection that dies is sent again on a new one.
func TestClientNeverResendsNonIdempotent(t *testing.T) {
	secondDropped := func(n int) bool { return n == 1 } // each connection's second request dies in the worker
	allDropped := func(int) bool { return false }
	for _, tc := range []struct {
		name, method string
		unsafe       bool
		answer       func(n int) bool
		warm         bool // a GET first leaves a kept connection
		seen         int32
		ok           bool
	}{
		// the POST never rides the kept connection: a new one answers it
		{"POST after a kept connection", "POST", true, secondDropped, true, 2, true},
		// a POST whose worker dies is not sent again
		{"POST dropped", "POST", true, allDropped, false, 1, false},
		// a GET on the dropped kept connection is sent again on a new one
		{"GET", "GET", false, secondDropped, true, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, seen := rawApp(t, tc.answer)
			c := &Client{MaxIdle: 4, IdleTimeout: time.Minute}
			target := Target{Network: "tcp", Addr: addr, KeepConn: true, ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second, SendTimeout: 5 * time.Second}
			call := func(method string, unsafe bool) error {
				resp, err := c.Do(context.Background(), target, &Call{NonIdempotent: unsafe,
					Params: params("REQUEST_METHOD", method, "REQUEST_URI", "/x", "SCRIPT_NAME", "/x", "SERVER_PROTOCOL", "HTTP/1.1")})
				if err != nil {
					return err
				}
				io.ReadAll(resp.Body)
				resp.Body.Close()
				return nil
			}
			if tc.warm {
				if err := call("GET", false); err != nil {
					t.Fatal(err)
				}
			}
			err := call(tc.method, tc.unsafe)
			if (err == nil) != tc.ok {
				t.Fatalf("%s: err = %v, want success %v", tc.method, err, tc.ok)
			}
			if got := seen.Load(); got != tc.seen {
				t.Errorf("the application read %d requests, want %d", got, tc.seen)
			}
		})
	}
}

// TestClientIdleFollowsConcurrency: sequential POSTs, each on a connection of its own, leave one idle connection
// rather than one per POST (each would hold a php-fpm worker), while concurrent requests keep theirs.
func TestClientIdleFollowsConcurrency(t *testing.T) {
	release := make(chan struct{})
	addr := startApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-release
		}
		io.WriteString(w, "ok")
	}))
	c := &Client{MaxIdle: 32, IdleTimeout: time.Minute}
	target := Target{Network: "tcp", Addr: addr, KeepConn: true, ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second, SendTimeout: 5 * time.Second}
	call := func(method, uri string) {
		resp, err := c.Do(context.Background(), target, &Call{NonIdempotent: method == "POST",
			Params: params("REQUEST_METHOD", method, "REQUEST_URI", uri, "SCRIPT_NAME", uri, "SERVER_PROTOCOL", "HTTP/1.1")})
		if err != nil {
			t.Error(err)
			return
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	call("GET", "/")
	for range 10 {
		call("POST", "/")
	}
	if n := c.Idle(); n != 1 {
		t.Errorf("after a GET and 10 sequential POSTs: %d idle connections, want 1", n)
	}
	// four at once: each finishes while the others are in flight, and all four are kept
	done := make(chan struct{})
	for range 4 {
		go func() { call("GET", "/wait"); done <- struct{}{} }()
	}
	time.Sleep(200 * time.Millisecond) // all four reach the application
	close(release)
	for range 4 {
		<-done
	}
	if n := c.Idle(); n < 2 {
		t.Errorf("after four concurrent requests: %d idle connections, want several", n)
	}
}

// TestTargetDialer: fastcgi_socket_keepalive sets SO_KEEPALIVE on the connection to the application (off: not
// set, as nginx), and fastcgi_bind's address is the connection's source.
func TestTargetDialer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range []struct {
		keep  bool
		local string
	}{{false, ""}, {true, ""}, {false, "127.0.0.7"}} {
		tg := Target{Network: "tcp", Addr: l.Addr().String(), ConnectTimeout: time.Second, KeepAlive: tc.keep}
		if tc.local != "" {
			tg.Local = &net.TCPAddr{IP: net.ParseIP(tc.local)}
		}
		d := tg.dialer()
		c, err := d.Dial(tg.Network, tg.Addr)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := c.(*net.TCPConn).SyscallConn()
		var on int
		raw.Control(func(fd uintptr) { on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
		if (on != 0) != tc.keep {
			t.Errorf("KeepAlive %v: SO_KEEPALIVE is %d", tc.keep, on)
		}
		if h, _, _ := net.SplitHostPort(c.LocalAddr().String()); tc.local != "" && h != tc.local {
			t.Errorf("Local %s: connection from %s", tc.local, h)
		}
		c.Close()
	}
}
