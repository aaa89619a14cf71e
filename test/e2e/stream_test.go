package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tcpBackend is a TCP server for stream tests. Each connection is answered by its mode:
//
//   - "echo": bytes are echoed back; after the client's FIN, the backend writes "bye <name> <n>\n" (n: bytes
//     received) and closes, so a test sees that the FIN was passed on while the other direction kept flowing;
//   - "name": the backend writes "<name>\n" at once, then echoes as above.
type tcpBackend struct {
	Name     string
	Port     int
	accepted atomic.Int64
}

func newTCPBackend(t *testing.T, name string, greet bool) *tcpBackend {
	t.Helper()
	b := &tcpBackend{Name: name}
	b.Port = upstreamPort(rawUpstream(t, func(c net.Conn) {
		b.accepted.Add(1)
		if greet {
			fmt.Fprintf(c, "%s\n", name)
		}
		n, _ := io.Copy(c, c)
		fmt.Fprintf(c, "bye %s %d\n", name, n)
	}))
	return b
}

// upstreamPort is the port of a rawUpstream address.
func upstreamPort(a string) int {
	port, _ := strconv.Atoi(a[strings.LastIndexByte(a, ':')+1:])
	return port
}

// streamConf is a configuration with a stream block (and no http block); logs go under the prefix.
func streamConf(body string) string {
	return `events {}
stream {
    log_format s '$remote_addr $protocol $status $bytes_sent $bytes_received "$upstream_addr" "$upstream_bytes_sent" "$upstream_bytes_received" "$upstream_connect_time" $session_time';
    access_log logs/stream.log s;
` + body + `
}
`
}

// streamLog returns the lines of the stream access log.
func streamLog(t *testing.T, s *Sluice) []string {
	t.Helper()
	data, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", "stream.log"))
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// waitStreamLog waits until the stream access log has n lines and returns them.
func waitStreamLog(t *testing.T, s *Sluice, n int) []string {
	t.Helper()
	var lines []string
	if !eventually(5*time.Second, func() bool {
		lines = streamLog(t, s)
		return len(lines) >= n && lines[0] != ""
	}) {
		t.Fatalf("stream access log has %q, want %d lines", lines, n)
	}
	return lines
}

func dialStream(t *testing.T, port int) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// echoLine writes msg and a newline and reads a line back.
func echoLine(t *testing.T, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != msg+"\n" {
		t.Fatalf("echo of %q: got %q, %v", msg, got, err)
	}
}

// TestStreamEcho: bytes go both ways through a stream server, a large transfer arrives intact, and a client's
// half-close reaches the upstream while the upstream's answer still comes back (nginx passes the FIN on).
// The access log line has nginx's stream variables.
func TestStreamEcho(t *testing.T) {
	t.Parallel()
	be := newTCPBackend(t, "a", false)
	port := freePort(t)
	s := start(t, streamConf(fmt.Sprintf(`    server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; }`, port, be.Port)))

	c := dialStream(t, port)
	r := bufio.NewReader(c)
	echoLine(t, c, r, "hello")
	// 8 MiB each way, written while read
	big := make([]byte, 8<<20)
	rand.Read(big)
	go func() { c.Write(big) }()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("reading the large echo: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(big) {
		t.Fatal("the large transfer came back altered")
	}
	// half-close: the backend sees EOF and answers after it
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading after the half-close: %v", err)
	}
	want := fmt.Sprintf("bye a %d\n", 6+len(big))
	if string(rest) != want {
		t.Fatalf("after the half-close got %q, want %q", rest, want)
	}
	lines := waitStreamLog(t, s, 1)
	n := 6 + len(big)
	prefix := fmt.Sprintf(`127.0.0.1 TCP 200 %d %d "127.0.0.1:%d" "%d" "%d" "0.0`, n+len(want), n, be.Port, n, n+len(want))
	if !strings.HasPrefix(lines[0], prefix) {
		t.Errorf("access log line %q, want it to start %q", lines[0], prefix)
	}
}

