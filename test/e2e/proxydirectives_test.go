package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestProxyMethod: proxy_method sends its method upstream in place of the client's, from variables too; a
// client's HEAD sent as GET gets the head alone. Every answer below is nginx 1.22's on the same configuration,
// except the empty method: nginx sends " /mv/x HTTP/1.1" as it is (its upstream answered 400); sluice refuses
// to send a method that is not a token and answers 500.
func TestProxyMethod(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /m/ { proxy_method POST; proxy_pass http://127.0.0.1:{{UP}}; }
        location /mv/ { proxy_method $arg_m; proxy_pass http://127.0.0.1:{{UP}}; }
        location /mh/ { proxy_method GET; proxy_pass http://127.0.0.1:{{UP}}; }
    }
}
`, "PORT", port, "UP", echo.Port))
	base := "http://" + addr(port)
	c := &http.Client{}
	for _, tc := range []struct{ method, path, body, wantMethod, wantBody string }{
		{"GET", "/m/x", "", "POST", ""},
		{"GET", "/mv/x?m=PUT", "", "PUT", ""},
		{"POST", "/mh/x", "hello", "GET", "hello"}, // the body goes along
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		r := do(t, c, req)
		if r.StatusCode != 200 {
			t.Fatalf("%s %s: %d %q", tc.method, tc.path, r.StatusCode, r.Body)
		}
		if s := decodeSeen(t, r.Body); s.Method != tc.wantMethod || s.Body != tc.wantBody {
			t.Errorf("%s %s: the upstream got %s with body %q, want %s with %q", tc.method, tc.path, s.Method, s.Body, tc.wantMethod, tc.wantBody)
		}
	}
	resp, err := c.Head(base + "/mh/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength <= 0 {
		t.Errorf("HEAD sent as GET: %d, Content-Length %d; want 200 with the GET's length", resp.StatusCode, resp.ContentLength)
	}
	if got := echo.all()[len(echo.all())-1].Method; got != "GET" {
		t.Errorf("HEAD: the upstream got %s, want GET", got)
	}
	if r := get(t, c, base+"/mv/x", nil); r.StatusCode != http.StatusInternalServerError {
		t.Errorf("empty proxy_method: %d, want 500", r.StatusCode)
	}
}

// TestProxyCookieFlags: proxy_cookie_flags adds and removes Secure, HttpOnly and SameSite as nginx 1.22 did on
// the same rules and Set-Cookie headers (every expected value was observed from it): names match without
// case, the ~ regex too, the first matching rule applies, a cookie name from a variable, a rewritten header
// is written again with "; " between its attributes, and a value that is no cookie stays as it came.
func TestProxyCookieFlags(t *testing.T) {
	t.Parallel()
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Set-Cookie"] = strings.Split(r.URL.Query().Get("c"), "|")
		io.WriteString(w, "ok")
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    proxy_cookie_flags one httponly;
    proxy_cookie_flags ~^t secure samesite=strict;
    proxy_cookie_flags $arg_v nosecure nohttponly nosamesite;
    proxy_cookie_flags ~ nosecure samesite=lax;
    server {
        listen {{PORT}};
        location / { proxy_pass http://127.0.0.1:{{UP}}; }
        location /off/ { proxy_cookie_flags off; proxy_pass http://127.0.0.1:{{UP}}; }
    }
}
`, "PORT", port, "UP", up.Port))
	for _, tc := range []struct {
		path string
		in   []string
		want []string
	}{
		{"/a", []string{"one=1; Path=/", "two=2; Secure; HttpOnly; SameSite=None", "three=3;secure", "one=1;httponly"},
			[]string{"one=1; Path=/; HttpOnly", "two=2; Secure; HttpOnly; SameSite=Strict", "three=3; secure; SameSite=Strict", "one=1; httponly"}},
		{"/a", []string{"tx=1; Path=/", "t=2; SameSite=Lax;SECURE", "ONE=1", "Tx=1"},
			[]string{"tx=1; Path=/; Secure; SameSite=Strict", "t=2; SameSite=Strict; SECURE", "ONE=1; HttpOnly", "Tx=1; Secure; SameSite=Strict"}},
		{"/a?v=vv", []string{"vv=1; Secure; HttpOnly; SameSite=Lax; Path=/"}, []string{"vv=1; Path=/"}},
		{"/a", []string{"a=1;Path=/;  Domain=x", "b=1;  Secure ; x=y=z; flag", "noeq", "=v;secure", "a=1; samesite"},
			[]string{"a=1; Path=/; Domain=x; SameSite=Lax", "b=1; x=y=z; flag; SameSite=Lax", "noeq", "=v", "a=1; SameSite=Lax"}},
		{"/off/a", []string{"one=1; Path=/", "t=2;secure"}, []string{"one=1; Path=/", "t=2;secure"}},
	} {
		sep := "?"
		if strings.Contains(tc.path, "?") {
			sep = "&"
		}
		resp, err := http.Get("http://" + addr(port) + tc.path + sep + "c=" + url.QueryEscape(strings.Join(tc.in, "|")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header["Set-Cookie"]; strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s %q:\ngot  %q\nwant %q", tc.path, tc.in, got, tc.want)
		}
	}
}

