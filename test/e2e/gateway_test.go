package e2e

import (
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fullBacklogPort returns the port of a socket whose listen backlog is full, so the kernel drops further SYNs
// and a connect to it times out.
func fullBacklogPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	full := sa.(*syscall.SockaddrInet4).Port
	for range 3 { // fill the backlog; these are never accepted
		go func() {
			if c, err := net.DialTimeout("tcp", addr(full), 10*time.Second); err == nil {
				time.Sleep(10 * time.Second)
				c.Close()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	return full
}

// peerApp is a FastCGI application that remembers the source addresses of the connections it accepted. It
// answers 20 bytes with a Content-Length, or 30000 for a path ending in /big.
type peerApp struct {
	port  int
	mu    sync.Mutex
	peers []string
}

func startPeerApp(t *testing.T) *peerApp {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	a := &peerApp{port: l.Addr().(*net.TCPAddr).Port}
	go fcgi.Serve(peerListener{l, a}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := "0123456789abcdefghij"
		if strings.HasSuffix(r.URL.Path, "/big") {
			body = strings.Repeat("x", 30000)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	}))
	return a
}

// hosts are the source IP addresses of the connections a accepted.
func (a *peerApp) hosts() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, p := range a.peers {
		h, _, _ := net.SplitHostPort(p)
		out = append(out, h)
	}
	return out
}

type peerListener struct {
	net.Listener
	a *peerApp
}

func (l peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.a.mu.Lock()
		l.a.peers = append(l.a.peers, c.RemoteAddr().String())
		l.a.mu.Unlock()
	}
	return c, err
}

const gatewayConf = `events {}
http {
    access_log off;
    fastcgi_param REQUEST_METHOD $request_method;
    fastcgi_param REQUEST_URI $request_uri;
    fastcgi_param SCRIPT_NAME $fastcgi_script_name;
    fastcgi_param SERVER_PROTOCOL $server_protocol;
    upstream t1 { server 127.0.0.1:{{DEAD1}}; server 127.0.0.1:{{DEAD2}}; server 127.0.0.1:{{APP}} backup; }
    upstream t2 { server 127.0.0.1:{{DEAD1}}; server 127.0.0.1:{{DEAD2}}; server 127.0.0.1:{{APP}} backup; }
    upstream t3 { server 127.0.0.1:{{FULL1}}; server 127.0.0.1:{{FULL2}}; server 127.0.0.1:{{APP}} backup; }
    upstream t4 { server 127.0.0.1:{{FULL1}}; server 127.0.0.1:{{FULL2}}; server 127.0.0.1:{{APP}} backup; }
    upstream two { server 127.0.0.1:{{APP}} max_fails=1 fail_timeout=30s; server 127.0.0.2:{{APP}} max_fails=1 fail_timeout=30s; }
    server {
        listen 127.0.0.1:{{PORT}};
        location /fr/ { fastcgi_pass 127.0.0.1:{{APP}}; fastcgi_force_ranges on; }
        location /nf/ { fastcgi_pass 127.0.0.1:{{APP}}; }
        location /frsub/ { fastcgi_pass 127.0.0.1:{{APP}}; fastcgi_force_ranges on; sub_filter 0123 ABCD; sub_filter_types text/plain; }
        location /bind/ { fastcgi_pass 127.0.0.1:{{BINDAPP}}; fastcgi_bind 127.0.0.7; fastcgi_socket_keepalive on; fastcgi_send_lowat 0; }
        location /bindv/ { fastcgi_pass 127.0.0.1:{{BINDVAPP}}; fastcgi_bind $arg_b; }
        location /rate/ { fastcgi_pass 127.0.0.1:{{APP}}; fastcgi_limit_rate 20k; }
        location /twob/ { fastcgi_pass two; fastcgi_bind $arg_b; }
        location /t1/ { fastcgi_pass t1; fastcgi_next_upstream_tries 2; }
        location /t2/ { fastcgi_pass t2; }
        location /t3/ { fastcgi_pass t3; fastcgi_connect_timeout 300ms; fastcgi_next_upstream_timeout 500ms; }
        location /t4/ { fastcgi_pass t4; fastcgi_connect_timeout 300ms; }
    }
}
`

