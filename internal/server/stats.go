package server

import (
	"net"
	"net/http"
	"sync/atomic"

	"github.com/sluice-proxy/sluice/internal/h1guard"
	"github.com/sluice-proxy/sluice/internal/metrics"
)

// connStats counts client connections by state the way nginx's stub_status does: reading (request header),
// writing (a request being processed; upgraded connections too), waiting (idle keep-alive).
type connStats struct {
	accepted, handled, requests atomic.Uint64
	reading, writing, waiting   atomic.Int64
}

func (cs *connStats) counter(st http.ConnState) *atomic.Int64 {
	switch st {
	case http.StateNew:
		return &cs.reading
	case http.StateActive:
		return &cs.writing
	case http.StateIdle:
		return &cs.waiting
	}
	return nil
}

// connState is the connection loops' state hook: a connection went from state from (-1: it is new) to to.
// Each loop knows its connection's last state, so the counters need no per-connection record.
func (s *Server) connState(c net.Conn, from, to http.ConnState) {
	if g, ok := c.(*h1guard.Conn); ok {
		g.SetIdle(to == http.StateNew || to == http.StateIdle) // a refused head is answered only between requests
	}
	cs := &s.stats
	if from >= 0 {
		if n := cs.counter(from); n != nil {
			n.Add(-1)
		}
	}
	if n := cs.counter(to); n != nil {
		n.Add(1)
	}
}

// Conns reports the connection counters. Open tunnels count as active, writing connections.
func (s *Server) Conns() metrics.Conns {
	cs := &s.stats
	tunnels := int64(s.tracker.Open())
	n := metrics.Conns{
		Accepted: cs.accepted.Load(), Handled: cs.handled.Load(), Requests: cs.requests.Load(),
		Reading: max(cs.reading.Load(), 0), Writing: max(cs.writing.Load(), 0) + tunnels, Waiting: max(cs.waiting.Load(), 0),
	}
	n.Active = n.Reading + n.Writing + n.Waiting
	return n
}

// tunnels lists open tunnels grouped by location, upstream and peer.
func (s *Server) tunnels() []metrics.Tunnel {
	g := s.tracker.Groups()
	out := make([]metrics.Tunnel, 0, len(g))
	for m, n := range g {
		out = append(out, metrics.Tunnel{Meta: m, Open: n})
	}
	return out
}

// requestLength is $request_length: the head as read (from HTTP/1, which knows it) or as far as the parsed
// header tells (request line, headers), and the declared body.
func requestLength(r *http.Request) int64 {
	if h, ok := r.Context().(interface{ HeadLength() int }); ok && h.HeadLength() > 0 {
		return int64(h.HeadLength()) + max(r.ContentLength, 0)
	}
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + 2
	if r.Host != "" {
		n += len("Host: ") + len(r.Host) + 2
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	if r.ContentLength > 0 {
		return int64(n) + r.ContentLength
	}
	return int64(n)
}
