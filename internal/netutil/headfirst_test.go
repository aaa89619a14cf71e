package netutil

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestHeadFirstPeerClosed: a deferred head written to a connection the peer had already closed still ends the
// read (EOF or an error), rather than waiting for an answer that can never come.
func TestHeadFirstPeerClosed(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = t.TempDir() + "/s"
			}
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err == nil {
					c.Close()
				}
			}()
			c, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			time.Sleep(50 * time.Millisecond) // the peer's close has arrived
			h := NewHeadFirst(NewSocket(c), c)
			if !h.Defer([]byte("GET / HTTP/1.1\r\n\r\n")) {
				t.Fatal("Defer refused a socket")
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := h.Read(make([]byte, 64))
			if n != 0 || err == nil || strings.Contains(err.Error(), "timeout") {
				t.Fatalf("Read = %d, %v; want the peer's close", n, err)
			}
		})
	}
}

// TestHeadFirstExchange: the deferred head reaches the peer and its answer is read, also when the head is far
// larger than the socket buffers (the rest then goes through the fallback writer).
func TestHeadFirstExchange(t *testing.T) {
	for _, size := range []int{10, 8 << 20} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			n, _ := io.CopyN(io.Discard, br, int64(size))
			c.Write([]byte("got " + itoa(int(n))))
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		h := NewHeadFirst(NewSocket(c), c)
		if !h.Defer(make([]byte, size)) {
			t.Fatal("Defer refused a socket")
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(h)
		if err != nil || string(b) != "got "+itoa(size) {
			t.Fatalf("size %d: %q, %v", size, b, err)
		}
		c.Close()
		ln.Close()
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if NewHeadFirst(a, a).Defer([]byte("x")) {
		t.Fatal("Defer accepted a pipe")
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestHeadFirstHalfClosed: a peer that half-closed the connection before the request and then waits for ours to
// end (php-fpm recycling a worker) gets nothing written, and the read reports the end at once.
func TestHeadFirstHalfClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	drained := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*net.TCPConn).CloseWrite()
		n, _ := io.Copy(io.Discard, c) // until our end
		drained <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// wait until the FIN has arrived (a probe reads nothing; it also resets the poller's readiness, as the
	// read of a new exchange would)
	for end := time.Now().Add(5 * time.Second); Alive(c); {
		if time.Now().After(end) {
			t.Fatal("the peer's FIN did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h := NewHeadFirst(NewSocket(c), c)
	if !h.Defer([]byte("request")) {
		t.Fatal("Defer refused a socket")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := h.Read(make([]byte, 64))
	if n != 0 || err != io.EOF {
		t.Fatalf("Read = %d, %v; want 0, EOF at once", n, err)
	}
	c.Close()
	if got := <-drained; got != 0 {
		t.Fatalf("the peer received %d bytes of a request sent on a closed connection", got)
	}
}
