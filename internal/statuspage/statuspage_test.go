package statuspage

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	n := 0
	stop, cancel := context.WithCancel(context.Background())
	h := &Handler{Interval: 10 * time.Millisecond, Stop: stop, Sample: func() Snapshot {
		n++
		return Snapshot{Version: "t", Tunnels: n}
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, c := range []struct {
		method, query string
		status        int
		ctype         string
	}{
		{"GET", "", 200, "text/html; charset=utf-8"},
		{"HEAD", "", 200, "text/html; charset=utf-8"},
		{"HEAD", "?events", 200, "text/event-stream"},
		{"POST", "", 405, "text/plain; charset=utf-8"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+"/"+c.query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.query, resp.StatusCode, resp.Header.Get("Content-Type"), c.status, c.ctype)
		}
	}

	resp, err := http.Get(srv.URL + "/?events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var got []int
	for sc.Scan() && len(got) < 3 {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var s Snapshot
		if err := json.Unmarshal([]byte(data), &s); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		got = append(got, s.Tunnels)
	}
	if len(got) != 3 || got[0] >= got[1] || got[1] >= got[2] {
		t.Fatalf("events carried %v; want three successive samples", got)
	}
	// a stop ends the stream
	cancel()
	ended := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream did not end when the server stopped")
	}
}

// TestStalledClient: a stop ends the stream even while a write is blocked on a client that stopped reading, so a
// graceful stop never waits for a dashboard left open on a sleeping phone.
func TestStalledClient(t *testing.T) {
	var samples atomic.Int64
	big := make([]TunnelGroup, 2000) // about 100 KB per event: the socket buffers fill at once
	for i := range big {
		big[i] = TunnelGroup{Location: "/some/location", Upstream: "backend", Peer: "127.0.0.1:8080", Open: i}
	}
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &Handler{Interval: time.Millisecond, Stop: stop, Sample: func() Snapshot {
		samples.Add(1)
		return Snapshot{TunnelGroups: big}
	}}
	returned := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := c.Write([]byte("GET /?events HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// the client never reads: wait until the handler stops taking samples (its write is blocked) for a second
	stalled := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		before := samples.Load()
		time.Sleep(time.Second)
		if n := samples.Load(); n > 0 && n == before {
			stalled = true
			break
		}
	}
	if !stalled {
		t.Fatal("the handler never blocked on the client that does not read")
	}
	cancel()
	select {
	case <-returned:
	case <-time.After(10 * time.Second): // far below the 30 s write timeout: the stop cut the write
		t.Fatal("the event stream's blocked write outlived the stop")
	}
}
