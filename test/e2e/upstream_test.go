package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// peer is a named backend for balancing tests: GET answers its name, /ws upgrades to a WebSocket echo (the
// 101 carries X-Backend), /drop reads the request and closes the connection without answering.
type peer struct {
	*backend
	name  string
	hits  atomic.Int64
	posts atomic.Int64
	open  atomic.Int64 // WebSockets open now
	mu    sync.Mutex
	conns []*websocket.Conn
}

func newPeer(t *testing.T, name string) *peer {
	t.Helper()
	p := &peer{name: name}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	p.backend = newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		if r.Method == http.MethodPost {
			p.posts.Add(1)
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/ws"):
			c, err := up.Upgrade(w, r, http.Header{"X-Backend": {name}})
			if err != nil {
				return
			}
			p.open.Add(1)
			defer p.open.Add(-1)
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			defer c.Close()
			for {
				mt, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				if c.WriteMessage(mt, msg) != nil {
					return
				}
			}
		case strings.HasPrefix(r.URL.Path, "/fail/"):
			// /fail/CODE/NAME: the peer called NAME answers CODE, the others answer normally; all of them read
			// the body first, and answer their name followed by it
			body, _ := io.ReadAll(r.Body)
			code, who, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/fail/"), "/")
			n, _ := strconv.Atoi(code)
			if who == name || who == "all" {
				w.WriteHeader(n)
			}
			io.WriteString(w, name+string(body))
		case strings.HasPrefix(r.URL.Path, "/drop"):
			io.Copy(io.Discard, r.Body)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Backend", name)
			io.WriteString(w, name)
		}
	}))
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

// newPeers starts a peer per name and returns them with their upstream server lines.
func newPeers(t *testing.T, names ...string) ([]*peer, string) {
	var peers []*peer
	var lines []string
	for _, n := range names {
		p := newPeer(t, n)
		peers = append(peers, p)
		lines = append(lines, "server "+addr(p.Port)+";")
	}
	return peers, strings.Join(lines, " ")
}

// kill stops the peer: its port refuses connections from now on.
func (p *peer) kill() {
	p.Listener.Close()
	p.CloseClientConnections()
}

