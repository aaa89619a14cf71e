package e2e

import (
	"bufio"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	apr1 "github.com/GehirnInc/crypt/apr1_crypt"
	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/crypto/bcrypt"

	"github.com/sluice-proxy/sluice/internal/version"
)

// TestRealIP: only trusted peers change $remote_addr (X-Forwarded-For with and without recursion, X-Real-IP);
// $realip_remote_addr keeps the peer and $proxy_add_x_forwarded_for ends with the client address.
func TestRealIP(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	trusted, untrusted, recursive := freePort(t), freePort(t), freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{T}};
        set_real_ip_from 127.0.0.0/8;
        real_ip_header X-Forwarded-For;
        location / { return 200 "$remote_addr|$realip_remote_addr|$proxy_add_x_forwarded_for"; }
        location /up { proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
    server {
        listen {{U}};
        set_real_ip_from 10.0.0.0/8;
        real_ip_header X-Forwarded-For;
        location / { return 200 "$remote_addr|$realip_remote_addr|$proxy_add_x_forwarded_for"; }
    }
    server {
        listen {{R}};
        set_real_ip_from 127.0.0.1;
        set_real_ip_from 10.0.0.0/8;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        location / { return 200 "$remote_addr|$realip_remote_addr"; }
    }
}
`, "T", trusted, "U", untrusted, "R", recursive, "ECHO", echo.Port))
	cases := []struct {
		port      int
		xff, want string
	}{
		{trusted, "", "127.0.0.1|127.0.0.1|127.0.0.1"},
		{trusted, "203.0.113.5", "203.0.113.5|127.0.0.1|203.0.113.5, 203.0.113.5"},
		{trusted, "6.6.6.6, 203.0.113.5", "203.0.113.5|127.0.0.1|6.6.6.6, 203.0.113.5, 203.0.113.5"},
		{trusted, "not-an-ip", "127.0.0.1|127.0.0.1|not-an-ip, 127.0.0.1"},
		{untrusted, "203.0.113.5", "127.0.0.1|127.0.0.1|203.0.113.5, 127.0.0.1"},
		{recursive, "6.6.6.6, 203.0.113.5, 10.1.1.1", "203.0.113.5|127.0.0.1"},
		{recursive, "10.2.2.2, 10.1.1.1", "10.2.2.2|127.0.0.1"},
	}
	for _, tc := range cases {
		var hdr []string
		if tc.xff != "" {
			hdr = []string{"X-Forwarded-For", tc.xff}
		}
		if r := semGet(t, tc.port, "/", "", hdr...); r.Body != tc.want {
			t.Errorf("port %d XFF %q: %q, want %q", tc.port, tc.xff, r.Body, tc.want)
		}
	}
	r := semGet(t, trusted, "/up", "", "X-Forwarded-For", "203.0.113.5")
	if got := decodeSeen(t, r.Body).Header.Get("X-Forwarded-For"); got != "203.0.113.5, 203.0.113.5" {
		t.Errorf("upstream X-Forwarded-For %q", got)
	}
}

// proxyRequest dials port, sends a PROXY protocol header (v1 or v2, or raw bytes), optionally starts TLS, sends
// a GET and returns the response body ("" and false when the connection closed without a response).
func proxyRequest(t *testing.T, port int, version byte, raw string, useTLS bool) (string, bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if raw != "" {
		io.WriteString(c, raw)
	} else {
		src := &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 4444}
		dst := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: port}
		if _, err := proxyproto.HeaderProxyFromAddrs(version, src, dst).WriteTo(c); err != nil {
			t.Fatal(err)
		}
	}
	var conn net.Conn = c
	if useTLS {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			return "", false
		}
		conn = tc
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), true
}

// TestProxyProtocol: `listen … proxy_protocol` reads v1 and v2 headers (before TLS on an ssl socket); the
// address counts as the client's only with real_ip_header proxy_protocol from a trusted peer; a connection
// without a valid header is closed unanswered.
func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	trusted, untrusted, tlsPort := freePort(t), freePort(t), freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{T}} proxy_protocol;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        location / { return 200 "$remote_addr:$remote_port|$realip_remote_addr|$proxy_protocol_addr:$proxy_protocol_port"; }
    }
    server {
        listen {{U}} proxy_protocol;
        set_real_ip_from 10.0.0.0/8;
        real_ip_header proxy_protocol;
        location / { return 200 "$remote_addr|$proxy_protocol_addr"; }
    }
    server {
        listen {{S}} ssl proxy_protocol;
        ssl_certificate self-signed;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        location / { return 200 "$remote_addr|$scheme"; }
    }
}
`, "T", trusted, "U", untrusted, "S", tlsPort))
	for _, v := range []byte{1, 2} {
		if body, ok := proxyRequest(t, trusted, v, "", false); body != "198.51.100.7:4444|127.0.0.1|198.51.100.7:4444" {
			t.Errorf("v%d trusted: %q (answered %v)", v, body, ok)
		}
		if body, _ := proxyRequest(t, untrusted, v, "", false); body != "127.0.0.1|198.51.100.7" {
			t.Errorf("v%d untrusted peer: %q, want the peer as $remote_addr", v, body)
		}
		if body, _ := proxyRequest(t, tlsPort, v, "", true); body != "198.51.100.7|https" {
			t.Errorf("v%d over TLS: %q", v, body)
		}
	}
	for name, raw := range map[string]string{
		"no header":      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"garbage":        "PROXY TCP4 nonsense\r\n",
		"spoofed family": "PROXY TCP4 ::1 127.0.0.1 1 2\r\n",
	} {
		if body, ok := proxyRequest(t, trusted, 1, raw, false); ok {
			t.Errorf("%s: answered %q, want the connection closed", name, body)
		}
	}
}

