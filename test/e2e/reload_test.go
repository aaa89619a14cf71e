package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsTalker keeps one WebSocket busy: a numbered message every interval, each echo checked in order.
type wsTalker struct {
	c              *websocket.Conn
	sent, received atomic.Int64
	err            atomic.Value // first error (string)
	stop           chan struct{}
	done           chan struct{}
}

func talk(c *websocket.Conn, interval time.Duration) *wsTalker {
	w := &wsTalker{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			n := w.sent.Add(1)
			msg := "m" + strconv.FormatInt(n, 10)
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				w.err.CompareAndSwap(nil, "write "+msg+": "+err.Error())
				return
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, got, err := c.ReadMessage()
			if err != nil {
				w.err.CompareAndSwap(nil, "read echo of "+msg+": "+err.Error())
				return
			}
			if string(got) != msg {
				w.err.CompareAndSwap(nil, fmt.Sprintf("echo %q, want %q", got, msg))
				return
			}
			w.received.Add(1)
		}
	}()
	return w
}

func (w *wsTalker) finish() (sent, received int64, err string) {
	close(w.stop)
	<-w.done
	e, _ := w.err.Load().(string)
	return w.sent.Load(), w.received.Load(), e
}

// loadGen sends GETs from a few clients (keep-alive and fresh connections) until stopped.
type loadGen struct {
	total, failed atomic.Int64
	mu            sync.Mutex
	failures      []string
	stop          chan struct{}
	wg            sync.WaitGroup
}

func startLoad(urls func() []string, clients int) *loadGen {
	g := &loadGen{stop: make(chan struct{})}
	for i := 0; i < clients; i++ {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			// one client opens a connection per request (new connections during the change); few, so the test
			// does not use up ephemeral ports other tests' freePort picks
			fresh := i == 0
			tr := &http.Transport{DisableKeepAlives: fresh}
			pause := 5 * time.Millisecond
			if fresh {
				pause = 20 * time.Millisecond
			}
			defer tr.CloseIdleConnections()
			c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
			for {
				for _, u := range urls() {
					select {
					case <-g.stop:
						return
					default:
					}
					g.total.Add(1)
					resp, err := c.Get(u)
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if err == nil && resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %s", resp.Status)
						}
					}
					if err != nil {
						g.failed.Add(1)
						g.mu.Lock()
						if len(g.failures) < 10 {
							g.failures = append(g.failures, u+": "+err.Error())
						}
						g.mu.Unlock()
					}
					time.Sleep(pause)
				}
			}
		}()
	}
	return g
}

func (g *loadGen) finish() (total, failed int64, failures []string) {
	close(g.stop)
	g.wg.Wait()
	return g.total.Load(), g.failed.Load(), g.failures
}