// fetch requests url on a fresh client and returns the status, the body and the X-Upstream-* headers.
func fetch(t *testing.T, c *http.Client, method, url string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// upstreamVarHeaders show a response's $upstream_* variables in X-Upstream-* headers.
const upstreamVarHeaders = `        add_header X-Upstream-Addr $upstream_addr always;
        add_header X-Upstream-Status $upstream_status always;
        add_header X-Upstream-Times "$upstream_connect_time|$upstream_header_time|$upstream_response_time" always;`

const upstreamConf = `events {}
http {
    upstream pool {
{{SERVERS}}
    }
    server {
        listen {{PORT}};
` + upstreamVarHeaders + `
        location / {
            proxy_pass http://pool;
{{LOC}}
        }
    }
}
`

func startPool(t *testing.T, servers, loc string) (*Sluice, int) {
	port := freePort(t)
	return start(t, fill(t, upstreamConf, "PORT", port, "SERVERS", servers, "LOC", loc)), port
}

func TestUpstreamWeightedRoundRobin(t *testing.T) {
	t.Parallel()
	a, b, c := newPeer(t, "a"), newPeer(t, "b"), newPeer(t, "c")
	_, port := startPool(t, fmt.Sprintf("server %s weight=5; server %s; server %s;", addr(a.Port), addr(b.Port), addr(c.Port)), "")
	var got []string
	for range 14 {
		_, body, _ := fetch(t, http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		got = append(got, body)
	}
	// nginx's smooth weighted round robin for weights 5, 1, 1
	if want := "a a b a c a a a a b a c a a"; strings.Join(got, " ") != want {
		t.Fatalf("sequence %q, want nginx's %q", strings.Join(got, " "), want)
	}
}

func TestUpstreamNextUpstream(t *testing.T) {
	t.Parallel()
	a, b := newPeer(t, "a"), newPeer(t, "b")
	dead := freePort(t)
	s, port := startPool(t, fmt.Sprintf("server %s; server %s; server %s;", addr(dead), addr(a.Port), addr(b.Port)), "")
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	// the dead peer costs no failed request: the next one answers, and the variables list both
	status, body, h := fetch(t, http.DefaultClient, "GET", url+"/", nil)
	if status != 200 || body != "a" {
		t.Fatalf("got %d %q", status, body)
	}
	if got, want := h.Get("X-Upstream-Addr"), addr(dead)+", "+addr(a.Port); got != want {
		t.Errorf("$upstream_addr %q, want %q", got, want)
	}
	if got := h.Get("X-Upstream-Status"); got != "502, 200" {
		t.Errorf("$upstream_status %q, want \"502, 200\"", got)
	}
	// logged at error, as nginx logs a failed try: seen with the default error_log level
	if want := "[error]"; !eventually(5*time.Second, func() bool {
		for _, l := range strings.Split(s.Log(), "\n") {
			if strings.Contains(l, addr(dead)+" failed, trying next upstream") && strings.Contains(l, want) {
				return true
			}
		}
		return false
	}) {
		t.Errorf("no %s line for the refused peer:\n%s", want, s.Log())
	}
	// connect, header and response times per try: the refused peer has no connect or header time
	times := strings.Split(h.Get("X-Upstream-Times"), "|")
	if len(times) != 3 || !strings.HasPrefix(times[0], "-, 0.") || !strings.HasPrefix(times[1], "-, 0.") || !strings.HasPrefix(times[2], "0.") || !strings.Contains(times[2], ", 0.") {
		t.Errorf("$upstream_connect_time|header|response = %q", h.Get("X-Upstream-Times"))
	}
	// the dead peer is now out for fail_timeout: a and b alternate
	seen := map[string]int{}
	for range 4 {
		_, body, h := fetch(t, http.DefaultClient, "GET", url+"/", nil)
		seen[body]++
		if strings.Contains(h.Get("X-Upstream-Addr"), ",") {
			t.Errorf("a failed peer was tried again within fail_timeout: %s", h.Get("X-Upstream-Addr"))
		}
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Errorf("after the failure: %v", seen)
	}
}

// TestUpstreamNextUpstreamStatus: proxy_next_upstream http_500 sends the request on when a peer answers 500,
// proxy_next_upstream_tries bounds the tries, and without http_500 the 500 goes to the client.
func TestUpstreamNextUpstreamStatus(t *testing.T) {
	t.Parallel()
	_, servers := newPeers(t, "a", "b", "c")
	_, port := startPool(t, servers, "proxy_next_upstream error http_500; proxy_next_upstream_tries 2;")
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	// round robin starts at a, which answers 500: b answers
	status, body, h := fetch(t, http.DefaultClient, "GET", url+"/fail/500/a", nil)
	if status != 200 || body != "b" || h.Get("X-Upstream-Status") != "500, 200" {
		t.Fatalf("got %d %q after %q, want b's 200 after a's 500", status, body, h.Get("X-Upstream-Status"))
	}
	// every peer answers 500: two tries, then the last 500 goes to the client
	status, _, h = fetch(t, http.DefaultClient, "GET", url+"/fail/500/all", nil)
	if status != 500 || h.Get("X-Upstream-Status") != "500, 500" {
		t.Fatalf("all failing: got %d after %q, want 500 after two tries", status, h.Get("X-Upstream-Status"))
	}
	// a 503 is not in the list: it is the answer
	status, _, h = fetch(t, http.DefaultClient, "GET", url+"/fail/503/all", nil)
	if status != 503 || strings.Contains(h.Get("X-Upstream-Status"), ",") {
		t.Fatalf("503: got %d after %q, want one try", status, h.Get("X-Upstream-Status"))
	}
	// the default (error timeout) passes a 500 on to the client
	_, port2 := startPool(t, servers, "")
	status, _, h = fetch(t, http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/fail/500/all", port2), nil)
	if status != 500 || h.Get("X-Upstream-Status") != "500" {
		t.Fatalf("default proxy_next_upstream: got %d after %q, want one try", status, h.Get("X-Upstream-Status"))
	}
}

// TestUpstreamResendBody: a request body up to client_body_buffer_size is kept while it is sent, so a try that
// consumed it can be repeated on the next peer, as nginx (which buffers bodies) does: a PUT after a 500, a POST
// only with non_idempotent; a larger body is not sent twice.
func TestUpstreamResendBody(t *testing.T) {
	t.Parallel()
	_, servers := newPeers(t, "a", "b")
	send := func(port int, method, body string) (int, string, string) {
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/fail/500/a", port), strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(got), resp.Header.Get("X-Upstream-Status")
	}
	small, large := strings.Repeat("s", 10<<10), strings.Repeat("L", 20<<10)
	// a fresh pool for each case: round robin starts at a, whose 500 also takes it out for fail_timeout
	for _, tc := range []struct {
		loc, method, body string
		resent            bool
	}{
		{"proxy_next_upstream error http_500;", "PUT", small, true},
		{"proxy_next_upstream error http_500;", "POST", small, false}, // non_idempotent not set
		{"proxy_next_upstream error http_500 non_idempotent;", "POST", small, true},
		{"proxy_next_upstream error http_500;", "PUT", large, false}, // over client_body_buffer_size 16k
		{"proxy_next_upstream error http_500 non_idempotent; client_body_buffer_size 64k;", "POST", large, true},
	} {
		_, port := startPool(t, servers, tc.loc)
		status, body, ups := send(port, tc.method, tc.body)
		if tc.resent && (status != 200 || body != "b"+tc.body || ups != "500, 200") {
			t.Errorf("%s %d bytes with %q: %d (%d bytes) after %q, want b's 200 with the whole body after a's 500", tc.method, len(tc.body), tc.loc, status, len(body), ups)
		}
		if !tc.resent && (status != 500 || ups != "500") {
			t.Errorf("%s %d bytes with %q: %d after %q, want a's 500 after one try", tc.method, len(tc.body), tc.loc, status, ups)
		}
	}
}

// TestUpstreamMaxConns: a peer at max_conns (an open WebSocket tunnel counts) gets no new requests until one ends.
func TestUpstreamMaxConns(t *testing.T) {
	t.Parallel()
	a, b := newPeer(t, "a"), newPeer(t, "b")
	_, port := startPool(t, fmt.Sprintf("server %s max_conns=1; server %s;", addr(a.Port), addr(b.Port)), "")
	c, resp, err := wsDialer(addr(port), nil).Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := resp.Header.Get("X-Backend"); got != "a" {
		t.Fatalf("the first tunnel went to %q, want a", got)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for range 4 {
		if _, body, _ := fetch(t, http.DefaultClient, "GET", url, nil); body != "b" {
			t.Fatalf("with a's one connection taken by a tunnel a request went to %q", body)
		}
	}
	c.Close()
	if !eventually(3*time.Second, func() bool {
		_, body, _ := fetch(t, http.DefaultClient, "GET", url, nil)
		return body == "a"
	}) {
		t.Fatal("a never took requests again after its tunnel closed")
	}
}

func TestUpstreamPostNotRetriedAfterSent(t *testing.T) {
	t.Parallel()
	a, b := newPeer(t, "a"), newPeer(t, "b")
	_, port := startPool(t, fmt.Sprintf("server %s; server %s;", addr(a.Port), addr(b.Port)), "")
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	// a peer drops the connection after reading the request: the POST is not sent again
	status, _, h := fetch(t, http.DefaultClient, "POST", url+"/drop", strings.NewReader("payment=1"))
	if status != http.StatusBadGateway {
		t.Errorf("POST /drop: %d, want 502", status)
	}
	if n := a.posts.Load() + b.posts.Load(); n != 1 {
		t.Fatalf("a POST that reached a peer was sent %d times; nginx never repeats it", n)
	}
	if strings.Contains(h.Get("X-Upstream-Addr"), ",") {
		t.Errorf("POST tried %q", h.Get("X-Upstream-Addr"))
	}
	// a GET goes on to the other peer (which drops it too)
	status, _, h = fetch(t, http.DefaultClient, "GET", url+"/drop", nil)
	if got := h.Get("X-Upstream-Status"); status != http.StatusBadGateway || got != "502, 502" {
		t.Errorf("GET /drop: %d, statuses %q; want both peers tried", status, got)
	}
}

func TestUpstreamPostRetriedWhenNotSent(t *testing.T) {
	t.Parallel()
	a := newPeer(t, "a")
	dead := freePort(t)
	_, port := startPool(t, fmt.Sprintf("server %s; server %s;", addr(dead), addr(a.Port)), "")
	status, body, _ := fetch(t, http.DefaultClient, "POST", fmt.Sprintf("http://127.0.0.1:%d/", port), strings.NewReader("x=1"))
	if status != 200 || body != "a" || a.posts.Load() != 1 {
		t.Fatalf("POST to a refused peer then a live one: %d %q (posts %d)", status, body, a.posts.Load())
	}
}

func TestUpstreamKillBackendDuringLoad(t *testing.T) {
	t.Parallel()
	peers, servers := newPeers(t, "a", "b", "c")
	_, port := startPool(t, servers+" keepalive 16;", "")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var failed, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				total.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	peers[1].kill()
	hitsAtKill := peers[1].hits.Load()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed while a peer was killed", f, total.Load())
	}
	if peers[0].hits.Load() == 0 || peers[2].hits.Load() == 0 || hitsAtKill == 0 {
		t.Errorf("hits a=%d b=%d c=%d", peers[0].hits.Load(), hitsAtKill, peers[2].hits.Load())
	}
}

func TestUpstreamBackup(t *testing.T) {
	t.Parallel()
	a, b, c := newPeer(t, "a"), newPeer(t, "b"), newPeer(t, "c")
	_, port := startPool(t, fmt.Sprintf("server %s; server %s; server %s backup;", addr(a.Port), addr(b.Port), addr(c.Port)), "")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for range 6 {
		if _, body, _ := fetch(t, http.DefaultClient, "GET", url, nil); body == "c" {
			t.Fatal("the backup served while primaries were up")
		}
	}
	a.kill()
	b.kill()
	for range 4 {
		if status, body, _ := fetch(t, http.DefaultClient, "GET", url, nil); status != 200 || body != "c" {
			t.Fatalf("all primaries down: %d %q, want the backup", status, body)
		}
	}
}

func TestUpstreamLeastConnWebSockets(t *testing.T) {
	t.Parallel()
	peers, servers := newPeers(t, "a", "b", "c")
	_, port := startPool(t, "least_conn; "+servers, "")
	d := wsDialer(addr(port), nil)
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	open := func() (*websocket.Conn, string) {
		c, resp, err := d.Dial(url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		echoOnce(t, c, websocket.TextMessage, "hi")
		return c, resp.Header.Get("X-Backend")
	}
	byPeer := map[string][]*websocket.Conn{}
	for range 20 {
		c, name := open()
		byPeer[name] = append(byPeer[name], c)
	}
	for _, p := range peers {
		if n := len(byPeer[p.name]); n < 6 || n > 7 {
			t.Fatalf("20 WebSockets over 3 peers: %s has %d (%v)", p.name, n, counts(byPeer))
		}
	}
	// a 21st goes to the peer with 6; then close five tunnels on b: the next five go to b, the least loaded
	c, name := open()
	if len(byPeer[name]) != 6 {
		t.Fatalf("the 21st WebSocket went to %s with %d open", name, len(byPeer[name]))
	}
	byPeer[name] = append(byPeer[name], c)
	for _, c := range byPeer["b"][:5] {
		c.Close()
	}
	want := int64(len(byPeer["b"]) - 5)
	if !eventually(5*time.Second, func() bool { return peers[1].open.Load() == want }) {
		t.Fatalf("b still has %d WebSockets open", peers[1].open.Load())
	}
	time.Sleep(100 * time.Millisecond) // the proxy releases the peer right after the tunnel ends
	for i := range 5 {
		if _, name := open(); name != "b" {
			t.Fatalf("new WebSocket %d went to %s, want the least loaded b", i, name)
		}
	}
}

func counts(m map[string][]*websocket.Conn) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

func TestUpstreamConsistentHash(t *testing.T) {
	t.Parallel()
	peers := []*peer{newPeer(t, "a"), newPeer(t, "b"), newPeer(t, "c"), newPeer(t, "d")}
	servers := func(n int) string {
		var s []string
		for _, p := range peers[:n] {
			s = append(s, "server "+addr(p.Port)+";")
		}
		return "hash $arg_k consistent; " + strings.Join(s, " ")
	}
	port := freePort(t)
	s := start(t, fill(t, upstreamConf, "PORT", port, "SERVERS", servers(3), "LOC", ""))
	url := fmt.Sprintf("http://127.0.0.1:%d/?k=", port)
	const keys = 400
	before := map[int]string{}
	for k := range keys {
		_, before[k], _ = fetch(t, http.DefaultClient, "GET", fmt.Sprint(url, k), nil)
	}
	for k := range 40 {
		if _, again, _ := fetch(t, http.DefaultClient, "GET", fmt.Sprint(url, k), nil); again != before[k] {
			t.Fatalf("key %d moved from %s to %s without a change", k, before[k], again)
		}
	}
	if err := os.WriteFile(s.Conf, []byte(fill(t, upstreamConf, "PORT", port, "SERVERS", servers(4), "LOC", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGHUP)
	if !eventually(5*time.Second, func() bool { return peers[3].hits.Load() > 0 || probeAll(t, url, keys) }) {
		t.Fatal("the added peer never got a key")
	}
	moved := 0
	for k := range keys {
		_, now, _ := fetch(t, http.DefaultClient, "GET", fmt.Sprint(url, k), nil)
		if now != before[k] {
			moved++
			if now != "d" {
				t.Fatalf("key %d moved between old peers: %s -> %s", k, before[k], now)
			}
		}
	}
	if moved < keys/4-50 || moved > keys/4+50 {
		t.Errorf("%d of %d keys moved when a 4th peer was added; want about 1/4", moved, keys)
	}
}

// probeAll sends one request per key (to notice a reload that has taken effect).
func probeAll(t *testing.T, url string, keys int) bool {
	for k := range keys {
		if _, body, _ := fetch(t, http.DefaultClient, "GET", fmt.Sprint(url, k), nil); body == "d" {
			return true
		}
	}
	return false
}

func TestUpstreamIPHashStable(t *testing.T) {
	t.Parallel()
	a, b, c := newPeer(t, "a"), newPeer(t, "b"), newPeer(t, "c")
	_, port := startPool(t, fmt.Sprintf("ip_hash; server %s; server %s; server %s;", addr(a.Port), addr(b.Port), addr(c.Port)), "")
	first := ""
	for i := range 6 {
		_, body, _ := fetch(t, http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		if i == 0 {
			first = body
		} else if body != first {
			t.Fatalf("ip_hash moved one client from %s to %s", first, body)
		}
	}
	// nginx's function for 127.0.0.x: (((89*113+127)%6271*113+0)%6271*113+0)%6271 % 3
	h := 89
	for _, o := range []int{127, 0, 0} {
		h = (h*113 + o) % 6271
	}
	if want := string(rune('a' + h%3)); first != want {
		t.Errorf("127.0.0.1 went to %s, nginx sends it to %s", first, want)
	}
}

func TestUpstreamUnixSocket(t *testing.T) {
	t.Parallel()
	sock := t.TempDir() + "/app.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "unix") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port := startPool(t, "server unix:"+sock+";", "")
	if status, body, h := fetch(t, http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil); status != 200 || body != "unix" {
		t.Fatalf("unix: peer: %d %q (%s)", status, body, h.Get("X-Upstream-Addr"))
	}
}

func TestUpstreamActiveHealthCheck(t *testing.T) {
	t.Parallel()
	var aHealthy, bHealthy atomic.Bool
	aHealthy.Store(true)
	var userHits [2]atomic.Int64
	mk := func(i int, healthy *atomic.Bool, name string) *backend {
		return newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				if !healthy.Load() {
					w.WriteHeader(500)
				}
				return
			}
			userHits[i].Add(1)
			io.WriteString(w, name)
		}))
	}
	a, b := mk(0, &aHealthy, "a"), mk(1, &bHealthy, "b")
	_, port := startPool(t, fmt.Sprintf("server %s; server %s; health_check interval=100ms fails=2 passes=2 uri=/healthz timeout=1s;", addr(a.Port), addr(b.Port)), "")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	// b fails its check from the start: no user request ever reaches it
	for range 10 {
		if status, body, _ := fetch(t, http.DefaultClient, "GET", url, nil); status != 200 || body != "a" {
			t.Fatalf("got %d %q, want a (b is unhealthy)", status, body)
		}
	}
	if n := userHits[1].Load(); n != 0 {
		t.Fatalf("the unhealthy peer got %d user requests", n)
	}
	// b recovers: after passes good probes it takes requests again
	bHealthy.Store(true)
	if !eventually(5*time.Second, func() bool {
		_, body, _ := fetch(t, http.DefaultClient, "GET", url, nil)
		return body == "b"
	}) {
		t.Fatal("b never came back after passing its health checks")
	}
	// a starts failing: it is taken out by the checker, and users see no error meanwhile
	aHealthy.Store(false)
	if !eventually(5*time.Second, func() bool {
		for range 4 {
			if _, body, _ := fetch(t, http.DefaultClient, "GET", url, nil); body != "b" {
				return false
			}
		}
		return true
	}) {
		t.Fatal("a was never taken out after failing its health checks")
	}
}

// TestUpstreamHealthCheckTLS: a group proxied to with https:// is probed over TLS, so its healthy peers stay in
// (plain HTTP probes would fail against them all and every request would get 502), and a peer whose check
// fails over TLS is still taken out.
func TestUpstreamHealthCheckTLS(t *testing.T) {
	t.Parallel()
	var userHits [2]atomic.Int64
	var probes atomic.Int64
	mk := func(i int, healthy bool, name string) string {
		up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				probes.Add(1)
				if !healthy {
					w.WriteHeader(503)
				}
				return
			}
			userHits[i].Add(1)
			io.WriteString(w, name)
		}))
		t.Cleanup(up.Close)
		return up.Listener.Addr().String()
	}
	a, b := mk(0, true, "a"), mk(1, false, "b")
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    upstream pool {
        server {{A}};
        server {{B}};
        health_check interval=100ms fails=2 passes=2 uri=/healthz timeout=1s;
    }
    server {
        listen {{PORT}};
        location / {
            proxy_pass https://pool;
        }
    }
}
`, "PORT", port, "A", a, "B", b))
	for range 6 {
		if status, body, _ := fetch(t, http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil); status != 200 || body != "a" {
			t.Fatalf("got %d %q, want a (b fails its check)", status, body)
		}
	}
	if n := userHits[1].Load(); n != 0 {
		t.Fatalf("the unhealthy peer got %d user requests", n)
	}
	if probes.Load() < 2 {
		t.Fatalf("%d probes reached the peers over TLS", probes.Load())
	}
}

func TestUpstreamStickyCookie(t *testing.T) {
	t.Parallel()
	peers, servers := newPeers(t, "a", "b", "c")
	_, port := startPool(t, servers+" sticky cookie srv expires=1h httponly samesite=lax;", "")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for round := range 3 {
		// a fresh client: balancing picks a peer and the response pins it
		_, first, h := fetch(t, http.DefaultClient, "GET", url, nil)
		resp := &http.Response{Header: h}
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "srv" {
				cookie = c
			}
		}
		if cookie == nil {
			t.Fatalf("no sticky cookie in %q", h.Values("Set-Cookie"))
		}
		if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.MaxAge != 3600 {
			t.Errorf("cookie attributes: %q", h.Get("Set-Cookie"))
		}
		for _, p := range peers {
			if strings.Contains(cookie.Value, fmt.Sprint(p.Port)) || strings.Contains(cookie.Value, "127.0.0.1") {
				t.Fatalf("the cookie reveals the address: %q", cookie.Value)
			}
		}
		// later requests and the WebSocket upgrade carrying it reach the same peer
		for range 4 {
			req, _ := http.NewRequest("GET", url, nil)
			req.AddCookie(cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != first {
				t.Fatalf("round %d: pinned to %s, got %s", round, first, body)
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("the cookie was set again though it matched")
			}
		}
		hdr := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}
		c, wsResp, err := wsDialer(addr(port), nil).Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws", port), hdr)
		if err != nil {
			t.Fatalf("WebSocket dial: %v", err)
		}
		echoOnce(t, c, websocket.TextMessage, "sticky")
		c.Close()
		if got := wsResp.Header.Get("X-Backend"); got != first {
			t.Fatalf("the WebSocket upgrade went to %s, the cookie pins %s", got, first)
		}
	}
	// the pinned peer dies: another one serves and the cookie is replaced
	_, first, h := fetch(t, http.DefaultClient, "GET", url, nil)
	old := (&http.Response{Header: h}).Cookies()[0]
	for _, p := range peers {
		if p.name == first {
			p.kill()
		}
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.AddCookie(old)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) == first || len(resp.Cookies()) != 1 || resp.Cookies()[0].Value == old.Value {
		t.Fatalf("after the pinned peer died: %d %q, cookies %v", resp.StatusCode, body, resp.Cookies())
	}
}

// tunnelsToAB opens two WebSocket tunnels through the pool on port, which round robin sends to peers a and b.
func tunnelsToAB(t *testing.T, port int) map[string]*websocket.Conn {
	t.Helper()
	d := wsDialer(addr(port), nil)
	tunnels := map[string]*websocket.Conn{}
	for range 2 {
		c, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		tunnels[resp.Header.Get("X-Backend")] = c
	}
	if tunnels["a"] == nil || tunnels["b"] == nil {
		t.Fatalf("round robin opened %v", tunnels)
	}
	return tunnels
}

// eventuallyOnlyA reports whether, within 3 s, four requests in a row to the pool on port are answered by a.
func eventuallyOnlyA(t *testing.T, port int) bool {
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	return eventually(3*time.Second, func() bool {
		for range 4 {
			if _, body, _ := fetch(t, http.DefaultClient, "GET", url, nil); body != "a" {
				return false
			}
		}
		return true
	})
}

func TestUpstreamDrainOnReload(t *testing.T) {
	t.Parallel()
	a, b := newPeer(t, "a"), newPeer(t, "b")
	port := freePort(t)
	conf := func(servers string) string {
		return fill(t, upstreamConf, "PORT", port, "SERVERS", servers+" proxy_tunnel_drain_timeout 1s;", "LOC", "")
	}
	s := start(t, conf(fmt.Sprintf("server %s; server %s;", addr(a.Port), addr(b.Port))))
	tunnels := tunnelsToAB(t, port)
	// b is removed by a reload: no new requests, but its open tunnel keeps working until the drain time is up
	if err := os.WriteFile(s.Conf, []byte(conf(fmt.Sprintf("server %s;", addr(a.Port)))), 0o644); err != nil {
		t.Fatal(err)
	}
	reloadedAt := time.Now()
	s.Signal(syscall.SIGHUP)
	if !eventuallyOnlyA(t, port) {
		t.Fatal("the removed peer still gets new requests")
	}
	if time.Since(reloadedAt) < 800*time.Millisecond {
		echoOnce(t, tunnels["b"], websocket.TextMessage, "still here")
	}
	// after the drain timeout the tunnel to b is closed; the one to a stays
	tunnels["b"].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := tunnels["b"].ReadMessage(); err == nil {
		t.Fatal("read a message on the drained tunnel, want it closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the drained tunnel was not closed within 5 s of a 1 s drain timeout")
	}
	echoOnce(t, tunnels["a"], websocket.TextMessage, "a stays")
}

// TestUpstreamDownKeepsTunnels: a peer marked down by a reload, with no proxy_tunnel_drain_timeout, gets no new
// requests, and its open WebSocket tunnel stays until it closes.
func TestUpstreamDownKeepsTunnels(t *testing.T) {
	t.Parallel()
	a, b := newPeer(t, "a"), newPeer(t, "b")
	port := freePort(t)
	conf := func(servers string) string {
		return fill(t, upstreamConf, "PORT", port, "SERVERS", servers, "LOC", "")
	}
	s := start(t, conf(fmt.Sprintf("server %s; server %s;", addr(a.Port), addr(b.Port))))
	tunnels := tunnelsToAB(t, port)
	if err := os.WriteFile(s.Conf, []byte(conf(fmt.Sprintf("server %s; server %s down;", addr(a.Port), addr(b.Port)))), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGHUP)
	if !eventuallyOnlyA(t, port) {
		t.Fatal("the peer marked down still gets new requests")
	}
	time.Sleep(1500 * time.Millisecond) // longer than the drain timeout the test above uses
	echoOnce(t, tunnels["b"], websocket.TextMessage, "b is down, its tunnel is not")
	echoOnce(t, tunnels["a"], websocket.TextMessage, "a stays")
}

// TestUpstreamKeepaliveTimeout: an idle pooled upstream connection is reused within the upstream block's
// keepalive_timeout and closed after it, so the next request opens a new one.
func TestUpstreamKeepaliveTimeout(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var remotes []string
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes = append(remotes, r.RemoteAddr)
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	_, port := startPool(t, fmt.Sprintf("server %s; keepalive 4; keepalive_timeout 300ms;", addr(b.Port)), "")
	get := func() {
		if status, _, _ := fetch(t, http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	get()
	get() // at once: the pooled connection
	time.Sleep(time.Second)
	get() // after keepalive_timeout: a new one
	mu.Lock()
	defer mu.Unlock()
	if len(remotes) != 3 || remotes[0] != remotes[1] || remotes[2] == remotes[1] {
		t.Fatalf("upstream connections %v: want the second request on the first's connection, the third on a new one", remotes)
	}
}

func TestUpstreamKeepalive(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	remotes := map[string]int{}
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes[r.RemoteAddr]++
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	_, port := startPool(t, fmt.Sprintf("server %s; keepalive 4; keepalive_requests 3;", addr(b.Port)), "")
	for range 9 {
		if status, _, _ := fetch(t, http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// one pooled connection at a time, closed after keepalive_requests
	if len(remotes) != 3 {
		t.Fatalf("9 sequential requests used %d upstream connections %v, want 3 (3 requests each)", len(remotes), remotes)
	}
	for r, n := range remotes {
		if n != 3 {
			t.Errorf("connection %s carried %d requests, want keepalive_requests 3", r, n)
		}
	}
}

// TestUpstreamVarsAcrossPasses: the $upstream_* variables as nginx writes them when a request uses upstreams
// more than once (an error_page after proxy_intercept_errors: the passes joined with " : "), when a group has no
// live peer (its name, 502 and a response time of 0.000), and when the client leaves before any answer ("-").
func TestUpstreamVarsAcrossPasses(t *testing.T) {
	t.Parallel()
	a, b := newPeer(t, "a"), newPeer(t, "b")
	dead := freePort(t)
	slow := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    log_format up "$uri $status [$upstream_addr] [$upstream_status]";
    access_log logs/up.log up;
    upstream pool { server {{DEAD}}; server {{A}}; }
    upstream downpool { server {{B}} down; }
    server {
        listen {{PORT}};
{{VARS}}
        location / {
            proxy_intercept_errors on;
            error_page 500 = @fallback;
            proxy_pass http://pool;
        }
        location @fallback { proxy_pass http://{{B}}; }
        location /down/ { proxy_pass http://downpool; }
        location /slow/ { proxy_pass http://{{SLOW}}; }
    }
}
`, "PORT", port, "DEAD", addr(dead), "A", addr(a.Port), "B", addr(b.Port), "SLOW", addr(slow.Port), "VARS", upstreamVarHeaders))
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	// the refused peer, a's 500 (intercepted), then b in the fallback location
	status, body, h := fetch(t, http.DefaultClient, "GET", url+"/fail/500/a", nil)
	if status != 200 || body != "b" {
		t.Fatalf("got %d %q, want b's answer from the fallback", status, body)
	}
	if got, want := h.Get("X-Upstream-Addr"), addr(dead)+", "+addr(a.Port)+" : "+addr(b.Port); got != want {
		t.Errorf("$upstream_addr %q, want %q", got, want)
	}
	if got, want := h.Get("X-Upstream-Status"), "502, 500 : 200"; got != want {
		t.Errorf("$upstream_status %q, want %q", got, want)
	}
	if times := strings.Split(h.Get("X-Upstream-Times"), "|"); len(times) != 3 || strings.Count(times[0], " : ") != 1 || strings.Count(times[2], " : ") != 1 || !strings.HasPrefix(times[0], "-, ") {
		t.Errorf("$upstream_connect_time|header|response = %q, want two passes", h.Get("X-Upstream-Times"))
	}

	// every peer down: the group's name, 502, 0.000
	status, _, h = fetch(t, http.DefaultClient, "GET", url+"/down/x", nil)
	if status != 502 || h.Get("X-Upstream-Addr") != "downpool" || h.Get("X-Upstream-Status") != "502" || h.Get("X-Upstream-Times") != "-|-|0.000" {
		t.Errorf("no live peer: %d %q %q %q, want 502 downpool 502 -|-|0.000", status, h.Get("X-Upstream-Addr"),
			h.Get("X-Upstream-Status"), h.Get("X-Upstream-Times"))
	}

	// the client gives up while the upstream thinks: 499, and no upstream status
	c := &http.Client{Timeout: 300 * time.Millisecond}
	if _, err := c.Get(url + "/slow/x"); err == nil {
		t.Fatal("the slow upstream answered within 300ms")
	}
	logPath := filepath.Join(s.Prefix, "logs", "up.log")
	want := fmt.Sprintf("/slow/x 499 [%s] [-]", addr(slow.Port))
	if !eventually(5*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), want)
	}) {
		b, _ := os.ReadFile(logPath)
		t.Errorf("access log has no %q:\n%s", want, b)
	}
}
