// Package metrics holds a server's Prometheus metrics: counters the request path updates, and gauges read at
// scrape time from the parts that own the numbers (connections, tunnels, upstream peers). Each server owns its
// registry; nothing is registered globally.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-proxy/sluice/internal/tunnel"
)

// Tunnel is one group of open tunnels: same location, upstream group and peer.
type Tunnel struct {
	tunnel.Meta
	Open int
}

// Peer is one upstream peer's state as the load balancer sees it.
type Peer struct {
	Upstream string
	Addr     string
	Healthy  bool
	Failures uint64 // failures counted in the current window
}

// Sources are the numbers owned elsewhere, read when metrics are collected.
type Sources struct {
	Connections func() Conns
	Tunnels     func() []Tunnel
	// TunnelsOpened counts every tunnel opened since start.
	TunnelsOpened func() uint64
	// Peers reports upstream peer health; nil until a balancer that tracks health provides it.
	Peers func() []Peer
}

// Conns are the client connection counters (nginx's stub_status numbers).
type Conns struct {
	Accepted, Handled, Requests       uint64
	Active, Reading, Writing, Waiting int64
}

// Metrics is one server's set of metrics.
type Metrics struct {
	reg      *prometheus.Registry
	handler  http.Handler
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	tls      *prometheus.CounterVec
	reloads  *prometheus.CounterVec
	reloadOK prometheus.Gauge
	reloadAt prometheus.Gauge
	attempts *prometheus.CounterVec
	failures *prometheus.CounterVec
	retries  prometheus.Counter
	// peers caches each peer's two counters (copied on write): WithLabelValues hashes and locks per call,
	// which was 2% of a proxied request's CPU
	peers   atomic.Pointer[map[string]peerCounters]
	peersMu sync.Mutex
}

type peerCounters struct{ attempts, failures prometheus.Counter }

// PeerCache keeps one peer's counters between calls of Upstream, valid while the peer table is the one they
// came from (RetainPeers and a new peer replace it). Each caller keeps its own.
type PeerCache struct {
	peers *map[string]peerCounters
	addr  string
	pc    peerCounters
}

// New registers sluice's metrics, reading src at collection time.
func New(version string, src Sources) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_http_requests_total",
			Help: "HTTP requests answered, by server name, location and status class."}, []string{"server", "location", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_http_request_duration_seconds",
			Help:    "Time from reading the request to the end of the response (for a tunnel: its whole life), by server and location.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"server", "location"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_http_request_bytes_total",
			Help: "Request bytes received (request line, headers, body), by server and location."}, []string{"server", "location"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_http_response_bytes_total",
			Help: "Response body bytes sent (for a tunnel: upstream to client), by server and location."}, []string{"server", "location"}),
		tls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_tls_handshakes_total",
			Help: "TLS handshakes with clients, by result (ok, error)."}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_config_reloads_total",
			Help: "Configuration reload attempts, by result (success, failure)."}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_config_last_reload_successful",
			Help: "1 if the last reload succeeded (or none happened), 0 if it was refused."}),
		reloadAt: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_config_last_reload_timestamp_seconds",
			Help: "When the last reload was attempted (the start time before any), Unix seconds."}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_upstream_requests_total",
			Help: "Attempts to reach an upstream peer, by peer address."}, []string{"peer"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_upstream_failures_total",
			Help: "Failed attempts (connect error, 502, 504) to reach an upstream peer, by peer address."}, []string{"peer"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_upstream_retries_total",
			Help: "Requests passed to the next upstream peer after a failed attempt."}),
	}
	m.reloadOK.Set(1)
	m.reloadAt.SetToCurrentTime()
	m.tls.WithLabelValues("ok")
	m.tls.WithLabelValues("error")
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.tls, m.reloads, m.reloadOK, m.reloadAt,
		m.attempts, m.failures, m.retries)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}}, func() float64 { return 1 }))
	reg.MustRegister(&sourceCollector{src: src})
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// Handler serves the text exposition.
func (m *Metrics) Handler() http.Handler {
	return m.handler
}

// Registry is the server's own registry (for tests and embedding).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request records one finished request.
func (m *Metrics) Request(server, location string, status int, d time.Duration, in, out int64) {
	m.For(server, location).Request(status, d, in, out)
}

// Location holds one server and location's series, resolved once, so recording a request does no label lookup.
type Location struct {
	m                *Metrics
	server, location string
	requests         [6]atomic.Pointer[prometheus.Counter] // by status class, created on first use
	duration         prometheus.Observer
	in, out          prometheus.Counter
}

// For returns the series of one server name and location name.
func (m *Metrics) For(server, location string) *Location {
	return &Location{m: m, server: server, location: location,
		duration: m.duration.WithLabelValues(server, location),
		in:       m.bytesIn.WithLabelValues(server, location),
		out:      m.bytesOut.WithLabelValues(server, location)}
}

