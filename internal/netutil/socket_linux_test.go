package netutil

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// pair returns a Socket and the plain TCP connection at its other end, over loopback.
func pair(t *testing.T) (*Socket, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			peer <- nil
			return
		}
		peer <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := <-peer
	if p == nil {
		t.Fatal("accept failed")
	}
	s, ok := NewSocket(c).(*Socket)
	if !ok {
		t.Fatalf("NewSocket(%T) is not a *Socket", c)
	}
	t.Cleanup(func() { s.Close(); p.Close() })
	return s, p
}

// TestSocketBytes: what one side writes arrives whole and in order at the other, in both directions at once,
// also when a write is far larger than the socket buffers (so it waits for writability midway).
func TestSocketBytes(t *testing.T) {
	for _, size := range []int{1, 100, 64 << 10, 8 << 20} {
		s, p := pair(t)
		up := make([]byte, size)
		down := make([]byte, size)
		rand.Read(up)
		rand.Read(down)
		errc := make(chan error, 3)
		go func() { _, err := s.Write(up); errc <- err }()
		go func() { _, err := p.Write(down); errc <- err }()
		var gotUp []byte
		go func() {
			b := make([]byte, size)
			_, err := io.ReadFull(p, b)
			gotUp = b
			errc <- err
		}()
		gotDown := make([]byte, size)
		if _, err := io.ReadFull(s, gotDown); err != nil {
			t.Fatalf("size %d: socket read: %v", size, err)
		}
		for range 3 {
			if err := <-errc; err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
		}
		if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
			t.Fatalf("size %d: bytes differ", size)
		}
	}
}

// TestSocketEnds: the ends a caller must tell apart look as they do on a net.Conn.
func TestSocketEnds(t *testing.T) {
	t.Run("peer closed: EOF", func(t *testing.T) {
		s, p := pair(t)
		p.Write([]byte("last"))
		p.Close()
		b, err := io.ReadAll(s)
		if err != nil || string(b) != "last" {
			t.Fatalf("ReadAll = %q, %v; want \"last\", nil", b, err)
		}
		if n, err := s.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("read after EOF = %d, %v", n, err)
		}
	})
	t.Run("read deadline", func(t *testing.T) {
		s, _ := pair(t)
		s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := s.Read(make([]byte, 8))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past deadline: %v, want a timeout", err)
		}
		if !strings.HasPrefix(err.Error(), "read tcp ") {
			t.Fatalf("error %q does not read as net.Conn's", err)
		}
	})
	t.Run("write deadline on a full socket", func(t *testing.T) {
		s, _ := pair(t) // the peer never reads
		// the socket buffers take some of it at once; the rest waits for writability until the deadline
		s.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := s.Write(make([]byte, 64<<20))
		if !errors.Is(err, os.ErrDeadlineExceeded) || n == 64<<20 {
			t.Fatalf("write to a full socket = %d, %v; want at most part of it and a timeout", n, err)
		}
	})
	t.Run("closed while reading", func(t *testing.T) {
		s, _ := pair(t)
		errc := make(chan error, 1)
		go func() { _, err := s.Read(make([]byte, 8)); errc <- err }()
		time.Sleep(20 * time.Millisecond)
		s.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read on a closed socket: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not end a blocked read")
		}
	})
	t.Run("peer gone: write fails", func(t *testing.T) {
		s, p := pair(t)
		p.(*net.TCPConn).SetLinger(0) // reset, not FIN
		p.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			_, err = s.Write([]byte("x"))
			time.Sleep(time.Millisecond)
		}
		if err == nil || !strings.HasPrefix(err.Error(), "write tcp ") {
			t.Fatalf("write to a reset connection: %v", err)
		}
	})
}

