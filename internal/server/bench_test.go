package server

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
)

// BenchmarkProxyKeepAlive measures the whole request path (accept loop, routing, variables, proxy, access log
// off) for a keep-alive client against a keep-alive upstream, over loopback. Compare allocs/op between changes.
func BenchmarkProxyKeepAlive(b *testing.B) {
	body := strings.Repeat("x", 100)
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go http.Serve(up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer up.Close()
	probe, _ := net.Listen("tcp", "127.0.0.1:0")
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()

	dir := b.TempDir()
	conf := filepath.Join(dir, "sluice.conf")
	os.WriteFile(conf, []byte(`events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:`+itoa(port)+`;
        location / { proxy_pass http://`+up.Addr().String()+`; }
    }
}
`), 0o644)
	cfg, err := config.Load(conf, config.Options{Prefix: dir})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	url := "http://127.0.0.1:" + itoa(port) + "/x"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