// Request records one finished request.
func (l *Location) Request(status int, d time.Duration, in, out int64) {
	class := 0
	if status >= 100 && status <= 599 {
		class = status / 100
	}
	c := l.requests[class].Load()
	if c == nil {
		n := l.m.requests.WithLabelValues(l.server, l.location, StatusClass(status))
		c = &n
		l.requests[class].Store(c)
	}
	(*c).Inc()
	l.duration.Observe(d.Seconds())
	if in > 0 {
		l.in.Add(float64(in))
	}
	if out > 0 {
		l.out.Add(float64(out))
	}
}

// Upstream records the attempts of one proxied request from $upstream_addr and $upstream_status ("a, b" and
// "502, 200"): every attempt but the last of a pass failed and was retried; the last failed if its status is
// 502 or 504. Passes after internal redirects are joined with " : " ("a, b : c"). cache (nil: none) keeps the
// last peer's counters for the next call.
func (m *Metrics) Upstream(addrs, statuses string, cache *PeerCache) {
	if addrs == "" {
		return
	}
	if cache != nil && strings.IndexByte(addrs, ',') < 0 && strings.IndexByte(addrs, ' ') < 0 {
		// one attempt (most requests): its counters from the cache when it is the cached peer's
		peers := m.peers.Load()
		if cache.peers != peers || cache.addr != addrs || peers == nil {
			cache.pc, cache.addr, cache.peers = m.peer(addrs), addrs, m.peers.Load()
		}
		cache.pc.attempts.Inc()
		if statuses == "502" || statuses == "504" {
			cache.pc.failures.Inc()
		}
		return
	}
	for addrs != "" {
		a, retried, restA := cutAttempt(addrs)
		st, _, restS := cutAttempt(statuses)
		addrs, statuses = restA, restS
		pc := m.peer(a)
		pc.attempts.Inc()
		switch {
		case retried:
			pc.failures.Inc()
			m.retries.Inc()
		case st == "502" || st == "504":
			pc.failures.Inc()
		}
	}
}

// cutAttempt splits the first entry off a $upstream_* list: retried reports that a ", " (a retry within the
// same pass) follows it, rather than " : " (a later pass) or the end.
func cutAttempt(s string) (first string, retried bool, rest string) {
	i := strings.Index(s, ", ")
	j := strings.Index(s, " : ")
	switch {
	case i >= 0 && (j < 0 || i < j):
		return s[:i], true, s[i+2:]
	case j >= 0:
		return s[:j], false, s[j+3:]
	}
	return s, false, ""
}

// peer returns the counters of the peer at addr, from the cache when it has them.
func (m *Metrics) peer(addr string) peerCounters {
	if cache := m.peers.Load(); cache != nil {
		if pc, ok := (*cache)[addr]; ok {
			return pc
		}
	}
	m.peersMu.Lock()
	defer m.peersMu.Unlock()
	old := m.peers.Load()
	if old != nil {
		if pc, ok := (*old)[addr]; ok {
			return pc
		}
	}
	pc := peerCounters{m.attempts.WithLabelValues(addr), m.failures.WithLabelValues(addr)}
	next := make(map[string]peerCounters, 1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[addr] = pc
	m.peers.Store(&next)
	return pc
}

// TLSHandshake records a client handshake's result.
func (m *Metrics) TLSHandshake(err error) {
	if err != nil {
		m.tls.WithLabelValues("error").Inc()
		return
	}
	m.tls.WithLabelValues("ok").Inc()
}

// Reload records a reload attempt.
func (m *Metrics) Reload(ok bool, at time.Time) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.reloadOK.Set(1)
	} else {
		m.reloads.WithLabelValues("failure").Inc()
		m.reloadOK.Set(0)
	}
	m.reloadAt.Set(float64(at.UnixNano()) / 1e9)
}

// StatusClass is a status code's class label ("2xx"); 0 (a connection closed without a response) is "none".
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

// sourceCollector turns Sources into gauges and counters at scrape time.
type sourceCollector struct{ src Sources }

