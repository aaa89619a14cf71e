package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Transport is an HTTP/3 client whose connections all go to target (UDP).
func h3Transport(target string, tlsCfg *tls.Config) *http3.Transport {
	return &http3.Transport{
		TLSClientConfig: tlsCfg,
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, target, tlsCfg, cfg)
		},
	}
}

// TestHTTP3 fetches through sluice over HTTP/3 (quic-go's client) from the same locations and upstreams as over
// TCP, checks that the TLS listener on the port announces HTTP/3 with Alt-Svc, and bridges a WebSocket over
// HTTP/3 (RFC 9220 extended CONNECT) to an HTTP/1.1 backend.
func TestHTTP3(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	echo := newHTTPEcho(t)
	wsEcho := newWSEcho(t)
	port, plain := freePort(t), freePort(t)
	conf := fill(t, `events {}
http {
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        listen 127.0.0.1:{{PORT}} quic reuseport;
        listen 127.0.0.1:{{PLAIN}};
        http2 on;
        http3 on;
        server_name h3.test;
        ssl_certificate     h3.pem;
        ssl_certificate_key h3.key.pem;
        location /api/ { proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /ws { proxy_pass http://127.0.0.1:{{WS}}; }
    }
}
`, "PORT", port, "PLAIN", plain, "ECHO", echo.Port, "WS", wsEcho.Port)
	start(t, conf, ca.certFiles(t, "h3", ecdsaP256, "h3.test")...)

	tr := h3Transport(addr(port), ca.clientTLS("h3.test"))
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://h3.test:%d/api/x?y=1", port), nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET over HTTP/3: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 3 {
		t.Fatalf("GET over HTTP/3: %d over HTTP/%d: %s", resp.StatusCode, resp.ProtoMajor, body)
	}
	if seen := decodeSeen(t, string(body)); seen.URI != "/api/x?y=1" {
		t.Errorf("backend saw %s", seen.URI)
	}

	// TCP: the TLS listener announces HTTP/3 on its port; the plain one does not.
	r := get(t, httpClient(addr(port), ca.clientTLS("h3.test")), "https://h3.test/api/", nil)
	if want := fmt.Sprintf(`h3=":%d"; ma=86400`, port); r.Header.Get("Alt-Svc") != want {
		t.Errorf("Alt-Svc over TLS = %q, want %q", r.Header.Get("Alt-Svc"), want)
	}
	r = get(t, httpClient(addr(plain), nil), "http://h3.test/api/", nil)
	if v := r.Header.Get("Alt-Svc"); v != "" {
		t.Errorf("Alt-Svc on the plain listener: %q", v)
	}

	// WebSocket over HTTP/3.
	pr, pw := io.Pipe()
	defer pw.Close()
	wreq, _ := http.NewRequest(http.MethodConnect, fmt.Sprintf("https://h3.test:%d/ws", port), pr)
	wreq.Proto = "websocket"
	wreq.Header.Set("Sec-WebSocket-Version", "13")
	wresp, err := tr.RoundTrip(wreq)
	if err != nil {
		t.Fatalf("extended CONNECT over HTTP/3: %v", err)
	}
	defer wresp.Body.Close()
	if wresp.StatusCode != 200 {
		b, _ := io.ReadAll(wresp.Body)
		t.Fatalf("extended CONNECT over HTTP/3: %d %s", wresp.StatusCode, b)
	}
	rw := struct {
		io.Reader
		io.Writer
	}{wresp.Body, pw}
	msg := make([]byte, 1<<20)
	rand.Read(msg)
	werr := make(chan error, 1)
	go func() { werr <- wsutil.WriteClientMessage(rw, ws.OpBinary, msg) }()
	got, _, err := wsutil.ReadServerData(rw)
	if err != nil || !bytes.Equal(got, msg) || <-werr != nil {
		t.Fatalf("1 MiB echo over HTTP/3: %d bytes, %v", len(got), err)
	}
	if s := wsEcho.all(); len(s) == 0 || s[len(s)-1].Method != http.MethodGet || !strings.EqualFold(s[len(s)-1].Header.Get("Upgrade"), "websocket") {
		t.Errorf("backend did not see a WebSocket upgrade: %+v", s)
	}
}

