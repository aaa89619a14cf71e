package server

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

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
// when the test ends.
func startServer(tb testing.TB, dir, conf string) {
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