var (
	descConnsOpen     = prometheus.NewDesc("sluice_connections_open", "Open client connections by state (reading, writing, waiting), as stub_status counts them.", []string{"state"}, nil)
	descAccepted      = prometheus.NewDesc("sluice_connections_accepted_total", "Client connections accepted.", nil, nil)
	descHandled       = prometheus.NewDesc("sluice_connections_handled_total", "Client connections handled.", nil, nil)
	descTunnelsOpen   = prometheus.NewDesc("sluice_tunnels_open", "Open WebSocket (upgraded) tunnels, by location, upstream group and peer.", []string{"location", "upstream", "peer"}, nil)
	descTunnelsOpened = prometheus.NewDesc("sluice_tunnels_opened_total", "Tunnels opened since start.", nil, nil)
	descPeerUp        = prometheus.NewDesc("sluice_upstream_peer_up", "1 if the balancer considers the upstream peer healthy.", []string{"upstream", "peer"}, nil)
	descPeerFails     = prometheus.NewDesc("sluice_upstream_peer_fails", "Failures the balancer currently counts against the upstream peer (its fail window).", []string{"upstream", "peer"}, nil)
)

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnsOpen, descAccepted, descHandled, descTunnelsOpen, descTunnelsOpened, descPeerUp, descPeerFails} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	if f := c.src.Connections; f != nil {
		n := f()
		ch <- prometheus.MustNewConstMetric(descConnsOpen, prometheus.GaugeValue, float64(n.Reading), "reading")
		ch <- prometheus.MustNewConstMetric(descConnsOpen, prometheus.GaugeValue, float64(n.Writing), "writing")
		ch <- prometheus.MustNewConstMetric(descConnsOpen, prometheus.GaugeValue, float64(n.Waiting), "waiting")
		ch <- prometheus.MustNewConstMetric(descAccepted, prometheus.CounterValue, float64(n.Accepted))
		ch <- prometheus.MustNewConstMetric(descHandled, prometheus.CounterValue, float64(n.Handled))
	}
	if f := c.src.Tunnels; f != nil {
		for _, t := range f() {
			ch <- prometheus.MustNewConstMetric(descTunnelsOpen, prometheus.GaugeValue, float64(t.Open), t.Location, t.Upstream, t.Peer)
		}
	}
	if f := c.src.TunnelsOpened; f != nil {
		ch <- prometheus.MustNewConstMetric(descTunnelsOpened, prometheus.CounterValue, float64(f()))
	}
	if f := c.src.Peers; f != nil {
		for _, p := range f() {
			up := 0.0
			if p.Healthy {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descPeerUp, prometheus.GaugeValue, up, p.Upstream, p.Addr)
			ch <- prometheus.MustNewConstMetric(descPeerFails, prometheus.GaugeValue, float64(p.Failures), p.Upstream, p.Addr)
		}
	}
}

// PeerCount is one upstream peer's attempts and failures since start.
type PeerCount struct{ Requests, Failures uint64 }

// PeerCounts reads the per-peer upstream counters (for the status page).
func (m *Metrics) PeerCounts() map[string]PeerCount {
	out := map[string]PeerCount{}
	eachPeer(m.attempts, func(peer string, n uint64) {
		pc := out[peer]
		pc.Requests = n
		out[peer] = pc
	})
	eachPeer(m.failures, func(peer string, n uint64) {
		pc := out[peer]
		pc.Failures = n
		out[peer] = pc
	})
	return out
}

// RetainPeers deletes the per-peer series of every peer keep rejects: after a reload, those of peers the new
// configuration no longer has, which would otherwise be reported forever. Kept peers keep their counts.
func (m *Metrics) RetainPeers(keep func(peer string) bool) {
	m.peersMu.Lock()
	defer m.peersMu.Unlock()
	m.peers.Store(nil) // deleted series must not be counted through the cache
	for _, v := range []*prometheus.CounterVec{m.attempts, m.failures} {
		var gone []string
		eachPeer(v, func(peer string, _ uint64) {
			if !keep(peer) {
				gone = append(gone, peer)
			}
		})
		for _, peer := range gone {
			v.DeleteLabelValues(peer)
		}
	}
}

// RetainLocations deletes the per-location series (requests, durations, bytes) of every server and location
// pair keep rejects: after a reload, those of locations the new configuration no longer has. Kept ones keep
// their counts; a request still finishing under a deleted pair is not counted.
func (m *Metrics) RetainLocations(keep func(server, location string) bool) {
	gone := map[[2]string]bool{}
	ch := make(chan prometheus.Metric, 16)
	go func() { m.duration.Collect(ch); close(ch) }() // every recorded request has a duration
	for mt := range ch {
		var d dto.Metric
		if mt.Write(&d) != nil {
			continue
		}
		var pair [2]string
		for _, l := range d.Label {
			switch l.GetName() {
			case "server":
				pair[0] = l.GetValue()
			case "location":
				pair[1] = l.GetValue()
			}
		}
		if !keep(pair[0], pair[1]) {
			gone[pair] = true
		}
	}
	for pair := range gone {
		l := prometheus.Labels{"server": pair[0], "location": pair[1]}
		m.requests.DeletePartialMatch(l)
		m.duration.DeletePartialMatch(l)
		m.bytesIn.DeletePartialMatch(l)
		m.bytesOut.DeletePartialMatch(l)
	}
}

// eachPeer calls f with the peer label and value of every series of a per-peer counter.
func eachPeer(v *prometheus.CounterVec, f func(peer string, n uint64)) {
	ch := make(chan prometheus.Metric, 16)
	go func() { v.Collect(ch); close(ch) }()
	for mt := range ch {
		var d dto.Metric
		if mt.Write(&d) != nil || len(d.Label) == 0 || d.Counter == nil {
			continue
		}
		f(d.Label[0].GetValue(), uint64(d.Counter.GetValue()))
	}
}
