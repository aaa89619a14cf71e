package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// seenRequest is what a backend reports about a request it received.
type seenRequest struct {
	Method string      `json:"method"`
	URI    string      `json:"uri"`
	Proto  string      `json:"proto"`
	Host   string      `json:"host"`
	Header http.Header `json:"headers"`
	Body   string      `json:"body"`
	Remote string      `json:"remote"`
}

func newSeenRequest(r *http.Request, body []byte) seenRequest {
	return seenRequest{
		Method: r.Method,
		URI:    r.RequestURI,
		Proto:  r.Proto,
		Host:   r.Host,
		Header: r.Header.Clone(),
		Body:   string(body),
		Remote: r.RemoteAddr,
	}
}

// recorder keeps the requests a backend saw, safe for concurrent use.
type recorder struct {
	mu   sync.Mutex
	reqs []seenRequest
}

func (r *recorder) add(s seenRequest) {
	r.mu.Lock()
	r.reqs = append(r.reqs, s)
	r.mu.Unlock()
}

// all returns a copy of the requests seen so far.
func (r *recorder) all() []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenRequest(nil), r.reqs...)
}

// backend is a loopback HTTP server started by a test.
type backend struct {
	*httptest.Server
	recorder
	Port int
}

func newBackend(t *testing.T, h http.Handler) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(h)
	b.Port = b.Listener.Addr().(*net.TCPAddr).Port
	t.Cleanup(b.Close)
	return b
}

// newHTTPEcho starts a backend that answers every request with a JSON
// seenRequest (method, URI, Host, headers, body) and X-Backend: http-echo.
func newHTTPEcho(t *testing.T) *backend {
	var b *backend
	b = newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := newSeenRequest(r, body)
		b.add(s)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", "http-echo")
		json.NewEncoder(w).Encode(s)
	}))
	return b
}

// wsEcho is a WebSocket backend echoing every message with its type. The
// handshake response carries X-Seen-Headers: the JSON request headers it saw.
type wsEcho struct {
	*backend
	mu    sync.Mutex
	conns []*websocket.Conn
}

func newWSEcho(t *testing.T) *wsEcho {
	e := &wsEcho{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	e.backend = newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := newSeenRequest(r, nil)
		e.add(s)
		hdr, _ := json.Marshal(s.Header)
		c, err := up.Upgrade(w, r, http.Header{"X-Seen-Headers": {string(hdr)}})
		if err != nil {
			return // Upgrade has answered 400 already
		}
		e.mu.Lock()
		e.conns = append(e.conns, c)
		e.mu.Unlock()
		defer c.Close()
		for {
			mt, rd, err := c.NextReader()
			if err != nil {
				return
			}
			wr, err := c.NextWriter(mt)
			if err != nil {
				return
			}
			if _, err := io.Copy(wr, rd); err != nil {
				return
			}
			if err := wr.Close(); err != nil {
				return
			}
		}
	}))
	// Hijacked connections outlive httptest's Close: close them ourselves.
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, c := range e.conns {
			c.Close()
		}
	})
	return e
}

// sseBackend writes n server-sent events, one every interval, flushing each.
type sseBackend struct {
	*backend
	n        int
	finished atomic.Bool // set once the last event has been written
}

func newSSE(t *testing.T, n int, interval time.Duration) *sseBackend {
	s := &sseBackend{n: n}
	s.backend = newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(newSeenRequest(r, nil))
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		f := w.(http.Flusher)
		for i := 1; i <= n; i++ {
			if i > 1 {
				select {
				case <-time.After(interval):
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			f.Flush()
		}
		s.finished.Store(true)
	}))
	return s
}

// newRefuser starts a backend that refuses WebSocket upgrades: paths
// containing "426" get 426 with body "need-upgrade-426", all others 400 with
// body "refused-400".
func newRefuser(t *testing.T) *backend {
	var b *backend
	b = newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.add(newSeenRequest(r, nil))
		w.Header().Set("Content-Type", "text/plain")
		if strings.Contains(r.URL.Path, "426") {
			w.Header().Set("X-Refused", "426")
			w.WriteHeader(http.StatusUpgradeRequired)
			io.WriteString(w, "need-upgrade-426")
			return
		}
		w.Header().Set("X-Refused", "400")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "refused-400")
	}))
	return b
}

// newBadAccept starts a backend that answers every request with 101 and a
// wrong Sec-WebSocket-Accept, then sends a text frame "leak".
func newBadAccept(t *testing.T) *backend {
	var b *backend
	b = newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.add(newSeenRequest(r, nil))
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n" +
			"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: dGhpcyBpcyB3cm9uZyE=\r\n\r\n")
		brw.Write([]byte{0x81, 4, 'l', 'e', 'a', 'k'})
		brw.Flush()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		io.Copy(io.Discard, c)
	}))
	return b
}

// slowBackend holds each request until release is closed (or 5 s pass), then
// answers 200 "slow done". got receives one value per arrived request.
type slowBackend struct {
	*backend
	got     chan struct{}
	release chan struct{}
}

func newSlow(t *testing.T) *slowBackend {
	s := &slowBackend{got: make(chan struct{}, 16), release: make(chan struct{})}
	s.backend = newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(newSeenRequest(r, nil))
		s.got <- struct{}{}
		select {
		case <-s.release:
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slow done")
	}))
	return s
}

// rawBackend answers every request on a keep-alive connection with the exact
// bytes of response, for tests about headers net/http would rewrite.
type rawBackend struct {
	recorder
	Port int
}

func newRawBackend(t *testing.T, response string) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{Port: ln.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(r.Body)
					b.add(newSeenRequest(r, body))
					if _, err := io.WriteString(c, response); err != nil {
						return
					}
				}
			}()
		}
	}()
	return b
}

// rawUpstream listens on loopback and runs serve on each connection (closed when serve returns), for
// upstreams that answer what net/http cannot write or that misbehave; it returns the address.
func rawUpstream(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}
