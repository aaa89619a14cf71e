// Package h1 serves HTTP/1.0 and HTTP/1.1 on connections its caller accepted: one goroutine per connection
// reads a request head (http.ReadRequest), calls the handler and frames the response itself. It replaces
// net/http's server, which spends a goroutine, a context, a header map and buffers per request on features
// (a background read per request for CloseNotify, its own connection tracking) sluice does not need or does
// differently. Handlers are plain http.Handlers; http.ResponseController works on the writer.
package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-proxy/sluice/internal/netutil"
)

// Limits are the per-request settings of a connection, read before each request so a reload applies them to
// connections already open.
type Limits struct {
	HeaderTimeout  time.Duration // client_header_timeout: the whole head must arrive within it
	IdleTimeout    time.Duration // keepalive_timeout: the longest wait for a next request; 0 closes after a response
	MaxHeaderBytes int           // large_client_header_buffers: the size of a head (its request line included)
	// Linger is how a connection closes after a refused head (the default server's lingering_*; nil: nginx's
	// defaults). A served request's comes from its location (SetLinger).
	Linger *Linger
}

// LingerMode is lingering_close: when a closing connection reads and drops what the client still sends.
type LingerMode uint8

const (
	LingerOn     LingerMode = iota // when the client may still be sending: a body left unread, bytes beyond the request, a refused head (nginx's default)
	LingerOff                      // never: close at once (the kernel resets a connection closed with unread bytes)
	LingerAlways                   // whenever the connection closes
)

// Linger is nginx's lingering_close, lingering_time and lingering_timeout, as one value the configuration
// holds for a location: a connection points at it, so choosing it per request costs no allocation.
type Linger struct {
	Mode    LingerMode
	Time    time.Duration // lingering_time: the longest the client's bytes are read and dropped in all
	Timeout time.Duration // lingering_timeout: the longest one read waits
}

// Lingering close's defaults, nginx's: lingering_close on, lingering_time 30s, lingering_timeout 5s.
const (
	DefaultLingerTime    = 30 * time.Second
	DefaultLingerTimeout = 5 * time.Second
)

// values returns l's settings, nginx's defaults for a nil l.
func (l *Linger) values() (LingerMode, time.Duration, time.Duration) {
	if l == nil {
		return LingerOn, DefaultLingerTime, DefaultLingerTimeout
	}
	return l.Mode, l.Time, l.Timeout
}

// Refusal is a request the server refused before the handler saw it: the status nginx answers with (494 is
// its 400 "Request Header Or Cookie Too Large") and what completes nginx's log line "client sent …".
type Refusal struct {
	Status int
	Reason string
	// Line is the request line as it was read ("" when nothing of it is known) and Header the header fields read
	// before the refusal (nil: none): what nginx's access log line shows of a refused request.
	Line   string
	Header http.Header
}

// Server serves HTTP/1.x connections with one handler.
type Server struct {
	Handler http.Handler
	// Limits returns the current limits for a connection (its base context and socket); called before each
	// request.
	Limits func(ctx context.Context, c net.Conn) Limits
	// ConnState, if set, is told of each connection's state changes, as net/http's hook is, with the state
	// the connection leaves (-1 for a new one).
	ConnState func(c net.Conn, from, to http.ConnState)
	// Refuse answers and logs a refused request on the connection (which is closed afterwards); ctx is the
	// connection's base context.
	Refuse func(ctx context.Context, c net.Conn, r Refusal)
	// Log, if set, gets a handler's panic (other than http.ErrAbortHandler) with its stack.
	Log *slog.Logger

	mu        sync.Mutex
	conns     map[*conn]struct{}
	others    map[net.Conn]struct{} // connections of other protocols (HTTP/2) served through Hand
	wg        sync.WaitGroup
	shutdown  atomic.Bool
	closed    bool // Shutdown or Close was called: no connection is taken any more
	dateCache atomic.Pointer[dateLine]
	// readers and writers are the connections' buffers: a writer is held only while a response is written;
	// ahead holds the buffers a socket reads ahead into while its connection awaits a request (see awaitIdle)
	readers, writers, ahead sync.Pool
}

// Conn states kept for Shutdown.
const (
	stNew    int32 = iota // waiting for the first request
	stActive              // reading a head or serving a request
	stIdle                // between requests
	stClosed              // closed by Shutdown or Close
)

// ServeConn serves c until it closes. ctx is the base of every request's context; tlsState, when not nil,
// is c's TLS state (Request.TLS).
func (s *Server) ServeConn(ctx context.Context, c net.Conn, tlsState *tls.ConnectionState) {
	cn := &conn{srv: s, rwc: c, base: ctx, tls: tlsState, remote: c.RemoteAddr().String(), since: time.Now(), sock: sockUnder(c), cstate: -1,
		wt: netutil.WriteTimeoutOf(c)}
	if !s.track(cn) {
		c.Close()
		return
	}
	defer s.wg.Done()
	cn.serve()
}

// Hand serves a connection of another protocol with serve, tracked like the server's own: Shutdown waits for
// serve to return, Close closes c.
func (s *Server) Hand(c net.Conn, serve func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	if s.others == nil {
		s.others = map[net.Conn]struct{}{}
	}
	s.others[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.others, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	serve()
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// newConnGrace is how long Shutdown lets a connection that has not sent its first request yet send it
// (net/http's figure): a request already on its way is answered, a preconnected browser socket is not waited for.
const newConnGrace = 5 * time.Second

// Shutdown ends keep-alive: idle connections are closed, a request in progress is answered with
// Connection: close, a connection waiting for its first request gets newConnGrace to send it. It returns when
// every connection is closed, or ctx's error when ctx ends first (the connections still open stay open: call
// Close).
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	// no connection is taken from here on: a WaitGroup must not be added to while Wait runs (a connection
	// handed over after its listener closed, e.g. at the end of a TLS handshake, is closed as net/http does)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.closeIdle()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// closeIdle closes the connections between requests (and those silent for newConnGrace).
func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for c := range s.conns {
		st := c.state.Load()
		if st == stIdle || st == stNew && now.Sub(c.since) >= newConnGrace {
			if c.state.CompareAndSwap(st, stClosed) {
				c.rwc.Close()
			}
		}
	}
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.shutdown.Store(true)
	s.mu.Lock()
	for c := range s.conns {
		c.state.Store(stClosed)
		c.rwc.Close()
	}
	for c := range s.others {
		c.Close()
	}
	s.conns, s.others, s.closed = nil, nil, true
	s.mu.Unlock()
	return nil
}

func (s *Server) getReader(c *conn) *bufio.Reader {
	if br, ok := s.readers.Get().(*bufio.Reader); ok {
		br.Reset(connReader{c})
		return br
	}
	return bufio.NewReaderSize(connReader{c}, 4096)
}

func (s *Server) getAhead() *[]byte {
	if b, ok := s.ahead.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 4096) // the reader's size: one Read hands all of it to an empty reader
	return &b
}

func (s *Server) getWriter(c net.Conn) *bufio.Writer {
	if bw, ok := s.writers.Get().(*bufio.Writer); ok {
		bw.Reset(c)
		return bw
	}
	return bufio.NewWriterSize(c, 4096)
}