// TestAllowDeny: rules apply in order, the first match decides; the path tricks of the hostile-request table
// (dot segments, percent-encoding, doubled slashes) meet the same location's rules. (As in nginx, `return`
// runs in the rewrite phase before access checks, so the locations proxy.)
func TestAllowDeny(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        set_real_ip_from 127.0.0.1;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /admin {
            deny 10.1.2.3;
            allow 10.1.0.0/16;
            allow 2001:db8::/32;
            deny all;
            proxy_pass http://127.0.0.1:{{ECHO}};
        }
    }
}
`, nil, "ECHO", echo.Port)
	for _, tc := range []struct {
		path, ip string
		status   int
	}{
		{"/admin", "10.1.9.9", 200}, {"/admin", "10.1.2.3", 403}, {"/admin", "10.2.0.1", 403}, {"/admin", "2001:db8::7", 200},
		{"/admin", "", 403}, {"/open", "10.2.0.1", 200},
		{"/x/../admin", "10.2.0.1", 403}, {"/%61dmin", "10.2.0.1", 403}, {"//admin", "10.2.0.1", 403}, {"/admin/./", "10.2.0.1", 403},
		{"/%2e%2e/admin", "10.2.0.1", 400}, {"/x/%2E%2E/admin", "10.2.0.1", 403},
	} {
		req := "GET " + tc.path + " HTTP/1.1\r\nHost: a.test\r\n"
		if tc.ip != "" {
			req += "X-Real-IP: " + tc.ip + "\r\n"
		}
		r := semRaw(t, port, req+"\r\n", "GET")
		if r.StatusCode != tc.status {
			t.Errorf("%s from %q: %d, want %d", tc.path, tc.ip, r.StatusCode, tc.status)
		}
	}
}

// TestAuthBasic: bcrypt, apr1 and {SHA} entries of an htpasswd file; a wrong password or user gets 401 with
// the realm; the file is read again when it changes, without a reload.
func TestAuthBasic(t *testing.T) {
	t.Parallel()
	bc, _ := bcrypt.GenerateFromPassword([]byte("b-pass"), bcrypt.MinCost)
	ap, err := apr1.New().Generate([]byte("a-pass"), []byte("$apr1$saltsalt"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte("s-pass"))
	users := "# comment\nbob:" + string(bc) + "\nann:" + ap + "\nsam:{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
	port, s := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        location = / { return 200 "public"; }
        location /private {
            auth_basic "Staff \"only\"";
            auth_basic_user_file users.htpasswd;
            location /private/open { auth_basic off; }
        }
    }
}
`, []option{withFile("conf/users.htpasswd", []byte(users)), withFile("html/private/x", []byte("hello")), withFile("html/private/open", []byte("open"))})
	client := httpClient(addr(port), nil)
	try := func(user, pass, path string) response {
		req, _ := http.NewRequest("GET", semURL(port, path), nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		return do(t, client, req)
	}
	for _, tc := range []struct {
		user, pass, path string
		status           int
		body             string
	}{
		{"bob", "b-pass", "/private/x", 200, "hello"},
		{"ann", "a-pass", "/private/x", 200, "hello"},
		{"sam", "s-pass", "/private/x", 200, "hello"},
		{"bob", "wrong", "/private/x", 401, ""},
		{"eve", "b-pass", "/private", 401, ""},
		{"", "", "/private", 401, ""},
		{"", "", "/private/open", 200, "open"},
		{"", "", "/", 200, "public"},
	} {
		r := try(tc.user, tc.pass, tc.path)
		if r.StatusCode != tc.status || (tc.body != "" && r.Body != tc.body) {
			t.Errorf("%s as %q: %d %q, want %d %q", tc.path, tc.user, r.StatusCode, r.Body, tc.status, tc.body)
		}
		if tc.status == 401 && r.Header.Get("WWW-Authenticate") != `Basic realm="Staff \"only\""` {
			t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
		}
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(s.Log(), `user "bob": password mismatch`) }) {
		t.Errorf("no error log line for the wrong password:\n%s", s.Log())
	}
	// a new user is picked up without a reload
	sum2 := sha1.Sum([]byte("new-pass"))
	os.WriteFile(filepath.Join(s.Prefix, "conf/users.htpasswd"), []byte(users+"neo:{SHA}"+base64.StdEncoding.EncodeToString(sum2[:])+"\n"), 0o644)
	if !eventually(5*time.Second, func() bool { return try("neo", "new-pass", "/private/x").StatusCode == 200 }) {
		t.Error("a user added to the file was not accepted")
	}
}

