package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/sluice-proxy/sluice/internal/netutil"
)

// serve starts a Server with h on a loopback socket and returns its address.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	return serveWith(t, h, nil)
}

// serveWith is serve with lingering_* settings for refused heads (nil: the defaults).
func serveWith(t *testing.T, h http.HandlerFunc, linger *Linger) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, Limits: func(context.Context, net.Conn) Limits {
		return Limits{HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, MaxHeaderBytes: 8 << 10, Linger: linger}
	}, Refuse: func(_ context.Context, c net.Conn, r Refusal) {
		io.WriteString(c, "HTTP/1.1 "+strconv.Itoa(r.Status)+" "+http.StatusText(r.Status)+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// as under the framing guard, around the socket type the server uses: idle waits need no buffer
			go s.ServeConn(context.Background(), wrapped{netutil.NewSocket(c)}, nil)
		}
	}()
	t.Cleanup(func() { ln.Close(); s.Close() })
	return ln.Addr().String()
}

// wrapped stands for the framing guard around a socket.
type wrapped struct{ net.Conn }

func (w wrapped) Unwrap() net.Conn { return w.Conn }

func (w wrapped) CloseWrite() error { return w.Conn.(interface{ CloseWrite() error }).CloseWrite() }

// TestIdleKeepAlive: requests that arrive after the connection went idle (its read buffer released) are served,
// and so is one whose bytes came in before the wait began.
func TestIdleKeepAlive(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, path := range []string{"/a", "/b", "/c"} {
		if i == 2 {
			// the first request alone, then the second before the server can have finished the first
			io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
			time.Sleep(10 * time.Millisecond)
		}
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		wants := []string{path}
		if i == 2 {
			wants = []string{"/x", path}
		}
		for _, want := range wants {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", want, err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != want {
				t.Fatalf("got %q, want %q", b, want)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHeaderMapReuse: a kept-alive connection reuses its request header map, and no request sees another's
// fields, whichever parser read the request before it (the fast path, or net/http's for a chunked body).
func TestHeaderMapReuse(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		var names []string
		for k, v := range r.Header {
			names = append(names, k+"="+strings.Join(v, ","))
		}
		slices.Sort(names)
		io.WriteString(w, strings.Join(names, " "))
	})
	for _, tc := range keptAlive(t, addr, []string{
		"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\nX-B: 3\r\n\r\n", "X-A=1 X-B=2,3",
		"GET / HTTP/1.1\r\nHost: a\r\nX-C: 4\r\n\r\n", "X-C=4",
		"POST / HTTP/1.1\r\nHost: a\r\nX-D: 5\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", "X-D=5",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "",
		"GET / HTTP/1.1\r\nHost: a\r\nX-B: 6\r\n\r\n", "X-B=6",
	}) {
		if tc.got != tc.want {
			t.Errorf("%q: the handler saw %q, want %q", tc.req, tc.got, tc.want)
		}
	}
}

// TestResponseReuse: a kept-alive connection serves its next request with the last request's objects (the
// response and the *http.Request) only when nothing can still reach them: not after a request whose
// context was watched (here by a goroutine that outlives its handler and reads its request later), nor after
// one with a body. A reused request starts clean: its own fields, a live context.
func TestResponseReuse(t *testing.T) {
	type seen struct {
		req *http.Request
		err error
	}
	var mu sync.Mutex
	var got []seen
	late := make(chan string, 1)
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, seen{r, r.Context().Err()})
		mu.Unlock()
		if r.URL.Path == "/watch" {
			done := r.Context().Done()
			go func() {
				<-done
				time.Sleep(100 * time.Millisecond) // the next request is being served meanwhile
				late <- r.URL.Path + " " + r.Header.Get("X-N") + " " + fmt.Sprint(r.Context().Err())
			}()
		}
		io.WriteString(w, r.URL.Path+" "+r.Header.Get("X-N"))
	})
	var pairs []string
	for i, path := range []string{"/a", "/b", "/watch", "/c", "/post", "/d"} {
		n := fmt.Sprint(i)
		req := "GET " + path + " HTTP/1.1\r\nHost: a\r\nX-N: " + n + "\r\n\r\n"
		if path == "/post" {
			req = "POST " + path + " HTTP/1.1\r\nHost: a\r\nX-N: " + n + "\r\nContent-Length: 2\r\n\r\nok"
		}
		pairs = append(pairs, req, path+" "+n)
	}
	for _, tc := range keptAlive(t, addr, pairs) {
		if tc.got != tc.want {
			t.Errorf("%q: the handler saw %q, want %q", tc.req, tc.got, tc.want)
		}
	}
	if s := <-late; s != "/watch 2 context canceled" {
		t.Errorf("a goroutine holding the watched request read %q later, want %q", s, "/watch 2 context canceled")
	}
	mu.Lock()
	defer mu.Unlock()
	for i, s := range got {
		if s.err != nil {
			t.Errorf("request %d began with its context done: %v", i, s.err)
		}
	}
	// the request objects: reused after /a and /b (and /c), new after the watched one and after the body
	wantSame := []bool{true, true, false, true, false}
	for i, same := range wantSame {
		if (got[i].req == got[i+1].req) != same {
			t.Errorf("requests %d and %d share their *http.Request: %v, want %v", i, i+1, !same, same)
		}
	}
}

