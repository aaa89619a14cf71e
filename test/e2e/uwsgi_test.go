package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// uwsgiApp is the WSGI application the uwsgi_pass and scgi_pass tests run under a real uWSGI: it reports its
// environ, echoes a body with its digest, streams a response in two pieces 1.5 s apart, answers with its own
// status, fields and two Set-Cookie, and answers /slow after 3 s. Its path is PATH_INFO, or DOCUMENT_URI
// (scgi_params sets no PATH_INFO).
const uwsgiApp = `import json, time, hashlib

def application(environ, start_response):
    path = environ.get('PATH_INFO') or environ.get('DOCUMENT_URI', '')
    if path.endswith('/env'):
        keys = ['REQUEST_METHOD', 'PATH_INFO', 'QUERY_STRING', 'CONTENT_LENGTH', 'CONTENT_TYPE', 'REQUEST_URI',
                'SERVER_PROTOCOL', 'REQUEST_SCHEME', 'SERVER_NAME', 'UWSGI_SCHEME', 'wsgi.url_scheme',
                'DOCUMENT_URI', 'DOCUMENT_ROOT', 'SCGI', 'REMOTE_ADDR', 'SERVER_PORT']
        env = {k: environ[k] for k in keys if k in environ}
        env.update({k: v for k, v in environ.items() if k.startswith('HTTP_')})
        env['body'] = environ['wsgi.input'].read().decode()
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [json.dumps(env).encode()]
    if path == '/echo':
        inp, h, out = environ['wsgi.input'], hashlib.sha256(), []
        while True:
            b = inp.read(65536)
            if not b:
                break
            h.update(b)
            out.append(b)
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('X-Sha256', h.hexdigest())])
        return out
    if path == '/stream':
        def gen():
            yield b'first\n'
            time.sleep(1.5)
            yield b'second\n'
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return gen()
    if path == '/status':
        start_response('418 Teapot Thing', [('Content-Type', 'text/plain'), ('Set-Cookie', 'a=1; Path=/'),
                                            ('Set-Cookie', 'b=2; Path=/'), ('X-App', 'yes'), ('X-Accel-Expires', '10')])
        return [b'short and stout\n']
    if path == '/redirect':
        start_response('301 Moved Permanently', [('Location', 'http://example.com/x')])
        return [b'']
    if path == '/slow':
        time.sleep(3)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'late\n']
    start_response('404 Not Found', [('Content-Type', 'text/plain')])
    return [b'nope\n']
`

// startUWSGI runs Debian's uwsgi with its Python 3 plugin and uwsgiApp, on a unix socket and a loopback port.
func startUWSGI(t *testing.T) (sock string, port int) {
	t.Helper()
	return startUWSGIOn(t, "--socket")
}

// startUWSGIOn is startUWSGI with the sockets speaking the protocol of flag: --socket (uwsgi) or --scgi-socket.
func startUWSGIOn(t *testing.T, flag string) (sock string, port int) {
	t.Helper()
	bin, err := exec.LookPath("uwsgi")
	if err != nil {
		t.Fatal("uwsgi not found: install Debian's uwsgi and uwsgi-plugin-python3 packages (scripts/test.sh does)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(uwsgiApp), 0o644); err != nil {
		t.Fatal(err)
	}
	sock, port = filepath.Join(dir, "app.sock"), freePort(t)
	cmd := exec.Command(bin, "--plugin", "python3", "--master", "--processes", "3", "--die-on-term",
		flag, sock, flag, addr(port), "--wsgi-file", filepath.Join(dir, "app.py"), "--chdir", dir)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting uwsgi: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("uwsgi output:\n%s", out.String())
		}
	})
	if !eventually(10*time.Second, func() bool {
		c1, err1 := net.Dial("tcp", addr(port))
		c2, err2 := net.Dial("unix", sock)
		if err1 == nil {
			c1.Close()
		}
		if err2 == nil {
			c2.Close()
		}
		return err1 == nil && err2 == nil && strings.Contains(out.String(), "spawned uWSGI worker 3")
	}) {
		t.Fatalf("uwsgi did not start:\n%s", out.String())
	}
	return sock, port
}

