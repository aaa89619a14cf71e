package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSNITwoCertificates(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	echo := newHTTPEcho(t)
	port := freePort(t)
	conf := fill(t, `events {}
http {
    server {
        listen {{PORT}} ssl;
        server_name a.test;
        ssl_certificate     a.pem;
        ssl_certificate_key a.key.pem;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
    server {
        listen {{PORT}} ssl default_server;
        server_name b.test;
        ssl_certificate     b.pem;
        ssl_certificate_key b.key.pem;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "PORT", port, "ECHO", echo.Port)
	opts := append(ca.certFiles(t, "a", ecdsaP256, "a.test"), ca.certFiles(t, "b", rsa2048, "b.test")...)
	start(t, conf, opts...)
	target := addr(port)

	for _, name := range []string{"a.test", "b.test"} {
		t.Run("SNI "+name, func(t *testing.T) {
			c, err := tls.Dial("tcp", target, ca.clientTLS(name))
			if err != nil {
				t.Fatalf("TLS handshake with SNI %s verifying %s: %v", name, name, err)
			}
			defer c.Close()
			leaf := c.ConnectionState().PeerCertificates[0]
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != name {
				t.Errorf("SNI %s got certificate for %v", name, leaf.DNSNames)
			}
			// And HTTP through it reaches the backend with that host.
			r := get(t, httpClient(target, ca.clientTLS("")), "https://"+name+"/x", nil)
			if r.StatusCode != http.StatusOK {
				t.Errorf("GET https://%s/x = %s %q", name, r.Status, r.Body)
			}
		})
	}

	t.Run("no SNI gets default_server certificate", func(t *testing.T) {
		var leaf *x509.Certificate
		cfg := &tls.Config{
			// With no ServerName Go sends no SNI and cannot check a name
			// itself: VerifyConnection does the full chain and name check
			// against the test CA instead.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("no certificate")
				}
				leaf = cs.PeerCertificates[0]
				inter := x509.NewCertPool()
				for _, c := range cs.PeerCertificates[1:] {
					inter.AddCert(c)
				}
				_, err := leaf.Verify(x509.VerifyOptions{DNSName: "b.test", Roots: ca.Pool(), Intermediates: inter})
				return err
			},
		}
		c, err := tls.Dial("tcp", target, cfg)
		if err != nil {
			names := []string(nil)
			if leaf != nil {
				names = leaf.DNSNames
			}
			t.Fatalf("TLS without SNI: %v (got certificate for %v); want the default_server b.test certificate", err, names)
		}
		c.Close()
	})
}

func TestHTTP2ClientToHTTP1Upstream(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	echo := newHTTPEcho(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}} ssl;
        http2 on;
        server_name h2.test;
        ssl_certificate     site.pem;
        ssl_certificate_key site.key.pem;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "PORT", port, "ECHO", echo.Port), ca.certFiles(t, "site", ecdsaP256, "h2.test")...)

	tr := &http.Transport{
		DialContext:       dialTo(addr(port)),
		TLSClientConfig:   ca.clientTLS(""),
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	body := strings.Repeat("h2 body ", 1000)
	req, _ := http.NewRequest(http.MethodPost, "https://h2.test/api/items?id=7", strings.NewReader(body))
	req.Header.Set("X-Test", "through-h2")
	req.Header.Set("Content-Type", "text/plain")
	r := do(t, client, req)
	if r.Proto != "HTTP/2.0" {
		t.Errorf("client spoke %s, want HTTP/2.0 (http2 on)", r.Proto)
	}
	if r.StatusCode != http.StatusOK {
		t.Fatalf("POST over h2 = %s %q", r.Status, r.Body)
	}
	if r.Header.Get("X-Backend") != "http-echo" {
		t.Errorf("response header X-Backend = %q, want http-echo (response headers must pass)", r.Header.Get("X-Backend"))
	}
	seen := decodeSeen(t, r.Body)
	if seen.Proto != "HTTP/1.1" && seen.Proto != "HTTP/1.0" {
		t.Errorf("upstream saw %s, want HTTP/1.x", seen.Proto)
	}
	if seen.Method != http.MethodPost || seen.URI != "/api/items?id=7" {
		t.Errorf("upstream saw %s %s, want POST /api/items?id=7", seen.Method, seen.URI)
	}
	if seen.Header.Get("X-Test") != "through-h2" {
		t.Errorf("upstream saw X-Test %q, want through-h2", seen.Header.Get("X-Test"))
	}
	if seen.Body != body {
		t.Errorf("upstream got a %d-byte body, want the %d bytes sent", len(seen.Body), len(body))
	}
}

func TestPlainHTTPToTLSPort(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	echo := newHTTPEcho(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}} ssl;
        server_name tls.test;
        ssl_certificate     site.pem;
        ssl_certificate_key site.key.pem;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "PORT", port, "ECHO", echo.Port), ca.certFiles(t, "site", ecdsaP256, "tls.test")...)

	c := rawConn(t, addr(port), nil)
	rs := rawExchange(t, c, "GET / HTTP/1.1\r\nHost: tls.test\r\n\r\n", "GET")
	if rs[0].StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: status %s, want 400", rs[0].Status)
	}
	if !strings.Contains(rs[0].Body, "The plain HTTP request was sent to HTTPS port") {
		t.Errorf("plain HTTP to the TLS port: body %q lacks %q", rs[0].Body, "The plain HTTP request was sent to HTTPS port")
	}
	if n := len(echo.all()); n != 0 {
		t.Errorf("backend saw %d requests; a plain request on the TLS port must not be proxied", n)
	}

	// The port still speaks TLS afterwards.
	r := get(t, httpClient(addr(port), ca.clientTLS("")), "https://tls.test/", nil)
	if r.StatusCode != http.StatusOK {
		t.Errorf("HTTPS after the plain request: %s", r.Status)
	}
}

// TestRejectHandshake: ssl_reject_handshake on the default server refuses handshakes for unknown or missing
// names, so the named server's certificate is only shown to clients that name it (nginx 1.22 answered the
// same three handshakes alike: one served, two refused); ssl_early_data is accepted.
func TestRejectHandshake(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    ssl_early_data on;
    server { listen {{PORT}} ssl default_server; ssl_reject_handshake on; }
    server { listen {{PORT}} ssl; server_name known.test; ssl_certificate self-signed; location / { return 200 "known"; } }
}
`, "PORT", port))
	dial := func(name string) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr(port), &tls.Config{ServerName: name, InsecureSkipVerify: true})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial("known.test"); err != nil {
		t.Errorf("the named server: %v", err)
	}
	for _, name := range []string{"other.test", ""} {
		if err := dial(name); err == nil {
			t.Errorf("SNI %q: the handshake succeeded", name)
		}
	}
}

