package proxy

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/tunnel"
)

// closeAfter, at the end of a reply, makes rawUpstream close the connection right after writing it.
const closeAfter = "\x00close"

// rawUpstream accepts connections and answers each request on them with reply(n), n counting requests per
// connection; it reports how many connections it accepted.
func rawUpstream(t *testing.T, reply func(n int) string) (addr string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 1; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					r := reply(n)
					if r == "" {
						return
					}
					if body, ok := strings.CutSuffix(r, closeAfter); ok {
						io.WriteString(c, body)
						return
					}
					io.WriteString(c, r)
				}
			}()
		}
	}()
	return ln.Addr().String(), conns
}

func get(t *testing.T, tr *Transport, addr string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.URL.Opaque = "/" // as the proxy sends it (setTargetURL): writeHead writes the request
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestTransportReusesConnections(t *testing.T) {
	addr, conns := rawUpstream(t, func(int) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" })
	tr := &Transport{DialTimeout: time.Second, MaxIdle: 4}
	for i := 0; i < 5; i++ {
		resp := get(t, tr, addr)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("body %q", b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential requests used %d connections, want 1", n)
	}
}

func TestTransportConnectionCloseTokens(t *testing.T) {
	addr, _ := rawUpstream(t, func(int) string {
		return "HTTP/1.1 200 OK\r\nConnection: close, X-Foo\r\nX-Foo: secret\r\nX-Kept: yes\r\nContent-Length: 0\r\n\r\n"
	})
	tr := &Transport{DialTimeout: time.Second}
	resp := get(t, tr, addr)
	resp.Body.Close()
	if resp.Header.Get("X-Foo") != "" || resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("headers %v: X-Foo named by Connection must go, X-Kept must stay", resp.Header)
	}
}

func TestTransportRetriesStaleConnection(t *testing.T) {
	// the upstream closes every connection after its first response, as a server with a short keep-alive does
	addr, conns := rawUpstream(t, func(n int) string {
		if n > 1 {
			return ""
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	tr := &Transport{DialTimeout: time.Second, MaxIdle: 4}
	for i := 0; i < 3; i++ {
		resp := get(t, tr, addr)
		io.ReadAll(resp.Body)
		resp.Body.Close()
		time.Sleep(20 * time.Millisecond) // let the upstream's close arrive
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("connections = %d, want 3 (a closed idle connection is not reused)", n)
	}
}

func TestTransportHeaderTooBig(t *testing.T) {
	addr, _ := rawUpstream(t, func(int) string {
		return "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n"
	})
	tr := &Transport{DialTimeout: time.Second}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	if _, err := tr.RoundTrip(req); err != errHeaderTooBig {
		t.Fatalf("err = %v, want %v", err, errHeaderTooBig)
	}
}

// An upstream that writes bytes after a complete response (a HEAD answered with a body) must not have them
// read as the next request's response: the connection is dropped, not reused.
func TestTransportDropsConnectionWithUnsolicitedBytes(t *testing.T) {
	var total atomic.Int32
	addr, conns := rawUpstream(t, func(int) string {
		if total.Add(1) == 1 {
			return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npwned!"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	tr := &Transport{DialTimeout: time.Second, MaxIdle: 4}
	resp := get(t, tr, addr)
	io.ReadAll(resp.Body)
	resp.Body.Close()
	time.Sleep(50 * time.Millisecond)
	resp = get(t, tr, addr)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("second client got %q, want %q", b, "ok")
	}
	if conns.Load() != 2 {
		t.Errorf("connections = %d, want 2", conns.Load())
	}
}

// A POST is never sent twice: on a pooled connection the upstream closed, it goes out on a fresh one.
func TestTransportPostAfterIdleClose(t *testing.T) {
	var posts atomic.Int32
	addr, _ := rawUpstream(t, func(n int) string {
		posts.Add(1)
		// a short server-side keep-alive: the connection is closed right after the response
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + closeAfter
	})
	tr := &Transport{DialTimeout: time.Second, MaxIdle: 4}
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("POST", "http://"+addr+"/charge", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		time.Sleep(50 * time.Millisecond)
	}
	if posts.Load() != 2 {
		t.Errorf("upstream served %d POSTs, want 2", posts.Load())
	}
}

func TestTransportRefuses101WithoutUpgrade(t *testing.T) {
	addr, _ := rawUpstream(t, func(int) string {
		return "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
	})
	tr := &Transport{DialTimeout: time.Second}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("a 101 to a plain request was accepted")
	}
}

// A response with both Content-Length and Transfer-Encoding (in any case and order) is refused, whatever its
// status; one with either alone is read.
func TestTransportRefusesLengthAndChunked(t *testing.T) {
	for _, tc := range []struct {
		head string
		ok   bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n", false},
		{"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nContent-Length: 5\n\n", false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Transfer-Encoding: chunked\r\n\r\n", true},
	} {
		body := "5\r\nhello\r\n0\r\n\r\n"
		if strings.Contains(tc.head, "X-Transfer") {
			body = "hello"
		}
		addr, _ := rawUpstream(t, func(int) string { return tc.head + body })
		tr := &Transport{DialTimeout: time.Second}
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !tc.ok {
				t.Errorf("%q: read %q, want an error", tc.head, b)
			} else if string(b) != "hello" {
				t.Errorf("%q: body %q, want hello", tc.head, b)
			}
			continue
		}
		if tc.ok || err != errLengthAndChunked {
			t.Errorf("%q: %v", tc.head, err)
		}
	}
}

func TestTargetURLNeverAbsoluteForm(t *testing.T) {
	for _, uri := range []string{"//evil.com/admin", "//evil.com/a?b=c", "/ok/path?x"} {
		var u url.URL
		setTargetURL(&u, &target{scheme: "http", host: "127.0.0.1:1", uri: uri})
		if got := u.RequestURI(); got != uri {
			t.Errorf("request line target for %q = %q", uri, got)
		}
	}
}

// proxy_send_timeout: an upstream that stops reading a request body fails the exchange instead of holding it.
func TestTransportSendTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(5 * time.Second) // never reads
		}
	}()
	tr := &Transport{DialTimeout: time.Second, SendTimeout: 200 * time.Millisecond}
	body := strings.NewReader(strings.Repeat("x", 64<<20))
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/", io.NopCloser(body))
	req.ContentLength = 64 << 20
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a stalled upload succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("failed after %v; proxy_send_timeout was 200ms", d)
	}
}

// keepalive N bounds idle connections over all peers of a group; the least recently used goes first.
func TestTransportIdleLimitIsPerGroup(t *testing.T) {
	tr := &Transport{MaxIdle: 2}
	mk := func(addr string) *pconn {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c1.Close(); c2.Close() })
		return &pconn{conn: c1, br: bufio.NewReader(c1), addr: addr}
	}
	a1, a2, b1 := mk("a"), mk("a"), mk("b")
	tr.put(a1)
	time.Sleep(time.Millisecond)
	tr.put(a2)
	time.Sleep(time.Millisecond)
	tr.put(b1)
	if tr.nidle != 2 || len(tr.idle["a"].conns) != 1 || tr.idle["a"].conns[0] != a2 || len(tr.idle["b"].conns) != 1 {
		t.Fatalf("idle %d: a=%d b=%d; want the oldest (a1) evicted", tr.nidle, len(tr.idle["a"].conns), len(tr.idle["b"].conns))
	}
	if _, err := a1.conn.Write([]byte("x")); err == nil {
		t.Error("the evicted connection is still open")
	}
	tr.CloseIdle()
	if tr.nidle != 0 {
		t.Fatalf("after CloseIdle: %d", tr.nidle)
	}
	// a connection in use during CloseIdle (a reload) goes back to a list the pool still has, not the one
	// CloseIdle dropped
	c := mk("c")
	tr.put(c)
	if got, _ := tr.get("c", 0, true); got != c {
		t.Fatal("get did not return the connection put")
	}
	tr.CloseIdle()
	tr.put(c)
	if got, _ := tr.get("c", 0, true); got != c {
		t.Fatal("a connection put back after CloseIdle is lost to the pool")
	}
}

