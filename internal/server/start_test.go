package server

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer probe.Close()
	return probe.Addr().(*net.TCPAddr).Port
}

// startServer writes conf to dir/sluice.conf, starts a server on it (prefix dir, logs discarded) and closes it
// when the test ends; it returns the server (to reload it, see TestLimitsFollowReload).
func startServer(tb testing.TB, dir, conf string) *Server {
	tb.Helper()
	path := filepath.Join(dir, "sluice.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{Prefix: dir})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// rawUpstream serves each connection accepted on a loopback port with serve (which closes it) until the test
// ends, and returns the address: an upstream that answers exactly as a test needs.
func rawUpstream(tb testing.TB, serve func(c net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// TestLimitsFollowReload: a kept-alive connection's requests after a reload have the head limits of the new
// configuration (the limits a connection read are kept only until a reload); the request it was already
// waiting for when the reload came has those it waited under.
func TestLimitsFollowReload(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	path := filepath.Join(dir, "sluice.conf")
	conf := func(buffers string) string {
		return `events {}
http {
    access_log off;
    large_client_header_buffers ` + buffers + `;
    server {
        listen 127.0.0.1:` + itoa(port) + `;
        location / { return 200 "ok"; }
    }
}
`
	}
	s := startServer(t, dir, conf("4 64k"))
	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	req := "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("x", 20000) + "\r\n\r\n"
	status := func() int {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != 200 {
		t.Fatalf("20 KB head under 4 64k buffers: %d", got)
	}
	if got := status(); got != 200 {
		t.Fatalf("second request: %d", got)
	}
	// the server completes a response before its handler returns (the log phase counts $bytes_sent), so the
	// client can read it before the connection's goroutine is back waiting for the next request: give it time
	// to get there, or the reload would come first and the request below would get the new limits
	time.Sleep(300 * time.Millisecond)
	if err := os.WriteFile(path, []byte(conf("4 4k")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(func() (*config.Config, error) { return config.Load(path, config.Options{Prefix: dir}) }); err != nil {
		t.Fatal(err)
	}
	// the connection was already waiting for its next request under the limits it had read
	if got := status(); got != 200 {
		t.Fatalf("the request the connection awaited during the reload: %d, want 200", got)
	}
	if got := status(); got != 400 {
		t.Fatalf("20 KB head after a reload to 4 4k buffers: %d, want 400", got)
	}
}