// TestLimitReq drives limit_req with a fixed schedule at a rate (6r/m) slow enough that no request drains the
// bucket during the test: 1 + burst requests pass, the rest get the status; the zone keeps its state across a
// reload.
func TestLimitReq(t *testing.T) {
	t.Parallel()
	const conf = `events {}
http {
    limit_req_zone $binary_remote_addr zone=one:1m rate=6r/m;
    limit_req_zone $http_x_key zone=keyed:1m rate=6r/m;
    limit_req_zone $binary_remote_addr zone=queue:1m rate=2r/s;
    server {
        listen {{PORT}};
        location /burst { limit_req zone=one burst=2 nodelay; }
        location /keyed { limit_req zone=keyed; limit_req_status 429; }
        location /queued { limit_req zone=queue burst=1; }
        location /v { return 200 "{{V}}"; }
    }
}
`
	port := freePort(t)
	s := start(t, fill(t, conf, "PORT", port, "V", "1"), withFile("html/burst", []byte("ok")), withFile("html/keyed", []byte("ok")), withFile("html/queued", []byte("ok")))
	var got []int
	for i := 0; i < 5; i++ {
		got = append(got, semGet(t, port, "/burst", "").StatusCode)
	}
	if want := []int{200, 200, 200, 503, 503}; !slices.Equal(got, want) {
		t.Errorf("/burst statuses %v, want %v", got, want)
	}
	got = nil
	for _, k := range []string{"a", "a", "b", "", "", ""} {
		var hdr []string
		if k != "" {
			hdr = []string{"X-Key", k}
		}
		got = append(got, semGet(t, port, "/keyed", "", hdr...).StatusCode)
	}
	if want := []int{200, 429, 200, 200, 200, 200}; !slices.Equal(got, want) {
		t.Errorf("/keyed statuses %v, want %v (an empty key is not limited)", got, want)
	}
	// without nodelay a request within the burst waits its turn: at 2r/s the second one is held about 500ms
	first := semGet(t, port, "/queued", "").StatusCode
	began := time.Now()
	second := semGet(t, port, "/queued", "").StatusCode
	if waited := time.Since(began); first != 200 || second != 200 || waited < 400*time.Millisecond {
		t.Errorf("/queued: %d then %d after %v; want both 200, the second delayed about 500ms", first, second, waited)
	}
	if !eventually(5*time.Second, func() bool {
		return regexp.MustCompile(`limiting requests, excess: 2\.9\d\d by zone "one"|limiting requests, excess: 3\.000 by zone "one"`).MatchString(s.Log())
	}) {
		t.Errorf("no log line for the refused request:\n%s", s.Log())
	}
	os.WriteFile(s.Conf, []byte(fill(t, conf, "PORT", port, "V", "2")), 0o644)
	s.Signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool { return semGet(t, port, "/v", "").Body == "2" }) {
		t.Fatal("reload did not happen")
	}
	if st := semGet(t, port, "/burst", "").StatusCode; st != 503 {
		t.Errorf("after reload /burst = %d, want 503: the zone keeps its state", st)
	}
}