// TestBinaryUpgradeQUIC: a binary upgrade hands the QUIC socket to the new process too (without reuseport a
// second bind would fail), and HTTP/3 answers from the new process afterwards.
func TestBinaryUpgradeQUIC(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	port := freePort(t)
	prefix, confPath, _ := newPrefix(t, fill(t, `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{{P}} ssl;
        listen 127.0.0.1:{{P}} quic;
        server_name h3.test;
        ssl_certificate     h3.pem;
        ssl_certificate_key h3.key.pem;
        location / { return 200 "pid $pid\n"; }
    }
}
`, "P", port), ca.certFiles(t, "h3", ecdsaP256, "h3.test")...)
	bin := filepath.Join(t.TempDir(), "sluice")
	copyFile(t, sluiceBin, bin)
	old, oldDone, pidFile := startBinary(t, bin, prefix, confPath)
	fetch := func() string {
		tr := h3Transport(addr(port), ca.clientTLS("h3.test"))
		defer tr.Close()
		req, _ := http.NewRequest(http.MethodGet, "https://h3.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got, want := fetch(), fmt.Sprintf("pid %d\n", old.Process.Pid); got != want {
		t.Fatalf("before the upgrade: %q, want %q", got, want)
	}
	if code, out := runSluice(t, "-p", prefix+"/", "-c", confPath, "-s", "upgrade"); code != 0 {
		t.Fatalf("sluice -s upgrade exited %d:\n%s", code, out)
	}
	select {
	case <-oldDone:
	case <-time.After(15 * time.Second):
		t.Fatal("the old process did not exit after the upgrade")
	}
	newPid := readPid(pidFile)
	t.Cleanup(func() { syscall.Kill(newPid, syscall.SIGKILL) })
	if got, want := fetch(), fmt.Sprintf("pid %d\n", newPid); newPid == old.Process.Pid || got != want {
		t.Fatalf("after the upgrade: %q, want %q", got, want)
	}
}

// TestHTTP3GracefulQuit: on QUIT with an HTTP/3 request in flight, the TCP listener stops accepting at once (the
// QUIC drain does not hold it open), the request finishes, and sluice exits.
func TestHTTP3GracefulQuit(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	slow := newSlow(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        listen 127.0.0.1:{{PORT}} quic;
        server_name h3.test;
        ssl_certificate     h3.pem;
        ssl_certificate_key h3.key.pem;
        location / { proxy_pass http://127.0.0.1:{{SLOW}}; }
    }
}
`, "PORT", port, "SLOW", slow.Port), ca.certFiles(t, "h3", ecdsaP256, "h3.test")...)
	tr := h3Transport(addr(port), ca.clientTLS("h3.test"))
	defer tr.Close()
	done := inFlight(func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://h3.test:%d/slow", port), nil)
		return tr.RoundTrip(req)
	})
	select {
	case <-slow.got:
	case <-time.After(10 * time.Second):
		t.Fatal("the HTTP/3 request never reached the slow backend")
	}
	s.Signal(syscall.SIGQUIT)
	if !eventually(3*time.Second, func() bool { return refused(addr(port)) }) {
		t.Error("the TCP listener still accepts 3 s after QUIT while an HTTP/3 request is in flight")
	}
	close(slow.release)
	select {
	case r := <-done:
		if r.err != nil || r.status != http.StatusOK || r.body != "slow done" {
			t.Errorf("HTTP/3 request across QUIT: status %d body %q err %v; want 200 \"slow done\"", r.status, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the HTTP/3 request did not finish after QUIT")
	}
	if _, exited := s.Wait(10 * time.Second); !exited {
		t.Error("sluice did not exit after its last HTTP/3 request finished")
	}
}