// TestSessionTicketKey: with ssl_session_ticket_key, a session resumes across a reload (the new TLS settings
// keep the key), and a key file of the wrong size is refused with its file:line, as nginx refuses it.
func TestSessionTicketKey(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	conf := `events {}
http {
    server {
        listen {{PORT}} ssl;
        ssl_certificate self-signed;
        ssl_session_ticket_key ticket.key;
        location / { return 200 "{{N}}"; }
    }
}
`
	s := start(t, fill(t, conf, "PORT", port, "N", "one"), withFile("conf/ticket.key", bytes.Repeat([]byte{7}, 48)))
	cache := tls.NewLRUClientSessionCache(4)
	handshake := func() bool {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr(port),
			&tls.Config{InsecureSkipVerify: true, ServerName: "localhost", ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// TLS 1.3 tickets come after the handshake: a request and its answer make sure one arrived
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		io.ReadAll(c)
		return c.ConnectionState().DidResume
	}
	handshake()
	if err := os.WriteFile(s.Conf, []byte(fill(t, conf, "PORT", port, "N", "two")), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGHUP)
	c := httpClient(addr(port), &tls.Config{InsecureSkipVerify: true})
	if !eventually(5*time.Second, func() bool { return get(t, c, "https://localhost/", nil).Body == "two" }) {
		t.Fatal("the reload did not take")
	}
	if !handshake() {
		t.Error("the session did not resume after a reload with the same ssl_session_ticket_key")
	}

	code, out := runSluice(t, "-t", "-p", s.Prefix+"/", "-c", writeConf(t, s.Prefix, `events {}
http { server { listen 1 ssl; ssl_certificate self-signed; ssl_session_ticket_key short.key; } }
`, "short.key", "0123456789"))
	if code == 0 || !strings.Contains(out, "must be 48 or 80 bytes") || !strings.Contains(out, ":2") {
		t.Errorf("a 10-byte key file: exit %d, %q", code, out)
	}
}

// writeConf writes conf (and a side file name: data) into prefix/conf and returns the configuration's path.
func writeConf(t *testing.T, prefix, conf, name, data string) string {
	t.Helper()
	dir := filepath.Join(prefix, "conf")
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "check.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSessionCache: with ssl_session_tickets off, ssl_session_cache keeps sessions on the server: TLS 1.3 and
// 1.2 clients resume (the ticket they hold is only a 16-byte name), a shared cache keeps its sessions across a
// reload, ssl_session_timeout ends them, and without a cache no session resumes (as nginx with tickets off and
// ssl_session_cache none).
func TestSessionCache(t *testing.T) {
	t.Parallel()
	port, nocache, short := freePort(t), freePort(t), freePort(t)
	conf := `events {}
http {
    ssl_certificate self-signed;
    ssl_session_tickets off;
    server {
        listen {{PORT}} ssl;
        ssl_session_cache builtin:100 shared:SSL:1m;
        ssl_session_timeout 1h;
        location / { return 200 "{{N}}"; }
    }
    server {
        listen {{NOCACHE}} ssl;
        location / { return 200 "none"; }
    }
    server {
        listen {{SHORT}} ssl;
        ssl_session_cache shared:SHORT:1m;
        ssl_session_timeout 1s;
        location / { return 200 "short"; }
    }
}
`
	s := start(t, fill(t, conf, "PORT", port, "NOCACHE", nocache, "SHORT", short, "N", "one"))
	handshake := func(p int, cache tls.ClientSessionCache, maxVersion uint16) (resumed bool, ticket int) {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr(p),
			&tls.Config{InsecureSkipVerify: true, ServerName: "localhost", ClientSessionCache: cache, MaxVersion: maxVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// TLS 1.3 tickets come after the handshake: a request and its answer make sure one arrived
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		io.ReadAll(c)
		if cs, ok := cache.Get("localhost"); ok && cs != nil {
			id, _, _ := cs.ResumptionState()
			ticket = len(id)
		}
		return c.ConnectionState().DidResume, ticket
	}
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		cache := tls.NewLRUClientSessionCache(4)
		if r, n := handshake(port, cache, v); r || n != 16 {
			t.Errorf("TLS %x first handshake: resumed %v, ticket of %d bytes (want a 16-byte name)", v, r, n)
		}
		if r, _ := handshake(port, cache, v); !r {
			t.Errorf("TLS %x: the session did not resume from ssl_session_cache", v)
		}
		cache = tls.NewLRUClientSessionCache(4)
		handshake(nocache, cache, v)
		if r, _ := handshake(nocache, cache, v); r {
			t.Errorf("TLS %x: a session resumed with ssl_session_tickets off and no ssl_session_cache", v)
		}
	}
	cache := tls.NewLRUClientSessionCache(4)
	handshake(port, cache, 0)
	os.WriteFile(s.Conf, []byte(fill(t, conf, "PORT", port, "NOCACHE", nocache, "SHORT", short, "N", "two")), 0o644)
	s.Signal(syscall.SIGHUP)
	c := httpClient(addr(port), &tls.Config{InsecureSkipVerify: true})
	if !eventually(5*time.Second, func() bool { return get(t, c, "https://localhost/", nil).Body == "two" }) {
		t.Fatal("the reload did not take")
	}
	if r, _ := handshake(port, cache, 0); !r {
		t.Error("the session did not resume after a reload: the shared cache was not kept")
	}
	cache = tls.NewLRUClientSessionCache(4)
	handshake(short, cache, 0)
	time.Sleep(1500 * time.Millisecond)
	if r, _ := handshake(short, cache, 0); r {
		t.Error("a session resumed after its ssl_session_timeout")
	}
}

// TestECDHCurve: ssl_ecdh_curve decides the key exchange groups (a client offering X25519 and secp384r1 gets
// secp384r1; one offering only X25519 none), and a name Go does not offer is refused at load with file:line.
func TestECDHCurve(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}} ssl;
        ssl_certificate self-signed;
        ssl_ecdh_curve secp384r1:prime256v1;
        location / { return 200 "ok"; }
    }
}
`, "PORT", port))
	c, err := tls.Dial("tcp", addr(port), &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP384}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := c.ConnectionState().CurveID; got != tls.CurveP384 {
		t.Errorf("key exchange %v, want secp384r1 (the one configured that the client offers)", got)
	}
	if _, err := tls.Dial("tcp", addr(port), &tls.Config{InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.X25519}}); err == nil {
		t.Error("a client offering only X25519 completed a handshake with ssl_ecdh_curve secp384r1:prime256v1")
	}
	code, out := runSluice(t, "-t", "-p", s.Prefix+"/", "-c", writeConf(t, s.Prefix, `events {}
http { server { listen 1 ssl; ssl_certificate self-signed;
  ssl_ecdh_curve X25519:brainpoolP256r1; } }
`, "unused", ""))
	if code == 0 || !strings.Contains(out, `unknown curve "brainpoolP256r1"`) || !strings.Contains(out, ":3") {
		t.Errorf("an unknown curve: exit %d, %q", code, out)
	}
}
