package server

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
)

// TestSoKeepalive checks on real sockets that accepted connections get TCP keep-alive only with so_keepalive,
// as in nginx.
func TestSoKeepalive(t *testing.T) {
	for _, tt := range []struct {
		opt  string
		want int
	}{{"", 0}, {"so_keepalive=off", 0}, {"so_keepalive=on", 1}, {"so_keepalive=30s::", 1}} {
		probe, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := probe.Addr().String()
		probe.Close()
		dir := t.TempDir()
		conf := filepath.Join(dir, "sluice.conf")
		os.WriteFile(conf, []byte("events {}\nhttp { server { listen "+addr+" "+tt.opt+"; } }\n"), 0o644)
		cfg, err := config.Load(conf, config.Options{Prefix: dir})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := bind(cfg.HTTP.Servers[0].Listens[0])
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				defer c.Close()
				var b [1]byte
				c.Read(b[:])
			}
		}()
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := c.(*net.TCPConn).SyscallConn()
		var got int
		rc.Control(func(fd uintptr) { got, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
		c.Close()
		ln.Close()
		if got != tt.want {
			t.Errorf("listen %q: SO_KEEPALIVE %d, want %d", tt.opt, got, tt.want)
		}
	}
}
