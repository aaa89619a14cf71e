package stream

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-proxy/sluice/internal/tunnel"
	"github.com/sluice-proxy/sluice/internal/upstream"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// MaxUDPSessions bounds the live sessions of one udp socket (each holds an upstream socket and a goroutine, no
// buffer while idle): datagrams from new client addresses are dropped while it is reached, so a flood of spoofed
// source addresses costs at most this many sessions, each for proxy_timeout at most.
const MaxUDPSessions = 4096

// maxDatagram is the largest UDP payload: one buffer of it reads any datagram whole.
const maxDatagram = 65535

// UDPSocket serves the datagrams of one `listen … udp` socket: each client address and port is a session with a
// connected socket to one peer; replies go back from the listening socket. It outlives configurations: a new
// session takes the server of the configuration current at its first datagram, a session keeps its own.
type UDPSocket struct {
	p       *Proxy
	pc      *net.UDPConn
	key     string         // the socket's key (ListenKey)
	current func() *Config // the running configuration's stream block
	nextID  func() uint64  // connection numbers, shared with the server's

	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession // the sessions that take their client's datagrams
	live     map[*udpSession]struct{}       // every session not ended (a proxy_requests one may wait for replies)
	stopped  bool                           // Shutdown ran: no new session, the socket closes with the last one
	closed   bool
	full     time.Time // when the session cap was last logged
	readDone chan struct{}
}

// ServeUDP starts serving pc, the socket of key; current gives the running stream block and nextID connection
// numbers.
func (p *Proxy) ServeUDP(pc *net.UDPConn, key string, current func() *Config, nextID func() uint64) *UDPSocket {
	u := &UDPSocket{p: p, pc: pc, key: key, current: current, nextID: nextID,
		sessions: map[netip.AddrPort]*udpSession{}, live: map[*udpSession]struct{}{}, readDone: make(chan struct{})}
	go u.readLoop()
	return u
}

// Conn is the socket, for a binary upgrade to hand over.
func (u *UDPSocket) Conn() *net.UDPConn { return u.pc }

// readLoop reads client datagrams into one buffer and hands each to its session (starting one) until the socket
// stops being read.
func (u *UDPSocket) readLoop() {
	defer close(u.readDone)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := u.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			// an ICMP error for an earlier reply, or a transient failure: the socket goes on
			continue
		}
		u.datagram(buf[:n], unmapped(from))
	}
}

// datagram passes b from client to its session, starting one when the client has none.
func (u *UDPSocket) datagram(b []byte, client netip.AddrPort) {
	u.mu.Lock()
	s := u.sessions[client]
	if s == nil {
		if u.stopped {
			u.mu.Unlock()
			return
		}
		if len(u.live) >= MaxUDPSessions {
			now := time.Now()
			if now.Sub(u.full) >= time.Second {
				u.full = now
				u.p.log.Warn(strconv.Itoa(MaxUDPSessions) + " udp sessions are open on " + u.key + ": datagrams from new clients are dropped")
			}
			u.mu.Unlock()
			return
		}
		u.mu.Unlock()
		u.start(b, client)
		return
	}
	u.mu.Unlock()
	s.fromClient(b)
}

// udpSession is one client's session: its upstream socket, the counts that end it, and its log line.
type udpSession struct {
	sess     session
	u        *UDPSocket
	client   netip.AddrPort
	up       *net.UDPConn
	try      *upstream.Try
	idle     time.Duration
	requests int // proxy_requests (0: no limit)
	// responses is proxy_responses (-1: unlimited)
	responses int

	mu        sync.Mutex
	nreq      int   // datagrams from the client
	nresp     int   // replies (an upstream read error counts as one, as in nginx)
	failed    bool  // the upstream answered with an error, or failed to answer in time: the peer failed
	sent      int64 // bytes to the upstream
	last      atomic.Int64
	ended     bool
	stopAfter func() bool
}

