package metrics

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-proxy/sluice/internal/tunnel"
)

func TestStatusClass(t *testing.T) {
	for _, c := range []struct {
		status int
		want   string
	}{{0, "none"}, {101, "1xx"}, {200, "2xx"}, {304, "3xx"}, {404, "4xx"}, {499, "4xx"}, {502, "5xx"}, {600, "none"}} {
		if got := StatusClass(c.status); got != c.want {
			t.Errorf("StatusClass(%d) = %q, want %q", c.status, got, c.want)
		}
	}
}

func TestUpstream(t *testing.T) {
	for _, c := range []struct {
		addrs, statuses             string
		attempts, failures, retries map[string]float64
		retried                     float64
	}{
		{"a:1", "200", map[string]float64{"a:1": 1}, map[string]float64{"a:1": 0}, nil, 0},
		{"a:1", "502", map[string]float64{"a:1": 1}, map[string]float64{"a:1": 1}, nil, 0},
		{"a:1", "404", map[string]float64{"a:1": 1}, map[string]float64{"a:1": 0}, nil, 0},
		{"a:1, b:2", "502, 200", map[string]float64{"a:1": 1, "b:2": 1}, map[string]float64{"a:1": 1, "b:2": 0}, nil, 1},
		{"a:1, b:2, c:3", "502, 504, 504", map[string]float64{"c:3": 1}, map[string]float64{"a:1": 1, "b:2": 1, "c:3": 1}, nil, 2},
		// a pass after an internal redirect (error_page): its first peer is no retry of the earlier pass's last
		{"a:1, b:2 : c:3", "502, 500 : 200", map[string]float64{"a:1": 1, "b:2": 1, "c:3": 1}, map[string]float64{"a:1": 1, "b:2": 0, "c:3": 0}, nil, 1},
		{"a:1 : c:3", "502 : 502", map[string]float64{"a:1": 1, "c:3": 1}, map[string]float64{"a:1": 1, "c:3": 1}, nil, 0},
		{"", "", nil, nil, nil, 0},
	} {
		m := New("test", Sources{})
		m.Upstream(c.addrs, c.statuses, nil)
		for peer, want := range c.attempts {
			if got := testutil.ToFloat64(m.attempts.WithLabelValues(peer)); got != want {
				t.Errorf("%q %q: attempts[%s] = %v, want %v", c.addrs, c.statuses, peer, got, want)
			}
		}
		for peer, want := range c.failures {
			if got := testutil.ToFloat64(m.failures.WithLabelValues(peer)); got != want {
				t.Errorf("%q %q: failures[%s] = %v, want %v", c.addrs, c.statuses, peer, got, want)
			}
		}
		if got := testutil.ToFloat64(m.retries); got != c.retried {
			t.Errorf("%q %q: retries = %v, want %v", c.addrs, c.statuses, got, c.retried)
		}
	}
}

// TestRegistryOwned: two servers' metrics never share state, and sources are read at scrape time.
func TestRegistryOwned(t *testing.T) {
	open := 0
	a := New("1", Sources{Tunnels: func() []Tunnel {
		return []Tunnel{{Meta: tunnel.Meta{Location: "/ws", Upstream: "app", Peer: "127.0.0.1:1"}, Open: open}}
	}})
	b := New("1", Sources{})
	a.Request("s", "/x", 200, time.Millisecond, 10, 20)
	a.TLSHandshake(nil)
	a.TLSHandshake(errors.New("bad"))
	a.Reload(false, time.Now())
	if n := testutil.ToFloat64(b.requests.WithLabelValues("s", "/x", "2xx")); n != 0 {
		t.Errorf("a second server's registry sees %v requests of the first", n)
	}
	open = 3
	want := `
# HELP sluice_tunnels_open Open WebSocket (upgraded) tunnels, by location, upstream group and peer.
# TYPE sluice_tunnels_open gauge
sluice_tunnels_open{location="/ws",peer="127.0.0.1:1",upstream="app"} 3
# HELP sluice_tls_handshakes_total TLS handshakes with clients, by result (ok, error).
# TYPE sluice_tls_handshakes_total counter
sluice_tls_handshakes_total{result="error"} 1
sluice_tls_handshakes_total{result="ok"} 1
# HELP sluice_config_last_reload_successful 1 if the last reload succeeded (or none happened), 0 if it was refused.
# TYPE sluice_config_last_reload_successful gauge
sluice_config_last_reload_successful 0
`
	if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want), "sluice_tunnels_open", "sluice_tls_handshakes_total", "sluice_config_last_reload_successful"); err != nil {
		t.Error(err)
	}
}

