//go:build linux

package tunnel

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// heldConn is a TLS user's transport whose writes, while hold is set, are kept so that the test sends the
// records in TCP segments of its choosing.
type heldConn struct {
	*net.TCPConn
	hold bool
	held []byte
}

func (c *heldConn) Write(p []byte) (int, error) {
	if c.hold {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.TCPConn.Write(p)
}

func (c *heldConn) take() []byte {
	b := c.held
	c.held = nil
	return b
}

func (c *heldConn) send(t *testing.T, b []byte) {
	t.Helper()
	if _, err := c.TCPConn.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestTLSRecordsAcrossSegments: a TLS client side read inside its socket's RawConn.Read (tlsCopy) gets every
// byte whatever TCP does to its records: many records in one segment (crypto/tls then holds whole records
// while the socket is empty), records cut into 1-byte segments, a record cut where the direction parks, big
// messages in many records; and then the client's half-close.
func TestTLSRecordsAcrossSegments(t *testing.T) {
	hc := &heldConn{}
	user, server := tlsPairOver(t, func(c *net.TCPConn) net.Conn { hc.TCPConn = c; return hc })
	f := start(t, fixtureOpts{async: true, userConn: user, clientConn: server,
		opt: Options{Pool: NewBufferPool(0), Poller: newPoller(t), IdleTimeout: 10 * time.Second}})
	exchange(t, f.backend, f.user, "started") // the directions are running: the transport is in place
	if _, ok := server.NetConn().(*inqConn); !ok {
		t.Fatalf("transport under the TLS client side is %T, want *inqConn (NewTLSTransport)", server.NetConn())
	}
	hc.hold = true
	records := func(sizes ...int) (held, want []byte) {
		var all bytes.Buffer
		for i, n := range sizes {
			msg := bytes.Repeat([]byte{byte('a' + i%26)}, n)
			if _, err := user.Write(msg); err != nil {
				t.Fatal(err)
			}
			all.Write(msg)
		}
		return hc.take(), all.Bytes()
	}
	expect := func(what string, want []byte) {
		t.Helper()
		if got := readFull(t, f.backend, len(want)); got != string(want) {
			t.Fatalf("%s: upstream got %d bytes, not the %d sent", what, len(got), len(want))
		}
	}

	var sizes []int
	for i := range 40 {
		sizes = append(sizes, 1+i*53)
	}
	held, want := records(sizes...)
	hc.send(t, held)
	expect("40 records in one segment", want)

	held, want = records(70, 3, 900)
	for i := range held {
		hc.send(t, held[i:i+1])
		time.Sleep(100 * time.Microsecond)
	}
	expect("records in 1-byte segments", want)

	held, want = records(64)
	hc.send(t, held[:20])
	parkAll()
	hc.send(t, held[20:])
	expect("a record cut where the direction parked", want)

	held, want = records(100<<10, 5, 64<<10)
	hc.send(t, held)
	expect("big messages", want)

	exchange(t, f.backend, f.user, "down")
	hc.hold = false
	closeWrite(t, user)
	expectEOF(t, f.backend, false)
	exchange(t, f.backend, f.user, "late")
	f.backend.Close()
	if st := f.wait(t); st.Reason != ReasonClientClosed {
		t.Fatalf("reason = %q, want %q", st.Reason, ReasonClientClosed)
	}
}