// TestLimitConnWebSocket: an open WebSocket tunnel holds its limit_conn slot until it closes.
func TestLimitConnWebSocket(t *testing.T) {
	t.Parallel()
	ws := newWSEcho(t)
	port, s := semStart(t, `events {}
http {
    limit_conn_zone $binary_remote_addr zone=peraddr:1m;
    server {
        listen {{PORT}};
        location /ws { limit_conn peraddr 1; limit_conn_status 429; proxy_pass http://127.0.0.1:{{WS}}; }
    }
}
`, nil, "WS", ws.Port)
	d := wsDialer(addr(port), nil)
	first := dialWS(t, d, "ws://"+addr(port)+"/ws", nil)
	echoOnce(t, first, 1, "hello")
	if _, resp, err := d.Dial("ws://"+addr(port)+"/ws", nil); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("second tunnel while the first is open: err %v, response %v; want 429", err, resp)
	}
	if !eventually(3*time.Second, func() bool {
		return strings.Contains(s.Log(), `limiting connections by zone "peraddr", client: 127.0.0.1`)
	}) {
		t.Errorf("no nginx error line for the refused tunnel:\n%s", s.Log())
	}
	first.Close()
	ok := eventually(5*time.Second, func() bool {
		c, _, err := d.Dial("ws://"+addr(port)+"/ws", nil)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if !ok {
		t.Errorf("slot not released after the tunnel closed\n%s", s.Log())
	}
}

// TestSatisfyAny: with `satisfy any` an allowed address needs no credentials, others must authenticate
// (a denied address with good credentials passes; without them it gets 401, not 403).
func TestSatisfyAny(t *testing.T) {
	t.Parallel()
	sum := sha1.Sum([]byte("pw"))
	users := "ann:{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        set_real_ip_from 127.0.0.1;
        location /any {
            satisfy any;
            allow 10.0.0.0/8;
            deny all;
            auth_basic "staff";
            auth_basic_user_file users.htpasswd;
        }
        location /all {
            allow 10.0.0.0/8;
            deny all;
            auth_basic "staff";
            auth_basic_user_file users.htpasswd;
        }
    }
}
`, []option{withFile("conf/users.htpasswd", []byte(users)), withFile("html/any", []byte("in")), withFile("html/all", []byte("in"))})
	creds := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("ann:pw")) + "\r\n"
	for _, tc := range []struct {
		path, ip, auth string
		status         int
	}{
		{"/any", "10.1.1.1", "", 200}, {"/any", "192.0.2.1", "", 401}, {"/any", "192.0.2.1", creds, 200},
		{"/all", "10.1.1.1", "", 401}, {"/all", "10.1.1.1", creds, 200}, {"/all", "192.0.2.1", creds, 403},
	} {
		r := semRaw(t, port, "GET "+tc.path+" HTTP/1.1\r\nHost: a.test\r\nX-Real-IP: "+tc.ip+"\r\n"+tc.auth+"\r\n", "GET")
		if r.StatusCode != tc.status {
			t.Errorf("%s from %s (credentials %v): %d, want %d", tc.path, tc.ip, tc.auth != "", r.StatusCode, tc.status)
		}
	}
}

// TestProxyProtocolHAProxy: a real PROXY-protocol sender, HAProxy with send-proxy (v1) and send-proxy-v2, in
// front of sluice: the client's address (127.0.0.2 here) becomes $remote_addr, HAProxy's stays in
// $realip_remote_addr.
func TestProxyProtocolHAProxy(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed (scripts/test.sh installs it)")
	}
	sp, v1, v2 := freePort(t), freePort(t), freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen 127.0.0.1:{{S}} proxy_protocol;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        location / { return 200 "$remote_addr|$realip_remote_addr"; }
    }
}
`, "S", sp))
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(cfg, []byte(fill(t, `global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend f1
    bind 127.0.0.1:{{V1}}
    default_backend b1
backend b1
    server s1 127.0.0.1:{{S}} send-proxy
frontend f2
    bind 127.0.0.1:{{V2}}
    default_backend b2
backend b2
    server s2 127.0.0.1:{{S}} send-proxy-v2
`, "V1", v1, "V2", v2, "S", sp)), 0o644)
	cmd := exec.Command(bin, "-db", "-f", cfg)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, port := range []int{v1, v2} {
		var body string
		ok := eventually(10*time.Second, func() bool {
			d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
			c, err := d.Dial("tcp", addr(port))
			if err != nil {
				return false
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			return true
		})
		if !ok || body != "127.0.0.2|127.0.0.1" {
			t.Errorf("through HAProxy on %d: %q (answered %v), want 127.0.0.2|127.0.0.1\n%s", port, body, ok, out.String())
		}
	}
}