// TestStreamBalancing: an upstream group balances sessions round robin over its peers; a peer that refuses
// connections is skipped for the next one (proxy_next_upstream on), and $upstream_addr lists both tries as
// nginx does. With proxy_next_upstream off the session fails with 502. hash $remote_addr keeps a client on one
// peer; least_conn sends a session to the peer without an open one.
func TestStreamBalancing(t *testing.T) {
	t.Parallel()
	a, b := newTCPBackend(t, "a", true), newTCPBackend(t, "b", true)
	dead := freePort(t)
	rr, skip, noNext, hashed, least := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	s := start(t, streamConf(fmt.Sprintf(`
    upstream two { server 127.0.0.1:%[1]d; server 127.0.0.1:%[2]d; }
    upstream withdead { server 127.0.0.1:%[3]d; server 127.0.0.1:%[1]d; }
    upstream nonext { server 127.0.0.1:%[3]d; server 127.0.0.1:%[1]d; }
    server { listen 127.0.0.1:%[4]d; proxy_pass two; }
    server { listen 127.0.0.1:%[5]d; proxy_pass withdead; }
    server { listen 127.0.0.1:%[6]d; proxy_pass nonext; proxy_next_upstream off; }
    upstream hashed { hash "$remote_addr:x"; server 127.0.0.1:%[1]d; server 127.0.0.1:%[2]d; }
    upstream least { least_conn; server 127.0.0.1:%[1]d; server 127.0.0.1:%[2]d; }
    server { listen 127.0.0.1:%[7]d; proxy_pass hashed; access_log off; }
    server { listen 127.0.0.1:%[8]d; proxy_pass least; access_log off; }`, a.Port, b.Port, dead, rr, skip, noNext, hashed, least)))

	greeting := func(port int) string {
		c := dialStream(t, port)
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			return "closed"
		}
		return strings.TrimSpace(line)
	}
	var seq []string
	for range 4 {
		seq = append(seq, greeting(rr))
	}
	if got := strings.Join(seq, ","); got != "a,b,a,b" {
		t.Errorf("round robin over two peers gave %s, want a,b,a,b", got)
	}
	if got := greeting(skip); got != "a" {
		t.Errorf("group with a dead first peer: got %q, want the live peer a", got)
	}
	// the dead peer is now failed (max_fails=1): the next session goes straight to the live one
	if got := greeting(skip); got != "a" {
		t.Errorf("second session: got %q, want a", got)
	}
	seq = seq[:0]
	for range 4 {
		seq = append(seq, greeting(hashed))
	}
	if seq[0] != seq[1] || seq[1] != seq[2] || seq[2] != seq[3] {
		t.Errorf("hash $remote_addr spread one client over %v, want one peer", seq)
	}
	// one session held open on a peer: round robin would send every other new session there, least_conn none
	held := dialStream(t, least)
	first, _ := bufio.NewReader(held).ReadString('\n')
	for range 3 {
		if got := greeting(least); got+"\n" == first {
			t.Errorf("least_conn sent a session to %q, which has one open; want the other peer", got)
		}
		time.Sleep(100 * time.Millisecond) // the closed session's count is released when its tunnel ends
	}
	held.Close()
	if got := greeting(noNext); got != "closed" {
		t.Errorf("proxy_next_upstream off with the dead peer first: got %q, want the connection closed", got)
	}
	// sessions are logged as they end, not in the order they began
	lines := waitStreamLog(t, s, 7)
	all := strings.Join(lines, "\n")
	skipped := fmt.Sprintf(`127.0.0.1 TCP 200 10 0 "127.0.0.1:%d, 127.0.0.1:%d" "0, 0" "0, 10" "-, 0.0`, dead, a.Port)
	if !strings.Contains(all, skipped) {
		t.Errorf("no log line of the session that skipped the dead peer (%s…) in:\n%s", skipped, all)
	}
	if n := strings.Count(all, fmt.Sprintf("127.0.0.1:%d", dead)); n != 2 {
		t.Errorf("the dead peer was tried %d times, want 2 (the failed peer is skipped by the second session):\n%s", n, all)
	}
	wantBad := fmt.Sprintf(`127.0.0.1 TCP 502 0 0 "127.0.0.1:%d" "0" "0" "-"`, dead)
	if !strings.Contains(all, wantBad) {
		t.Errorf("no log line %s… for proxy_next_upstream off in:\n%s", wantBad, all)
	}
	if !eventually(2*time.Second, func() bool {
		return strings.Contains(s.Log(), fmt.Sprintf(`connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: 127.0.0.1:%d, upstream: "127.0.0.1:%d"`, skip, dead))
	}) {
		t.Errorf("error log lacks nginx's connect() failed line:\n%s", s.Log())
	}
}