// TestProxyBind: proxy_bind makes the connection to the upstream from its address, which the upstream sees
// (as with nginx 1.22: 127.0.0.2; from a variable 127.0.0.3; an empty value binds nothing; a value that is no
// address is logged, "invalid local address", and binds nothing; an address of no interface of this host
// gets 500).
func TestProxyBind(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /bind/ { proxy_bind 127.0.0.2; proxy_pass http://127.0.0.1:{{UP}}; }
        location /bindv/ { proxy_bind $arg_b; proxy_pass http://127.0.0.1:{{UP}}; }
    }
}
`, "PORT", port, "UP", echo.Port))
	c := &http.Client{}
	for path, want := range map[string]string{
		"/bind/x":              "127.0.0.2",
		"/bindv/x?b=127.0.0.3": "127.0.0.3",
		"/bindv/x":             "127.0.0.1",
		"/bindv/x?b=nonsense":  "127.0.0.1",
	} {
		r := get(t, c, "http://"+addr(port)+path, nil)
		if r.StatusCode != 200 {
			t.Fatalf("%s: %d", path, r.StatusCode)
		}
		host, _, _ := net.SplitHostPort(decodeSeen(t, r.Body).Remote)
		if host != want {
			t.Errorf("%s: the upstream saw the connection from %s, want %s", path, host, want)
		}
	}
	if !strings.Contains(s.Log(), `invalid local address \"nonsense\"`) && !strings.Contains(s.Log(), `invalid local address "nonsense"`) {
		t.Errorf("no error logged for proxy_bind nonsense:\n%s", s.Log())
	}
	if r := get(t, c, "http://"+addr(port)+"/bindv/x?b=192.0.2.1", nil); r.StatusCode != http.StatusInternalServerError {
		t.Errorf("bind to an address not of this host: %d, want 500", r.StatusCode)
	}
}