// TestRetainPeers: the series of rejected peers are gone from both per-peer counters; kept peers keep counting.
func TestRetainPeers(t *testing.T) {
	m := New("test", Sources{})
	m.Upstream("a:1, b:2", "502, 200", nil)
	m.Upstream("c:3", "504", nil)
	m.Upstream("a:1", "200", nil)
	m.RetainPeers(func(peer string) bool { return peer == "a:1" })
	want := map[string]PeerCount{"a:1": {Requests: 2, Failures: 1}}
	if got := m.PeerCounts(); len(got) != 1 || got["a:1"] != want["a:1"] {
		t.Errorf("after RetainPeers: %v, want %v", got, want)
	}
	if n := testutil.CollectAndCount(m.attempts) + testutil.CollectAndCount(m.failures); n != 2 {
		t.Errorf("%d per-peer series left, want 2 (a:1's)", n)
	}
	m.Upstream("a:1", "200", nil)
	if got := m.PeerCounts()["a:1"]; got.Requests != 3 {
		t.Errorf("a:1 counts %d requests after one more, want 3", got.Requests)
	}
}

// TestUpstreamCache: a caller's cached peer counts as the uncached call would, also across a new peer and
// across RetainPeers dropping the cached peer's series.
func TestUpstreamCache(t *testing.T) {
	m := New("test", Sources{})
	var c PeerCache
	m.Upstream("a:1", "200", &c)
	m.Upstream("a:1", "502", &c)
	m.Upstream("b:2", "200", &c) // another peer: a new entry in the table
	m.Upstream("b:2", "504", &c)
	m.Upstream("a:1, b:2", "502, 200", &c)
	want := map[string]PeerCount{"a:1": {Requests: 3, Failures: 2}, "b:2": {Requests: 3, Failures: 1}}
	if got := m.PeerCounts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	m.RetainPeers(func(peer string) bool { return peer == "a:1" }) // b:2, the cached peer, is dropped
	m.Upstream("a:1", "200", nil)                                  // another caller fills the table again
	m.Upstream("b:2", "200", &c)
	if got := m.PeerCounts()["b:2"]; got.Requests != 1 {
		t.Fatalf("b:2 after its series was dropped and one more request: %+v, want 1 request", got)
	}
}

// TestRetainLocations: every per-location series of a rejected server and location pair is gone; kept pairs keep
// their counts.
func TestRetainLocations(t *testing.T) {
	m := New("test", Sources{})
	m.Request("a", "/keep", 200, time.Millisecond, 10, 20)
	m.Request("a", "/keep", 404, time.Millisecond, 10, 20)
	m.Request("a", "/gone", 200, time.Millisecond, 10, 20)
	m.Request("b", "/keep", 502, time.Millisecond, 10, 0)
	m.RetainLocations(func(server, location string) bool { return server == "a" && location == "/keep" })
	for _, c := range []struct {
		name string
		v    prometheus.Collector
		want int
	}{{"requests", m.requests, 2}, {"duration", m.duration, 1}, {"bytes in", m.bytesIn, 1}, {"bytes out", m.bytesOut, 1}} {
		if n := testutil.CollectAndCount(c.v); n != c.want {
			t.Errorf("%s: %d series left, want %d (a /keep's)", c.name, n, c.want)
		}
	}
	if n := testutil.ToFloat64(m.requests.WithLabelValues("a", "/keep", "2xx")); n != 1 {
		t.Errorf("a /keep 2xx = %v after RetainLocations, want 1", n)
	}
}