// TestReloadUnderLoad: under continuous GETs and 50 WebSockets each sending a message every 100 ms, three reloads
// (new upstream with a location removed, an added listener, a broken file) fail no request and lose no message;
// the WebSocket whose location was removed stays up.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	a, b := newHTTPEcho(t), newHTTPEcho(t)
	ws := newWSEcho(t)
	p1, p2 := freePort(t), freePort(t)
	const v1 = `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{{P1}};
        location /ws { proxy_pass http://127.0.0.1:{{WS}}; }
        location /old-ws { proxy_pass http://127.0.0.1:{{WS}}; }
        location / { proxy_pass http://127.0.0.1:{{A}}; }
    }
}
`
	const v2 = `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{{P1}};
        location /ws { proxy_pass http://127.0.0.1:{{WS}}; }
        location / { proxy_pass http://127.0.0.1:{{B}}; }
    }
}
`
	const v3 = `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{{P1}};
        listen 127.0.0.1:{{P2}};
        location /ws { proxy_pass http://127.0.0.1:{{WS}}; }
        location / { proxy_pass http://127.0.0.1:{{B}}; }
    }
}
`
	kv := []any{"P1", p1, "P2", p2, "WS", ws.Port, "A", a.Port, "B", b.Port}
	s := start(t, fill(t, v1, kv...))

	var talkers []*wsTalker
	d := wsDialer(addr(p1), nil)
	for i := 0; i < 50; i++ {
		talkers = append(talkers, talk(dialWS(t, d, fmt.Sprintf("ws://127.0.0.1:%d/ws", p1), nil), 100*time.Millisecond))
	}
	orphan := talk(dialWS(t, d, fmt.Sprintf("ws://127.0.0.1:%d/old-ws", p1), nil), 100*time.Millisecond)

	var urlsMu sync.Mutex
	urls := []string{fmt.Sprintf("http://127.0.0.1:%d/load", p1)}
	load := startLoad(func() []string {
		urlsMu.Lock()
		defer urlsMu.Unlock()
		return urls
	}, 4)
	time.Sleep(300 * time.Millisecond)

	reload := func(conf string) (int, string) {
		if err := os.WriteFile(s.Conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload")
	}
	// 1: the upstream changes and /old-ws disappears.
	if code, out := reload(fill(t, v2, kv...)); code != 0 {
		t.Fatalf("reload 1 exited %d:\n%s", code, out)
	}
	before := len(b.all())
	if !eventually(5*time.Second, func() bool { return len(b.all()) > before }) {
		t.Fatal("after reload 1 no request reached the new upstream")
	}
	aCount := len(a.all())
	time.Sleep(300 * time.Millisecond)
	if n := len(a.all()); n != aCount {
		t.Errorf("after reload 1 the old upstream still got %d requests", n-aCount)
	}
	// 2: a listener is added; the load uses it too.
	if code, out := reload(fill(t, v3, kv...)); code != 0 {
		t.Fatalf("reload 2 exited %d:\n%s", code, out)
	}
	if r := get(t, httpClient(addr(p2), nil), fmt.Sprintf("http://127.0.0.1:%d/new", p2), nil); r.StatusCode != http.StatusOK {
		t.Fatalf("the added listener answers %s", r.Status)
	}
	urlsMu.Lock()
	urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d/load2", p2))
	urlsMu.Unlock()
	time.Sleep(300 * time.Millisecond)
	// 3: a broken file is refused with file:line; everything keeps serving.
	broken := strings.Replace(fill(t, v3, kv...), "location / {", "location / { proxy_pas http://x;", 1)
	code, out := reload(broken)
	if code == 0 {
		t.Errorf("reload of a broken file exited 0:\n%s", out)
	}
	if want := s.Conf + ":8"; !strings.Contains(out, want) || !strings.Contains(out, "[emerg]") {
		t.Errorf("reload of a broken file printed %q; want [emerg] and %s", out, want)
	}
	time.Sleep(500 * time.Millisecond)

	total, failed, failures := load.finish()
	if failed != 0 {
		t.Errorf("%d of %d GETs failed across three reloads: %v", failed, total, failures)
	}
	t.Logf("%d GETs across three reloads", total)
	var sent, received int64
	for i, w := range talkers {
		s, r, err := w.finish()
		sent, received = sent+s, received+r
		if err != "" {
			t.Errorf("WebSocket %d: %s", i, err)
		}
	}
	if sent != received || sent < 50*10 {
		t.Errorf("50 WebSockets: %d messages sent, %d echoed", sent, received)
	}
	t.Logf("%d WebSocket messages echoed", received)
	if s, r, err := orphan.finish(); err != "" || s != r {
		t.Errorf("WebSocket of the removed location: sent %d, echoed %d, %s", s, r, err)
	}
	// the orphaned tunnel still works after all three reloads
	echoOnce(t, orphan.c, websocket.TextMessage, "still here")
	// and the removed location is gone for new requests (falls to location /, an HTTP upstream)
	if r := get(t, httpClient(addr(p1), nil), fmt.Sprintf("http://127.0.0.1:%d/old-ws", p1), nil); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, addr(b.Port)) {
		t.Errorf("GET /old-ws after its removal: %s %q; want the / location's upstream", r.Status, r.Body)
	}
}

