package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The expected values of these tests are nginx 1.22's answers to the same configurations (Debian's nginx with
// ngx_stream_module, side by side on other ports): the access log lines, the error log lines and which peer
// answered.

// udpBackend is a UDP server for stream tests: it answers each datagram with replies copies of "<name>:" and the
// datagram (none with replies 0), and counts what it got.
type udpBackend struct {
	Name string
	Port int
	got  atomic.Int64
}

func newUDPBackend(t *testing.T, name string, replies int) *udpBackend {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	b := &udpBackend{Name: name, Port: pc.LocalAddr().(*net.UDPAddr).Port}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			b.got.Add(1)
			for range replies {
				pc.WriteTo(append([]byte(name+":"), buf[:n]...), from)
			}
		}
	}()
	return b
}

// freeUDPPort is a port free for both TCP and UDP on 127.0.0.1.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := freePort(t)
		if pc, err := net.ListenPacket("udp", addr(p)); err == nil {
			pc.Close()
			return p
		}
	}
	t.Fatal("no free UDP port")
	return 0
}

// deadUDPPort is a UDP port nothing listens on: a datagram sent there is answered with ICMP port unreachable.
func deadUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	return p
}

// udpClient is a client socket sending to port.
func udpClient(t *testing.T, port int) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readDatagram reads one datagram within d ("" and false when none came).
func readDatagram(c *net.UDPConn, d time.Duration) (string, bool) {
	buf := make([]byte, 65535)
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

// TestStreamUDPDNS: DNS load balancing over UDP: each query is a session to one peer of the group in round
// robin, the answer comes back from the listening socket, and proxy_responses 1 ends the session at once
// (nginx's "udp done", $status 200, the bytes each way).
func TestStreamUDPDNS(t *testing.T) {
	t.Parallel()
	a, b := upstreamPort(newDNSServer(t, "example.org", "10.0.0.1").addr), upstreamPort(newDNSServer(t, "example.org", "10.0.0.2").addr)
	port := freeUDPPort(t)
	s := start(t, streamConf(fmt.Sprintf(`
    upstream dns { server 127.0.0.1:%d; server 127.0.0.1:%d; }
    server { listen 127.0.0.1:%d udp; proxy_pass dns; proxy_responses 1; proxy_timeout 1s; }`, a, b, port)),
		withArgs("-g", "error_log stderr info;"))
	cl := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
	var got []string
	for range 4 {
		q := new(dns.Msg)
		q.SetQuestion("example.org.", dns.TypeA)
		r, _, err := cl.Exchange(q, addr(port))
		if err != nil {
			t.Fatalf("query through sluice: %v", err)
		}
		if len(r.Answer) != 1 {
			t.Fatalf("answer %v", r)
		}
		got = append(got, r.Answer[0].(*dns.A).A.String())
	}
	if strings.Join(got, " ") != "10.0.0.1 10.0.0.2 10.0.0.1 10.0.0.2" {
		t.Errorf("answers %v, want the two peers in turn", got)
	}
	lines := strings.Join(waitStreamLog(t, s, 4), "\n") // (a session's line is written after its answer)
	for _, peer := range []int{a, b} {
		// a query of 29 bytes, an answer of 56
		if want := fmt.Sprintf(`127.0.0.1 UDP 200 56 29 "127.0.0.1:%d" "29" "56" "0.0`, peer); strings.Count(lines, want) != 2 {
			t.Errorf("access log:\n%s\nwant two lines starting %q", lines, want)
		}
	}
	if !strings.Contains(s.Log(), "udp done, packets from/to client:1/1, bytes from/to client:29/56, bytes from/to upstream:56/29") {
		t.Errorf("error log lacks nginx's \"udp done\" line:\n%s", s.Log())
	}
}

// TestStreamUDPDatagrams: without proxy_responses a client's datagrams are one session to one peer; each
// datagram reaches it and comes back whole and alone (never merged or split, up to 60000 bytes), and the
// session ends after proxy_timeout of silence with $status 200 ("udp timed out").
func TestStreamUDPDatagrams(t *testing.T) {
	t.Parallel()
	be := newUDPBackend(t, "a", 1)
	port := freeUDPPort(t)
	s := start(t, streamConf(fmt.Sprintf(`    server { listen 127.0.0.1:%d udp; proxy_pass 127.0.0.1:%d; proxy_timeout 1s; }`, port, be.Port)),
		withArgs("-g", "error_log stderr info;"))
	c := udpClient(t, port)
	sizes := []int{1, 60000, 7, 1400}
	for _, n := range sizes {
		if _, err := c.Write([]byte(strings.Repeat("x", n))); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, n := range sizes {
		d, ok := readDatagram(c, 3*time.Second)
		if !ok || len(d) != n+2 || !strings.HasPrefix(d, "a:x") {
			t.Fatalf("reply of the %d-byte datagram: %d bytes, %v", n, len(d), ok)
		}
		total += n
	}
	lines := waitStreamLog(t, s, 1)
	if want := fmt.Sprintf(`127.0.0.1 UDP 200 %d %d "127.0.0.1:%d" "%d" "%d" "0.0`, total+8, total, be.Port, total, total+8); !strings.HasPrefix(lines[0], want) {
		t.Errorf("access log %q, want it to start %q", lines[0], want)
	}
	if !strings.Contains(s.Log(), "udp timed out, packets from/to client:4/4") {
		t.Errorf("error log lacks nginx's \"udp timed out\" line:\n%s", s.Log())
	}
	if be.got.Load() != 4 {
		t.Errorf("upstream got %d datagrams, want 4", be.got.Load())
	}
}

// TestStreamUDPMissingReply: with proxy_responses 2 and an upstream that answers once, the session ends after
// proxy_timeout with 502 and nginx's "upstream timed out" line; with proxy_requests 1 every datagram is a
// session of its own.
func TestStreamUDPMissingReply(t *testing.T) {
	t.Parallel()
	be := newUDPBackend(t, "a", 1)
	port, each := freeUDPPort(t), freeUDPPort(t)
	s := start(t, streamConf(fmt.Sprintf(`
    server { listen 127.0.0.1:%d udp; proxy_pass 127.0.0.1:%d; proxy_responses 2; proxy_timeout 1s; }
    server { listen 127.0.0.1:%d udp; proxy_pass 127.0.0.1:%d; proxy_requests 1; proxy_responses 1; proxy_timeout 1s; }`, port, be.Port, each, be.Port)),
		withArgs("-g", "error_log stderr info;"))
	c := udpClient(t, port)
	c.Write([]byte("x"))
	if d, ok := readDatagram(c, 3*time.Second); d != "a:x" {
		t.Fatalf("reply %q, %v", d, ok)
	}
	lines := waitStreamLog(t, s, 1)
	if want := fmt.Sprintf(`127.0.0.1 UDP 502 3 1 "127.0.0.1:%d" "1" "3"`, be.Port); !strings.HasPrefix(lines[0], want) {
		t.Errorf("access log %q, want it to start %q", lines[0], want)
	}
	if !strings.Contains(s.Log(), fmt.Sprintf(`upstream timed out (110: Connection timed out) while proxying connection, client: 127.0.0.1, server: 127.0.0.1:%d, upstream: "127.0.0.1:%d"`, port, be.Port)) {
		t.Errorf("error log lacks nginx's line:\n%s", s.Log())
	}
	c2 := udpClient(t, each)
	c2.Write([]byte("a"))
	c2.Write([]byte("b"))
	// two sessions, each through its own upstream socket: the replies may come in either order
	var replies []string
	for range 2 {
		d, _ := readDatagram(c2, 3*time.Second)
		replies = append(replies, d)
	}
	if slices.Sort(replies); !slices.Equal(replies, []string{"a:a", "a:b"}) {
		t.Errorf("replies %q, want a:a and a:b", replies)
	}
	lines = waitStreamLog(t, s, 3)
	for _, l := range lines[1:] {
		if want := fmt.Sprintf(`127.0.0.1 UDP 200 3 1 "127.0.0.1:%d" "1" "3"`, be.Port); !strings.HasPrefix(l, want) {
			t.Errorf("proxy_requests 1: access log %q, want it to start %q", l, want)
		}
	}
}

// TestStreamUDPPassiveHealth: a peer that answers with ICMP port unreachable fails its session (nginx's
// "recv() failed (111: Connection refused)", the error counts as the reply, $status 200, nothing sent back) and,
// with max_fails=1, is left out: every later query goes to the live peer. hash $remote_addr consistent keeps a
// client on one peer.
func TestStreamUDPPassiveHealth(t *testing.T) {
	t.Parallel()
	live, other := newUDPBackend(t, "live", 1), newUDPBackend(t, "other", 1)
	dead := deadUDPPort(t)
	port, hashed := freeUDPPort(t), freeUDPPort(t)
	s := start(t, streamConf(fmt.Sprintf(`
    upstream two { server 127.0.0.1:%d max_fails=1 fail_timeout=30s; server 127.0.0.1:%d max_fails=1 fail_timeout=30s; }
    upstream h { hash $remote_addr consistent; server 127.0.0.1:%d; server 127.0.0.1:%d; }
    server { listen 127.0.0.1:%d udp; proxy_pass two; proxy_responses 1; proxy_timeout 1s; }
    server { listen 127.0.0.1:%d udp; proxy_pass h; proxy_responses 1; proxy_timeout 1s; }`, live.Port, dead, live.Port, other.Port, port, hashed)),
		withArgs("-g", "error_log stderr info;"))
	var replies []string
	for i := range 4 {
		c := udpClient(t, port)
		c.Write([]byte(fmt.Sprint("m", i)))
		d, _ := readDatagram(c, 700*time.Millisecond)
		replies = append(replies, d)
	}
	if want := "live:m0,,live:m2,live:m3"; strings.Join(replies, ",") != want {
		t.Errorf("replies %q, want %q (the dead peer tried once, then left out)", strings.Join(replies, ","), want)
	}
	// (sessions end, and log, in whatever order their last datagram comes: find the dead peer's line)
	lines := waitStreamLog(t, s, 4)
	want := fmt.Sprintf(`127.0.0.1 UDP 200 0 2 "127.0.0.1:%d" "2" "0"`, dead)
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want) }) {
		t.Errorf("access log %q: no line of the dead peer's session starting %q", lines, want)
	}
	if !strings.Contains(s.Log(), fmt.Sprintf(`recv() failed (111: Connection refused) while proxying and reading from upstream, client: 127.0.0.1, server: 127.0.0.1:%d, upstream: "127.0.0.1:%d"`, port, dead)) {
		t.Errorf("error log lacks nginx's line:\n%s", s.Log())
	}
	var first string
	for i := range 3 {
		c := udpClient(t, hashed) // another source port each time: the address alone chooses
		c.Write([]byte("h"))
		d, _ := readDatagram(c, 2*time.Second)
		if i == 0 {
			first = d
		}
		if d == "" || d != first {
			t.Errorf("hash $remote_addr consistent, query %d: %q, want the peer of the first (%q)", i, d, first)
		}
	}
}