// TestUWSGI runs Django's and Flask's deployment recipe (include uwsgi_params; uwsgi_pass) against a real
// uWSGI, on its unix socket and on TCP. The expected answers and log lines are nginx 1.22's with the same
// configuration and application.
func TestUWSGI(t *testing.T) {
	t.Parallel()
	sock, up := startUWSGI(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    client_max_body_size 20m;
    upstream grp { server 127.0.0.1:{{DEAD}}; server 127.0.0.1:{{UP}}; }
    upstream two { server 127.0.0.1:{{UP}} max_fails=1 fail_timeout=30s; server unix:{{SOCK}} max_fails=1 fail_timeout=30s; }
    large_client_header_buffers 8 16k;
    server {
        listen {{PORT}};
        server_name app.test;
        location / { include uwsgi_params; uwsgi_pass unix:{{SOCK}}; }
        location /tcp/ { include uwsgi_params; uwsgi_pass 127.0.0.1:{{UP}}; }
        location /stream { include uwsgi_params; uwsgi_buffering off; uwsgi_pass uwsgi://127.0.0.1:{{UP}}; }
        location /slow { include uwsgi_params; uwsgi_read_timeout 1s; uwsgi_pass 127.0.0.1:{{UP}}; }
        location /down/ { include uwsgi_params; uwsgi_pass 127.0.0.1:{{DEAD}}; }
        location /group/ { include uwsgi_params; uwsgi_param UWSGI_SCHEME $scheme; uwsgi_pass grp; }
        location /two/ { include uwsgi_params; uwsgi_pass two; }
    }
}
`, "PORT", port, "UP", up, "SOCK", sock, "DEAD", freePort(t)))
	c := httpClient(addr(port), nil)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	env := func(t *testing.T, req *http.Request) map[string]string { t.Helper(); return appEnviron(t, c, req) }
	check := checkEnviron

	t.Run("environ over the unix socket", func(t *testing.T) {
		req, _ := http.NewRequest("GET", url+"/env?x=1&y=2", nil)
		req.Header.Set("X-Custom", "hi")
		req.Header.Set("User-Agent", "e2e")
		check(t, env(t, req), map[string]string{"REQUEST_METHOD": "GET", "PATH_INFO": "/env", "QUERY_STRING": "x=1&y=2",
			"REQUEST_URI": "/env?x=1&y=2", "CONTENT_LENGTH": "", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_SCHEME": "http",
			"SERVER_NAME": "app.test", "HTTP_X_CUSTOM": "hi", "HTTP_USER_AGENT": "e2e", "HTTP_HOST": addr(port),
			"wsgi.url_scheme": "http", "body": ""})
	})
	t.Run("POST over TCP", func(t *testing.T) {
		req, _ := http.NewRequest("POST", url+"/tcp/env?q", strings.NewReader("a=b&c=d"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		check(t, env(t, req), map[string]string{"REQUEST_METHOD": "POST", "PATH_INFO": "/tcp/env", "QUERY_STRING": "q",
			"CONTENT_LENGTH": "7", "CONTENT_TYPE": "application/x-www-form-urlencoded", "body": "a=b&c=d"})
	})
	t.Run("upstream group fails over", func(t *testing.T) {
		req, _ := http.NewRequest("GET", url+"/group/env", nil)
		check(t, env(t, req), map[string]string{"PATH_INFO": "/group/env", "UWSGI_SCHEME": "http"})
		if !eventually(5*time.Second, func() bool {
			return strings.Contains(s.Log(), `connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: app.test, request: "GET /group/env HTTP/1.1", upstream: "uwsgi://127.0.0.1:`)
		}) {
			t.Errorf("no connect() failed line for the dead peer:\n%s", s.Log())
		}
	})

	t.Run("a few MB each way", func(t *testing.T) { echoMegabytes(t, c, url+"/echo") })

	t.Run("uwsgi_buffering off streams", func(t *testing.T) {
		appStreams(t, c, url+"/stream")
	})

	t.Run("status and fields of the app", func(t *testing.T) {
		appStatus(t, c, url+"/status")
		noRedirect := &http.Client{Transport: c.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		r := get(t, noRedirect, url+"/redirect", nil)
		if r.StatusCode != 301 || r.Header.Get("Location") != "http://example.com/x" {
			t.Errorf("redirect: %d %v", r.StatusCode, r.Header)
		}
		if r = get(t, c, url+"/missing", nil); r.StatusCode != 404 || r.Body != "nope\n" {
			t.Errorf("404: %d %q", r.StatusCode, r.Body)
		}
	})

	t.Run("a request too big for a uwsgi packet is 500 and blames no peer", func(t *testing.T) {
		for range 2 {
			req, _ := http.NewRequest("GET", url+"/two/env", nil)
			for i := range 5 {
				req.Header.Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("b", 14000))
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 500 {
				t.Errorf("%d, want 500 (nginx: uwsgi request is too big)", resp.StatusCode)
			}
		}
		if r := get(t, c, url+"/two/env", nil); r.StatusCode != 200 {
			t.Errorf("a request after two too big ones: %d, want 200 (no peer taken out)", r.StatusCode)
		}
	})
	t.Run("uwsgi down is 502", func(t *testing.T) { appFails(t, c, s, url, "uwsgi") })
	t.Run("uwsgi_read_timeout is 504", func(t *testing.T) { appTimesOut(t, c, s, url, "uwsgi") })
}