// TestIdleHoldsNothing: an idle kept-alive connection holds nothing of its last request. Once the response is
// out, the request's head (reached here through one of its header values) can be collected, though the
// connection keeps the request's objects for its next request.
func TestIdleHoldsNothing(t *testing.T) {
	held := make(chan weak.Pointer[byte], 1)
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		held <- weak.Make(unsafe.StringData(r.Header.Get("X-Big")))
		io.WriteString(w, "ok")
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("x", 3000)+"\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	head := <-held
	for i := 0; i < 50 && head.Value() != nil; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if head.Value() != nil {
		t.Error("an idle connection still holds its last request's head")
	}
}

// exchanged is one request keptAlive sent, the body it was answered with and the body wanted.
type exchanged struct{ req, got, want string }

// keptAlive sends each raw request of pairs (request, wanted body) on one connection, in turn, and returns
// the answers' bodies with them.
func keptAlive(t *testing.T, addr string, pairs []string) []exchanged {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var out []exchanged
	for i := 0; i+1 < len(pairs); i += 2 {
		io.WriteString(c, pairs[i])
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		out = append(out, exchanged{pairs[i], string(b), pairs[i+1]})
	}
	return out
}

// exchange sends raw on a new connection and reads everything until the server closes or 1 s passes.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c := send(t, addr, raw)
	c.SetReadDeadline(time.Now().Add(time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestFraming: what goes on the wire for each kind of response.
func TestFraming(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "hello")
		case "/big":
			w.Write([]byte(strings.Repeat("x", 3000)))
		case "/flush":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
		case "/204":
			w.WriteHeader(204)
		case "/body":
			b, _ := io.ReadAll(r.Body)
			io.WriteString(w, "got "+string(b))
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/te":
			w.Header().Set("Transfer-Encoding", "gzip") // sluice frames the body: never passed on
			io.WriteString(w, "hello")
		case "/date":
			w.Header().Set("Date", "Sun, 06 Nov 1994 08:49:37 GMT")
			io.WriteString(w, "hello")
		case "/untyped":
			w.Header()["Content-Type"] = nil // net/http's convention: no Content-Type, none sniffed
			io.WriteString(w, "<html>hello</html>")
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip") // an encoded body is not sniffed
			w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0})
		case "/keep":
			w.Header().Set("Connection", "keep-alive") // passed as set on a kept HTTP/1.1 connection
			io.WriteString(w, "kept")
		}
	})
	for _, tc := range []struct {
		name, raw string
		want      []string // in order
		not       []string
		once      []string // each exactly once
	}{
		{"small gets Content-Length", "GET /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n", "\r\n\r\nhello"}, []string{"chunked"}, nil},
		{"big is chunked", "GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"Transfer-Encoding: chunked\r\n", "\r\nbb8\r\n", "0\r\n\r\n"}, []string{"Content-Length"}, nil},
		{"flushed is chunked", "GET /flush HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"Transfer-Encoding: chunked\r\n", "1\r\na\r\n0\r\n\r\n"}, nil, nil},
		{"HTTP/1.0 closes and is not chunked", "GET /big HTTP/1.0\r\n\r\n", []string{"HTTP/1.1 200 OK\r\n", "Connection: close\r\n"}, []string{"chunked", "keep-alive"}, nil},
		{"HEAD has no body", "HEAD /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"Content-Length: 5\r\n"}, []string{"hello"}, nil},
		{"204 has no length", "GET /204 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 204 No Content\r\n"}, []string{"Content-Length", "chunked"}, nil},
		{"pipelined answers in order", "GET /small HTTP/1.1\r\nHost: a\r\n\r\nGET /close HTTP/1.1\r\nHost: a\r\n\r\n", []string{"hello", "Connection: close\r\n", "bye"}, nil, nil},
		{"Content-Length body", "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", []string{"got abc"}, nil, nil},
		{"chunked body with trailer", "POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", []string{"got abc"}, nil, nil},
		{"100-continue when the body is read", "POST /body HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", []string{"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK", "got hi"}, nil, nil},
		{"no 100-continue when the body is not read", "POST /small HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", []string{"HTTP/1.1 200 OK", "Connection: close\r\n"}, []string{"100 Continue"}, nil},
		{"unread body is drained for the next request", "POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /close HTTP/1.1\r\nHost: a\r\n\r\n", []string{"hello", "bye"}, nil, nil},
		{"two Host headers", "GET /small HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", []string{"HTTP/1.1 400 Bad Request"}, []string{"hello"}, nil},
		{"no Host in HTTP/1.1", "GET /small HTTP/1.1\r\n\r\n", []string{"HTTP/1.1 400 Bad Request"}, []string{"hello"}, nil},
		{"unknown transfer coding", "POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", []string{"HTTP/1.1 501 Not Implemented"}, nil, nil},
		{"handler's Transfer-Encoding dropped", "GET /te HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"Content-Length: 5\r\n", "\r\n\r\nhello"}, []string{"gzip", "chunked"}, nil},
		{"handler's Date kept, no second", "GET /date HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", "hello"}, []string{time.Now().UTC().Format(" 2006 ")}, nil}, // no Date of its own
		{"HTTP/1.0 keep-alive", "GET /small HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /close HTTP/1.0\r\n\r\n", []string{"Connection: keep-alive\r\n", "hello", "bye"}, nil, nil},
		{"type sniffed", "GET /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"Content-Type: text/plain; charset=utf-8\r\n", "\r\n\r\nhello"}, nil, []string{"Content-Type", "Connection: close\r\n"}},
		{"nil type not sniffed", "GET /untyped HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"<html>"}, []string{"Content-Type"}, nil},
		{"encoded body not sniffed", "GET /gzip HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"Content-Encoding: gzip\r\n"}, []string{"Content-Type"}, nil},
		{"handler's close once", "GET /close HTTP/1.1\r\nHost: a\r\n\r\n", []string{"Connection: close\r\n", "bye"}, nil, []string{"Connection"}},
		{"handler's Connection on a kept connection", "GET /keep HTTP/1.1\r\nHost: a\r\n\r\nGET /close HTTP/1.1\r\nHost: a\r\n\r\n", []string{"Connection: keep-alive\r\n", "kept", "Connection: close\r\n", "bye"}, nil, nil},
		{"HTTP/1.0 keep-alive once", "GET /keep HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", []string{"HTTP/1.1 200 OK\r\n", "kept"}, nil, []string{"Connection: keep-alive\r\n"}},
		{"HTTP/1.0 close says so", "GET /keep HTTP/1.0\r\n\r\n", []string{"HTTP/1.1 200 OK\r\n", "kept"}, []string{"keep-alive"}, []string{"Connection: close\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, addr, tc.raw)
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("%q not found (in order) in %q", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("%q found in %q", n, got)
				}
			}
			for _, o := range tc.once {
				if n := strings.Count(got, o); n != 1 {
					t.Errorf("%q found %d times in %q, want once", o, n, got)
				}
			}
		})
	}
}

// TestClientGone: a handler waiting on its context learns that the client closed the connection.
func TestClientGone(t *testing.T) {
	gone := make(chan error, 1)
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			gone <- r.Context().Err()
		case <-time.After(5 * time.Second):
			gone <- nil
		}
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if err := <-gone; err != context.Canceled {
		t.Fatalf("context error %v, want context.Canceled", err)
	}
}

// TestHijack: the hijacker gets the bytes the client sent beyond the request.
func TestHijack(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		b, _ := brw.Reader.Peek(brw.Reader.Buffered())
		io.WriteString(c, "early:"+string(b))
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\n\r\nhello")
	c.SetReadDeadline(time.Now().Add(time.Second))
	b, _ := io.ReadAll(bufio.NewReader(c))
	if string(b) != "early:hello" {
		t.Fatalf("got %q", b)
	}
}

// fileConn is a socket under the framing guard that reports what its ReadFrom was given.
type fileConn struct {
	net.Conn
	got chan io.Reader
}

func (c fileConn) Unwrap() net.Conn { return c.Conn }

func (c fileConn) ReadFrom(r io.Reader) (int64, error) {
	select {
	case c.got <- r:
	default:
	}
	return c.Conn.(*net.TCPConn).ReadFrom(r)
}

// TestReadFromFile: a file body sent through the response's ReadFrom (as the static handler does, in a
// LimitedReader) reaches the socket's ReadFrom as one LimitedReader around the *os.File, the shape the kernel's
// sendfile(2) is used for, and arrives whole.
func TestReadFromFile(t *testing.T) {
	const size = 1 << 20
	body := strings.Repeat("0123456789abcdef", size/16)
	path := t.TempDir() + "/f"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan io.Reader, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		io.Copy(w, &io.LimitedReader{R: f, N: size})
	}), Limits: func(context.Context, net.Conn) Limits {
		return Limits{HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, MaxHeaderBytes: 8 << 10}
	}}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			s.ServeConn(context.Background(), fileConn{c, got}, nil)
		}
	}()
	defer s.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /f HTTP/1.1\r\nHost: a\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != body {
		t.Fatalf("body: %d bytes, %v; want %d equal bytes", len(b), err, size)
	}
	select {
	case r := <-got:
		lr, ok := r.(*io.LimitedReader)
		if !ok {
			t.Fatalf("the socket's ReadFrom got %T, want *io.LimitedReader", r)
		}
		if _, ok := lr.R.(*os.File); !ok {
			t.Fatalf("the socket's ReadFrom got a LimitedReader around %T, want *os.File", lr.R)
		}
	default:
		t.Fatal("the body did not go through the socket's ReadFrom")
	}
}

