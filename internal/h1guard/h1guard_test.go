package h1guard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

// scanCases are client byte streams with the status of the refusal they earn (0: none). Each ends at a request
// boundary, so the scanner must be ready for (and check) a following head.
var scanCases = []struct {
	name   string
	in     string
	status int
}{
	{"simple", get, 0},
	{"pipelined", get + get + get, 0},
	{"empty line before the request line", "\r\n" + get, 0},
	{"Content-Length body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\nx\ny\r \x00" + get, 0},
	{"chunked with extensions and trailer", "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n" +
		"5;name=val\r\nhe\nlo\r\n1a ; x=\"y\"\r\n" + strings.Repeat("z", 26) + "\r\n0\r\nX-Trailer: t\r\n\r\n" + get, 0},
	{"chunked without trailer", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get, 0},
	{"obs-text and tab in a value", "GET / HTTP/1.1\r\nX: a\tb \xff\r\n\r\n", 0},
	{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", 0},

	{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"Transfer-Encoding then Content-Length", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", 400},
	{"differing Content-Lengths", "POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n", 400},
	{"same Content-Length twice", "POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nx" + get, 400},
	{"same Content-Length twice, far apart", "POST / HTTP/1.1\r\nContent-Length: 0\r\nHost: a\r\nX: y\r\nContent-Length:0\r\n\r\n", 400},
	{"empty Content-Length", "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", 400},
	{"invalid then valid Content-Length", "POST / HTTP/1.1\r\nContent-Length: x\r\nContent-Length: 1\r\n\r\nx", 400},
	{"duplicate Content-Length after a good request", get + "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab" + get, 400},
	{"Content-Length list", "POST / HTTP/1.1\r\nContent-Length: 4, 4\r\n\r\n", 400},
	{"signed Content-Length", "POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\n", 400},
	{"huge Content-Length", "POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", 400},
	{"unknown transfer coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
	{"chunked not last", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 501},
	{"two Transfer-Encodings", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"obs-fold", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
	{"obs-fold with a tab", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 400},
	{"bare LF in the head", "GET / HTTP/1.1\r\nX: a\n\r\n", 400},
	{"bare LF after the request line", "GET / HTTP/1.1\n\r\n", 400},
	{"bare CR in a value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
	{"NUL in a value", "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400},
	{"DEL in a value", "GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n", 400},
	{"space before the colon", "GET / HTTP/1.1\r\nX : a\r\n\r\n", 400},
	{"invalid header name", "GET / HTTP/1.1\r\nX(a): a\r\n\r\n", 400},
	{"no colon", "GET / HTTP/1.1\r\nXa\r\n\r\n", 400},
	{"empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 400},
	{"NUL in the path", "GET /a\x00b HTTP/1.1\r\n\r\n", 400},
	{"space in the target", "GET /a b HTTP/1.1\r\n\r\n", 400},
	{"HTTP/0.9", "GET /\r\n\r\n", 400},
	{"bad version", "GET / HTTP/1.1x\r\n\r\n", 400},
	{"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505},
	{"invalid method", "G(T / HTTP/1.1\r\n\r\n", 400},
	{"bad head after a Content-Length body", "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
	{"bad head after a chunked body", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;e\r\nab\r\n0\r\nT: 1\r\n\r\n" +
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
}

// scanAll feeds in to a new scanner in the given pieces and reports the first violation's status (0: none)
// and whether the scanner ended at a request boundary.
func scanAll(pieces ...string) (int, bool) {
	s := NewScanner(8 << 10)
	for _, p := range pieces {
		if v, _ := s.Scan([]byte(p)); v != nil {
			return v.Status, false
		}
	}
	return 0, s.st == stHead && s.head == 0 && len(s.line) == 0
}

func TestScan(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			status, boundary := scanAll(tc.in)
			if status != tc.status {
				t.Fatalf("whole: status %d, want %d", status, tc.status)
			}
			if tc.status == 0 && !boundary {
				t.Fatalf("whole: not at a request boundary after the stream")
			}
			// every split into two Reads, and byte by byte, must give the same answer
			for i := 1; i < len(tc.in); i++ {
				if st, b := scanAll(tc.in[:i], tc.in[i:]); st != status || b != boundary {
					t.Fatalf("split at %d: status %d boundary %v, want %d %v", i, st, b, status, boundary)
				}
			}
			bytewise := make([]string, len(tc.in))
			for i := range tc.in {
				bytewise[i] = tc.in[i : i+1]
			}
			if st, b := scanAll(bytewise...); st != status || b != boundary {
				t.Fatalf("byte by byte: status %d boundary %v, want %d %v", st, b, status, boundary)
			}
		})
	}
}

// TestScanKeep: a refused head after complete requests in the same Read leaves those requests to be served.
func TestScanKeep(t *testing.T) {
	bad := "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"
	s := NewScanner(8 << 10)
	v, keep := s.Scan([]byte(get + get + bad))
	if v == nil || keep != 2*len(get) {
		t.Fatalf("violation %v, keep %d; want a violation and keep %d", v, keep, 2*len(get))
	}
	s = NewScanner(8 << 10)
	s.Scan([]byte(get + "GET / HT"))
	if v, keep := s.Scan([]byte("TP/1.1\r\nX: a\r\n b\r\n\r\n")); v == nil || keep != 0 {
		t.Fatalf("violation %v, keep %d; want a violation and keep 0 (the head began in an earlier Read)", v, keep)
	}
}

// TestScanLimits: the scanner never holds more than a head's limit: an over-long request line is refused with
// 414, a longer head with nginx's 494 (400 "Request Header Or Cookie Too Large"); a broken chunked body stops
// the scanning, and the connection is refused if a head is ever read after it.
func TestScanLimits(t *testing.T) {
	long := strings.Repeat("a", 1024+4096+1)
	for _, tc := range []struct {
		head   string
		status int
	}{
		{"GET /" + long, 414},
		{"GET / HTTP/1.1\r\nX-Long: " + long, 494},
	} {
		s := NewScanner(1024)
		if v, _ := s.Scan([]byte(tc.head)); v == nil || v.Status != tc.status || cap(s.line) > 8<<10 {
			t.Fatalf("%.20q: violation %v with a %d-byte line buffer after an over-long head, want %d", tc.head, v, cap(s.line), tc.status)
		}
	}
	var s *Scanner
	for _, body := range []string{"1;" + long, "zz\r\n", "3\r\nabcX\r\n", "3\r\nabc\n"} {
		s = NewScanner(1024)
		if v, _ := s.Scan([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body)); v != nil {
			t.Fatalf("%.20q: violation %v, want the bytes passed to net/http", body, v)
		}
		if s.Guarding() || s.broken == nil {
			t.Fatalf("%.20q: guarding %v, broken %v; want stopped and broken", body, s.Guarding(), s.broken)
		}
	}
}

// TestConnBrokenBody: after a bad chunk net/http fails the body; if it ever read a head after it, the guard
// refuses the connection.
func TestConnBrokenBody(t *testing.T) {
	client, server := pair(t)
	in := "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
	io.WriteString(client, in)
	readN(t, server, len(in))
	server.SetIdle(false)
	server.SetIdle(true)
	if v := refusal(t, server); v.Reason != "invalid chunked body" {
		t.Fatalf("refusal %+v", v)
	}
}

// pair is a real loopback TCP connection, the server side guarded.
func pair(t *testing.T) (client net.Conn, server *Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); sc.Close() })
	server = Wrap(sc, 8<<10)
	server.SetDeadline(time.Now().Add(10 * time.Second))
	client.SetDeadline(time.Now().Add(10 * time.Second))
	return client, server
}

// refusal reads from server and returns the refusal its Read reports; the server answers it, and each Read
// reports it again.
func refusal(t *testing.T, server *Conn) *Violation {
	t.Helper()
	n, err := server.Read(make([]byte, 100))
	v, ok := err.(*Violation)
	if n != 0 || !ok {
		t.Fatalf("read %d, %v; want the head refused", n, err)
	}
	if _, again := server.Read(make([]byte, 100)); again != err {
		t.Fatalf("a second read: %v, want the same refusal", again)
	}
	return v
}

// readN reads exactly n bytes through the guard.
func readN(t *testing.T, c *Conn, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func TestConnRefuses(t *testing.T) {
	client, server := pair(t)
	io.WriteString(client, "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n")
	if v := refusal(t, server); v.Status != 400 || !strings.Contains(v.Reason, "obs-fold") || !v.More {
		t.Fatalf("refusal %+v, want 400 obs-fold with more bytes after it", v)
	}
}

// TestScanMore: a refusal says whether the client sent more than the refused part (lingering_close on then
// lingers, as nginx does when its buffer holds more than what it refused).
func TestScanMore(t *testing.T) {
	for _, tc := range []struct {
		in   string
		more bool
	}{
		{"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nX: a\r\n b\r\n", false},
		{"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", true},
		{"get / HTTP/1.1\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\nX: a\r\n b\r\n", false},
		{"get / HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"GET /" + strings.Repeat("a", 8<<10) + " HTTP/1.1\r\n", true}, // 414: the line goes on
	} {
		v, _ := NewScanner(1024).Scan([]byte(tc.in))
		if v == nil || v.More != tc.more {
			t.Errorf("%.40q: refusal %+v, want more %v", tc.in, v, tc.more)
		}
	}
}

// TestConnUpgrade: after a 101 the bytes belong to the tunnel and are not scanned; after a refused upgrade
// (any other answer) the next head is scanned again.
func TestConnUpgrade(t *testing.T) {
	up := "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	t.Run("101", func(t *testing.T) {
		client, server := pair(t)
		io.WriteString(client, up)
		readN(t, server, len(up))
		io.WriteString(server, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
		frame := "\x81\x05hello\n\r\x00 junk"
		io.WriteString(client, frame)
		if got := readN(t, server, len(frame)); got != frame {
			t.Fatalf("tunnel bytes %q", got)
		}
		if server.Pending() {
			t.Fatal("tunnel data refused")
		}
	})
	t.Run("not upgraded", func(t *testing.T) {
		client, server := pair(t)
		io.WriteString(client, up)
		readN(t, server, len(up))
		io.WriteString(server, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
		io.WriteString(client, get)
		readN(t, server, len(get))
		io.WriteString(client, "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n")
		if v := refusal(t, server); v.Status != 400 {
			t.Fatalf("refusal %+v", v)
		}
	})
}

// TestConnPipelinedRefusal: requests before a refused head in the same Read are served first; the refusal
// is answered when the server is idle again.
func TestConnPipelinedRefusal(t *testing.T) {
	client, server := pair(t)
	io.WriteString(client, get+"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // one Read sees both heads (not a timing assertion: either way must pass)
	got := readN(t, server, len(get))
	if got != get {
		t.Fatalf("first request %q", got)
	}
	server.SetIdle(false) // net/http serves the first request
	server.SetIdle(true)  // and reads the next head
	if v := refusal(t, server); !strings.Contains(v.Reason, "at the same time") {
		t.Fatalf("refusal %+v", v)
	}
}

// BenchmarkScan measures the guard's cost per request for a typical browser-sized head.
func BenchmarkScan(b *testing.B) {
	head := []byte("GET /some/path?q=1 HTTP/1.1\r\nHost: example.org\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Cookie: session=0123456789abcdef0123456789abcdef\r\nConnection: keep-alive\r\n\r\n")
	s := NewScanner(8 << 10)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		if v, _ := s.Scan(head); v != nil {
			b.Fatal(v.Reason)
		}
	}
}

// FuzzScan: the scanner never panics, holds no more than the head limit, and gives the same answer whether
// the stream arrives in one Read or split in two.
func FuzzScan(f *testing.F) {
	for _, tc := range scanCases {
		f.Add(tc.in, uint16(len(tc.in)/2))
	}
	f.Fuzz(func(t *testing.T, in string, at uint16) {
		split := int(at) % (len(in) + 1)
		whole, wb := scanAll(in)
		parts, pb := scanAll(in[:split], in[split:])
		if whole != parts || wb != pb {
			t.Fatalf("whole: %d %v; split at %d: %d %v", whole, wb, split, parts, pb)
		}
		s := NewScanner(1024)
		s.Scan([]byte(in))
		if len(s.line) > 1024+4096 {
			t.Fatalf("holds a %d-byte line", len(s.line))
		}
	})
}

// TestConnWriteTimeout: a write to a client that stopped reading fails on its deadline and is reported once,
// with the connection under the guard; other write errors are not reported as timeouts.
func TestConnWriteTimeout(t *testing.T) {
	_, server := pair(t)
	var reported []net.Conn
	server.OnWriteTimeout = func(c net.Conn) { reported = append(reported, c) }
	server.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	chunk := make([]byte, 64<<10)
	var err error
	for i := 0; i < 1<<12 && err == nil; i++ { // the client never reads: its window and our buffer fill
		_, err = server.Write(chunk)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write error %v, want the deadline's", err)
	}
	server.Write(chunk)
	if len(reported) != 1 || reported[0] != server.Conn {
		t.Fatalf("reported %d times (%v), want once with the connection under the guard", len(reported), reported)
	}

	_, other := pair(t)
	other.OnWriteTimeout = func(net.Conn) { t.Error("a write on a closed connection was reported as a timeout") }
	other.Conn.Close()
	if _, err := other.Write([]byte("x")); err == nil {
		t.Fatal("write on a closed connection succeeded")
	}
}

// TestConnReadFrom: a file sent through the guard (net/http's response.ReadFrom for a static file) reaches the
// client whole by the socket's own ReadFrom (sendfile on TCP); a client that stops reading makes it fail on its
// deadline, reported like a Write's.
func TestConnReadFrom(t *testing.T) {
	client, server := pair(t)
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := t.TempDir() + "/f"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(io.LimitReader(client, int64(len(data)))); got <- b }()
	if n, err := server.ReadFrom(&io.LimitedReader{R: f, N: int64(len(data))}); n != int64(len(data)) || err != nil {
		t.Fatalf("ReadFrom = %d, %v; want %d, nil", n, err, len(data))
	}
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("the client got %d bytes, not the file's %d", len(b), len(data))
	}

	reported := 0
	server.OnWriteTimeout = func(net.Conn) { reported++ }
	server.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	for i := 0; i < 64 && err == nil; i++ { // the client no longer reads
		f.Seek(0, io.SeekStart)
		_, err = server.ReadFrom(&io.LimitedReader{R: f, N: int64(len(data))})
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || reported != 1 {
		t.Fatalf("ReadFrom to a client that stopped reading: %v, reported %d times; want the deadline's error, once", err, reported)
	}
}

// FuzzFastHead: scanning with fastHead gives the same answer (violation, bytes kept) and leaves the scanner
// in the same state as the line-by-line scan alone, fed the same stream in the same pieces.
func FuzzFastHead(f *testing.F) {
	for _, tc := range scanCases {
		f.Add(tc.in, uint16(len(tc.in)))
	}
	f.Add("GET /a?b=c HTTP/1.0\r\nContent-Length: 3\r\nHost: x\r\n\r\nabc", uint16(9))
	f.Add("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", uint16(100))
	f.Add("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", uint16(100))
	f.Add("GET / HTTP/1.1\r\nX: "+strings.Repeat("v", 300)+"\r\n\r\n", uint16(500))
	f.Fuzz(func(t *testing.T, in string, at uint16) {
		split := int(at) % (len(in) + 1)
		fast, slow := NewScanner(256), NewScanner(256)
		slow.slow = true
		for _, piece := range []string{in[:split], in[split:]} {
			fv, fk := fast.Scan([]byte(piece))
			sv, sk := slow.Scan([]byte(piece))
			if (fv == nil) != (sv == nil) || fv != nil && (!reflect.DeepEqual(fv, sv) || fk != sk) {
				t.Fatalf("piece %q: fast %v %d, line by line %v %d", piece, fv, fk, sv, sk)
			}
			if fv != nil {
				return
			}
		}
		if !bytes.Equal(fast.line, slow.line) {
			t.Fatalf("partial line: fast %q, line by line %q", fast.line, slow.line)
		}
		if !bytes.Equal(fast.text, slow.text) {
			t.Fatalf("head so far: fast %q, line by line %q", fast.text, slow.text)
		}
		fast.slow, fast.line, slow.line, fast.text, slow.text = true, nil, nil, nil, nil // (slow is the one difference meant)
		if fast.broken != nil && slow.broken != nil && reflect.DeepEqual(fast.broken, slow.broken) {
			fast.broken = slow.broken // the same violation, made twice
		}
		if fmt.Sprintf("%+v", *fast) != fmt.Sprintf("%+v", *slow) {
			t.Fatalf("state after %q:\nfast         %+v\nline by line %+v", in, *fast, *slow)
		}
	})
}

// TestScanHead: a refusal carries the head as far as it was read and accepted (the request line also when it
// is the refused part): what nginx's access log line shows of a refused request.
func TestScanHead(t *testing.T) {
	for _, tc := range []struct{ in, head string }{
		{"hello\r\n\r\n", "hello\r\n"},
		{"get / HTTP/1.1\r\nHost: a\r\n\r\n", "get / HTTP/1.1\r\n"},
		{"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\nX: a\r\n b\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\nX: a\r\n"},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nX: a\r\n b\r\n", "GET /2 HTTP/1.1\r\nX: a\r\n"},
	} {
		v, _ := NewScanner(1024).Scan([]byte(tc.in))
		if v == nil || string(v.Head) != tc.head {
			t.Errorf("%q: refusal %+v, want the head %q", tc.in, v, tc.head)
		}
	}
}