// proxy_read_timeout is a deadline on the connection: a silent upstream fails the exchange with a read timeout,
// and a pooled connection idle for longer than the timeout is still reused (its old deadline is re-armed
// before the liveness probe).
func TestTransportReadTimeout(t *testing.T) {
	addr, conns := rawUpstream(t, func(n int) string {
		if n == 3 {
			time.Sleep(300 * time.Millisecond)
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	tr := &Transport{DialTimeout: time.Second, MaxIdle: 4, ReadTimeout: 100 * time.Millisecond}
	for i := 0; i < 2; i++ {
		resp := get(t, tr, addr)
		io.ReadAll(resp.Body)
		resp.Body.Close()
		time.Sleep(150 * time.Millisecond) // longer than the read timeout: the deadline armed last has passed
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("connections = %d, want 1 (the idle one reused)", n)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	_, err := tr.RoundTrip(req)
	if !readTimedOut(err) {
		t.Fatalf("silent upstream: err = %v, want a read timeout", err)
	}
}

// Exchanges on one kept-alive connection whose answers come at once or late, small or larger than the read
// buffer, all read whole (the request head is written from inside the first read of the answer).
func TestTransportMixedAnswersOnOneConnection(t *testing.T) {
	sizes := []int{0, 1, 100, 16 << 10, 16<<10 - 40, 40000, 5, 70000, 2}
	addr, conns := rawUpstream(t, func(n int) string {
		size := sizes[(n-1)%len(sizes)]
		if n%3 == 0 {
			time.Sleep(2 * time.Millisecond) // the read waits for the answer
		}
		interim := ""
		if n%4 == 0 {
			interim = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
		}
		return interim + "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n" + strings.Repeat("b", size)
	})
	tr := &Transport{DialTimeout: time.Second, MaxIdle: 4, ReadTimeout: 5 * time.Second, SendTimeout: 5 * time.Second}
	for i := range 3 * len(sizes) {
		resp := get(t, tr, addr)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := sizes[i%len(sizes)]; err != nil || len(b) != want {
			t.Fatalf("exchange %d: %d bytes (%v), want %d", i+1, len(b), err, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// A request head larger than the socket buffers, to an upstream slow to read it, is written whole: what
// does not go out at once goes out under proxy_send_timeout.
func TestTransportHugeHead(t *testing.T) {
	addr, _ := rawUpstream(t, func(n int) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a proxy in front of the upstream that starts reading late
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		time.Sleep(300 * time.Millisecond)
		u, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer u.Close()
		go io.Copy(u, c)
		io.Copy(c, u)
	}()
	tr := &Transport{DialTimeout: time.Second, MaxIdle: 4, ReadTimeout: 20 * time.Second, SendTimeout: 20 * time.Second}
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
	req.URL.Opaque = "/"
	big := strings.Repeat("v", 8<<20)
	req.Header.Set("X-Big", big)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
}

// A read whose deadline passes before it can begin (here a read timeout of 1 ns; under load, a goroutine not
// scheduled in time) fails as a read timeout, having written nothing, and the transport goes on working.
func TestTransportDeadlineBeforeHeadWritten(t *testing.T) {
	var served atomic.Int32
	addr, _ := rawUpstream(t, func(n int) string {
		served.Add(1)
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	tr := &Transport{DialTimeout: time.Second, MaxIdle: 4, ReadTimeout: time.Nanosecond}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.URL.Opaque = "/"
	for range 3 {
		if _, err := tr.RoundTrip(req); !readTimedOut(err) {
			t.Fatalf("err = %v, want a read timeout", err)
		}
	}
	tr.ReadTimeout = time.Second
	resp := get(t, tr, addr)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	if n := served.Load(); n != 1 {
		t.Errorf("upstream served %d requests, want 1 (the timed-out ones were never written)", n)
	}
}

// A GET on a pooled connection the upstream closed a moment ago (too soon for the liveness probe to be
// asked) still succeeds: it goes out again on a fresh connection, once.
func TestTransportGetRightAfterUpstreamClose(t *testing.T) {
	var served atomic.Int32
	addr, conns := rawUpstream(t, func(n int) string {
		served.Add(1)
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + closeAfter
	})
	tr := &Transport{DialTimeout: time.Second, MaxIdle: 4}
	for i := 0; i < 20; i++ {
		resp := get(t, tr, addr)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "ok" {
			t.Fatalf("GET %d: %q, %v", i, b, err)
		}
	}
	if n := served.Load(); n != 20 {
		t.Errorf("upstream served %d requests for 20 GETs", n)
	}
	t.Logf("%d connections for 20 GETs", conns.Load())
}

// TestBlankLine: blankLine finds what searching for "\r\n\r\n" and "\n\n" and taking the earlier finds, over
// every string of up to eight bytes from CR, LF and one other byte.
func TestBlankLine(t *testing.T) {
	ref := func(buf []byte) (int, int) {
		end, sep := bytes.Index(buf, []byte("\r\n\r\n")), 4
		if i := bytes.Index(buf, []byte("\n\n")); i >= 0 && (end < 0 || i < end) {
			end, sep = i, 2
		}
		if end < 0 {
			return -1, 0
		}
		return end, end + sep
	}
	var walk func(b []byte)
	walk = func(b []byte) {
		e, n := blankLine(b)
		if we, wn := ref(b); e != we || n != wn {
			t.Fatalf("blankLine(%q) = %d, %d; want %d, %d", b, e, n, we, wn)
		}
		if len(b) < 10 { // (eight bytes and more: blankLine's search takes them a word at a time)
			for _, c := range []byte("\r\nx") {
				walk(append(b[:len(b):len(b)], c))
			}
		}
	}
	walk(nil)
}

// TestWriteBuffered: a response body the connection's reader holds whole is written from there, byte for byte,
// and the connection goes back to the pool (the next exchange reuses it); a larger one is left to reading.
func TestWriteBuffered(t *testing.T) {
	small := strings.Repeat("s", 100)
	large := strings.Repeat("L", 64<<10) // more than the reader's buffer
	addr, conns := rawUpstream(t, func(n int) string {
		body := small
		if n == 3 {
			body = large
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	})
	tr := &Transport{MaxIdle: 4}
	for i, want := range []string{small, small, large} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b := resp.Body.(*body)
		var got bytes.Buffer
		n, done, err := b.writeBuffered(&got)
		if want == large {
			if done || n != 0 || got.Len() != 0 {
				t.Fatalf("a body larger than the buffer was written from it (%d bytes)", n)
			}
			rest, _ := io.ReadAll(resp.Body)
			if string(rest) != large {
				t.Fatalf("the large body read %d bytes", len(rest))
			}
		} else if !done || err != nil || n != len(want) || got.String() != want {
			t.Fatalf("exchange %d: done %v, %d bytes, %v", i+1, done, n, err)
		}
		resp.Body.Close()
	}
	if c := conns.Load(); c != 1 {
		t.Fatalf("%d connections for three exchanges: a body written from the buffer did not release its connection", c)
	}
}

// heldUpstream answers every request with "ok", holding the ones hold picks until release is closed; it counts
// the requests that arrived and the connections it accepted.
func heldUpstream(t *testing.T, hold func(n int32) bool, release <-chan struct{}) (addr string, arrived, conns *atomic.Int32) {
	arrived = new(atomic.Int32)
	addr, conns = rawUpstream(t, func(int) string {
		if hold(arrived.Add(1)) {
			<-release
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	return addr, arrived, conns
}

// getAsync runs get in a goroutine; the channel gets the body.
func getAsync(t *testing.T, tr *Transport, addr string) <-chan string {
	done := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.URL.Opaque = "/"
		resp, err := tr.RoundTrip(req)
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	return done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (t *Transport) waiting(addr string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.idle[addr]; l != nil {
		return len(l.waiters)
	}
	return 0
}

// churningPool returns a transport with keepalive 1 that has just closed a connection for want of room (two
// requests at once), to an upstream that holds the third request's answer until release is closed.
func churningPool(t *testing.T, wait time.Duration) (tr *Transport, addr string, arrived, conns *atomic.Int32, release chan struct{}) {
	t.Helper()
	both, release := make(chan struct{}), make(chan struct{})
	addr, arrived, conns = heldUpstream(t, func(n int32) bool {
		if n <= 2 {
			<-both
			return false
		}
		return n == 3
	}, release)
	tr = &Transport{DialTimeout: time.Second, MaxIdle: 1, HandoffWait: wait}
	a, b := getAsync(t, tr, addr), getAsync(t, tr, addr)
	waitFor(t, "two requests at the upstream", func() bool { return arrived.Load() == 2 })
	close(both)
	if x, y := <-a, <-b; x != "ok" || y != "ok" {
		t.Fatalf("bodies %q, %q", x, y)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after two requests at once, want 2", n)
	}
	return tr, addr, arrived, conns, release
}

// A pool that closed a connection for want of room (keepalive 1, two requests at once) churns: a request
// that then finds no idle connection waits for the one an exchange puts back instead of dialling; a pool that
// does not churn dials at once; a wait that runs out dials.
func TestTransportHandsOverWhileChurning(t *testing.T) {
	t.Run("handed over", func(t *testing.T) {
		tr, addr, arrived, conns, release := churningPool(t, 10*time.Second)
		held := getAsync(t, tr, addr) // takes the one idle connection; the upstream holds its answer
		waitFor(t, "the held request at the upstream", func() bool { return arrived.Load() == 3 })
		waiter := getAsync(t, tr, addr)
		waitFor(t, "a request waiting for a connection", func() bool { return tr.waiting(addr) == 1 })
		close(release)
		if x, y := <-held, <-waiter; x != "ok" || y != "ok" {
			t.Fatalf("bodies %q, %q", x, y)
		}
		if n := conns.Load(); n != 2 {
			t.Errorf("%d connections, want 2: the waiting request was to ride the held one's", n)
		}
	})
	t.Run("no churn, no wait", func(t *testing.T) {
		release := make(chan struct{})
		addr, arrived, conns := heldUpstream(t, func(n int32) bool { return n == 1 }, release)
		tr := &Transport{DialTimeout: time.Second, MaxIdle: 1, HandoffWait: 10 * time.Second}
		held := getAsync(t, tr, addr)
		waitFor(t, "the held request at the upstream", func() bool { return arrived.Load() == 1 })
		select {
		case body := <-getAsync(t, tr, addr):
			if body != "ok" || conns.Load() != 2 {
				t.Errorf("body %q over %d connections, want ok over 2", body, conns.Load())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a request waited for a busy connection in a pool that does not churn")
		}
		close(release)
		if body := <-held; body != "ok" {
			t.Errorf("held request's body %q", body)
		}
	})
	t.Run("wait runs out", func(t *testing.T) {
		tr, addr, arrived, conns, release := churningPool(t, 20*time.Millisecond)
		defer close(release)
		getAsync(t, tr, addr)
		waitFor(t, "the held request at the upstream", func() bool { return arrived.Load() == 3 })
		start := time.Now()
		select {
		case body := <-getAsync(t, tr, addr):
			if body != "ok" || conns.Load() != 3 || time.Since(start) < 20*time.Millisecond {
				t.Errorf("body %q over %d connections after %v, want ok over 3 after the 20ms wait", body, conns.Load(), time.Since(start))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the wait for a connection did not run out")
		}
		if n := tr.waiting(addr); n != 0 {
			t.Errorf("%d waiters left listed", n)
		}
	})
}

// TestTransportSocketOptions: proxy_socket_keepalive sets SO_KEEPALIVE on the socket to the upstream (read back
// with getsockopt(2) on the real connection; off leaves it unset, as nginx), and proxy_bind makes the
// connection from its address (the upstream sees it).
func TestTransportSocketOptions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	remotes := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			remotes <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	for _, tc := range []struct {
		keepAlive bool
		local     *net.TCPAddr
		wantKA    int
		wantFrom  string
	}{
		{false, nil, 0, "127.0.0.1"},
		{true, nil, 1, "127.0.0.1"},
		{true, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, 1, "127.0.0.2"},
	} {
		tr := &Transport{DialTimeout: time.Second, KeepAlive: tc.keepAlive, LocalAddr: tc.local}
		pc, err := tr.dial(t.Context(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := pc.conn.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		ka, serr := -1, error(nil)
		raw.Control(func(fd uintptr) { ka, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE) })
		pc.conn.Close()
		if serr != nil {
			t.Fatal(serr)
		}
		if ka != tc.wantKA {
			t.Errorf("KeepAlive %v: SO_KEEPALIVE = %d, want %d", tc.keepAlive, ka, tc.wantKA)
		}
		if from := <-remotes; from != tc.wantFrom {
			t.Errorf("LocalAddr %v: the upstream saw %s, want %s", tc.local, from, tc.wantFrom)
		}
	}
}

// TestPoolsBounded: pools whose keys requests make (proxy_pass with variables: no kept route) never number
// more than maxPools, and starting them over leaves the configuration's own pools alone.
func TestPoolsBounded(t *testing.T) {
	p := New(tunnel.NewTracker(), slog.New(slog.DiscardHandler))
	fixed := &config.LocConf{}
	own, err := p.transport(&Request{Conf: fixed}, &target{scheme: "http", rt: &resolved{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * maxPools {
		conf := &config.LocConf{}
		conf.ProxySendTimeout.V, conf.ProxySendTimeout.Set = time.Duration(i+1)*time.Millisecond, true
		if _, err := p.transport(&Request{Conf: conf}, &target{scheme: "http"}); err != nil {
			t.Fatal(err)
		}
		if len(p.varPools) > maxPools {
			t.Fatalf("%d pools after %d keys", len(p.varPools), i+1)
		}
	}
	if again, _ := p.transport(&Request{Conf: fixed}, &target{scheme: "http", rt: &resolved{}}); again != own {
		t.Error("the configuration's own pool was dropped")
	}
}