// TestStreamUDPDeny: deny drops a client's datagrams: each is a session of its own logged with 403 and nginx's
// line, and nothing reaches the upstream.
func TestStreamUDPDeny(t *testing.T) {
	t.Parallel()
	be := newUDPBackend(t, "a", 1)
	port := freeUDPPort(t)
	s := start(t, streamConf(fmt.Sprintf(`    server { listen 127.0.0.1:%d udp; deny 127.0.0.1; proxy_pass 127.0.0.1:%d; }`, port, be.Port)),
		withArgs("-g", "error_log stderr info;"))
	c := udpClient(t, port)
	c.Write([]byte("a"))
	c.Write([]byte("b"))
	if d, ok := readDatagram(c, 300*time.Millisecond); ok {
		t.Errorf("denied client got %q", d)
	}
	lines := waitStreamLog(t, s, 2)
	for _, l := range lines {
		if want := `127.0.0.1 UDP 403 0 1 "-" "-" "-" "-" 0.0`; !strings.HasPrefix(l, want) {
			t.Errorf("access log %q, want it to start %q", l, want)
		}
	}
	if n := strings.Count(s.Log(), fmt.Sprintf("access forbidden by rule while initializing session, client: 127.0.0.1, server: 127.0.0.1:%d", port)); n != 2 {
		t.Errorf("%d lines of nginx's deny message, want 2:\n%s", n, s.Log())
	}
	if be.got.Load() != 0 {
		t.Errorf("upstream got %d datagrams from a denied client", be.got.Load())
	}
}