// TestBytesSent: $bytes_sent is every byte sent to the client for the response, head and chunked framing
// included, per request on a kept-alive connection too, as nginx 1.22 logs it (observed: a 3-byte `return`
// logged 150 with its 147-byte head, the next request on the same connection 145, a 5000-byte chunked proxied
// body 5164 = the bytes the client read, a HEAD 142, an HTTP/1.0 request 145: each the bytes on the wire).
// Over HTTP/2 the head's size is estimated (see docs/nginx-differences.md): more than the body.
func TestBytesSent(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("z", 5000)
	up := newRawBackend(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n"+body+"\r\n0\r\n\r\n")
	port, tlsPort := freePort(t), freePort(t)
	s := start(t, fill(t, `events {}
http {
    log_format bs '$request $status $bytes_sent $body_bytes_sent';
    access_log logs/bs.log bs;
    server {
        listen {{PORT}};
        listen {{TLS}} ssl;
        http2 on;
        ssl_certificate self-signed;
        location / { return 200 "ok\n"; }
        location /up { proxy_pass http://127.0.0.1:{{UP}}; }
    }
}
`, "PORT", port, "TLS", tlsPort, "UP", up.Port))
	var wire []int
	for _, raw := range []string{
		"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"HEAD /head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"GET /old HTTP/1.0\r\n\r\n",
		"GET /nf%zz HTTP/1.1\r\nHost: x\r\n\r\n", // refused before a server was chosen (TestRefusedRequestsLogged)
	} {
		c := rawConn(t, addr(port), nil)
		io.WriteString(c, raw)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(c)
		if strings.HasPrefix(raw, "GET /first") {
			// two responses on one connection: split after the first one's 3-byte body
			first := strings.Index(string(got), "ok\n") + 3
			wire = append(wire, first, len(got)-first)
			continue
		}
		wire = append(wire, len(got))
	}
	requests := []string{"GET /first HTTP/1.1 200", "GET /second HTTP/1.1 200", "GET /up HTTP/1.1 200", "HEAD /head HTTP/1.1 200",
		"GET /old HTTP/1.0 200", "GET /nf%zz HTTP/1.1 400"}
	logged := map[string][2]int64{}
	if !eventually(5*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", "bs.log"))
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			f := strings.Fields(l)
			if len(f) == 6 {
				var n, b int64
				fmt.Sscan(f[4]+" "+f[5], &n, &b)
				logged[strings.Join(f[:4], " ")] = [2]int64{n, b}
			}
		}
		return len(logged) >= len(requests)
	}) {
		t.Fatalf("logged %v, want a line for each of %q", logged, requests)
	}
	for i, r := range requests {
		if got := logged[r]; got[0] != int64(wire[i]) || got[0] <= got[1] {
			t.Errorf("%s: $bytes_sent %d ($body_bytes_sent %d), want the %d bytes the client read", r, got[0], got[1], wire[i])
		}
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr(tlsPort) + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("%s, want HTTP/2", resp.Proto)
	}
	if !eventually(5*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", "bs.log"))
		return regexp.MustCompile(`GET /h2 HTTP/2\.0 200 (\d{2,3}) 3\n`).Match(data)
	}) {
		data, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", "bs.log"))
		t.Errorf("HTTP/2: no line with an estimated head (10 to 999 bytes) before the 3-byte body:\n%s", data)
	}
}