// TestHeadLength: the request's context tells the head's length on the wire (for $request_length) when the
// fast parser read it, and 0 when net/http did.
func TestHeadLength(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h, ok := r.Context().(interface{ HeadLength() int })
		if !ok {
			io.WriteString(w, "none")
			return
		}
		io.WriteString(w, strconv.Itoa(h.HeadLength()))
	})
	plain := "GET /a?b=c HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("v", 300) + "\r\n\r\n"
	short := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range keptAlive(t, addr, []string{
		plain, strconv.Itoa(len(plain)),
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", "0",
		short, strconv.Itoa(len(short)),
	}) {
		if tc.got != tc.want {
			t.Errorf("%.20q: head length %s, want %s", tc.req, tc.got, tc.want)
		}
	}
}

// TestResponseHeadSizes: heads that fit the writer's free space and heads that do not (one long value, many
// fields, after a pipelined response filled part of the buffer) arrive whole, with their interim 103 fields.
func TestResponseHeadSizes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields int
		size   int
	}{{"small", 2, 10}, {"long value", 1, 9000}, {"many fields", 40, 200}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/hint" {
					w.Header().Set("Link", "</a.css>; rel=preload")
					w.WriteHeader(http.StatusEarlyHints)
				}
				for i := range tc.fields {
					w.Header().Set(fmt.Sprintf("X-F%d", i), strings.Repeat(strconv.Itoa(i%10), tc.size))
				}
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, "body")
			})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /hint HTTP/1.1\r\nHost: a\r\n\r\n")
			br := bufio.NewReader(c)
			for _, path := range []string{"/a", "/hint"} {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if path == "/hint" {
					if resp.StatusCode != http.StatusEarlyHints || resp.Header.Get("Link") != "</a.css>; rel=preload" {
						t.Fatalf("interim: %d %q", resp.StatusCode, resp.Header)
					}
					if resp, err = http.ReadResponse(br, nil); err != nil {
						t.Fatal(err)
					}
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusCreated || string(body) != "body" || resp.Header.Get("Date") == "" {
					t.Fatalf("%s: %d %q %q", path, resp.StatusCode, body, resp.Header.Get("Date"))
				}
				for i := range tc.fields {
					if got, want := resp.Header.Get(fmt.Sprintf("X-F%d", i)), strings.Repeat(strconv.Itoa(i%10), tc.size); got != want {
						t.Fatalf("%s: X-F%d is %d bytes, want %d", path, i, len(got), len(want))
					}
				}
			}
		})
	}
}