// TestSocketUnwrap: the TCP connection stays reachable (tunnels and sendfile want it), other connections
// are left alone.
func TestSocketUnwrap(t *testing.T) {
	s, _ := pair(t)
	if tc, ok := TCP(s); !ok || tc != s.TCPConn || s.NetConn() != net.Conn(s.TCPConn) {
		t.Fatal("TCP/NetConn do not return the wrapped connection")
	}
	if tc, ok := TCP(s.TCPConn); !ok || tc != s.TCPConn {
		t.Fatal("TCP of a *net.TCPConn is not itself")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if NewSocket(a) != a {
		t.Fatal("NewSocket wrapped a pipe")
	}
	if _, ok := TCP(a); ok {
		t.Fatal("TCP found a socket in a pipe")
	}
}

// TestSocketWriteTimeout: with a write timeout, a write the peer does not take fails once it has waited the
// timeout; a write the kernel takes at once leaves no deadline behind (a later write after the timeout's span
// still succeeds); a peer that reads slowly but steadily keeps a large write going; an explicit deadline
// governs while it is set.
func TestSocketWriteTimeout(t *testing.T) {
	t.Run("stalled peer", func(t *testing.T) {
		s, _ := pair(t)
		s.SetWriteTimeout(200 * time.Millisecond)
		start := time.Now()
		n, err := s.Write(make([]byte, 64<<20))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write to a peer that never reads: n=%d err=%v, want a deadline error", n, err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
			t.Fatalf("the write failed after %v, want about the 200ms timeout", d)
		}
		if n <= 0 {
			t.Fatalf("n=%d: the socket buffers took nothing", n)
		}
	})
	t.Run("no deadline left behind", func(t *testing.T) {
		s, p := pair(t)
		s.SetWriteTimeout(100 * time.Millisecond)
		go io.Copy(io.Discard, p)
		for i := 0; i < 3; i++ {
			if _, err := s.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(150 * time.Millisecond)
		}
		// a write that waited (and armed the timeout) clears it when it completes
		if _, err := s.Write(make([]byte, 32<<20)); err != nil {
			t.Fatalf("a large write to a reading peer: %v", err)
		}
		time.Sleep(150 * time.Millisecond)
		if _, err := s.Write([]byte("again")); err != nil {
			t.Fatalf("a write after the timeout's span: %v", err)
		}
	})
	t.Run("slow steady peer", func(t *testing.T) {
		// the peer takes 64 KiB every 20ms: the whole write lasts far longer than the timeout, but no wait
		// for room does, so it succeeds (the timeout is counted again after every wait that made progress)
		s, p := pair(t)
		s.SetWriteTimeout(300 * time.Millisecond)
		s.TCPConn.SetWriteBuffer(64 << 10)
		p.(*net.TCPConn).SetReadBuffer(64 << 10)
		const size = 2 << 20
		got := make(chan int64, 1)
		go func() {
			var n int64
			buf := make([]byte, 64<<10)
			for n < size {
				m, err := p.Read(buf)
				n += int64(m)
				if err != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			got <- n
		}()
		start := time.Now()
		if n, err := s.Write(make([]byte, size)); err != nil {
			t.Fatalf("a large write to a slow but steady reader failed after %v: n=%d err=%v", time.Since(start), n, err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("the write took %v, not longer than the timeout: the test proves nothing", d)
		}
		if n := <-got; n != size {
			t.Fatalf("the peer read %d bytes, want %d", n, size)
		}
	})
	t.Run("explicit deadline governs", func(t *testing.T) {
		s, _ := pair(t)
		s.SetWriteTimeout(time.Hour)
		s.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		start := time.Now()
		_, err := s.Write(make([]byte, 64<<20))
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("err=%v after %v, want the explicit deadline's error", err, time.Since(start))
		}
	})
	t.Run("off", func(t *testing.T) {
		s, p := pair(t)
		s.SetWriteTimeout(0)
		done := make(chan error, 1)
		go func() { _, err := s.Write(make([]byte, 64<<20)); done <- err }()
		select {
		case err := <-done:
			t.Fatalf("a write to a stalled peer without a timeout returned: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		p.Close()
		<-done
	})
}

// TestSocketAwait: bytes already there are read ahead and handed out by the next Reads (buf given back after
// them, no wait, no idle call); with nothing there the buffer is given back and idle called before the wait,
// which ends when bytes arrive; the peer's end and the read deadline are reported.
func TestSocketAwait(t *testing.T) {
	type calls struct{ idle, done int }
	await := func(s *Socket, buf []byte) (*calls, error) {
		c := new(calls)
		err := s.Await(buf, func() { c.idle++ }, func() { c.done++ })
		return c, err
	}
	t.Run("bytes there", func(t *testing.T) {
		s, p := pair(t)
		p.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		time.Sleep(50 * time.Millisecond)
		c, err := await(s, make([]byte, 8))
		if err != nil || c.idle != 0 || c.done != 0 {
			t.Fatalf("err=%v calls=%+v, want no wait and the buffer kept", err, *c)
		}
		got := make([]byte, 5)
		n, err := s.Read(got)
		if string(got[:n]) != "GET /" || err != nil || c.done != 0 {
			t.Fatalf("first read %q %v (done %d), want the first 5 bytes read ahead, buffer still held", got[:n], err, c.done)
		}
		n, err = s.Read(got)
		if string(got[:n]) != " HT" || err != nil || c.done != 1 {
			t.Fatalf("second read %q %v (done %d), want the rest of the 8 read ahead, then the buffer given back", got[:n], err, c.done)
		}
		rest := make([]byte, 64)
		n, _ = s.Read(rest)
		if string(rest[:n]) != "TP/1.1\r\n\r\n" {
			t.Fatalf("the socket's own read gave %q", rest[:n])
		}
	})
	t.Run("wait for bytes", func(t *testing.T) {
		s, p := pair(t)
		go func() {
			time.Sleep(100 * time.Millisecond)
			p.Write([]byte("x"))
		}()
		start := time.Now()
		c, err := await(s, make([]byte, 8))
		if err != nil || c.idle != 1 || c.done != 1 || time.Since(start) < 80*time.Millisecond {
			t.Fatalf("err=%v calls=%+v after %v, want one wait with idle and done called", err, *c, time.Since(start))
		}
		b := make([]byte, 4)
		if n, err := s.Read(b); n != 1 || b[0] != 'x' || err != nil {
			t.Fatalf("read after the wait: %q %v", b[:n], err)
		}
	})
	t.Run("peer's end", func(t *testing.T) {
		s, p := pair(t)
		p.Close()
		time.Sleep(50 * time.Millisecond)
		c, err := await(s, make([]byte, 8))
		if err != nil || c.done != 1 || c.idle != 0 {
			t.Fatalf("err=%v calls=%+v, want the end found at once and the buffer given back", err, *c)
		}
		if n, err := s.Read(make([]byte, 4)); n != 0 || err != io.EOF {
			t.Fatalf("read after the end: %d %v, want EOF", n, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		s, _ := pair(t)
		s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		c, err := await(s, make([]byte, 8))
		if !errors.Is(err, os.ErrDeadlineExceeded) || c.done != 1 || c.idle != 1 {
			t.Fatalf("err=%v calls=%+v, want the deadline's error after one wait", err, *c)
		}
	})
}

// TestSocketLazyReadDeadline: a read deadline slightly later than the armed one leaves that one armed (as
// nginx's timers do), but a much later one, an earlier one and no deadline always take effect; set as a
// deadline or as a timeout (SetReadTimeout, which h1 uses).
func TestSocketLazyReadDeadline(t *testing.T) {
	for _, setter := range []struct {
		name string
		set  func(s *Socket, t time.Time)
	}{
		{"deadline", func(s *Socket, t time.Time) { s.SetReadDeadline(t) }},
		{"timeout", func(s *Socket, t time.Time) { s.SetReadTimeout(time.Until(t)) }},
	} {
		t.Run(setter.name, func(t *testing.T) { testLazyReadDeadline(t, setter.set) })
	}
}

func testLazyReadDeadline(t *testing.T, set func(s *Socket, t time.Time)) {
	isTimeout := func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
	near := func(got int64, want time.Time) bool { // (a timeout is converted to a deadline a moment later)
		d := time.Duration(got - want.UnixNano())
		return d > -time.Millisecond && d < 50*time.Millisecond
	}
	t.Run("slightly later keeps the armed one", func(t *testing.T) {
		s, _ := pair(t)
		first := time.Now().Add(10 * time.Second)
		set(s, first)
		armed := s.rdl.Load()
		set(s, first.Add(100*time.Millisecond))
		if got := s.rdl.Load(); got != armed || !near(got, first) {
			t.Fatalf("armed %v, want the first deadline kept", time.Unix(0, got))
		}
		later := first.Add(time.Second)
		set(s, later)
		if got := s.rdl.Load(); !near(got, later) {
			t.Fatalf("armed %v, want the deadline 1s later armed", time.Unix(0, got))
		}
	})
	t.Run("a short timeout moves by an eighth at most", func(t *testing.T) {
		s, _ := pair(t)
		first := time.Now().Add(400 * time.Millisecond)
		set(s, first)
		set(s, first.Add(100*time.Millisecond)) // 100ms > 500ms/8
		if got := s.rdl.Load(); !near(got, first.Add(100*time.Millisecond)) {
			t.Fatalf("armed %v, want the later deadline of a 500ms timeout armed", time.Unix(0, got))
		}
	})
	t.Run("much later takes effect", func(t *testing.T) {
		s, p := pair(t)
		set(s, time.Now().Add(50*time.Millisecond))
		set(s, time.Now().Add(time.Minute))
		go func() {
			time.Sleep(300 * time.Millisecond)
			p.Write([]byte("x"))
		}()
		b := make([]byte, 1)
		if n, err := s.Read(b); n != 1 || err != nil {
			t.Fatalf("read %d %v: the deadline 50ms away was not replaced by the one a minute away", n, err)
		}
	})
	t.Run("earlier takes effect", func(t *testing.T) {
		s, _ := pair(t)
		set(s, time.Now().Add(time.Hour))
		set(s, time.Now().Add(50*time.Millisecond))
		done := make(chan error, 1)
		go func() {
			_, err := s.Read(make([]byte, 1))
			done <- err
		}()
		select {
		case err := <-done:
			if !isTimeout(err) {
				t.Fatalf("read: %v, want a timeout", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the read did not time out: the earlier deadline was not armed")
		}
	})
	t.Run("passed deadline is re-armed", func(t *testing.T) {
		s, p := pair(t)
		set(s, time.Now().Add(20*time.Millisecond))
		if _, err := s.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("read: %v, want a timeout", err)
		}
		set(s, time.Now().Add(20*time.Millisecond+time.Millisecond))
		p.Write([]byte("x"))
		if n, err := s.Read(make([]byte, 1)); n != 1 || err != nil {
			t.Fatalf("read %d %v after re-arming a passed deadline", n, err)
		}
	})
	t.Run("zero clears", func(t *testing.T) {
		s, p := pair(t)
		set(s, time.Now().Add(50*time.Millisecond))
		set(s, time.Time{})
		go func() {
			time.Sleep(200 * time.Millisecond)
			p.Write([]byte("x"))
		}()
		if n, err := s.Read(make([]byte, 1)); n != 1 || err != nil {
			t.Fatalf("read %d %v: the deadline was not cleared", n, err)
		}
	})
}