// TestRefusedRequestsLogged: a request refused before a server was chosen (a malformed request line, a bad
// %-escape, a missing Host, a framing violation) gets an access log line, as in nginx: in the log of the
// server its Host header chose when that header came before the refusal, else of the default server of the
// address; $request is the request line as the client sent it, the header fields read before the refusal are
// known ($http_user_agent), and the server's server_tokens shapes the page. Every line was observed from nginx
// 1.22 on the same configuration; the only difference is the page's signature ("nginx/1.22.1" or "nginx",
// sluice's "sluice/VERSION" or "sluice"), whose length the body size follows.
func TestRefusedRequestsLogged(t *testing.T) {
	t.Parallel()
	port, quiet := freePort(t), freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        server_name first.test;
        access_log logs/first.log;
        location / { return 200 "ok\n"; }
    }
    server {
        listen {{PORT}};
        server_name second.test;
        access_log logs/second.log;
        location / { return 200 "two\n"; }
    }
    server {
        listen {{QUIET}};
        server_tokens off;
        access_log logs/third.log;
        location / { return 200 "three\n"; }
    }
}
`, "PORT", port, "QUIET", quiet))
	for _, raw := range []string{
		"GET /a%zz HTTP/1.1\r\nHost: second.test\r\nUser-Agent: ua1\r\n\r\n",
		"hello\r\n\r\n",
		"GET / HTTP/1.1\r\nUser-Agent: ua2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: second.test\r\nUser-Agent: ua3\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: second.test\r\nUser-Agent: ua4\r\nX-Fold: a\r\n b\r\n\r\n",
		"get / HTTP/1.1\r\nHost: second.test\r\n\r\n",
		"GET exact HTTP/1.1\r\nHost: second.test\r\n\r\n",
	} {
		if r, closed := exchange(t, port, raw); r == nil || r.StatusCode != 400 || !closed {
			t.Errorf("%q: %v (closed %v), want 400 and a close", raw, r, closed)
		}
	}
	if r, _ := exchange(t, quiet, "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n"); r == nil || r.Header.Get("Server") != "sluice" {
		t.Errorf("server_tokens off: %v, want Server: sluice", r)
	}
	// nginx's 400 page is 157 bytes with "nginx/1.22.1", 150 with "nginx" (server_tokens off)
	on := strconv.Itoa(157 - len("nginx/1.22.1") + len("sluice/"+version.Version))
	off := strconv.Itoa(150 - len("nginx") + len("sluice"))
	want := map[string][]string{
		"first.log": {
			`"GET /a%zz HTTP/1.1" 400 ` + on + ` "-" "-"`, // refused at the request line: no header is known
			`"hello" 400 ` + on + ` "-" "-"`,
			`"GET / HTTP/1.1" 400 ` + on + ` "-" "ua2"`,
			`"get / HTTP/1.1" 400 ` + on + ` "-" "-"`,
			`"GET exact HTTP/1.1" 400 ` + on + ` "-" "-"`,
		},
		"second.log": { // refused after the Host header: that server's log
			`"POST / HTTP/1.1" 400 ` + on + ` "-" "ua3"`,
			`"GET / HTTP/1.1" 400 ` + on + ` "-" "ua4"`,
		},
		"third.log": {`"GET /a%zz HTTP/1.1" 400 ` + off + ` "-" "-"`},
	}
	prefix := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] `)
	for name, lines := range want {
		var got []string
		eventually(5*time.Second, func() bool {
			data, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", name))
			got = nil
			for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				if l != "" {
					got = append(got, prefix.ReplaceAllString(l, ""))
				}
			}
			return len(got) >= len(lines)
		})
		if !slices.Equal(got, lines) {
			t.Errorf("logs/%s:\n%s\nwant (as nginx 1.22, with sluice's page):\n%s", name, strings.Join(got, "\n"), strings.Join(lines, "\n"))
		}
	}
}