// TestStreamUDPReload: a reload keeps the UDP socket; an open session stays on its peer while new clients
// take the new configuration. A graceful stop then ends the session without replies pending at once.
func TestStreamUDPReload(t *testing.T) {
	t.Parallel()
	a, b := newUDPBackend(t, "a", 1), newUDPBackend(t, "b", 1)
	port := freeUDPPort(t)
	confT := `    server { listen 127.0.0.1:%d udp; proxy_pass 127.0.0.1:%d; }`
	s := start(t, streamConf(fmt.Sprintf(confT, port, a.Port)))
	old := udpClient(t, port)
	old.Write([]byte("1"))
	if d, _ := readDatagram(old, 3*time.Second); d != "a:1" {
		t.Fatalf("first reply %q", d)
	}
	os.WriteFile(s.Conf, []byte(streamConf(fmt.Sprintf(confT, port, b.Port))), 0o644)
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload"); code != 0 {
		t.Fatalf("reload exited %d:\n%s", code, out)
	}
	old.Write([]byte("2"))
	if d, _ := readDatagram(old, 3*time.Second); d != "a:2" {
		t.Errorf("the open session after the reload: %q, want a:2 (its peer)", d)
	}
	nc := udpClient(t, port)
	nc.Write([]byte("3"))
	if d, _ := readDatagram(nc, 3*time.Second); d != "b:3" {
		t.Errorf("a new client after the reload: %q, want b:3", d)
	}
	s.Signal(syscall.SIGQUIT)
	if _, ok := s.Wait(5 * time.Second); !ok {
		t.Error("sluice did not exit on QUIT with UDP sessions expecting no reply")
	}
	lines := streamLog(t, s)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "127.0.0.1 UDP 200 ") {
		t.Errorf("access log after the stop: %q, want the two sessions with 200", lines)
	}
}

