package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const metricsConf = `events {}
http {
    access_log off;
    upstream grp {
        server 127.0.0.1:{{DEAD}};
        server 127.0.0.1:{{LIVE}};
    }
    server {
        listen 127.0.0.1:{{P}};
        listen 127.0.0.1:{{TLS}} ssl;
        server_name metrics.test;
        ssl_certificate self-signed;
        location /app { proxy_pass http://127.0.0.1:{{LIVE}}; }
        location /up { proxy_pass http://grp; }
        location /ws { proxy_pass http://127.0.0.1:{{WS}}; }
        location /missing { return 404; }
        location = /metrics { metrics; }
        location = /stub { stub_status; }
    }
}
`

// scrape fetches /metrics and parses the text exposition.
func scrape(t *testing.T, port int) map[string]*dto.MetricFamily {
	t.Helper()
	r := get(t, httpClient(addr(port), nil), fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", r.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.Body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, r.Body)
	}
	return fams
}

// value finds the sample of family name whose labels include want; ok is false when none does.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, w := range want {
			if have[k] != w {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// TestMetrics: the numbers /metrics reports are the ones the test produced.
func TestMetrics(t *testing.T) {
	t.Parallel()
	live, ws := newHTTPEcho(t), newWSEcho(t)
	p, tp, dead := freePort(t), freePort(t), freePort(t)
	kv := []any{"P", p, "TLS", tp, "DEAD", dead, "LIVE", live.Port, "WS", ws.Port}
	s := start(t, fill(t, metricsConf, kv...))
	c := httpClient(addr(p), nil)
	for i := 0; i < 20; i++ {
		if r := get(t, c, fmt.Sprintf("http://metrics.test:%d/app/%d", p, i), nil); r.StatusCode != 200 {
			t.Fatalf("GET /app: %s", r.Status)
		}
	}
	for i := 0; i < 10; i++ {
		if r := get(t, c, fmt.Sprintf("http://metrics.test:%d/up/%d", p, i), nil); r.StatusCode != 200 {
			t.Fatalf("GET /up: %s %s", r.Status, r.Body)
		}
	}
	for i := 0; i < 4; i++ {
		get(t, c, fmt.Sprintf("http://metrics.test:%d/missing", p), nil)
	}
	for i := 0; i < 3; i++ {
		conn, err := tls.Dial("tcp", addr(tp), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	for i := 0; i < 2; i++ { // a verifying client rejects the self-signed certificate: a failed handshake
		if conn, err := tls.Dial("tcp", addr(tp), &tls.Config{ServerName: "metrics.test"}); err == nil {
			conn.Close()
			t.Fatal("a verifying client accepted the self-signed certificate")
		}
	}
	d := wsDialer(addr(p), nil)
	for i := 0; i < 5; i++ {
		dialWS(t, d, fmt.Sprintf("ws://127.0.0.1:%d/ws", p), nil)
	}
	// one good reload, one refused
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload"); code != 0 {
		t.Fatalf("reload: %d %s", code, out)
	}
	if err := os.WriteFile(s.Conf, []byte("events {}\nhttp { bogus; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGHUP)
	if !eventually(5*time.Second, func() bool { return strings.Contains(s.Log(), "bogus") }) {
		t.Fatal("the broken reload was not logged")
	}

	fams := scrape(t, p)
	srv := map[string]string{"server": "metrics.test"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range srv {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sluice_http_requests_total", with("location", "/app", "status", "2xx"), 20},
		{"sluice_http_requests_total", with("location", "/up", "status", "2xx"), 10},
		{"sluice_http_requests_total", with("location", "/missing", "status", "4xx"), 4},
		{"sluice_http_request_duration_seconds", with("location", "/app"), 20},
		{"sluice_tunnels_open", map[string]string{"location": "/ws", "peer": addr(ws.Port)}, 5},
		{"sluice_tunnels_opened_total", nil, 5},
		{"sluice_upstream_requests_total", map[string]string{"peer": addr(live.Port)}, 30},
		{"sluice_upstream_failures_total", map[string]string{"peer": addr(live.Port)}, 0},
		{"sluice_tls_handshakes_total", map[string]string{"result": "ok"}, 3},
		{"sluice_tls_handshakes_total", map[string]string{"result": "error"}, 2},
		{"sluice_config_reloads_total", map[string]string{"result": "success"}, 1},
		{"sluice_config_reloads_total", map[string]string{"result": "failure"}, 1},
		{"sluice_config_last_reload_successful", nil, 0},
		{"sluice_build_info", nil, 1},
		{"sluice_upstream_peer_up", map[string]string{"upstream": "grp", "peer": addr(live.Port)}, 1},
		{"sluice_upstream_peer_up", map[string]string{"upstream": "grp", "peer": addr(dead)}, 0},
	}
	for _, c := range checks {
		got, ok := value(fams, c.name, c.labels)
		if c.want == 0 && !ok {
			continue
		}
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// the dead peer: every attempt failed and was retried on the live one
	deadAttempts, _ := value(fams, "sluice_upstream_requests_total", map[string]string{"peer": addr(dead)})
	deadFails, _ := value(fams, "sluice_upstream_failures_total", map[string]string{"peer": addr(dead)})
	retries, _ := value(fams, "sluice_upstream_retries_total", nil)
	if deadAttempts == 0 || deadFails != deadAttempts || retries != deadAttempts {
		t.Errorf("dead peer: %v attempts, %v failures, %v retries; want equal and > 0", deadAttempts, deadFails, retries)
	}
	if v, _ := value(fams, "sluice_http_response_bytes_total", with("location", "/app")); v <= 0 {
		t.Errorf("sluice_http_response_bytes_total for /app = %v, want > 0", v)
	}
	if v, _ := value(fams, "sluice_http_request_bytes_total", with("location", "/app")); v < 20*float64(len("GET /app/0 HTTP/1.1\r\n")) {
		t.Errorf("sluice_http_request_bytes_total for /app = %v, too small for 20 requests", v)
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "sluice_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s is not prefixed sluice_", name)
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "/app/") {
					t.Errorf("metric %s carries a raw path label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}

	// stub_status in nginx's exact format
	r := get(t, c, fmt.Sprintf("http://metrics.test:%d/stub", p), nil)
	re := regexp.MustCompile(`^Active connections: (\d+) \nserver accepts handled requests\n (\d+) (\d+) (\d+) \nReading: (\d+) Writing: (\d+) Waiting: (\d+) \n$`)
	m := re.FindStringSubmatch(r.Body)
	if r.StatusCode != 200 || m == nil || r.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("stub_status: %s %q %q does not parse as nginx's format", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	n := make([]int, len(m))
	for i := 1; i < len(m); i++ {
		n[i], _ = strconv.Atoi(m[i])
	}
	active, accepts, handled, requests, reading, writing, waiting := n[1], n[2], n[3], n[4], n[5], n[6], n[7]
	if active != reading+writing+waiting || active < 6 || writing < 6 {
		t.Errorf("stub_status: active %d = reading %d + writing %d + waiting %d; want >= 6 active and writing (5 tunnels + this request)", active, reading, writing, waiting)
	}
	if accepts < 10 || accepts != handled || requests < 20+10+4+5+1 {
		t.Errorf("stub_status: accepts %d handled %d requests %d; want every connection and request counted", accepts, handled, requests)
	}
}

// TestMetricsReloadDropsRemovedPeers: a reload that removes upstream peers (one from a group, one proxy_pass
// address, with the location that named it) deletes their per-peer series and the location's series, and the
// peer and location that stay keep their counts.
func TestMetricsReloadDropsRemovedPeers(t *testing.T) {
	t.Parallel()
	a, b, direct := newHTTPEcho(t), newHTTPEcho(t), newHTTPEcho(t)
	const conf = `events {}
http {
    access_log off;
    upstream grp {
        server 127.0.0.1:{{A}};
        {{B}}
    }
    server {
        listen 127.0.0.1:{{P}};
        location /up { proxy_pass http://grp; }
        {{DIRECT}}
        location = /metrics { metrics; }
    }
}
`
	p := freePort(t)
	before := fill(t, conf, "P", p, "A", a.Port, "B", fmt.Sprintf("server 127.0.0.1:%d;", b.Port),
		"DIRECT", fmt.Sprintf("location /direct { proxy_pass http://127.0.0.1:%d; }", direct.Port))
	s := start(t, before)
	c := httpClient(addr(p), nil)
	for _, path := range []string{"/up/1", "/up/2", "/up/3", "/up/4", "/direct/1", "/direct/2", "/direct/3"} {
		if r := get(t, c, fmt.Sprintf("http://127.0.0.1:%d%s", p, path), nil); r.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, r.Status)
		}
	}
	requests := func(fams map[string]*dto.MetricFamily, port int) (float64, bool) {
		return value(fams, "sluice_upstream_requests_total", map[string]string{"peer": addr(port)})
	}
	fams := scrape(t, p)
	kept, _ := requests(fams, a.Port)
	for _, port := range []int{a.Port, b.Port, direct.Port} {
		if n, ok := requests(fams, port); !ok || n == 0 {
			t.Fatalf("before the reload: sluice_upstream_requests_total{peer=%q} = %v (found %v), want > 0", addr(port), n, ok)
		}
	}

	after := fill(t, conf, "P", p, "A", a.Port, "B", "", "DIRECT", "")
	if err := os.WriteFile(s.Conf, []byte(after), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload"); code != 0 {
		t.Fatalf("reload: %d %s", code, out)
	}
	fams = scrape(t, p)
	if n, ok := value(fams, "sluice_http_requests_total", map[string]string{"location": "/up"}); !ok || n != 4 {
		t.Errorf("the location that stayed: sluice_http_requests_total = %v (found %v), want 4", n, ok)
	}
	for _, name := range []string{"sluice_http_requests_total", "sluice_http_request_duration_seconds", "sluice_http_response_bytes_total"} {
		if n, ok := value(fams, name, map[string]string{"location": "/direct"}); ok {
			t.Errorf("removed location /direct still reported: %s = %v", name, n)
		}
	}
	if n, ok := requests(fams, a.Port); !ok || n != kept {
		t.Errorf("the peer that stayed: sluice_upstream_requests_total = %v (found %v), want %v (not reset)", n, ok, kept)
	}
	for _, port := range []int{b.Port, direct.Port} {
		for _, name := range []string{"sluice_upstream_requests_total", "sluice_upstream_failures_total", "sluice_upstream_peer_up"} {
			if n, ok := value(fams, name, map[string]string{"peer": addr(port)}); ok {
				t.Errorf("removed peer %s still reported: %s = %v", addr(port), name, n)
			}
		}
	}
	// the kept peer goes on counting from where it was
	if r := get(t, c, fmt.Sprintf("http://127.0.0.1:%d/up/5", p), nil); r.StatusCode != 200 {
		t.Fatalf("GET /up/5 after the reload: %s", r.Status)
	}
	if n, _ := requests(scrape(t, p), a.Port); n != kept+1 {
		t.Errorf("after one more request the kept peer counts %v, want %v", n, kept+1)
	}
}

// TestMetricsReloadKeepsVariablePassPeers: the peers of a proxy_pass with variables are known only per
// request; a reload that keeps that location keeps their counts (they were deleted on every reload), and one
// that removes it deletes them.
func TestMetricsReloadKeepsVariablePassPeers(t *testing.T) {
	t.Parallel()
	a := newHTTPEcho(t)
	const conf = `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{{P}};
        {{VAR}}
        location = /metrics { metrics; }
        {{EXTRA}}
    }
}
`
	p := freePort(t)
	varLoc := "location /var { proxy_pass http://127.0.0.1:$arg_port; }"
	s := start(t, fill(t, conf, "P", p, "VAR", varLoc, "EXTRA", ""))
	c := httpClient(addr(p), nil)
	for i := range 3 {
		if r := get(t, c, fmt.Sprintf("http://127.0.0.1:%d/var/%d?port=%d", p, i, a.Port), nil); r.StatusCode != 200 {
			t.Fatalf("GET /var/%d: %s", i, r.Status)
		}
	}
	peer := map[string]string{"peer": addr(a.Port)}
	if n, ok := value(scrape(t, p), "sluice_upstream_requests_total", peer); !ok || n != 3 {
		t.Fatalf("before the reload: sluice_upstream_requests_total{peer=%q} = %v (found %v), want 3", addr(a.Port), n, ok)
	}
	reload := func(conf string) {
		t.Helper()
		if err := os.WriteFile(s.Conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload"); code != 0 {
			t.Fatalf("reload: %d %s", code, out)
		}
	}
	// -s reload returns once the signal is sent: wait for the new configuration to answer
	reload(fill(t, conf, "P", p, "VAR", varLoc, "EXTRA", `location = /new { return 200 "new"; }`))
	if !eventually(15*time.Second, func() bool { return get(t, c, fmt.Sprintf("http://127.0.0.1:%d/new", p), nil).StatusCode == 200 }) {
		t.Fatal("the reloaded configuration did not answer /new within 15s")
	}
	if n, ok := value(scrape(t, p), "sluice_upstream_requests_total", peer); !ok || n != 3 {
		t.Errorf("after a reload that kept /var: sluice_upstream_requests_total{peer=%q} = %v (found %v), want 3 (not reset)", addr(a.Port), n, ok)
	}
	reload(fill(t, conf, "P", p, "VAR", "", "EXTRA", `location = /new { return 200 "new"; }`))
	if !eventually(15*time.Second, func() bool { return get(t, c, fmt.Sprintf("http://127.0.0.1:%d/var/x", p), nil).StatusCode == 404 }) {
		t.Fatal("the reload that removed /var did not take effect within 15s")
	}
	if n, ok := value(scrape(t, p), "sluice_upstream_requests_total", peer); ok {
		t.Errorf("after /var was removed its peer is still reported: %v", n)
	}
}

// TestStubStatusStates: stub_status counts each connection in the state nginx would: one that has sent nothing
// yet is reading, idle keep-alive connections are waiting, the connection asking is writing; connections that
// close leave the counts.
func TestStubStatusStates(t *testing.T) {
	t.Parallel()
	p := freePort(t)
	start(t, fill(t, `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{{P}};
        location = /stub { stub_status; }
        location / { return 200 "ok"; }
    }
}
`, "P", p))
	stub := func() (reading, writing, waiting int) {
		t.Helper()
		c, err := net.Dial("tcp", addr(p))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /stub HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		m := regexp.MustCompile(`Reading: (\d+) Writing: (\d+) Waiting: (\d+)`).FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("stub_status answer %q", b)
		}
		reading, _ = strconv.Atoi(m[1])
		writing, _ = strconv.Atoi(m[2])
		waiting, _ = strconv.Atoi(m[3])
		return
	}
	var conns []net.Conn
	for i := 0; i < 3; i++ { // three idle keep-alive connections
		c, err := net.Dial("tcp", addr(p))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatal(err)
		}
	}
	silent, err := net.Dial("tcp", addr(p)) // connected, nothing sent
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, silent)
	want := func(r, w, i int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			gr, gw, gi := stub()
			if gr == r && gw == w && gi == i {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Reading %d Writing %d Waiting %d; want %d %d %d", gr, gw, gi, r, w, i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want(1, 1, 3)
	for _, c := range conns {
		c.Close()
	}
	want(0, 1, 0)
}