// TestLimitExcept: a method limit_except does not list gets the block's access rules, which inherit the
// location's (allow/deny, auth_basic, satisfy); GET brings HEAD; a method nginx does not know is never listed;
// such a request skips the location's rewrite statements (return) and try_files but keeps its proxy_pass;
// nested locations do not inherit the block. Every status was observed from nginx 1.22 on this configuration.
func TestLimitExcept(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	sum := sha1.Sum([]byte("pw"))
	users := "ann:{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
	files := []option{withFile("conf/users.htpasswd", []byte(users))}
	for _, f := range []string{"a/x", "c/x", "d/x", "e/x", "f/x", "n/x", "n/b/x"} {
		files = append(files, withFile("html/"+f, []byte(f)))
	}
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        set_real_ip_from 127.0.0.1;
        location /a { limit_except GET { deny all; } }
        location /c { limit_except GET POST { allow 10.0.0.0/8; deny all; } }
        location /d { deny 192.0.2.9; limit_except GET { auth_basic "r"; auth_basic_user_file users.htpasswd; } }
        location /e {
            satisfy any;
            limit_except get { allow 10.0.0.0/8; deny all; auth_basic "r"; auth_basic_user_file users.htpasswd; }
        }
        location /f { limit_except HEAD { deny all; } }
        location /g { limit_except GET { allow all; } return 200 "ret"; }
        location /j { limit_except GET { allow all; } try_files /nonexist /a/x; }
        location /n { limit_except GET { deny all; } location /n/b { } }
        location /p { limit_except GET { allow 10.0.0.0/8; deny all; } proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, files, "ECHO", echo.Port)
	const in, out, banned = "10.1.1.1", "192.0.2.1", "192.0.2.9"
	creds := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("ann:pw")) + "\r\n"
	for _, tc := range []struct {
		method, path, ip, auth string
		status                 int
	}{
		{"GET", "/a/x", out, "", 200}, {"HEAD", "/a/x", out, "", 200}, {"POST", "/a/x", in, "", 403},
		{"PUT", "/a/x", in, creds, 403}, {"DELETE", "/a/x", in, "", 403}, {"FOO", "/a/x", in, "", 403},
		{"GET", "/c/x", out, "", 200}, {"POST", "/c/x", out, "", 405}, {"PUT", "/c/x", in, "", 405},
		{"PUT", "/c/x", out, "", 403}, {"FOO", "/c/x", in, "", 405}, {"FOO", "/c/x", out, "", 403},
		{"GET", "/d/x", in, "", 200}, {"GET", "/d/x", banned, "", 403}, {"POST", "/d/x", in, "", 401},
		{"POST", "/d/x", in, creds, 405}, {"POST", "/d/x", banned, creds, 403},
		{"GET", "/e/x", out, "", 200}, {"POST", "/e/x", in, "", 405}, {"POST", "/e/x", out, "", 401},
		{"POST", "/e/x", out, creds, 405}, {"PUT", "/e/x", out, "", 401},
		{"GET", "/f/x", in, "", 403}, {"HEAD", "/f/x", in, "", 200}, {"POST", "/f/x", in, "", 403},
		{"GET", "/g/x", in, "", 200}, {"POST", "/g/x", in, "", 404}, {"PUT", "/g/x", in, "", 405},
		{"GET", "/j/x", in, "", 200}, {"POST", "/j/x", in, "", 404},
		{"POST", "/n/x", in, "", 403}, {"POST", "/n/b/x", in, "", 405},
		{"GET", "/p/x", out, "", 200}, {"POST", "/p/x", in, "", 200}, {"POST", "/p/x", out, creds, 403}, {"FOO", "/p/x", in, "", 200},
	} {
		r := semRaw(t, port, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: a.test\r\nX-Real-IP: "+tc.ip+"\r\nContent-Length: 0\r\n"+tc.auth+"\r\n", tc.method)
		if r.StatusCode != tc.status {
			t.Errorf("%s %s from %s (credentials %v): %d, want %d", tc.method, tc.path, tc.ip, tc.auth != "", r.StatusCode, tc.status)
		}
	}
	if got := len(echo.all()); got != 3 {
		t.Errorf("the upstream saw %d requests, want 3", got)
	}
}