// TestStreamIdleTimeout: proxy_timeout closes a session in which no byte moved for that long; nginx logs it
// with $status 200 and "connection timed out … while proxying connection".
func TestStreamIdleTimeout(t *testing.T) {
	t.Parallel()
	be := newTCPBackend(t, "a", false)
	port := freePort(t)
	s := start(t, streamConf(fmt.Sprintf(`    server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; proxy_timeout 1s; }`, port, be.Port)), withArgs("-g", "error_log stderr info;"))
	c := dialStream(t, port)
	r := bufio.NewReader(c)
	echoLine(t, c, r, "ping")
	began := time.Now()
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("idle session: read gave %v, want EOF after proxy_timeout", err)
	}
	if d := time.Since(began); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("idle session closed after %v, want about 1s", d)
	}
	lines := waitStreamLog(t, s, 1)
	if !strings.HasPrefix(lines[0], "127.0.0.1 TCP 200 5 5 ") {
		t.Errorf("access log %q, want status 200 with 5 bytes each way", lines[0])
	}
	if !eventually(2*time.Second, func() bool {
		return strings.Contains(s.Log(), "connection timed out (110: Connection timed out) while proxying connection")
	}) {
		t.Errorf("error log lacks nginx's timeout line:\n%s", s.Log())
	}
}

// TestStreamDeny: a client that deny matches is closed before any upstream is tried, and logged with
// $status 403 and empty upstream variables, as nginx logs it.
func TestStreamDeny(t *testing.T) {
	t.Parallel()
	be := newTCPBackend(t, "a", true)
	port, open := freePort(t), freePort(t)
	s := start(t, streamConf(fmt.Sprintf(`
    server { listen 127.0.0.1:%d; deny 127.0.0.1; allow all; proxy_pass 127.0.0.1:%d; }
    server { listen 127.0.0.1:%d; allow 127.0.0.0/8; deny all; proxy_pass 127.0.0.1:%d; }`, port, be.Port, open, be.Port)))
	c := dialStream(t, port)
	if n, err := c.Read(make([]byte, 16)); err == nil {
		t.Fatalf("denied client read %d bytes, want the connection closed", n)
	}
	if be.accepted.Load() != 0 {
		t.Errorf("the upstream got %d connections from a denied client", be.accepted.Load())
	}
	lines := waitStreamLog(t, s, 1)
	if want := `127.0.0.1 TCP 403 0 0 "-" "-" "-" "-" 0.0`; !strings.HasPrefix(lines[0], want) {
		t.Errorf("access log %q, want it to start %q", lines[0], want)
	}
	if !eventually(2*time.Second, func() bool {
		return strings.Contains(s.Log(), fmt.Sprintf("access forbidden by rule while initializing session, client: 127.0.0.1, server: 127.0.0.1:%d", port))
	}) {
		t.Errorf("error log lacks nginx's line:\n%s", s.Log())
	}
	c2 := dialStream(t, open)
	if line, err := bufio.NewReader(c2).ReadString('\n'); err != nil || line != "a\n" {
		t.Errorf("allowed client got %q, %v", line, err)
	}
}

