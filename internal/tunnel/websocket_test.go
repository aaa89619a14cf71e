package tunnel

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsEchoServer is a real WebSocket upstream: it greets right after the
// handshake (so early frames may sit in the proxy's response reader) and then
// echoes every message.
func wsEchoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if err := c.WriteMessage(websocket.TextMessage, []byte("hello "+r.URL.Path)); err != nil {
			return
		}
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// miniProxy does what the proxy package does around this package: read the
// client's upgrade request, forward it, check the upstream's 101, relay it, and
// hand both connections (with any bytes buffered past the handshake) to Run.
func miniProxy(t *testing.T, upstreamAddr string, tr *Tracker, opt Options) (addr string, stats chan Stats) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	stats = make(chan Stats, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				st, err := proxyOne(c, upstreamAddr, tr, opt)
				if err != nil {
					st.Reason = "proxy: " + err.Error()
				}
				stats <- st
			}()
		}
	}()
	return ln.Addr().String(), stats
}

func proxyOne(c net.Conn, upstreamAddr string, tr *Tracker, opt Options) (Stats, error) {
	defer c.Close()
	cbr := bufio.NewReader(c)
	req, err := http.ReadRequest(cbr)
	if err != nil {
		return Stats{}, err
	}
	proto, ok := RequestedProtocol(req.Header, req.ProtoMajor, req.ProtoMinor)
	if !ok || proto != "websocket" {
		return Stats{}, fmt.Errorf("not a websocket upgrade")
	}
	u, err := net.Dial("tcp", upstreamAddr)
	if err != nil {
		return Stats{}, err
	}
	defer u.Close()
	if err := req.Write(u); err != nil {
		return Stats{}, err
	}
	ubr := bufio.NewReader(u)
	resp, err := http.ReadResponse(ubr, req)
	if err != nil {
		return Stats{}, err
	}
	if err := CheckResponse(req.Header, resp); err != nil {
		return Stats{}, err
	}
	if err := resp.Write(c); err != nil {
		return Stats{}, err
	}
	clientBuf, _ := cbr.Peek(cbr.Buffered())
	upBuf, _ := ubr.Peek(ubr.Buffered())
	ctx, done := context.Background(), func() {}
	if tr != nil {
		ctx, done = tr.Track(ctx, Meta{Location: "/ws", Upstream: "backend", Peer: upstreamAddr})
	}
	defer done()
	return Run(ctx, c, u, clientBuf, upBuf, opt), nil
}

func TestWebSocketThroughRun(t *testing.T) {
	backend := wsEchoServer(t)
	tr := NewTracker()
	proxyAddr, stats := miniProxy(t, backend, tr, Options{Pool: NewBufferPool(0), IdleTimeout: 10 * time.Second})

	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+proxyAddr+"/chat", nil)
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	defer ws.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "hello /chat" {
		t.Fatalf("greeting = %q, %v", msg, err)
	}
	if n := tr.OpenFor(backend); n != 1 {
		t.Fatalf("OpenFor(backend) = %d during the session, want 1", n)
	}
	msgs := []struct {
		typ  int
		data string
	}{
		{websocket.TextMessage, "small"},
		{websocket.BinaryMessage, strings.Repeat("\x00\xffbin", 50000)}, // several buffers
		{websocket.TextMessage, strings.Repeat("ü", 3000)},
	}
	for _, m := range msgs {
		if err := ws.WriteMessage(m.typ, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		typ, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ != m.typ || string(got) != m.data {
			t.Fatalf("echo of %d-byte message: type %d, %d bytes, equal=%v", len(m.data), typ, len(got), string(got) == m.data)
		}
	}
	// A clean WebSocket close travels through the tunnel and ends it.
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("after close: %v, want the echoed normal closure", err)
	}
	ws.Close()
	select {
	case st := <-stats:
		if st.Reason != ReasonClientClosed && st.Reason != ReasonUpstreamClosed {
			t.Fatalf("tunnel ended with %q", st.Reason)
		}
		if st.ClientToUpstream < 150000 || st.UpstreamToClient < 150000 {
			t.Fatalf("stats = %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tunnel did not end after the WebSocket closed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v (open %d)", err, tr.Open())
	}
}

func TestWebSocketTrackerShutdown(t *testing.T) {
	backend := wsEchoServer(t)
	tr := NewTracker()
	proxyAddr, stats := miniProxy(t, backend, tr, Options{Pool: NewBufferPool(0)})
	var conns []*websocket.Conn
	for range 3 {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+proxyAddr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil { // greeting: the tunnel is up
			t.Fatal(err)
		}
		conns = append(conns, ws)
	}
	if n := tr.Open(); n != 3 {
		t.Fatalf("Open = %d, want 3", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := tr.Open(); n != 0 {
		t.Fatalf("Open after Shutdown = %d", n)
	}
	for range 3 {
		if st := <-stats; st.Reason != ReasonShutdown {
			t.Fatalf("reason = %q, want shutdown", st.Reason)
		}
	}
	for _, ws := range conns {
		if _, _, err := ws.ReadMessage(); err == nil {
			t.Fatal("client still connected after Shutdown")
		}
	}
}