// start begins the session of client with its first datagram b: the preaccess and access phases, then a peer.
func (u *UDPSocket) start(b []byte, client netip.AddrPort) {
	c := u.current()
	if c == nil {
		return
	}
	srv := c.servers[u.key]
	if srv == nil {
		return
	}
	p := u.p
	now := time.Now()
	id := u.nextID()
	v := &vars.Request{Start: now, ConnID: id, Stream: &vars.StreamVars{Protocol: "UDP"}, Hostname: p.hostname, ServerName: srv.Listen.Addr,
		RemoteAddr: client}
	if la, ok := u.pc.LocalAddr().(*net.UDPAddr); ok {
		v.LocalAddr = unmapped(la.AddrPort())
	}
	s := &udpSession{u: u, client: client, responses: -1}
	s.sess = session{p: p, srv: srv, v: v}
	conf := srv.Conf.Conf
	if conf.StreamResponses.Set {
		s.responses = conf.StreamResponses.V
	}
	s.requests = conf.StreamRequests.V
	var connectTimeout time.Duration
	connectTimeout, s.idle = srv.Conf.StreamTimeouts()
	p.log.Info("udp client "+client.String()+" connected to "+srv.Listen.Addr, "conn", id)
	v.Stream.BytesReceived = int64(len(b))
	if status := s.sess.admit(c); status != StatusOK {
		s.sess.end(status)
		return
	}
	g, name, status := s.sess.group()
	if g == nil {
		s.sess.end(status)
		return
	}
	var key upstream.Key
	if g.Conf != nil && g.Conf.HashKey != nil {
		key.Hash = g.Conf.HashKey.Eval(v)
	}
	key.Client = client.Addr()
	s.try = g.Begin(key)
	for {
		peer := s.try.Next()
		if peer == nil {
			p.log.Error("no live upstreams while connecting to upstream", v.LogAttrs("upstream", name)...)
			if len(s.sess.tried) == 0 {
				s.sess.tried = append(s.sess.tried, tryStat{addr: name, connect: -1})
			}
			s.sess.end(StatusBadGateway)
			return
		}
		at := time.Now()
		d := net.Dialer{Timeout: connectTimeout}
		network, address := peer.Network()
		if network == "tcp" {
			network = "udp"
		}
		up, err := d.Dial(network, address)
		if err == nil {
			s.up = up.(*net.UDPConn)
			s.sess.tried = append(s.sess.tried, tryStat{addr: peer.Addr, connect: time.Since(at)})
			p.log.Info("udp proxy "+up.LocalAddr().String()+" connected to "+peer.Addr, "conn", id)
			break
		}
		s.try.Done(upstream.Failed).End()
		s.sess.tried = append(s.sess.tried, tryStat{addr: peer.Addr, connect: -1})
		p.log.Error(connectError(err)+" while connecting to upstream", v.LogAttrs("upstream", peer.Addr)...)
		if !conf.StreamNext.Get(true) || s.try.Left() == 0 {
			s.sess.end(StatusBadGateway)
			return
		}
	}
	u.mu.Lock()
	if u.stopped || u.closed {
		u.mu.Unlock()
		s.up.Close()
		s.try.Done(upstream.Success).End()
		s.sess.end(StatusOK)
		return
	}
	u.sessions[client], u.live[s] = s, struct{}{}
	u.mu.Unlock()
	ctx, done := p.tracker.Track(context.Background(), tunnel.Meta{Upstream: srv.upstreamName(), Location: StreamLocation + u.key})
	s.sess.tracked = done
	if tc, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		s.stopAfter = tc.AfterFunc(func() { s.finish(StatusOK, "disconnected on shutdown") })
	} else {
		s.stopAfter = context.AfterFunc(ctx, func() { s.finish(StatusOK, "disconnected on shutdown") })
	}
	s.touch()
	go s.readUpstream()
	s.fromClient(b)
}

// touch records activity in either direction: proxy_timeout counts from the last one.
func (s *udpSession) touch() { s.last.Store(time.Now().UnixNano()) }