// TestStreamReload: a reload keeps the stream socket and an open session (on its old upstream); new sessions
// take the new configuration. A reload with an error in the stream block is refused with file:line and the
// running configuration stays; `-s quit` then waits for the open session.
func TestStreamReload(t *testing.T) {
	t.Parallel()
	a, b := newTCPBackend(t, "a", true), newTCPBackend(t, "b", true)
	port := freePort(t)
	confT := `    server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; }`
	s := start(t, streamConf(fmt.Sprintf(confT, port, a.Port)))
	old := dialStream(t, port)
	or := bufio.NewReader(old)
	if line, _ := or.ReadString('\n'); line != "a\n" {
		t.Fatalf("first session greeted %q, want a", line)
	}
	reload := func(conf string) (int, string) {
		if err := os.WriteFile(s.Conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload")
	}
	if code, out := reload(streamConf(fmt.Sprintf(confT, port, b.Port))); code != 0 {
		t.Fatalf("reload exited %d:\n%s", code, out)
	}
	echoLine(t, old, or, "still here")
	nc := dialStream(t, port)
	if line, _ := bufio.NewReader(nc).ReadString('\n'); line != "b\n" {
		t.Errorf("session after the reload greeted %q, want b", line)
	}
	nc.Close()

	code, out := reload(streamConf(fmt.Sprintf(`    server { listen 127.0.0.1:%d udp ssl; proxy_pass 127.0.0.1:%d; }`, port, a.Port)))
	if code == 0 || !strings.Contains(out, `"listen" directive "ssl" parameter is incompatible with "udp"`) || !strings.Contains(out, "sluice.conf:5") {
		t.Errorf("reload with listen … udp ssl: exit %d, output:\n%s\nwant nginx's refusal naming sluice.conf:5", code, out)
	}
	nc = dialStream(t, port)
	if line, _ := bufio.NewReader(nc).ReadString('\n'); line != "b\n" {
		t.Errorf("after the refused reload a session greeted %q, want b (the running configuration)", line)
	}
	nc.Close()

	s.Signal(syscall.SIGQUIT)
	time.Sleep(300 * time.Millisecond)
	if s.Exited() {
		t.Fatal("sluice exited on QUIT with a stream session open")
	}
	echoLine(t, old, or, "during the stop")
	old.CloseWrite()
	if rest, _ := io.ReadAll(or); !bytes.HasPrefix(rest, []byte("bye a ")) {
		t.Errorf("end of the old session: %q", rest)
	}
	if _, ok := s.Wait(5 * time.Second); !ok {
		t.Error("sluice did not exit once the last stream session ended")
	}
}

// TestStreamTLS: `listen … ssl` terminates TLS with the server's certificate and passes the plain bytes on.
func TestStreamTLS(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	be := newTCPBackend(t, "a", false)
	port := freePort(t)
	s := start(t, streamConf(fmt.Sprintf(`    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate site.pem;
        ssl_certificate_key site.key.pem;
        proxy_pass 127.0.0.1:%d;
    }`, port, be.Port)), ca.certFiles(t, "site", ecdsaP256, "db.test")...)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr(port), ca.clientTLS("db.test"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	echoLine(t, c, r, "over tls")
	// plain text to the TLS port: the handshake fails, nginx logs $status 500
	pc := dialStream(t, port)
	io.WriteString(pc, "GET / HTTP/1.0\r\n\r\n")
	io.ReadAll(pc)
	if lines := waitStreamLog(t, s, 1); !strings.HasPrefix(lines[0], `127.0.0.1 TCP 500 0 0 "-"`) {
		t.Errorf("failed handshake logged %q, want status 500", lines[0])
	}
	c.CloseWrite()
	if rest, _ := io.ReadAll(r); string(rest) != "bye a 9\n" {
		t.Errorf("after close_notify got %q, want the backend's answer to the half-close", rest)
	}
}

// TestStreamProxyProtocol: `proxy_protocol on` sends the upstream nginx's PROXY v1 header (the client's address
// and the server's, then the session's bytes); `listen … proxy_protocol` takes one from a load balancer, which
// sets $proxy_protocol_addr and leaves $remote_addr the balancer's (as nginx without set_real_ip_from), and a
// broken header ends the session with $status 400.
func TestStreamProxyProtocol(t *testing.T) {
	t.Parallel()
	headers := make(chan string, 4)
	up := rawUpstream(t, func(c net.Conn) {
		line, _ := bufio.NewReader(c).ReadString('\n')
		headers <- line
		io.WriteString(c, "ok\n")
	})
	send, recv := freePort(t), freePort(t)
	s := start(t, fmt.Sprintf(`events {}
stream {
    log_format pp '$remote_addr $proxy_protocol_addr $proxy_protocol_port $status $server_addr:$server_port';
    server { listen 127.0.0.1:%d; proxy_pass %s; proxy_protocol on; }
    server { listen 127.0.0.1:%d proxy_protocol; proxy_pass %s; access_log logs/stream.log pp; }
}
`, send, up, recv, up))
	c := dialStream(t, send)
	io.WriteString(c, "hello\n")
	want := fmt.Sprintf("PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n", c.LocalAddr().(*net.TCPAddr).Port, send)
	if got := <-headers; got != want {
		t.Errorf("upstream got %q first, want %q", got, want)
	}
	c2 := dialStream(t, recv)
	io.WriteString(c2, "PROXY TCP4 192.0.2.7 10.0.0.1 4242 443\r\nfirst line\n")
	if got := <-headers; got != "first line\n" {
		t.Errorf("upstream got %q, want the bytes after the PROXY header", got)
	}
	if line, _ := bufio.NewReader(c2).ReadString('\n'); line != "ok\n" {
		t.Errorf("client got %q", line)
	}
	c2.Close()
	lines := waitStreamLog(t, s, 1)
	if want := fmt.Sprintf("127.0.0.1 192.0.2.7 4242 200 127.0.0.1:%d", recv); lines[0] != want {
		t.Errorf("access log %q, want %q", lines[0], want)
	}
	c3 := dialStream(t, recv)
	io.WriteString(c3, "GARBAGE\r\n")
	if _, err := c3.Read(make([]byte, 8)); err == nil {
		t.Error("a broken PROXY header was answered")
	}
	if lines := waitStreamLog(t, s, 2); !strings.HasPrefix(lines[1], "127.0.0.1 - - 400 ") {
		t.Errorf("access log %q, want \"127.0.0.1 - - 400 …\" for a broken header", lines[1])
	}
}

// TestStreamPreread: ssl_preread and a map on $ssl_preread_server_name route TLS sessions by SNI to different
// upstreams without terminating TLS: each client completes its handshake with the backend its name chose.
func TestStreamPreread(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	tlsBackend := func(name string) int {
		certPEM, keyPEM := ca.issue(t, ecdsaP256, name)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		tc := &tls.Config{Certificates: []tls.Certificate{cert}}
		return upstreamPort(rawUpstream(t, func(c net.Conn) { io.WriteString(tls.Server(c, tc), name+"\n") }))
	}
	a, b := tlsBackend("a.test"), tlsBackend("b.test")
	plain := newTCPBackend(t, "p", false)
	port, plainPort := freePort(t), freePort(t)
	s := start(t, fmt.Sprintf(`events {}
stream {
    map $ssl_preread_server_name $backend {
        a.test     127.0.0.1:%d;
        default    bees;
    }
    upstream bees { server 127.0.0.1:%d; }
    log_format sni '$ssl_preread_server_name $upstream_addr $status';
    server { listen 127.0.0.1:%d; ssl_preread on; proxy_pass $backend; access_log logs/stream.log sni; }
    log_format bytes '$status $bytes_received $upstream_bytes_sent "$ssl_preread_server_name"';
    server { listen 127.0.0.1:%d; ssl_preread on; proxy_pass 127.0.0.1:%d; access_log logs/plain.log bytes; }
}
`, a, b, port, plainPort, plain.Port))
	// not TLS: passed on unchanged; nginx counts the bytes preread took as sent upstream, not as received
	c := dialStream(t, plainPort)
	io.WriteString(c, "SSH-2.0-x\r\n")
	c.CloseWrite()
	if got, _ := io.ReadAll(c); string(got) != "SSH-2.0-x\r\nbye p 11\n" {
		t.Errorf("plain session through ssl_preread: got %q", got)
	}
	if !eventually(5*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", "plain.log"))
		return string(data) == "200 0 11 \"-\"\n"
	}) {
		data, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", "plain.log"))
		t.Errorf("plain session logged %q, want nginx's \"200 0 11 \\\"-\\\"\"", data)
	}
	for _, name := range []string{"a.test", "b.test"} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr(port), ca.clientTLS(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || line != name+"\n" {
			t.Errorf("TLS to %s through ssl_preread reached %q, %v", name, line, err)
		}
	}
	lines := waitStreamLog(t, s, 2)
	all := strings.Join(lines, "\n")
	for _, w := range []string{fmt.Sprintf("a.test 127.0.0.1:%d 200", a), fmt.Sprintf("b.test 127.0.0.1:%d 200", b)} {
		if !strings.Contains(all, w) {
			t.Errorf("access log lacks %q:\n%s", w, all)
		}
	}
}

// TestStreamDrainTimeout: a graceful stop waits for an open stream session no longer than
// worker_shutdown_timeout, then closes it and exits.
func TestStreamDrainTimeout(t *testing.T) {
	t.Parallel()
	be := newTCPBackend(t, "a", false)
	port := freePort(t)
	s := start(t, "worker_shutdown_timeout 1s;\n"+streamConf(fmt.Sprintf(`    server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; }`, port, be.Port)))
	c := dialStream(t, port)
	r := bufio.NewReader(c)
	echoLine(t, c, r, "open")
	quit := time.Now()
	s.Signal(syscall.SIGQUIT)
	echoLine(t, c, r, "while draining")
	if _, err := io.ReadAll(r); err != nil {
		t.Fatalf("session end: %v", err)
	}
	if d := time.Since(quit); d < 800*time.Millisecond || d > 4*time.Second {
		t.Errorf("session closed %v after QUIT, want about worker_shutdown_timeout (1s)", d)
	}
	if _, ok := s.Wait(5 * time.Second); !ok {
		t.Error("sluice did not exit after worker_shutdown_timeout")
	}
}

// TestStreamConnectTimeout: a peer that does not answer the connect within proxy_connect_timeout ends the
// session with 502 after that time, logged as nginx logs it ("upstream timed out (110: Connection timed out)
// while connecting to upstream", $upstream_connect_time "-"). The peer is a socket whose backlog is full, so
// the kernel drops further SYNs.
func TestStreamConnectTimeout(t *testing.T) {
	t.Parallel()
	full := fullBacklogPort(t)
	port := freePort(t)
	s := start(t, streamConf(fmt.Sprintf(`    server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; proxy_connect_timeout 1s; }`, port, full)))
	c := dialStream(t, port)
	began := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read a byte from a session whose upstream never connected")
	}
	if d := time.Since(began); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("session ended %v after it began, want proxy_connect_timeout (1s)", d)
	}
	lines := waitStreamLog(t, s, 1)
	if want := fmt.Sprintf(`127.0.0.1 TCP 502 0 0 "127.0.0.1:%d" "0" "0" "-" 1.0`, full); !strings.HasPrefix(lines[0], want) {
		t.Errorf("access log %q, want it to start %q", lines[0], want)
	}
	want := fmt.Sprintf(`upstream timed out (110: Connection timed out) while connecting to upstream, client: 127.0.0.1, server: 127.0.0.1:%d, upstream: "127.0.0.1:%d"`, port, full)
	if !eventually(2*time.Second, func() bool { return strings.Contains(s.Log(), want) }) {
		t.Errorf("error log lacks %q:\n%s", want, s.Log())
	}
}