// TestLimitDryRun: limit_req_dry_run counts and logs but lets requests through, and $limit_req_status and
// $limit_conn_status say what the limits did; each header value below is what nginx 1.22 sent for the same
// sequence.
func TestLimitDryRun(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    limit_req_zone $binary_remote_addr zone=z:1m rate=1r/m;
    limit_conn_zone $binary_remote_addr zone=c:1m;
    server {
        listen {{PORT}};
        root html;
        location /dry/ { alias html/; limit_req zone=z; limit_req_dry_run on; add_header X-L "[$limit_req_status]" always; }
        location /real/ { alias html/; limit_req zone=z; add_header X-L "[$limit_req_status]" always; }
        location /none/ { alias html/; add_header X-L "[$limit_req_status][$limit_conn_status]" always; }
        location /conn/ { alias html/; limit_conn c 1; add_header X-L "[$limit_conn_status]" always; }
    }
}
`, "PORT", port), withFile("html/f", []byte("hi\n")))
	c := httpClient(addr(port), nil)
	for i, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/dry/f", 200, "[PASSED]"},
		{"/dry/f", 200, "[REJECTED_DRY_RUN]"},
		{"/dry/f", 200, "[REJECTED_DRY_RUN]"},
		{"/real/f", 503, "[REJECTED]"},
		{"/none/f", 200, "[][]"},
		{"/conn/f", 200, "[PASSED]"},
	} {
		r := get(t, c, "http://lq.test"+tc.path, nil)
		if r.StatusCode != tc.code || r.Header.Get("X-L") != tc.want {
			t.Errorf("%d %s: %d %q, want %d %q", i, tc.path, r.StatusCode, r.Header.Get("X-L"), tc.code, tc.want)
		}
	}
}

// TestAuthDelay: auth_delay holds every 401 for its time (a right password is answered at once).
func TestAuthDelay(t *testing.T) {
	t.Parallel()
	sum := sha1.Sum([]byte("pw"))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        root html;
        auth_delay 1s;
        location / { auth_basic "x"; auth_basic_user_file users.htpasswd; }
    }
}
`, "PORT", port), withFile("conf/users.htpasswd", []byte("ann:{SHA}"+base64.StdEncoding.EncodeToString(sum[:])+"\n")),
		withFile("html/f", []byte("in")))
	c := httpClient(addr(port), nil)
	for _, pass := range []string{"wrong", "pw"} {
		req, _ := http.NewRequest("GET", "http://ad.test/f", nil)
		req.SetBasicAuth("ann", pass)
		begin := time.Now()
		r := do(t, c, req)
		took := time.Since(begin)
		switch {
		case pass == "wrong" && (r.StatusCode != 401 || took < 900*time.Millisecond):
			t.Errorf("wrong password: %d after %v, want 401 after auth_delay", r.StatusCode, took)
		case pass == "pw" && r.StatusCode != 200:
			t.Errorf("right password: %d", r.StatusCode)
		}
	}
}
