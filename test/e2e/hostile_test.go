package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// exchange sends raw on a fresh connection and reads one response. It reports the response (nil when the
// connection closed without one) and whether sluice closed the connection afterwards.
func exchange(t *testing.T, port int, raw string) (*response, bool) {
	t.Helper()
	return exchangeOn(t, rawConn(t, addr(port), nil), raw)
}

// exchangeOn is exchange on a connection of the caller's (TLS).
func exchangeOn(t *testing.T, c net.Conn, raw string) (*response, bool) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		return nil, true
	}
	body, _ := io.ReadAll(resp.Body)
	r := &response{resp, string(body)}
	// closed: the next read sees EOF (or a reset) instead of waiting for another request
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	closed := err != nil && !(errorsAs(err, &ne) && ne.Timeout())
	return r, closed
}

func errorsAs(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

// TestHostileRequests is the table of hostile requests over raw TCP: smuggling variants, header abuse, path
// tricks, CRLF injection and oversized requests, each with the status a client sees and whether the
// connection is closed afterwards (always after a framing error, so nothing left in the stream is read as a
// request). The upstream must never see a request whose framing was ambiguous.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port, s := semStart(t, `events {}
error_log stderr info;
http {
    large_client_header_buffers 4 1k;
    server {
        listen {{PORT}};
        location / {
            proxy_set_header X-Http-Host $http_host;
            proxy_pass http://127.0.0.1:{{ECHO}};
        }
        location /admin { deny all; proxy_pass http://127.0.0.1:{{ECHO}}; }
        location ~ ^/inj/(.*)$ {
            proxy_set_header X-Injected-Value $1;
            add_header X-Reflected $1 always;
            proxy_pass http://127.0.0.1:{{ECHO}};
        }
    }
}
`, nil, "ECHO", echo.Port)
	const host = "Host: h.test\r\n"
	big := strings.Repeat("a", 5000)
	cases := []struct {
		name   string
		raw    string
		status int // 0: closed without a response
		closed bool
	}{
		{"baseline", "GET / HTTP/1.1\r\n" + host + "\r\n", 200, false},
		// refused before net/http (which would frame by Transfer-Encoding) parses the head, as nginx does: the
		// request hidden in the "body" a CL-framing front proxy saw is never read
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\n" + host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"two differing Content-Lengths", "POST / HTTP/1.1\r\n" + host + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400, true},
		// net/http folds identical ones into one; nginx refuses any second Content-Length
		{"two identical Content-Lengths", "POST /dupcl HTTP/1.1\r\n" + host + "Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", 400, true},
		{"Content-Length list", "POST / HTTP/1.1\r\n" + host + "Content-Length: 4, 5\r\n\r\nabcde", 400, true},
		{"negative Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", 400, true},
		{"unknown transfer coding", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, true},
		{"chunked not last", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501, true},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"two Transfer-Encodings", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"bad chunk size", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400, true},
		{"obs-fold", "GET /fold HTTP/1.1\r\n" + host + "X-Fold: a\r\n b\r\n\r\n", 400, true},
		{"bare LF ending a header line", "GET / HTTP/1.1\r\n" + host + "X-A: a\nX-B: b\r\n\r\n", 400, true},
		{"bare LF ending the request line", "GET / HTTP/1.1\n" + host + "\r\n", 400, true},
		{"space before colon", "GET / HTTP/1.1\r\n" + host + "X-A : a\r\n\r\n", 400, true},
		{"invalid header name", "GET / HTTP/1.1\r\n" + host + "X(A): a\r\n\r\n", 400, true},
		{"bare CR in a value", "GET / HTTP/1.1\r\n" + host + "X-A: a\rb\r\n\r\n", 400, true},
		{"NUL in a value", "GET / HTTP/1.1\r\n" + host + "X-A: a\x00b\r\n\r\n", 400, true},
		{"two Host headers", "GET / HTTP/1.1\r\n" + host + host + "\r\n", 400, true},
		{"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400, true},
		{"NUL in the path", "GET /a\x00b HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"encoded NUL in the path", "GET /a%00b HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"space in the target", "GET /a b HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"unknown version", "GET / HTTP/1.2x\r\n" + host + "\r\n", 400, true},
		{"dot segments to a denied location", "GET /x/../admin HTTP/1.1\r\n" + host + "\r\n", 403, false},
		{"encoded letter", "GET /%61dmin HTTP/1.1\r\n" + host + "\r\n", 403, false},
		{"doubled slash", "GET //admin HTTP/1.1\r\n" + host + "\r\n", 403, false},
		{"encoded dots", "GET /x/%2e%2E/admin HTTP/1.1\r\n" + host + "\r\n", 403, false},
		{"above the root", "GET /../admin HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"dot segment with parameter", "GET /x/..;/admin HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"header block over large_client_header_buffers", "GET / HTTP/1.1\r\n" + host + "X-Big: " + big + "\r\n\r\n", 400, true},
		{"request line over large_client_header_buffers", "GET /" + big + " HTTP/1.1\r\n" + host + "\r\n", 414, true},
		// as nginx answers them
		{"bad escape in the target", "GET /a%zz HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"target neither a path nor absolute", "GET exact HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"lower-case method", "get / HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"mixed-case method", "Get / HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"TRACE", "TRACE / HTTP/1.1\r\n" + host + "\r\n", 405, true},
		{"CONNECT to a path", "CONNECT /c HTTP/1.1\r\n" + host + "\r\n", 405, true},
		{"CONNECT to an authority", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400, true},
		{"absolute-form without Host in HTTP/1.1", "GET http://other.example/abs HTTP/1.1\r\n\r\n", 400, true},
		{"userinfo in an absolute-form target", "GET http://u:pw@other.example/ui HTTP/1.1\r\n" + host + "\r\n", 400, true},
		{"empty lines before the request line", "\r\n\r\nGET / HTTP/1.1\r\n" + host + "\r\n", 200, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, closed := exchange(t, port, tc.raw)
			status := 0
			if r != nil {
				status = r.StatusCode
			}
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if closed != tc.closed {
				t.Errorf("connection closed: %v, want %v", closed, tc.closed)
			}
		})
	}
	for _, seen := range echo.all() {
		if seen.URI == "/smuggled" || seen.Header.Get("Transfer-Encoding") != "" && seen.Header.Get("Content-Length") != "" {
			t.Errorf("the upstream saw a smuggled or ambiguous request: %s %v", seen.URI, seen.Header)
		}
		if seen.URI == "/dupcl" {
			t.Errorf("the upstream saw a request with two Content-Length headers: %v", seen.Header)
		}
		if seen.URI == "/fold" {
			t.Errorf("a folded header reached the upstream as %q", seen.Header.Values("X-Fold"))
		}
	}

	t.Run("pipelined after a good request", func(t *testing.T) {
		// the good request is answered first, then the ambiguous one gets its 400 and the connection closes
		c := rawConn(t, addr(port), nil)
		io.WriteString(c, "POST /first HTTP/1.1\r\n"+host+"Content-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n"+host+
			"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n"+host+"\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for i, want := range []int{200, 400} {
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatalf("response %d: %v", i+1, err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != want {
				t.Errorf("response %d: status %d, want %d", i+1, resp.StatusCode, want)
			}
		}
		if _, err := br.ReadByte(); err == nil || isTimeout(err) {
			t.Errorf("the connection stayed open after the 400 (%v)", err)
		}
	})
	t.Run("CRLF after a body", func(t *testing.T) {
		// a client that ends a POST body with a CRLF it did not count keeps its connection, as in nginx
		c := rawConn(t, addr(port), nil)
		io.WriteString(c, "POST /first HTTP/1.1\r\n"+host+"Content-Length: 3\r\n\r\nabc\r\nGET /after HTTP/1.1\r\n"+host+"\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for i, want := range []string{"/first", "/after"} {
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatalf("response %d: %v", i+1, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("response %d: status %d, want 200", i+1, resp.StatusCode)
			}
			if seen := decodeSeen(t, string(body)); seen.URI != want {
				t.Errorf("response %d: the upstream saw %s, want %s", i+1, seen.URI, want)
			}
		}
	})
	t.Run("absolute-form target", func(t *testing.T) {
		// $host is the target's authority, $http_host the Host header as sent (none: empty), as in nginx
		for _, tc := range []struct{ raw, httpHost string }{
			{"GET http://abs.example:9/ov HTTP/1.1\r\n" + host + "\r\n", "h.test"},
			{"GET HTTP://Other.Example/uc HTTP/1.1\r\nHost: h.test:8080\r\n\r\n", "h.test:8080"},
			{"GET http://other.example/a10 HTTP/1.0\r\n\r\n", ""},
		} {
			r, _ := exchange(t, port, tc.raw)
			if r == nil || r.StatusCode != 200 {
				t.Fatalf("%q: %v, want 200", tc.raw, r)
			}
			seen := decodeSeen(t, r.Body)
			if got := seen.Header.Get("X-Http-Host"); got != tc.httpHost {
				t.Errorf("%q: $http_host %q, want %q", tc.raw, got, tc.httpHost)
			}
			if seen.URI == "" || seen.URI[0] != '/' {
				t.Errorf("%q: the upstream got the target %q, want a path", tc.raw, seen.URI)
			}
		}
	})
	t.Run("CRLF from a variable never splits a header", func(t *testing.T) {
		for _, target := range []string{"/inj/a%0d%0aX-Evil:%201", "/inj/a%0aX-Evil:%201", "/inj/a%0dX-Evil:%201"} {
			r, _ := exchange(t, port, "GET "+target+" HTTP/1.1\r\n"+host+"\r\n")
			if r == nil {
				t.Fatalf("%s: no response", target)
			}
			if r.StatusCode != 200 {
				t.Errorf("%s: status %d, want 200 (the request is legal; only the header values must be safe)", target, r.StatusCode)
			}
			if r.Header.Get("X-Evil") != "" {
				t.Errorf("%s: the client got an injected header: %v", target, r.Header)
			}
			if r.StatusCode == 200 {
				if seen := decodeSeen(t, r.Body); seen.Header.Get("X-Evil") != "" {
					t.Errorf("%s: the upstream got an injected header: %v", target, seen.Header)
				}
			}
		}
	})
	t.Run("refusals after parsing are logged", func(t *testing.T) {
		for _, line := range []string{
			"access forbidden by rule", // refused URIs log at info, as in nginx
			`client sent "Content-Length" and "Transfer-Encoding" headers at the same time while reading client request headers, client: 127.0.0.1:`,
			"client sent invalid header line (obs-fold) while reading client request headers",
			`client sent duplicate header line: "Content-Length" while reading client request headers, client: 127.0.0.1:`,
			"client sent invalid method while reading client request headers",
			"client sent invalid request while reading client request headers", // the bad escape
			"client sent TRACE method",
			`client sent HTTP/1.1 request without "Host" header`,
		} {
			if !eventually(5*time.Second, func() bool { return strings.Contains(s.Log(), line) }) {
				t.Errorf("no %q log line:\n%s", line, s.Log())
			}
		}
	})
}

// TestHostileRequestsTLS: HTTP/1.1 over TLS passes the same framing guard as plain HTTP (the guard sits on the
// decrypted stream); requests still see TLS ($scheme), and HTTP/2 on the same port is not wrapped.
func TestHostileRequestsTLS(t *testing.T) {
	t.Parallel()
	port, s := semStart(t, `events {}
error_log stderr info;
http {
    server {
        listen {{PORT}} ssl;
        http2 on;
        ssl_certificate self-signed;
        client_max_body_size 1k;
        location / { return 200 "$scheme $ssl_protocol"; }
        location /boom { return 500; }
        location /up { proxy_pass http://127.0.0.1:1; }
    }
}
`, nil)
	h1 := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}}
	const host = "Host: localhost\r\n"
	for _, tc := range []struct {
		name   string
		raw    string
		status int
		closed bool
	}{
		{"baseline", "GET / HTTP/1.1\r\n" + host + "\r\n", 200, false},
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\n" + host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"obs-fold", "GET / HTTP/1.1\r\n" + host + "X-Fold: a\r\n b\r\n\r\n", 400, true},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, closed := exchangeOn(t, rawConn(t, addr(port), h1), tc.raw)
			status := 0
			if r != nil {
				status = r.StatusCode
			}
			if status != tc.status || closed != tc.closed {
				t.Errorf("status %d closed %v, want %d %v", status, closed, tc.status, tc.closed)
			}
			if status == 200 && !strings.HasPrefix(r.Body, "https TLSv1.") {
				t.Errorf("body %q: the request lost its TLS state", r.Body)
			}
		})
	}
	t.Run("HTTP/2", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr(port) + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || !strings.HasPrefix(string(body), "https ") {
			t.Errorf("%s %q, want HTTP/2 and https", resp.Proto, body)
		}
	})
	t.Run("HTTP/2 stream errors keep the connection", func(t *testing.T) {
		// a 500 ends an HTTP/1 connection (as nginx), but over HTTP/2 only its stream: the next request reuses
		// the connection
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		var reused []bool
		for _, path := range []string{"/boom", "/"} {
			req, _ := http.NewRequest("GET", "https://"+addr(port)+path, nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("%s: %s, want HTTP/2", path, resp.Proto)
			}
		}
		if len(reused) != 2 || !reused[1] {
			t.Errorf("the request after a 500 used a new connection (reused %v)", reused)
		}
	})
	t.Run("413 over TLS reaches a client still uploading", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Post("https://"+addr(port)+"/up",
			"application/octet-stream", bytes.NewReader(make([]byte, 16<<20)))
		if err != nil {
			t.Fatalf("the 413 was lost: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", resp.StatusCode)
		}
	})
	if !eventually(5*time.Second, func() bool { return strings.Contains(s.Log(), "client sent invalid header line (obs-fold)") }) {
		t.Errorf("no log line for the refused TLS request:\n%s", s.Log())
	}
}

// TestSlowAndIdleClients: client_header_timeout closes a connection that sends its headers too slowly
// (slowloris), keepalive_timeout closes an idle keep-alive connection, client_body_timeout answers 408 (also
// when net/http's cancellation of the request reaches the proxy before the timeout error does).
func TestSlowAndIdleClients(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port, _ := semStart(t, `events {}
http {
    client_header_timeout 1s;
    keepalive_timeout 1s;
    client_body_timeout 1s;
    server {
        listen {{PORT}};
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, nil, "ECHO", echo.Port)
	t.Run("slow headers", func(t *testing.T) {
		c := rawConn(t, addr(port), nil)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h.test\r\n")
		if !dripUntilClosed(t, c, 10*time.Second) {
			t.Error("a client dripping headers kept the connection for 10s (client_header_timeout 1s)")
		}
	})
	t.Run("slow headers after a request", func(t *testing.T) {
		// the second head on a kept-alive connection gets client_header_timeout too (its deadline is armed
		// only when the head does not arrive whole)
		c := rawConn(t, addr(port), nil)
		rs := rawExchange(t, c, "GET / HTTP/1.1\r\nHost: h.test\r\n\r\n", "GET")
		if rs[0].StatusCode != 200 {
			t.Fatalf("status %d", rs[0].StatusCode)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h.test\r\n")
		if !dripUntilClosed(t, c, 10*time.Second) {
			t.Error("a client dripping its second request's headers kept the connection for 10s (client_header_timeout 1s)")
		}
	})
	t.Run("body in pauses after a request", func(t *testing.T) {
		// the head's deadline (1s) must not reach a body that arrives in pauses shorter than
		// client_body_timeout but longer than the head's deadline in all
		c := rawConn(t, addr(port), nil)
		rawExchange(t, c, "GET / HTTP/1.1\r\nHost: h.test\r\n\r\n", "GET")
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 8\r\n\r\n")
		for _, part := range []string{"ab", "cd", "ef", "gh"} {
			time.Sleep(400 * time.Millisecond) // well inside client_body_timeout; 1.6s in all, past the head's 1s
			io.WriteString(c, part)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		r := readResponse(t, c, bufio.NewReader(c), "POST")
		if r.StatusCode != 200 {
			t.Errorf("status %d, want 200: %q", r.StatusCode, r.Body)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := rawConn(t, addr(port), nil)
		rs := rawExchange(t, c, "GET / HTTP/1.1\r\nHost: h.test\r\n\r\n", "GET")
		if rs[0].StatusCode != 200 {
			t.Fatalf("status %d", rs[0].StatusCode)
		}
		_, closed := closedWithoutResponse(c, c, 5*time.Second)
		if !closed {
			t.Error("idle keep-alive connection still open after 5s (keepalive_timeout 1s)")
		}
	})
	for i := 0; i < 3; i++ {
		t.Run("slow body", func(t *testing.T) {
			c := rawConn(t, addr(port), nil)
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 10\r\n\r\nabc")
			r := readResponse(t, c, bufio.NewReader(c), "POST")
			if r.StatusCode != http.StatusRequestTimeout {
				t.Errorf("status %d, want 408: %q", r.StatusCode, r.Body)
			}
		})
	}
}

// dripUntilClosed sends a header line every 300ms on c, whose request head is unfinished, until sluice closes
// the connection (true) or for d (false); a response byte fails the test.
func dripUntilClosed(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := io.WriteString(c, "X-Drip: 1\r\n"); err != nil {
			return true
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil && !isTimeout(err) {
			return true
		} else if err == nil {
			t.Fatalf("got a response byte %q to an unfinished request", b[0])
		}
	}
	return false
}

// TestServerTokens: server_tokens off hides the version in the Server header and on error pages.
func TestServerTokens(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        location /on { return 404; }
        location /off { server_tokens off; return 404; }
    }
}
`, nil)
	on := semGet(t, port, "/on", "")
	if !strings.HasPrefix(on.Header.Get("Server"), "sluice/") || !strings.Contains(on.Body, "sluice/") {
		t.Errorf("server_tokens on: Server %q body %q", on.Header.Get("Server"), on.Body)
	}
	off := semGet(t, port, "/off", "")
	if off.Header.Get("Server") != "sluice" || strings.Contains(off.Body, "sluice/") {
		t.Errorf("server_tokens off: Server %q body %q", off.Header.Get("Server"), off.Body)
	}
}

// TestHostileUpstream: a tunnel opens only after a real 101. An upstream that answers 101 without the
// WebSocket accept key, or 101 to a request that asked for no upgrade, gets the client a 502, and none of the
// bytes it sends after its 101 reach the client.
func TestHostileUpstream(t *testing.T) {
	t.Parallel()
	noAccept := newRawBackend(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nleak-leak-leak")
	h2c := newRawBackend(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nleak-leak-leak")
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        location /noaccept { proxy_pass http://127.0.0.1:{{A}}; }
        location /h2c { proxy_pass http://127.0.0.1:{{B}}; }
    }
}
`, nil, "A", noAccept.Port, "B", h2c.Port)
	for _, tc := range []struct{ name, raw string }{
		{"101 without Sec-WebSocket-Accept", wsUpgradeRequest("/noaccept", "h.test")},
		{"101 to h2c for a websocket request", wsUpgradeRequest("/h2c", "h.test")},
		{"101 to a plain request", "GET /noaccept HTTP/1.1\r\nHost: h.test\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawConn(t, addr(port), nil)
			io.WriteString(c, tc.raw)
			br := bufio.NewReader(c)
			r := readResponse(t, c, br, "GET")
			if r.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502", r.StatusCode)
			}
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			rest, _ := io.ReadAll(br)
			if bytes.Contains([]byte(r.Body), []byte("leak")) || bytes.Contains(rest, []byte("leak")) {
				t.Errorf("the upstream's post-101 bytes reached the client: %q %q", r.Body, rest)
			}
		})
	}
}

// A response framed both by Content-Length and by Transfer-Encoding could be read either way by whoever is
// downstream; as nginx, sluice takes neither: 502 and the nginx-worded error line.
func TestUpstreamLengthAndChunked(t *testing.T) {
	t.Parallel()
	up := newRawBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	port, s := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        location / { proxy_pass http://127.0.0.1:{{UP}}; }
    }
}
`, nil, "UP", up.Port)
	r := semGet(t, port, "/", "")
	if r.StatusCode != http.StatusBadGateway || strings.Contains(r.Body, "hello") {
		t.Errorf("GET / = %d %q, want 502 without the upstream's body", r.StatusCode, r.Body)
	}
	if !eventually(3*time.Second, func() bool {
		return strings.Contains(s.Log(), `upstream sent "Content-Length" and "Transfer-Encoding" headers at the same time`)
	}) {
		t.Errorf("no error line naming both headers:\n%s", s.Log())
	}
}