// TestReloadOrphanTimeout: with worker_shutdown_timeout, a tunnel whose location a reload removed is closed when
// the timeout passes; a tunnel whose location stayed is not.
func TestReloadOrphanTimeout(t *testing.T) {
	t.Parallel()
	ws := newWSEcho(t)
	port := freePort(t)
	const confT = `worker_shutdown_timeout 3s;
events {}
http {
    server {
        listen 127.0.0.1:{{P}};
        location /stay { proxy_pass http://127.0.0.1:{{WS}}; }
        {{GONE}}
    }
}
`
	s := start(t, fill(t, confT, "P", port, "WS", ws.Port, "GONE", fmt.Sprintf("location /gone { proxy_pass http://127.0.0.1:%d; }", ws.Port)))
	d := wsDialer(addr(port), nil)
	stay := dialWS(t, d, fmt.Sprintf("ws://127.0.0.1:%d/stay", port), nil)
	gone := dialWS(t, d, fmt.Sprintf("ws://127.0.0.1:%d/gone", port), nil)
	echoOnce(t, gone, websocket.TextMessage, "before")
	if err := os.WriteFile(s.Conf, []byte(fill(t, confT, "P", port, "WS", ws.Port, "GONE", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload"); code != 0 {
		t.Fatalf("reload exited %d:\n%s", code, out)
	}
	// -s reload waits for the verdict; on a loaded machine that can take a while, and the 3s clock started when
	// the new configuration was installed, so the orphan is only known to be open while well inside it.
	if time.Since(signalled) < 1500*time.Millisecond {
		echoOnce(t, gone, websocket.TextMessage, "right after the reload")
	}
	gone.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, msg, err := gone.ReadMessage(); err == nil || isTimeout(err) {
		t.Errorf("tunnel of the removed location: got %q, err %v; want it closed after worker_shutdown_timeout", msg, err)
	}
	if early := time.Since(signalled); early < 2*time.Second {
		t.Errorf("tunnel of the removed location closed %v after the reload; want worker_shutdown_timeout (3s)", early.Round(time.Millisecond))
	}
	echoOnce(t, stay, websocket.TextMessage, "after the timeout")
}

// TestReloadCertificate: a reload that replaces the certificate files serves the new certificate on new
// connections, while a connection made before keeps working; `-s quit` then waits for an open tunnel.
func TestReloadCertificate(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	ws := newWSEcho(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen 127.0.0.1:{{P}} ssl;
        server_name r.test;
        ssl_certificate r.pem;
        ssl_certificate_key r.key.pem;
        location /ws { proxy_pass http://127.0.0.1:{{WS}}; }
        location / { return 200 "ok"; }
    }
}
`, "P", port, "WS", ws.Port), ca.certFiles(t, "r", ecdsaP256, "r.test")...)
	serial := func() string {
		c, err := tls.Dial("tcp", addr(port), ca.clientTLS("r.test"))
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	wc := dialWS(t, wsDialer(addr(port), ca.clientTLS("r.test")), fmt.Sprintf("wss://r.test:%d/ws", port), nil)
	echoOnce(t, wc, websocket.TextMessage, "before")

	certPEM, keyPEM := ca.issue(t, rsa2048, "r.test")
	for name, data := range map[string][]byte{"r.pem": certPEM, "r.key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(s.Prefix, "conf", name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload"); code != 0 {
		t.Fatalf("reload exited %d: %s", code, out)
	}
	if after := serial(); after == before {
		t.Errorf("after the reload new connections still get the old certificate (serial %s)", before)
	}
	echoOnce(t, wc, websocket.TextMessage, "after")

	// graceful stop waits for the open tunnel, then exits
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "quit"); code != 0 {
		t.Fatalf("quit exited %d: %s", code, out)
	}
	time.Sleep(500 * time.Millisecond)
	if s.Exited() {
		t.Fatal("sluice exited on quit while a WebSocket tunnel was open")
	}
	echoOnce(t, wc, websocket.TextMessage, "while draining")
	wc.Close()
	closed := time.Now()
	defer func() { t.Logf("exited %v after the last tunnel closed", time.Since(closed).Round(time.Millisecond)) }()
	if code, exited := s.Wait(5 * time.Second); !exited || code != 0 {
		t.Errorf("after the last tunnel closed: exited %v code %d; want exit 0", exited, code)
	}
}

// TestReloadBindFailure: a reload whose new listen address cannot be bound is refused by the running process;
// `-s reload` learns it from the process and exits non-zero with file:line, and the old listeners keep serving.
// A later reload removing a listener closes only that one.
func TestReloadBindFailure(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	p1, p2 := freePort(t), freePort(t)
	const confT = `events {}
http {
    server {
        listen 127.0.0.1:{{P1}};
        {{EXTRA}}
        location / { return 200 "ok"; }
    }
}
`
	s := start(t, fill(t, confT, "P1", p1, "EXTRA", fmt.Sprintf("listen 127.0.0.1:%d;", p2)))
	write := func(extra string) {
		if err := os.WriteFile(s.Conf, []byte(fill(t, confT, "P1", p1, "EXTRA", extra)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("listen %s;", busy.Addr()))
	code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload")
	if code == 0 || !strings.Contains(out, "bind()") || !strings.Contains(out, s.Conf+":5") {
		t.Errorf("reload onto a busy port exited %d with %q; want non-zero, bind() and %s:5", code, out, s.Conf)
	}
	for _, p := range []int{p1, p2} {
		if r := get(t, httpClient(addr(p), nil), fmt.Sprintf("http://127.0.0.1:%d/", p), nil); r.StatusCode != 200 {
			t.Errorf("port %d after the refused reload: %s", p, r.Status)
		}
	}
	// a reload that drops p2 and adds a QUIC socket on a busy UDP port is refused as a whole: p2 stays open
	busyUDP, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyUDP.Close()
	write(fmt.Sprintf("listen %s quic; http3 on; ssl_certificate internal;", busyUDP.LocalAddr()))
	code, out = runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload")
	if code == 0 || !strings.Contains(out, "(quic) failed") || !strings.Contains(out, s.Conf+":5") {
		t.Errorf("reload onto a busy UDP port exited %d with %q; want non-zero, (quic) failed and %s:5", code, out, s.Conf)
	}
	for _, p := range []int{p1, p2} {
		if r := get(t, httpClient(addr(p), nil), fmt.Sprintf("http://127.0.0.1:%d/", p), nil); r.StatusCode != 200 {
			t.Errorf("port %d after the refused QUIC reload: %s", p, r.Status)
		}
	}
	write("")
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload"); code != 0 {
		t.Fatalf("reload removing a listener exited %d: %s", code, out)
	}
	if !eventually(3*time.Second, func() bool { return refused(addr(p2)) }) {
		t.Error("the removed listener still accepts")
	}
	if r := get(t, httpClient(addr(p1), nil), fmt.Sprintf("http://127.0.0.1:%d/", p1), nil); r.StatusCode != 200 {
		t.Errorf("the kept listener after removing another: %s", r.Status)
	}
}

// TestReloadInFlight: a request in flight when a reload removes its location's upstream finishes on the
// configuration it started with, with the old headers; the next request sees the new configuration.
func TestReloadInFlight(t *testing.T) {
	t.Parallel()
	slow := newSlow(t)
	port := freePort(t)
	const confT = `events {}
http {
    server {
        listen 127.0.0.1:{{P}};
        location / { {{BODY}} }
    }
}
`
	s := start(t, fill(t, confT, "P", port, "BODY", fmt.Sprintf(`add_header X-Gen old; proxy_pass http://127.0.0.1:%d;`, slow.Port)))
	done := inFlight(func() (*http.Response, error) {
		return httpClient(addr(port), nil).Get(fmt.Sprintf("http://127.0.0.1:%d/slow", port))
	})
	select {
	case <-slow.got:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the slow backend")
	}
	if err := os.WriteFile(s.Conf, []byte(fill(t, confT, "P", port, "BODY", `add_header X-Gen new always; return 200 "new";`)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload"); code != 0 {
		t.Fatalf("reload exited %d: %s", code, out)
	}
	if r := get(t, httpClient(addr(port), nil), fmt.Sprintf("http://127.0.0.1:%d/x", port), nil); r.Body != "new" || r.Header.Get("X-Gen") != "new" {
		t.Errorf("a request after the reload got %q (X-Gen %q); want the new configuration", r.Body, r.Header.Get("X-Gen"))
	}
	close(slow.release)
	select {
	case r := <-done:
		if gen := r.header.Get("X-Gen"); r.err != nil || r.status != 200 || r.body != "slow done" || gen != "old" {
			t.Errorf("the in-flight request: %d %q (X-Gen %q) %v; want 200 \"slow done\" from the old configuration", r.status, r.body, gen, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight request did not finish")
	}
}