// TestProxySocketKeepalive: proxy_socket_keepalive on sets SO_KEEPALIVE on sluice's socket to the upstream,
// and off (the default, as nginx) leaves it unset: the socket is taken from the running sluice (pidfd_getfd)
// and read with getsockopt(2).
func TestProxySocketKeepalive(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	from := map[string]int{} // path -> sluice's local port of the connection that carried it
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, p, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		from[r.URL.Path], _ = strconv.Atoi(p)
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /on { proxy_socket_keepalive on; proxy_pass http://127.0.0.1:{{UP}}; }
        location /off { proxy_pass http://127.0.0.1:{{UP}}; }
    }
}
`, "PORT", port, "UP", up.Port))
	pidfd, err := unix.PidfdOpen(s.cmd.Process.Pid, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(pidfd)
	for path, want := range map[string]int{"/on": 1, "/off": 0} {
		if r := get(t, &http.Client{}, "http://"+addr(port)+path, nil); r.StatusCode != 200 {
			t.Fatalf("%s: %d", path, r.StatusCode)
		}
		mu.Lock()
		local := from[path]
		mu.Unlock()
		// the connection stays open in sluice's pool: find its descriptor in sluice
		fd := socketFD(t, s.cmd.Process.Pid, local)
		sfd, err := unix.PidfdGetfd(pidfd, fd, 0)
		if err != nil {
			t.Skipf("pidfd_getfd: %v", err)
		}
		ka, err := unix.GetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		unix.Close(sfd)
		if err != nil {
			t.Fatal(err)
		}
		if ka != want {
			t.Errorf("%s: SO_KEEPALIVE on sluice's upstream socket = %d, want %d", path, ka, want)
		}
	}
}

// socketFD returns the descriptor of process pid's TCP socket bound to 127.0.0.1:localPort.
func socketFD(t *testing.T, pid, localPort int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf("0100007F:%04X", localPort)
	inode := ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local && f[3] == "01" && f[9] != "0" { // established, not a closed one's entry
			inode = f[9]
		}
	}
	if inode == "" {
		t.Fatalf("no socket bound to port %d in /proc/net/tcp", localPort)
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); l == "socket:["+inode+"]" {
			fd, _ := strconv.Atoi(e.Name())
			return fd
		}
	}
	t.Fatalf("sluice has no descriptor for socket inode %s", inode)
	return -1
}

// TestProxySSLSessionReuse: TLS sessions with an https:// upstream are resumed by default and not with
// proxy_ssl_session_reuse off. As nginx 1.22 against the same upstream (which closes every connection): the
// second connection resumed the first's session; with off, none did.
func TestProxySSLSessionReuse(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	resumed := map[string][]bool{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		resumed[r.URL.Path] = append(resumed[r.URL.Path], r.TLS.DidResume)
		mu.Unlock()
		w.Header().Set("Connection", "close")
		io.WriteString(w, "ok")
	}))
	up.TLS = &tls.Config{}
	up.StartTLS()
	t.Cleanup(up.Close)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /on { proxy_pass https://{{UP}}; }
        location /off { proxy_ssl_session_reuse off; proxy_pass https://{{UP}}; }
    }
}
`, "PORT", port, "UP", up.Listener.Addr().String()))
	c := &http.Client{}
	for _, path := range []string{"/on", "/on", "/off", "/off"} {
		if r := get(t, c, "http://"+addr(port)+path, nil); r.StatusCode != 200 {
			t.Fatalf("%s: %d %q", path, r.StatusCode, r.Body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := resumed["/on"]; len(got) != 2 || got[0] || !got[1] {
		t.Errorf("proxy_ssl_session_reuse on: resumed %v, want [false true]", got)
	}
	if got := resumed["/off"]; len(got) != 2 || got[0] || got[1] {
		t.Errorf("proxy_ssl_session_reuse off: resumed %v, want [false false]", got)
	}
}

// TestProxyLimitRate: proxy_limit_rate 20k reads a 40000-byte response at about 20 KiB/s: nginx 1.22 took 1.8 s
// and sent the first bytes at once; with proxy_buffering off the limit does not apply (nginx: 4 ms). The body
// streams: its first bytes arrive long before the end.
func TestProxyLimitRate(t *testing.T) {
	t.Parallel()
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "40000")
		w.Write(make([]byte, 40000))
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    proxy_limit_rate 20k;
    server {
        listen {{PORT}};
        location /lim { proxy_pass http://127.0.0.1:{{UP}}; }
        location /nb { proxy_buffering off; proxy_pass http://127.0.0.1:{{UP}}; }
    }
}
`, "PORT", port, "UP", up.Port))
	fetch := func(path string) (first, total time.Duration) {
		t0 := time.Now()
		resp, err := http.Get("http://" + addr(port) + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 1)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			t.Fatal(err)
		}
		first = time.Since(t0)
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || n != 39999 {
			t.Fatalf("%s: %d bytes, %v", path, n+1, err)
		}
		return first, time.Since(t0)
	}
	first, total := fetch("/lim")
	if total < 1400*time.Millisecond || total > 10*time.Second {
		t.Errorf("proxy_limit_rate 20k: 40000 bytes took %v, want about 1.8 s", total)
	}
	if first > total/2 {
		t.Errorf("proxy_limit_rate: the first byte came after %v of %v: not streamed", first, total)
	}
	if _, total := fetch("/nb"); total > time.Second {
		t.Errorf("proxy_buffering off: 40000 bytes took %v; the limit must not apply", total)
	}
}

// TestProxyIgnoreClientAbort: with proxy_ignore_client_abort on, a client that goes away while the upstream
// is slow to answer does not end the upstream request: the upstream's connection stays open until it has
// answered, and the request is logged with the upstream's status. nginx 1.22 logged "200 200" for it (and "499"
// without the directive, which TestProxyClientAbort covers).
func TestProxyIgnoreClientAbort(t *testing.T) {
	t.Parallel()
	result := make(chan string, 2)
	up := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		// answer after a second, unless sluice closes the connection first
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := br.ReadByte(); err == nil || !os.IsTimeout(err) {
			result <- "closed before the answer"
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow"); err != nil {
			result <- "answer failed: " + err.Error()
			return
		}
		result <- "answered"
	})
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    log_format st '$status $upstream_status $request_uri';
    server {
        listen {{PORT}};
        access_log logs/st.log st;
        location / { proxy_ignore_client_abort on; proxy_pass http://{{UP}}; }
        location /default { proxy_pass http://{{UP}}; }
    }
}
`, "PORT", port, "UP", up))
	for _, tc := range []struct{ path, want, log string }{
		{"/ignore", "answered", "200 200 /ignore"},
		{"/default", "closed before the answer", "499 "},
	} {
		c, err := net.Dial("tcp", addr(port))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		time.Sleep(300 * time.Millisecond) // past sluice's first wait, after which it watches its client
		c.Close()
		select {
		case got := <-result:
			if got != tc.want {
				t.Errorf("%s: upstream %s, want %s", tc.path, got, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the request did not reach the upstream", tc.path)
		}
		var lines string
		if !eventually(3*time.Second, func() bool {
			data, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", "st.log"))
			lines = string(data)
			return strings.Contains(lines, tc.log)
		}) {
			t.Errorf("%s: access log lacks %q:\n%s", tc.path, tc.log, lines)
		}
	}
}
