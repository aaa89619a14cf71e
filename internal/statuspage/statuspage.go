// Package statuspage serves sluice's live dashboard: one embedded HTML page (no external assets) and a
// server-sent event stream of snapshots, one per second, from the same location (`?events`).
package statuspage

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"time"
)

//go:embed page.html
var page []byte

// Snapshot is what the page shows, sampled once per interval.
type Snapshot struct {
	Time      int64   `json:"time"` // Unix milliseconds
	Version   string  `json:"version"`
	UptimeSec float64 `json:"uptime"`
	Conns     Conns   `json:"conns"`
	Tunnels   int     `json:"tunnels"`
	// Requests and LatencySum are running totals; the page derives requests per second and mean latency per
	// interval from their differences.
	Requests     uint64        `json:"requests"`
	LatencySum   float64       `json:"latencySum"` // seconds
	TunnelGroups []TunnelGroup `json:"tunnelGroups"`
	Peers        []Peer        `json:"peers"`
	Reload       Reload        `json:"reload"`
}

// Conns are the client connection counters.
type Conns struct {
	Active  int64 `json:"active"`
	Reading int64 `json:"reading"`
	Writing int64 `json:"writing"`
	Waiting int64 `json:"waiting"`
}

// TunnelGroup counts open tunnels of one location and upstream peer.
type TunnelGroup struct {
	Location string `json:"location"`
	Upstream string `json:"upstream"`
	Peer     string `json:"peer"`
	Open     int    `json:"open"`
}

// Peer is one upstream peer: attempts and failures since start, and health when the balancer reports it.
type Peer struct {
	Upstream string `json:"upstream,omitempty"`
	Addr     string `json:"addr"`
	Healthy  *bool  `json:"healthy,omitempty"`
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
	Tunnels  int    `json:"tunnels"`
}

// Reload is the last reload's outcome.
type Reload struct {
	Seq   int    `json:"seq"`
	At    int64  `json:"at"` // Unix milliseconds
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// writeTimeout bounds one event write to a client that does not read.
const writeTimeout = 30 * time.Second

// Handler serves the page, or the event stream when the query is "events". The stream ends when the client
// leaves or stop is done (a graceful stop must not wait for dashboards).
type Handler struct {
	Sample   func() Snapshot
	Interval time.Duration
	Stop     context.Context
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.RawQuery != "events" {
		hd := w.Header()
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
		hd.Set("X-Content-Type-Options", "nosniff")
		w.Write(page)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	interval := h.Interval
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	stop := h.Stop
	if stop == nil {
		stop = context.Background()
	}
	// a client that stopped reading (a phone asleep) would block a write for good, and with it a graceful stop:
	// each write has a deadline, and a stop cuts the one under way
	unblock := context.AfterFunc(stop, func() { rc.SetWriteDeadline(time.Now()) })
	defer unblock()
	for {
		b, err := json.Marshal(h.Sample())
		if err != nil {
			return
		}
		rc.SetWriteDeadline(time.Now().Add(max(writeTimeout, 2*interval)))
		if stop.Err() != nil {
			return
		}
		if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-stop.Done():
			return
		case <-tick.C:
		}
	}
}