// TestLinger: how a connection closes after its response, by the settings the handler chose (SetLinger): off
// closes at once, always lingers, on lingers when more bytes than the request are here; a body left unread is
// read and dropped (nginx discards it) whatever the mode; lingering_time bounds the whole linger and
// lingering_timeout each wait. A refused head follows the server's settings (Limits.Linger).
func TestLinger(t *testing.T) {
	modes := map[string]LingerMode{"/on": LingerOn, "/off": LingerOff, "/always": LingerAlways}
	h := func(w http.ResponseWriter, r *http.Request) {
		l := &Linger{Mode: modes[r.URL.Path], Time: 2 * time.Second, Timeout: time.Second}
		if r.URL.Query().Has("short") {
			l.Timeout = 200 * time.Millisecond
		}
		w.(interface{ SetLinger(*Linger) }).SetLinger(l)
		w.Header().Set("Connection", "close")
		io.WriteString(w, "ok")
	}
	on := serveWith(t, h, &Linger{Mode: LingerOn, Time: 2 * time.Second, Timeout: time.Second})
	off := serveWith(t, h, &Linger{Mode: LingerOff, Time: time.Minute, Timeout: time.Minute})
	const get = " HTTP/1.1\r\nHost: a\r\n\r\n"
	post := func(path string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc"
	}
	for _, tc := range []struct {
		name, addr, raw string
		pause           time.Duration
		lingers         bool
	}{
		{"on", on, "GET /on" + get, 0, false},
		{"on, pipelined", on, "GET /on" + get + "GET /on" + get, 0, true},
		{"off, pipelined", on, "GET /off" + get + "GET /on" + get, 0, false},
		{"always", on, "GET /always" + get, 0, true},
		{"off, unread body", on, post("/off"), 0, true},
		{"on, unread body, a pause past lingering_timeout", on, post("/on?short"), 600 * time.Millisecond, false},
		{"refused head with more, on", on, "GET /a%zz" + get, 0, true},
		{"refused head alone, on", on, "GET / HTTP/1.1\r\n\r\n", 0, false},
		{"refused head with more, off", off, "GET /a%zz" + get, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kept := lingerProbe(t, tc.addr, tc.raw, tc.pause, 5*time.Second)
			if lingered := kept >= time.Second; lingered != tc.lingers {
				t.Errorf("the server read on for %v, want lingering %v", kept, tc.lingers)
			}
			if kept >= 5*time.Second {
				t.Errorf("the server read on for %v, past lingering_time (2s)", kept)
			}
		})
	}
}