// fromClient sends a client datagram to the upstream.
func (s *udpSession) fromClient(b []byte) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.nreq++
	if s.nreq > 1 {
		s.sess.v.Stream.BytesReceived += int64(len(b))
	}
	if s.requests > 0 && s.nreq >= s.requests {
		// proxy_requests: the client's next datagram starts a new session
		s.u.forget(s)
	}
	s.mu.Unlock()
	s.touch()
	s.mu.Lock()
	s.sent += int64(len(b)) // before the write: its reply may end the session before Write returns
	s.mu.Unlock()
	if _, err := s.up.Write(b); err != nil {
		// nginx ends the session (200) and counts the peer failed
		s.mu.Lock()
		s.failed = true
		s.mu.Unlock()
		s.sess.p.log.Error("send() failed ("+errnoText(err)+") while proxying and sending to upstream", s.sess.v.LogAttrs("upstream", s.peerAddr())...)
		s.finish(StatusOK, "")
		return
	}
	s.test()
}

// forget stops routing the client's datagrams to s (proxy_requests reached). s.mu may be held.
func (u *UDPSocket) forget(s *udpSession) {
	u.mu.Lock()
	if u.sessions[s.client] == s {
		delete(u.sessions, s.client)
	}
	u.mu.Unlock()
}

// test ends the session once every datagram sent has had its replies (nginx's test_finalize for UDP).
func (s *udpSession) test() {
	s.mu.Lock()
	done := !s.ended && s.complete() && (s.requests == 0 || s.nreq >= s.requests)
	s.mu.Unlock()
	if done {
		s.finish(StatusOK, "udp done")
	}
}

// complete reports whether the replies expected so far came (always false without proxy_responses). s.mu is held.
func (s *udpSession) complete() bool {
	return s.responses >= 0 && s.nresp >= s.responses*s.nreq
}

// readError logs a failed read of the upstream socket (an ICMP port unreachable answer surfaces so): the peer
// has failed, and the error counts as a reply, as in nginx.
func (s *udpSession) readError(err error) {
	s.mu.Lock()
	s.failed = true
	s.nresp++
	s.mu.Unlock()
	s.sess.p.log.Error("recv() failed ("+errnoText(err)+") while proxying and reading from upstream", s.sess.v.LogAttrs("upstream", s.peerAddr())...)
}

// peerAddr is the address of the session's peer.
func (s *udpSession) peerAddr() string { return s.sess.tried[len(s.sess.tried)-1].addr }

// readUpstream relays the upstream's datagrams to the client until the session ends. A buffer is taken from
// the pool only when a datagram is there to read, so an idle session holds none.
func (s *udpSession) readUpstream() {
	rc, err := s.up.SyscallConn()
	if err != nil {
		s.finish(StatusInternal, "")
		return
	}
	pool := &s.u.p.udpBufs
	for {
		deadline := time.Unix(0, s.last.Load()).Add(s.idle)
		s.up.SetReadDeadline(deadline)
		var buf *[]byte
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			buf = pool.Get().(*[]byte)
			n, rerr = unix.Read(int(fd), *buf)
			if rerr == unix.EAGAIN {
				pool.Put(buf)
				buf = nil
				return false
			}
			return true
		})
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if time.Unix(0, s.last.Load()).Add(s.idle).After(time.Now()) {
					continue // the client sent meanwhile
				}
				s.timedOut()
			}
			return // closed: the session ended
		}
		if rerr != nil {
			pool.Put(buf)
			s.readError(rerr)
			s.test()
			// nginx reads no more from this upstream: the session waits for its end
			s.waitEnd()
			return
		}
		s.touch()
		_, werr := s.u.pc.WriteToUDPAddrPort((*buf)[:n], s.client)
		pool.Put(buf)
		s.mu.Lock()
		s.nresp++
		s.sess.v.BytesSent += int64(n)
		s.sess.tried[len(s.sess.tried)-1].recv += int64(n)
		s.mu.Unlock()
		if werr != nil {
			s.sess.p.log.Info("sendmsg() failed ("+errnoText(werr)+") while proxying and sending to client", s.sess.v.LogAttrs()...)
		}
		s.test()
	}
}

