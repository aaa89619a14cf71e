//go:build linux

package tunnel

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"
)

func newPoller(t testing.TB) *Poller {
	t.Helper()
	p := NewPoller()
	if p == nil {
		t.Fatal("NewPoller returned nil on linux")
	}
	t.Cleanup(p.Close)
	return p
}

// exchange sends msg from a to b and checks it arrives whole.
func exchange(t *testing.T, from, to net.Conn, msg string) {
	t.Helper()
	if _, err := from.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, to, len(msg)); got != msg {
		t.Fatalf("got %q, want %q", got, msg)
	}
}

// parkAll waits until the tunnels' directions have lingered and parked.
func parkAll() { time.Sleep(lingerTime*2 + 100*time.Millisecond) }

// TestParkedTunnelsHoldNoGoroutine: with a Poller, idle tunnels (plain and TLS client sides) give their
// goroutines back, and come back to life with every byte intact when either side sends again.
func TestParkedTunnelsHoldNoGoroutine(t *testing.T) {
	poller := newPoller(t)
	pool := NewBufferPool(0)
	const n = 20
	var fs []*fixture
	runtime.GC()
	before := runtime.NumGoroutine()
	for i := range n {
		fo := fixtureOpts{async: true, opt: Options{Pool: pool, Poller: poller, IdleTimeout: 10 * time.Second}}
		if i%2 == 1 {
			fo.userConn, fo.clientConn = tlsPair(t)
		}
		fs = append(fs, start(t, fo))
	}
	for i, f := range fs {
		exchange(t, f.user, f.backend, fmt.Sprintf("hello %d", i))
		exchange(t, f.backend, f.user, fmt.Sprintf("welcome %d", i))
	}
	parkAll()
	if g := runtime.NumGoroutine() - before; g > 2 {
		t.Errorf("%d idle tunnels hold %d goroutines, want none", n, g)
	}
	for round := range 3 {
		for i, f := range fs {
			exchange(t, f.user, f.backend, fmt.Sprintf("round %d up %d", round, i))
			exchange(t, f.backend, f.user, fmt.Sprintf("round %d down %d", round, i))
			big := make([]byte, 100<<10)
			for j := range big {
				big[j] = byte(j * (i + 1))
			}
			exchange(t, f.backend, f.user, string(big))
		}
		parkAll()
	}
	// the client closes while parked: the upstream sees EOF, answers late, then closes
	for _, f := range fs {
		closeWrite(t, f.user)
	}
	for i, f := range fs {
		expectEOF(t, f.backend, false)
		time.Sleep(10 * time.Millisecond)
		exchange(t, f.backend, f.user, fmt.Sprintf("late %d", i))
	}
	parkAll()
	for _, f := range fs {
		f.backend.Close()
	}
	for _, f := range fs {
		if st := f.wait(t); st.Reason != ReasonClientClosed {
			t.Errorf("reason = %q, want %q", st.Reason, ReasonClientClosed)
		}
	}
}

// TestParkedIdleTimeout: a parked tunnel still ends after the idle timeout, and traffic resets it.
func TestParkedIdleTimeout(t *testing.T) {
	poller := newPoller(t)
	const idle = 700 * time.Millisecond
	f := start(t, fixtureOpts{async: true, opt: Options{Pool: NewBufferPool(0), Poller: poller, IdleTimeout: idle}})
	begin := time.Now()
	for range 4 {
		exchange(t, f.user, f.backend, "ping")
		time.Sleep(idle / 2)
	}
	st := f.wait(t)
	if st.Reason != ReasonIdleTimeout {
		t.Fatalf("reason = %q, want %q", st.Reason, ReasonIdleTimeout)
	}
	if d := time.Since(begin); d < 2*idle {
		t.Errorf("tunnel ended after %v although bytes moved every %v", d, idle/2)
	}
	expectEOF(t, f.user, true)
	expectEOF(t, f.backend, true)
}

// TestParkedShutdown: cancelling the context ends a tunnel whose directions are both parked.
func TestParkedShutdown(t *testing.T) {
	poller := newPoller(t)
	ctx, cancel := context.WithCancel(context.Background())
	user, server := tlsPair(t)
	f := start(t, fixtureOpts{async: true, ctx: ctx, userConn: user, clientConn: server, opt: Options{Pool: NewBufferPool(0), Poller: poller}})
	exchange(t, f.user, f.backend, "hi")
	parkAll()
	cancel()
	if st := f.wait(t); st.Reason != ReasonShutdown {
		t.Fatalf("reason = %q, want %q", st.Reason, ReasonShutdown)
	}
	expectEOF(t, f.backend, true)
}

// TestPollerCloseWakesParked: closing the poller hands parked directions back to goroutines; they go on
// copying without it.
func TestPollerCloseWakesParked(t *testing.T) {
	poller := NewPoller()
	f := start(t, fixtureOpts{async: true, opt: Options{Pool: NewBufferPool(0), Poller: poller}})
	exchange(t, f.user, f.backend, "hi")
	parkAll()
	poller.Close()
	exchange(t, f.user, f.backend, "after close")
	exchange(t, f.backend, f.user, "still here")
	f.user.Close()
	f.backend.Close()
	f.wait(t)
}