// TestGatewayDirectives: fastcgi_force_ranges, _bind, _limit_rate, _next_upstream_tries and
// _next_upstream_timeout answer as nginx 1.22 does on the same configuration (checked side by side): a single
// range of a 200 with a Content-Length is answered 206 (416 out of range; several ranges get the whole body
// with Accept-Ranges); connections come from the bound address, a non-local one gives 500; the response is
// read at the rate; two tries of dead peers end with 502 before the backup is reached; tries stop once the
// timeout has passed (504 after two 300ms connect timeouts).
func TestGatewayDirectives(t *testing.T) {
	t.Parallel()
	app, bindApp, bindvApp := startPeerApp(t), startPeerApp(t), startPeerApp(t)
	full1, full2 := fullBacklogPort(t), fullBacklogPort(t)
	port := freePort(t)
	start(t, fill(t, gatewayConf, "PORT", port, "APP", app.port, "BINDAPP", bindApp.port, "BINDVAPP", bindvApp.port,
		"DEAD1", freePort(t), "DEAD2", freePort(t), "FULL1", full1, "FULL2", full2))
	base := "http://" + addr(port)

	for _, tc := range []struct {
		path, rng    string
		status       int
		body         string
		contentRange string
		acceptRanges string
	}{
		{"/fr/x", "bytes=2-5", 206, "2345", "bytes 2-5/20", ""},
		{"/fr/x", "bytes=-3", 206, "hij", "bytes 17-19/20", ""},
		{"/fr/x", "bytes=50-", 416, "", "bytes */20", ""},
		{"/fr/x", "bytes=1-2,4-5", 200, "0123456789abcdefghij", "", "bytes"},
		{"/nf/x", "bytes=2-5", 200, "0123456789abcdefghij", "", ""},
		// a body sub_filter rewrites is sent whole (nginx's range filter runs after it)
		{"/frsub/x", "bytes=2-5", 200, "ABCD456789abcdefghij", "", ""},
		{"/bindv/x?b=127.0.0.9", "", 200, "0123456789abcdefghij", "", ""},
		{"/bindv/x?b=10.99.99.99", "", 500, "", "", ""},
		{"/t1/x", "", 502, "", "", ""},
		{"/t2/x", "", 200, "0123456789abcdefghij", "", ""},
		{"/t3/x", "", 504, "", "", ""},
		{"/t4/x", "", 200, "0123456789abcdefghij", "", ""},
	} {
		hdr := http.Header{}
		if tc.rng != "" {
			hdr.Set("Range", tc.rng)
		}
		r := get(t, http.DefaultClient, base+tc.path, hdr)
		if r.StatusCode != tc.status || tc.status != 416 && tc.status < 500 && r.Body != tc.body ||
			r.Header.Get("Content-Range") != tc.contentRange || r.Header.Get("Accept-Ranges") != tc.acceptRanges {
			t.Errorf("%s (Range %q): %d %q Content-Range %q Accept-Ranges %q, want %d %q %q %q", tc.path, tc.rng,
				r.StatusCode, r.Body, r.Header.Get("Content-Range"), r.Header.Get("Accept-Ranges"), tc.status, tc.body, tc.contentRange, tc.acceptRanges)
		}
	}
	if got := get(t, http.DefaultClient, base+"/bind/x", nil); got.StatusCode != 200 {
		t.Errorf("/bind/: %d", got.StatusCode)
	}
	if h := bindApp.hosts(); len(h) == 0 || h[0] != "127.0.0.7" {
		t.Errorf("fastcgi_bind 127.0.0.7: the application saw connections from %v", h)
	}
	if h := bindvApp.hosts(); len(h) != 1 || h[0] != "127.0.0.9" {
		t.Errorf("fastcgi_bind $arg_b: the application saw connections from %v, want one from 127.0.0.9", h)
	}

	// an address this host cannot bind is this host's error: 500, no other peer tried, none taken out (nginx)
	for range 2 {
		if r := get(t, http.DefaultClient, base+"/twob/x?b=192.0.2.1", nil); r.StatusCode != 500 {
			t.Errorf("fastcgi_bind 192.0.2.1: %d, want 500", r.StatusCode)
		}
	}
	if r := get(t, http.DefaultClient, base+"/twob/x", nil); r.StatusCode != 200 {
		t.Errorf("after two failed binds: %d, want 200 (no peer taken out)", r.StatusCode)
	}

	// a HEAD's body is dropped unpaced (nginx: at once)
	headStart := time.Now()
	if req, _ := http.NewRequest(http.MethodHead, base+"/rate/big", nil); do(t, http.DefaultClient, req).StatusCode != 200 || time.Since(headStart) > 500*time.Millisecond {
		t.Errorf("HEAD with fastcgi_limit_rate 20k took %v, want no pacing", time.Since(headStart))
	}

	began := time.Now()
	if r := get(t, http.DefaultClient, base+"/rate/big", nil); len(r.Body) != 30000 {
		t.Fatalf("/rate/big: %d bytes", len(r.Body))
	}
	if d := time.Since(began); d < time.Second {
		t.Errorf("30000 bytes at fastcgi_limit_rate 20k took %v, want about 1.5s (nginx: 1.45s)", d)
	}
}