// waitEnd holds the reader until the session ends by its timeout (the upstream is read no more).
func (s *udpSession) waitEnd() {
	for {
		deadline := time.Unix(0, s.last.Load()).Add(s.idle)
		d := time.Until(deadline)
		if d > 0 {
			t := time.NewTimer(d)
			<-t.C
			continue
		}
		s.mu.Lock()
		ended := s.ended
		s.mu.Unlock()
		if !ended {
			s.timedOut()
		}
		return
	}
}

// timedOut ends a session idle for proxy_timeout: a success when the replies expected came (or none was
// expected), else the upstream timed out (502, the peer failed), as nginx.
func (s *udpSession) timedOut() {
	s.mu.Lock()
	ok := s.responses < 0 || s.nresp >= s.responses*s.nreq
	if !ok {
		s.failed = true
	}
	s.mu.Unlock()
	if ok {
		s.finish(StatusOK, "udp timed out")
		return
	}
	s.sess.p.log.Error("upstream timed out (110: Connection timed out) while proxying connection", s.sess.v.LogAttrs("upstream", s.peerAddr())...)
	s.finish(StatusBadGateway, "")
}

// finish ends the session once: the upstream socket closes, the peer's try ends (failed after an error or a
// timeout with replies missing), and the session is logged with status; note is its info line.
func (s *udpSession) finish(status int, note string) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	failed := s.failed
	nreq, nresp, sent := s.nreq, s.nresp, s.sent
	s.mu.Unlock()
	u := s.u
	u.mu.Lock()
	if u.sessions[s.client] == s {
		delete(u.sessions, s.client)
	}
	delete(u.live, s)
	last := len(u.live) == 0 && u.stopped && !u.closed
	if last {
		u.closed = true
	}
	u.mu.Unlock()
	if s.stopAfter != nil {
		s.stopAfter()
	}
	s.up.Close()
	outcome := upstream.Success
	if failed {
		outcome = upstream.Failed
	}
	s.try.Done(outcome).End()
	v := s.sess.v
	s.sess.tried[len(s.sess.tried)-1].sent = sent
	if note != "" {
		s.sess.p.log.Info(note+", packets from/to client:"+strconv.Itoa(nreq)+"/"+strconv.Itoa(nresp)+
			", bytes from/to client:"+strconv.FormatInt(v.Stream.BytesReceived, 10)+"/"+strconv.FormatInt(v.BytesSent, 10)+
			", bytes from/to upstream:"+strconv.FormatInt(s.sess.tried[len(s.sess.tried)-1].recv, 10)+"/"+strconv.FormatInt(sent, 10), "conn", v.ConnID)
	}
	s.sess.end(status)
	if last {
		u.pc.Close()
	}
}

// Shutdown stops reading the socket (a graceful stop, a reload that removed it, a binary upgrade: the new
// process reads it now). Sessions whose expected replies all came, or that expect no count of them, end at once
// ("disconnected on shutdown", as nginx); the others may still get their replies until they end, and the socket
// closes with the last of them.
func (u *UDPSocket) Shutdown() {
	u.pc.SetReadDeadline(time.Now())
	<-u.readDone
	u.mu.Lock()
	u.stopped = true
	var end []*udpSession
	for s := range u.live {
		end = append(end, s)
	}
	if len(u.live) == 0 && !u.closed {
		u.closed = true
		u.pc.Close()
	}
	u.mu.Unlock()
	for _, s := range end {
		s.mu.Lock()
		waits := s.responses >= 0 && !s.complete()
		s.mu.Unlock()
		if !waits {
			s.finish(StatusOK, "disconnected on shutdown")
		}
	}
}

// Close ends every session and closes the socket at once.
func (u *UDPSocket) Close() {
	u.mu.Lock()
	u.stopped = true
	var end []*udpSession
	for s := range u.live {
		end = append(end, s)
	}
	u.mu.Unlock()
	u.pc.Close()
	<-u.readDone
	for _, s := range end {
		s.finish(StatusOK, "disconnected on shutdown")
	}
}

// errnoText is an error as nginx prints errno: "111: Connection refused".
func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return strconv.Itoa(int(errno)) + ": " + sentence(errno.Error())
	}
	return err.Error()
}
