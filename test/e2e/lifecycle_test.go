package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// refused reports whether a new TCP connection to target fails right now.
func refused(target string) bool {
	c, err := net.DialTimeout("tcp", target, 500*time.Millisecond)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

func TestGracefulQuit(t *testing.T) {
	t.Parallel()
	slow := newSlow(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location / { proxy_pass http://127.0.0.1:{{SLOW}}; }
    }
}
`, "PORT", port, "SLOW", slow.Port))

	done := inFlight(func() (*http.Response, error) {
		return httpClient(addr(port), nil).Get(fmt.Sprintf("http://127.0.0.1:%d/slow", port))
	})
	select {
	case <-slow.got:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the slow backend")
	}

	s.Signal(syscall.SIGQUIT)
	// While the request is in flight, sluice stops accepting.
	if !eventually(3*time.Second, func() bool { return refused(addr(port)) }) {
		t.Error("sluice still accepts new connections 3 s after QUIT")
	}
	if s.Exited() {
		t.Error("sluice exited on QUIT before its in-flight request finished")
	}
	close(slow.release)

	select {
	case r := <-done:
		if r.err != nil || r.status != http.StatusOK || r.body != "slow done" {
			t.Errorf("in-flight request across QUIT: status %d body %q err %v; want 200 \"slow done\"", r.status, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request did not finish after QUIT")
	}
	code, exited := s.Wait(5 * time.Second)
	if !exited {
		t.Fatal("sluice did not exit within 5 s after its last request finished")
	}
	if code != 0 {
		t.Errorf("sluice exited %d after QUIT, want 0", code)
	}
	if !refused(addr(port)) {
		t.Error("port still accepts connections after sluice exited")
	}
}

func TestFastStopTerm(t *testing.T) {
	t.Parallel()
	ws := newWSEcho(t)
	echo := newHTTPEcho(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /ws { proxy_pass http://127.0.0.1:{{WSPORT}}; }
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "PORT", port, "WSPORT", ws.Port, "ECHO", echo.Port))

	// An idle keep-alive connection after one request.
	kc := rawConn(t, addr(port), nil)
	rs := rawExchange(t, kc, "GET /ka HTTP/1.1\r\nHost: term.test\r\n\r\n", "GET")
	if rs[0].StatusCode != http.StatusOK || rs[0].Close {
		t.Fatalf("keep-alive request: %s (close=%v)", rs[0].Status, rs[0].Close)
	}
	// An open WebSocket tunnel.
	wc := dialWS(t, wsDialer(addr(port), nil), fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	echoOnce(t, wc, websocket.TextMessage, "before TERM")

	begin := time.Now()
	s.Signal(syscall.SIGTERM)
	code, exited := s.Wait(10 * time.Second) // a drain would last as long as the tunnel; 10 s leaves room for a loaded machine
	if !exited {
		t.Fatal("sluice did not exit within 10 s of TERM with an idle keep-alive connection and an open WebSocket")
	}
	t.Logf("exited %v after TERM", time.Since(begin).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("sluice exited %d after TERM, want 0", code)
	}

	kc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := kc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("keep-alive connection after TERM: read %d bytes, err %v; want it closed", n, err)
	}
	wc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, msg, err := wc.ReadMessage(); err == nil || isTimeout(err) {
		t.Errorf("WebSocket after TERM: got %q, err %v; want it closed", msg, err)
	}
}

// TestQuitThenTerm: `-s stop` (TERM) during a graceful drain that an open WebSocket would hold forever (no
// worker_shutdown_timeout) ends it at once and closes the tunnel, as with nginx.
func TestQuitThenTerm(t *testing.T) {
	t.Parallel()
	ws := newWSEcho(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /ws { proxy_pass http://127.0.0.1:{{WSPORT}}; }
    }
}
`, "PORT", port, "WSPORT", ws.Port))
	wc := dialWS(t, wsDialer(addr(port), nil), fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	echoOnce(t, wc, websocket.TextMessage, "before QUIT")

	s.Signal(syscall.SIGQUIT)
	if !eventually(5*time.Second, func() bool { return refused(addr(port)) }) {
		t.Fatal("sluice still accepts 5 s after QUIT")
	}
	echoOnce(t, wc, websocket.TextMessage, "while draining")
	if s.Exited() {
		t.Fatal("sluice exited on QUIT while a tunnel was open")
	}
	s.Signal(syscall.SIGTERM)
	code, exited := s.Wait(10 * time.Second)
	if !exited {
		t.Fatal("sluice still draining 10 s after TERM")
	}
	if code != 0 {
		t.Errorf("sluice exited %d after QUIT then TERM, want 0", code)
	}
	wc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := wc.ReadMessage(); err == nil || isTimeout(err) {
		t.Errorf("WebSocket after TERM: got %q, err %v; want it closed", msg, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestSignalFlagStop(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location / { proxy_pass http://127.0.0.1:9; }
    }
}
`, "PORT", port))
	code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "stop")
	if code != 0 {
		t.Fatalf("sluice -s stop exited %d:\n%s", code, out)
	}
	code, exited := s.Wait(5 * time.Second)
	if !exited {
		t.Fatal("sluice did not exit after -s stop")
	}
	if code != 0 {
		t.Errorf("sluice exited %d after -s stop, want 0", code)
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	a, b := newHTTPEcho(t), newHTTPEcho(t)
	port := freePort(t)
	const confT = `events {}
http {
    server {
        listen {{PORT}};
        location / { proxy_pass http://127.0.0.1:{{UP}}; }
    }
}
`
	s := start(t, fill(t, confT, "PORT", port, "UP", a.Port))
	url := fmt.Sprintf("http://127.0.0.1:%d/r", port)
	upstreamHost := func() string {
		c := httpClient(addr(port), nil)
		c.Transport.(*http.Transport).DisableKeepAlives = true
		r := get(t, c, url, nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %s %q", url, r.Status, r.Body)
		}
		return decodeSeen(t, r.Body).Host
	}
	if h := upstreamHost(); h != addr(a.Port) {
		t.Fatalf("before reload the request went to %s, want %s", h, addr(a.Port))
	}

	// New connections keep being accepted while the reload happens.
	var failures, total atomic.Int32
	stop := make(chan struct{})
	hammered := make(chan struct{})
	go func() {
		defer close(hammered)
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for {
			select {
			case <-stop:
				return
			default:
			}
			total.Add(1)
			resp, err := c.Get(url)
			if err != nil || resp.StatusCode != http.StatusOK {
				failures.Add(1)
			}
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	if err := os.WriteFile(s.Conf, []byte(fill(t, confT, "PORT", port, "UP", b.Port)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGHUP)
	if !eventually(5*time.Second, func() bool { return upstreamHost() == addr(b.Port) }) {
		t.Fatalf("5 s after HUP requests still go to %s, want the new config's %s", addr(a.Port), addr(b.Port))
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-hammered
	if f := failures.Load(); f != 0 {
		t.Errorf("%d of %d requests on new connections failed during the reload", f, total.Load())
	}

	// A broken config is refused by -s reload's signal and the old one
	// keeps serving.
	if err := os.WriteFile(s.Conf, []byte(fill(t, "events {}\nhttp {\n    server {\n        listen 127.0.0.1:{{PORT}};\n        proxy_set_heder X y;\n    }\n}\n", "PORT", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload")
	if code == 0 || !strings.Contains(out, s.Conf+":5") {
		t.Fatalf("sluice -s reload of a broken file exited %d, want non-zero with %s:5:\n%s", code, s.Conf, out)
	}
	// the running process refuses it too (a HUP sent without -s)
	s.Signal(syscall.SIGHUP)
	if !eventually(5*time.Second, func() bool { return strings.Contains(s.Log(), "[emerg]") && strings.Contains(s.Log(), s.Conf+":5") }) {
		t.Errorf("no [emerg] line with %s:5 in the error log after HUP with a broken file", s.Conf)
	}
	if s.Exited() {
		t.Fatal("sluice exited after reloading a broken config; want it to keep the running config")
	}
	if h := upstreamHost(); h != addr(b.Port) {
		t.Errorf("after a failed reload requests go to %s, want the last good config's %s", h, addr(b.Port))
	}
}

// TestGlobalDirectivesFlag: -g adds main-context directives; here it moves the pid file, which start waits for.
func TestGlobalDirectivesFlag(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location / { return 200 "g ok"; }
    }
}
`, "PORT", port), withArgs("-g", "pid logs/other.pid;"), withPidFile("logs/other.pid"))
	resp, err := http.Get("http://" + addr(port) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "g ok" {
		t.Fatalf("body %q", body)
	}
	if _, err := os.Stat(filepath.Join(s.Prefix, "logs", "sluice.pid")); err == nil {
		t.Error("the default pid file was written although -g moved it")
	}
}

// TestKeepaliveTime: the first request on an HTTP/1 keep-alive connection after keepalive_time is its last
// (Connection: close), as nginx's keepalive_time; before that the connection stays open.
func TestKeepaliveTime(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    keepalive_time 1s;
    server { listen {{PORT}}; location / { return 200 "ok"; } }
}
`, "PORT", port))
	c, err := net.DialTimeout("tcp", addr(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	ask := func() *http.Response {
		t.Helper()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: k.test\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := ask(); r.Close {
		t.Fatal("the first request closed the connection")
	}
	time.Sleep(1200 * time.Millisecond)
	if r := ask(); !r.Close {
		t.Error("a request after keepalive_time kept the connection")
	}
}