// lingerProbe sends raw and reads the response, then after pause sends a few bytes every 20 ms until a write
// fails (the server closed the socket, which resets what comes after) or for limit, and returns how long the
// server took them.
func lingerProbe(t *testing.T, addr, raw string, pause, limit time.Duration) time.Duration {
	t.Helper()
	c := send(t, addr, raw)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	start := time.Now()
	time.Sleep(pause)
	for time.Since(start) < limit {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(c, "xxxxxxxx"); err != nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return limit
}

// send dials addr and sends raw; the connection closes when the test ends.
func send(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, raw)
	return c
}

// TestComplete: Complete ends the response before the handler returns and reports the bytes written for it,
// exactly what the client reads (nginx's $bytes_sent): head and body, chunked framing, a 100 Continue, a
// file sent by ReadFrom; the handler returning afterwards adds nothing.
func TestComplete(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, make([]byte, 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	sent := make(chan int64, 1)
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "hello")
		case "/chunked":
			for range 3 {
				w.Write(make([]byte, 3000))
				w.(http.Flusher).Flush()
			}
		case "/continue":
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "read")
		case "/file":
			f, _ := os.Open(file)
			defer f.Close()
			w.Header().Set("Content-Length", strconv.Itoa(100<<10))
			w.Header().Set("Content-Type", "application/octet-stream")
			w.(io.ReaderFrom).ReadFrom(io.LimitReader(f, 100<<10))
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		}
		sent <- w.(interface{ Complete() int64 }).Complete()
	})
	for _, tc := range []struct{ name, raw string }{
		{"small", "GET /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
		{"HEAD", "HEAD /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
		{"chunked", "GET /chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
		{"HTTP/1.0", "GET /chunked HTTP/1.0\r\n\r\n"},
		{"100 Continue", "POST /continue HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"},
		{"file", "GET /file HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
		{"204", "GET /none HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, addr, tc.raw)
			if n := <-sent; n != int64(len(got)) {
				t.Errorf("Complete reported %d bytes, the client read %d: %.200q", n, len(got), got)
			}
		})
	}
}