// appEnviron sends req to uwsgiApp's /env and returns the environ it reported.
func appEnviron(t *testing.T, c *http.Client, req *http.Request) map[string]string {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]string
	if resp.StatusCode != 200 || json.Unmarshal(b, &m) != nil {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	return m
}

// checkEnviron reports each field of want that got does not have with the same value.
func checkEnviron(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// echoMegabytes posts 3 MB to uwsgiApp's /echo at url, with a length and chunked, and checks the digest the
// app saw and the bytes that came back.
func echoMegabytes(t *testing.T, c *http.Client, url string) {
	t.Helper()
	payload := make([]byte, 3<<20+17)
	rand.Read(payload)
	sum := sha256.Sum256(payload)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(payload)
		if chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		req, _ := http.NewRequest("POST", url, body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, _ := io.Copy(h, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Sha256") != hex.EncodeToString(sum[:]) || n != int64(len(payload)) || !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Errorf("chunked=%v: %d, app saw %s, %d bytes back", chunked, resp.StatusCode, resp.Header.Get("X-Sha256"), n)
		}
	}
}

// appStreams checks that the first line of uwsgiApp's /stream at url arrives before the app's pause.
func appStreams(t *testing.T, c *http.Client, url string) {
	t.Helper()
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, _ := br.ReadString('\n')
	early := time.Since(start)
	rest, _ := io.ReadAll(br)
	if first != "first\n" || string(rest) != "second\n" || early > time.Second {
		t.Errorf("first %q after %v, then %q; want the first line before the app's 1.5 s pause", first, early, rest)
	}
}

// appStatus checks uwsgiApp's /status answer at url: its status line, body, fields and both Set-Cookie.
func appStatus(t *testing.T, c *http.Client, url string) {
	t.Helper()
	r := get(t, c, url, nil)
	if r.StatusCode != 418 || r.Status != "418 Teapot Thing" || r.Body != "short and stout\n" || r.Header.Get("X-App") != "yes" ||
		r.Header.Get("Content-Type") != "text/plain" || r.Header.Get("X-Accel-Expires") != "" {
		t.Errorf("%s %q %v", r.Status, r.Body, r.Header)
	}
	if got := r.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1; Path=/" || got[1] != "b=2; Path=/" {
		t.Errorf("Set-Cookie = %q, want both", got)
	}
}

// appFails checks that url's /down/x, passed to a closed port, is 502 with nginx's log line naming the scheme.
func appFails(t *testing.T, c *http.Client, s *Sluice, url, scheme string) {
	t.Helper()
	if r := get(t, c, url+"/down/x", nil); r.StatusCode != 502 {
		t.Errorf("%d, want 502", r.StatusCode)
	}
	want := `connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: app.test, request: "GET /down/x HTTP/1.1", upstream: "` + scheme + `://127.0.0.1:`
	if !eventually(5*time.Second, func() bool { return strings.Contains(s.Log(), want) }) {
		t.Errorf("no nginx-worded connect() failed line:\n%s", s.Log())
	}
}

// appTimesOut checks that url's /slow, with a 1 s read timeout before the app's 3 s answer, is 504 with
// nginx's log line.
func appTimesOut(t *testing.T, c *http.Client, s *Sluice, url, scheme string) {
	t.Helper()
	start := time.Now()
	if r := get(t, c, url+"/slow", nil); r.StatusCode != 504 || time.Since(start) > 2500*time.Millisecond {
		t.Errorf("%d after %v, want 504 after about 1 s", r.StatusCode, time.Since(start))
	}
	want := `upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: app.test, request: "GET /slow HTTP/1.1", upstream: "` + scheme + `://127.0.0.1:`
	if !eventually(5*time.Second, func() bool { return strings.Contains(s.Log(), want) }) {
		t.Errorf("no nginx-worded timeout line:\n%s", s.Log())
	}
}