// TestStreamWildcardAndSpecific: `listen P` and `listen 127.0.0.1:P` in two stream servers share one socket, as
// in nginx: a connection to 127.0.0.1 goes to the specific server, one to another address to the wildcard's.
func TestStreamWildcardAndSpecific(t *testing.T) {
	t.Parallel()
	wild, specific := newTCPBackend(t, "wild", true), newTCPBackend(t, "specific", true)
	port := freePort(t)
	start(t, streamConf(fmt.Sprintf(`
    server { listen %[1]d; proxy_pass 127.0.0.1:%[2]d; }
    server { listen 127.0.0.1:%[1]d; proxy_pass 127.0.0.1:%[3]d; }`, port, wild.Port, specific.Port)))
	for host, want := range map[string]string{"127.0.0.1": "specific\n", "127.0.0.2": "wild\n"} {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", host, port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if line, _ := bufio.NewReader(c).ReadString('\n'); line != want {
			t.Errorf("connection to %s reached %q, want %q", host, line, want)
		}
		c.Close()
	}
}

// TestStreamRemovedByReload: with worker_shutdown_timeout, a session whose stream server a reload removed is
// closed once the timeout has passed, as nginx's old worker closes its sessions (it stayed open for good).
func TestStreamRemovedByReload(t *testing.T) {
	t.Parallel()
	be := newTCPBackend(t, "a", false)
	port, other := freePort(t), freePort(t)
	s := start(t, "worker_shutdown_timeout 1s;\n"+streamConf(fmt.Sprintf(`    server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; }`, port, be.Port)))
	c := dialStream(t, port)
	r := bufio.NewReader(c)
	echoLine(t, c, r, "open")
	if err := os.WriteFile(s.Conf, []byte("worker_shutdown_timeout 1s;\n"+streamConf(fmt.Sprintf(`    server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; }`, other, be.Port))), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload"); code != 0 {
		t.Fatalf("reload exited %d:\n%s", code, out)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(r); err != nil {
		t.Errorf("the removed server's session was not closed: %v", err)
	}
}

// TestStreamStopBeforeTunnel: a graceful stop ends sessions that have not reached their tunnel (here one that
// never sends the TLS ClientHello ssl_preread waits for) at once, so the process exits without waiting for the
// phase's own timeout (30 s), while a session whose tunnel runs is still waited for.
func TestStreamStopBeforeTunnel(t *testing.T) {
	t.Parallel()
	be := newTCPBackend(t, "a", false)
	port, pre := freePort(t), freePort(t)
	s := start(t, streamConf(fmt.Sprintf(`    server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; }
    server { listen 127.0.0.1:%d; ssl_preread on; proxy_pass 127.0.0.1:%d; }`, port, be.Port, pre, be.Port)))
	silent := dialStream(t, pre)
	c := dialStream(t, port)
	r := bufio.NewReader(c)
	echoLine(t, c, r, "open")
	time.Sleep(200 * time.Millisecond) // (the silent session is in its preread)
	s.Signal(syscall.SIGQUIT)
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(silent); err != nil {
		t.Errorf("the session before its tunnel was not ended by the stop: %v", err)
	}
	echoLine(t, c, r, "while stopping")
	c.CloseWrite()
	io.ReadAll(r)
	if _, ok := s.Wait(10 * time.Second); !ok {
		t.Error("sluice did not exit once the running session ended")
	}
}