// TestStreamLimitConn: limit_conn in stream closes a connection over the limit at once, logs nginx's line and
// $status 503, and lets a connection in again once the first one ended.
func TestStreamLimitConn(t *testing.T) {
	t.Parallel()
	be := newTCPBackend(t, "a", true)
	port := freePort(t)
	s := start(t, streamConf(fmt.Sprintf(`
    limit_conn_zone $binary_remote_addr zone=addr:10m;
    server { listen 127.0.0.1:%d; limit_conn addr 1; proxy_pass 127.0.0.1:%d; }`, port, be.Port)))
	first := dialStream(t, port)
	fr := bufio.NewReader(first)
	if line, _ := fr.ReadString('\n'); line != "a\n" {
		t.Fatalf("first connection greeted %q", line)
	}
	second := dialStream(t, port)
	if n, err := second.Read(make([]byte, 16)); err == nil {
		t.Fatalf("connection over the limit read %d bytes, want it closed", n)
	}
	lines := waitStreamLog(t, s, 1)
	if want := `127.0.0.1 TCP 503 0 0 "-" "-" "-" "-" 0.0`; !strings.HasPrefix(lines[0], want) {
		t.Errorf("access log %q, want it to start %q", lines[0], want)
	}
	if !eventually(2*time.Second, func() bool {
		return strings.Contains(s.Log(), fmt.Sprintf(`limiting connections by zone "addr" while initializing session, client: 127.0.0.1, server: 127.0.0.1:%d`, port))
	}) {
		t.Errorf("error log lacks nginx's line:\n%s", s.Log())
	}
	first.Close()
	waitStreamLog(t, s, 2)
	third := dialStream(t, port)
	if line, _ := bufio.NewReader(third).ReadString('\n'); line != "a\n" {
		t.Errorf("a connection after the first ended greeted %q, want a", line)
	}
}

// TestStreamUDPUnixPeer: a unix: peer of a udp server is a datagram socket (as nginx dials it), whose replies
// come back to the client; a path that is a stream socket fails the session with nginx's connect() error line,
// and the process goes on (it crashed on the first datagram).
func TestStreamUDPUnixPeer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dg, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "dg.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dg.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := dg.ReadFromUnix(buf)
			if err != nil {
				return
			}
			dg.WriteToUnix(append([]byte("unix:"), buf[:n]...), from)
		}
	}()
	st, err := net.Listen("unix", filepath.Join(dir, "st.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	port, wrong := freeUDPPort(t), freeUDPPort(t)
	s := start(t, streamConf(fmt.Sprintf(`
    server { listen 127.0.0.1:%d udp; proxy_pass unix:%s/dg.sock; proxy_responses 1; }
    server { listen 127.0.0.1:%d udp; proxy_pass unix:%s/st.sock; proxy_responses 1; proxy_timeout 1s; }`, port, dir, wrong, dir)))
	c := udpClient(t, port)
	c.Write([]byte("ping"))
	if d, _ := readDatagram(c, 3*time.Second); d != "unix:ping" {
		t.Fatalf("reply through a unix datagram peer: %q", d)
	}
	w := udpClient(t, wrong)
	w.Write([]byte("ping"))
	readDatagram(w, 500*time.Millisecond)
	if !eventually(3*time.Second, func() bool { return strings.Contains(s.Log(), "connect() failed (91: Protocol wrong type for socket)") }) {
		t.Errorf("no connect() error line for a stream socket peer:\n%s", s.Log())
	}
	c.Write([]byte("again"))
	if d, _ := readDatagram(c, 3*time.Second); d != "unix:again" || s.Exited() {
		t.Errorf("after the stream socket peer: %q, exited %v", d, s.Exited())
	}
}
