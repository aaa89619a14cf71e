package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-proxy/sluice/internal/netutil"
)

// Reasons reported in Stats.Reason. Errors are reported as "error: " followed
// by the side ("client" or "upstream") and the error text.
const (
	ReasonClientClosed   = "client closed"
	ReasonUpstreamClosed = "upstream closed"
	ReasonIdleTimeout    = "idle timeout"
	ReasonShutdown       = "shutdown"
)

// smallBufSize is the first-read buffer of a direction whose source is not a
// plain socket (TLS, wrappers): it is what such a direction holds while idle.
// Typical WebSocket messages fit, so they cost neither a pool buffer nor a
// split write.
const smallBufSize = 1 << 10

// drainMin is the size of a TLS read from which a direction also takes the
// whole records TLS already holds (drain) before writing: clients send big
// messages in many records (browsers and gorilla/websocket in 1–4 KiB ones),
// and one write for all of them costs the upstream one wakeup instead of many.
// Smaller reads are usually a whole small message with nothing behind it.
const drainMin = smallBufSize / 2

// Options for Run.
type Options struct {
	// IdleTimeout closes the tunnel when no byte moved in either direction for
	// this long; 0 means never. Traffic in one direction keeps the tunnel open.
	// A peer that stops reading is detected by write deadlines: the tunnel ends
	// between one and two IdleTimeouts after the last byte it accepted (with
	// no traffic the other way). A TLS peer cannot be written to again after a
	// write timeout, so one that accepts nothing for a whole IdleTimeout ends
	// the tunnel even if the other direction is busy.
	IdleTimeout time.Duration
	// BufferSize is the per-direction copy buffer; 0 means DefaultBufferSize.
	// Ignored when Pool is set (the pool's size wins).
	BufferSize int
	// Pool, if set, supplies copy buffers, and a direction gives its buffer back
	// whenever it waits for bytes, so idle tunnels hold no copy buffer. Without
	// a pool each direction allocates one buffer on first use and keeps it.
	Pool *BufferPool
	// Poller, if set, takes directions that have been quiet for a moment off
	// their goroutines (see Poller); the idle timeout is then a timer.
	Poller *Poller
}

// Stats of a finished tunnel.
type Stats struct {
	ClientToUpstream int64 // bytes written to the upstream, including clientBuffered
	UpstreamToClient int64 // bytes written to the client, including upstreamBuffered
	Duration         time.Duration
	// Reason is what ended the tunnel: ReasonClientClosed or
	// ReasonUpstreamClosed (EOF from that side), ReasonIdleTimeout,
	// ReasonShutdown (ctx cancelled) or "error: <side>: <error>" (including
	// a connection reset). The first event wins, except that an idle timeout
	// or shutdown that ends the remaining direction after a half-close
	// replaces the EOF reason.
	Reason string
}

// Run copies bytes both ways between client and upstream until both
// directions are done, the idle timeout passes, or ctx is cancelled (which
// closes both sides: that is how a forced shutdown ends tunnels).
//
// clientBuffered and upstreamBuffered are bytes already read past the
// handshake on each side (pipelined client bytes, early upstream frames); they
// are written to the other side before anything else and must not be modified
// until Run returns. No byte is altered.
//
// When one side reaches EOF, Run half-closes the other side's write direction
// (CloseWrite, as on *net.TCPConn, *net.UnixConn and *tls.Conn; a side without
// CloseWrite is closed fully) and keeps copying the other direction. When a
// side errors, both are closed. Any deadlines already set on the connections
// (net/http leaves them set after Hijack) are replaced. Run closes both
// connections before it returns. Without a Poller it uses the caller's
// goroutine and one more.
func Run(ctx context.Context, client, upstream net.Conn, clientBuffered, upstreamBuffered []byte, opt Options) Stats {
	var stats Stats
	done := make(chan struct{})
	t := newTunnel(ctx, client, upstream, clientBuffered, upstreamBuffered, opt, func(s Stats) { stats = s; close(done) })
	go t.dirs[1].run()
	t.dirs[0].run()
	<-done
	return stats
}

// Start is Run without waiting: it returns at once and calls finished (on one
// of the tunnel's goroutines) with the tunnel's Stats once both connections
// are closed. With Options.Poller an idle tunnel holds no goroutine at all.
func Start(ctx context.Context, client, upstream net.Conn, clientBuffered, upstreamBuffered []byte, opt Options, finished func(Stats)) {
	t := newTunnel(ctx, client, upstream, clientBuffered, upstreamBuffered, opt, finished)
	go t.dirs[1].run()
	go t.dirs[0].run()
}

// lingerTime is how long a direction that may park waits for more bytes
// before it parks: long enough that a busy tunnel never parks between
// messages, short enough that idle tunnels give their goroutines back soon.
const lingerTime = 250 * time.Millisecond

func newTunnel(ctx context.Context, client, upstream net.Conn, clientBuffered, upstreamBuffered []byte, opt Options, finished func(Stats)) *tunnel {
	// a tunnel reads and writes plain sockets itself: it wants the *net.TCPConn under a netutil.Socket
	if tc, ok := netutil.TCP(client); ok {
		client = tc
	}
	if tc, ok := netutil.TCP(upstream); ok {
		upstream = tc
	}
	t := &tunnel{client: client, upstream: upstream, base: time.Now(), finished: finished, poller: opt.Poller}
	if opt.IdleTimeout > 0 {
		t.idle = opt.IdleTimeout
		t.gran = t.idle / 64
	}
	size := opt.BufferSize
	if opt.Pool != nil {
		size = opt.Pool.size
	} else if size <= 0 {
		size = DefaultBufferSize
	}
	c2u, u2c := &t.dirs[0], &t.dirs[1]
	c2u.init(t, client, upstream, clientBuffered, opt.Pool, size)
	u2c.init(t, upstream, client, upstreamBuffered, opt.Pool, size)
	t.running.Store(2)

	// Replace deadlines left by the caller; writes get theirs lazily before
	// each write. Without a poller reads get the first idle deadline; with one
	// a timer watches idleness and reads get linger deadlines lazily.
	for _, c := range [2]net.Conn{client, upstream} {
		c.SetDeadline(time.Time{})
		if t.idle > 0 && t.poller == nil {
			c.SetReadDeadline(t.base.Add(t.idle))
		}
	}
	if t.poller == nil {
		c2u.rdl, u2c.rdl = t.idle, t.idle
	} else if t.idle > 0 {
		t.mu.Lock()
		t.timer = time.AfterFunc(t.idle, t.idleCheck)
		t.mu.Unlock()
	}
	if af, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		// a Tracker's context: register directly, without context.AfterFunc's own cancel context
		t.stop = af.AfterFunc(func() { t.abort(ReasonShutdown) })
	} else {
		t.stop = context.AfterFunc(ctx, func() { t.abort(ReasonShutdown) })
	}
	return t
}

// end runs once, when the second direction has finished: it closes both
// connections and reports.
func (t *tunnel) end() {
	t.mu.Lock()
	reason := t.reason
	t.final = true
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
	t.stop()
	t.client.Close()
	t.upstream.Close()
	t.finished(Stats{
		ClientToUpstream: t.dirs[0].n,
		UpstreamToClient: t.dirs[1].n,
		Duration:         time.Since(t.base),
		Reason:           reason,
	})
}

// idleCheck is the idle timer of a tunnel whose directions may park: it
// aborts the tunnel when no byte moved for the idle timeout, or when a write
// to a connection without write deadlines (see direction.write) has been
// blocked that long, and otherwise fires again when one of those can be due.
func (t *tunnel) idleCheck() {
	now := time.Since(t.base)
	next := time.Duration(t.last.Load()) + t.idle
	for i := range t.dirs {
		if w := t.dirs[i].writing.Load(); w != 0 {
			next = min(next, time.Duration(w-1)+t.idle)
		}
	}
	if now >= next {
		t.abort(ReasonIdleTimeout)
		return
	}
	t.mu.Lock()
	if !t.final {
		t.timer.Reset(next - now)
	}
	t.mu.Unlock()
}

// tunnel is the state shared by both directions of one Run.
type tunnel struct {
	client, upstream net.Conn
	base             time.Time     // Run start; all offsets below are from it (monotonic)
	idle             time.Duration // 0 = no idle timeout
	gran             time.Duration // activity is recorded at most once per gran per direction
	last             atomic.Int64  // offset of the last recorded byte movement, either direction

	aborted atomic.Bool
	mu      sync.Mutex
	reason  string
	soft    bool // reason is an EOF that a later idle timeout or shutdown replaces
	final   bool // Run has read the reason

	dirs [2]direction

	finished func(Stats)
	running  atomic.Int32 // directions not finished yet
	stop     func() bool  // unregisters the ctx watcher
	poller   *Poller      // nil: directions never park
	timer    *time.Timer  // idle timer when directions may park
}

// setReason records why the tunnel ends. The first reason wins, except that
// an idle timeout or shutdown after a half-close (EOF) replaces the EOF: it is
// what actually ended the remaining direction. Errors after an EOF are
// usually its consequence and do not replace it.
func (t *tunnel) setReason(r string) {
	t.mu.Lock()
	switch {
	case t.final:
	case t.reason == "":
		t.reason = r
		t.soft = r == ReasonClientClosed || r == ReasonUpstreamClosed
	case t.soft && (r == ReasonIdleTimeout || r == ReasonShutdown):
		t.reason, t.soft = r, false
	}
	t.mu.Unlock()
}

// abort records the reason and closes both connections, which unblocks both
// directions. For a TLS connection only the underlying connection is closed,
// so abort never blocks sending close_notify to a peer that does not read.
func (t *tunnel) abort(reason string) {
	t.setReason(reason)
	t.closeAll()
}

// closeAll is abort after the reason is recorded.
func (t *tunnel) closeAll() {
	if t.aborted.Swap(true) {
		return
	}
	// Closing a socket waits for a RawConn.Read in progress on it, and a
	// direction writes from inside one (rawCopy, tlsCopy): expired deadlines first end
	// every blocked read and write, so the closes do not wait on each other.
	t.client.SetDeadline(aLongTimeAgo)
	t.upstream.SetDeadline(aLongTimeAgo)
	hardClose(t.client)
	hardClose(t.upstream)
	for i := range t.dirs {
		if d := &t.dirs[i]; d.parked.Load() {
			t.poller.forget(d)
			d.resume() // it reads its closed connection and finishes
		}
	}
}

func hardClose(c net.Conn) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		if under := nc.NetConn(); under != nil {
			under.Close()
			return
		}
	}
	c.Close()
}

// direction copies src to dst. Each connection is read by one direction and
// written by the other, so deadlines on it are never set concurrently.
type direction struct {
	t        *tunnel
	src, dst net.Conn
	pending  []byte
	n        int64 // bytes written to dst

	sw   io.Writer // dst's raw writer when dst is a TCP socket (netutil.RawWriter; nil: dst.Write)
	pool *BufferPool
	size int
	buf  *[]byte // big buffer while held; nil when handed back

	// Plain sockets: reads go through rc so the buffer is taken only once
	// the kernel has bytes (see rawRead); with TCP_INQ the copy loop runs
	// inside it (see rawCopy), also for TLS over TCP (rc is then the socket
	// under the TLS connection; see tlsCopy).
	rc     syscall.RawConn
	readFn func(uintptr) bool
	rn     int
	rerr   error // why rawRead/rawCopy/tlsCopy stopped (nil after a failed write: wfailed)

	// Other connections: reads start with a small buffer.
	small []byte
	tin   *inqConn // a TLS src's transport (NewTLSTransport) when tlsCopy reads it

	// Parking (with a Poller): fd is the socket under src (-1: never parks).
	fd    int
	token uint64 // the poller's name for this direction

	rdl, wdl time.Duration // current read/write deadline offsets (0 = none set)
	writing  atomic.Int64  // timedWDL: offset+1 at which the write in progress started, 0 = none
	stored   time.Duration // activity offset this direction last stored in t.last
	now      time.Duration // clock offset at the end of the last write or run start: read's linger check uses it

	// flags, together so that they share one word of an idle tunnel's memory
	grow       bool // last read filled its buffer: read into the big one next
	inq        bool // reads report the bytes left queued (TCP_INQ): rawCopy or tlsCopy
	inRaw      bool // inside rawCopy/tlsCopy: abort waits until it is over (see abort)
	wfailed    bool // rawCopy/tlsCopy stopped on a failed write (already reported)
	deferClose bool // a failure inside rawCopy/tlsCopy: close both sides once it is over
	drained    bool // the last raw read emptied the socket: wait before reading again
	tlsSrc     bool // src is a *tls.Conn: drain may take its buffered records
	registered bool // fd is in the poller's epoll set
	strictWDL  bool // dst cannot resume after a write timeout
	timedWDL   bool // strictWDL, and the idle timer watches writes instead of a deadline per write
	parked     atomic.Bool
}

func (d *direction) init(t *tunnel, src, dst net.Conn, pending []byte, pool *BufferPool, size int) {
	d.t, d.src, d.dst, d.pending, d.pool, d.size = t, src, dst, pending, pool, size
	tc, tlsSrc := src.(*tls.Conn)
	d.tlsSrc = tlsSrc
	if d.rc = rawConnOf(src); d.rc != nil {
		d.readFn = d.rawRead
		// Copying inside RawConn.Read deepens the goroutine's stack while it
		// waits: only directions that give their goroutine back when idle
		// (Poller) do it.
		if t.poller != nil && enableInq(src) {
			d.inq, d.readFn = true, d.rawCopy
		}
	} else if tlsSrc && t.poller != nil {
		if d.tin, d.rc = inqTransport(tc); d.rc != nil {
			d.inq, d.readFn = true, d.tlsCopy
		}
	}
	if t.poller != nil {
		d.sw = netutil.RawWriter(dst)
	}
	d.fd = -1
	if t.poller != nil {
		d.fd = socketFD(src)
	}
	switch dst.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		d.strictWDL = true
		d.timedWDL = t.poller != nil && t.idle > 0
	}
}

// up reports whether d is the client-to-upstream direction.
func (d *direction) up() bool { return d == &d.t.dirs[0] }

func (d *direction) srcName() string {
	if d.up() {
		return "client"
	}
	return "upstream"
}

func (d *direction) dstName() string {
	if d.up() {
		return "upstream"
	}
	return "client"
}

// closed is the tunnel's Reason when src reaches EOF.
func (d *direction) closed() string {
	if d.up() {
		return ReasonClientClosed
	}
	return ReasonUpstreamClosed
}

func (d *direction) getBuf() *[]byte {
	if d.pool != nil {
		return d.pool.get()
	}
	b := make([]byte, d.size)
	return &b
}

// releaseBuf hands the big buffer back to the pool; without a pool the
// direction keeps it.
func (d *direction) releaseBuf() {
	if d.pool != nil && d.buf != nil {
		d.pool.put(d.buf)
		d.buf = nil
	}
}

// run copies until src ends, the tunnel is aborted, or (with a poller) src
// has been quiet for lingerTime: then the direction parks and its goroutine
// ends; resume starts a new one.
func (d *direction) run() {
	d.now = time.Since(d.t.base)
	if len(d.pending) > 0 {
		if !d.write(d.pending) {
			d.finish()
			return
		}
		d.pending = nil
	}
	for {
		p, err := d.read()
		if len(p) == 0 {
			if d.wfailed {
				d.finish()
				return
			}
			d.now = time.Since(d.t.base)
		} else if !d.write(p) {
			d.finish()
			return
		}
		if d.rc == nil && !d.grow {
			d.releaseBuf()
		}
		if err == nil {
			continue
		}
		if err == io.EOF {
			d.eof()
			d.finish()
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if d.t.poller != nil && d.fd >= 0 {
				// the linger deadline: src has nothing, and no layer above it
				// (TLS) holds a whole record, or the read would have returned it
				if d.park() {
					return
				}
				continue
			}
			if d.t.idle > 0 && d.t.poller == nil {
				if d.readTimedOut() {
					continue
				}
				d.finish()
				return
			}
		}
		d.fail(d.srcName(), err)
		d.finish()
		return
	}
}

// finish records that this direction is done; the second one to finish ends
// the tunnel.
func (d *direction) finish() {
	d.releaseBuf()
	d.releaseSmall()
	if d.t.running.Add(-1) == 0 {
		d.t.end()
	}
}

// park gives back the buffers and waits in the poller for src to become
// readable. It reports false when the direction must keep reading on this
// goroutine instead.
func (d *direction) park() bool {
	d.releaseBuf()
	d.releaseSmall()
	if d.tlsSrc {
		trimTLS(d.src.(*tls.Conn)) // this goroutine is src's only reader, and it is not reading
	}
	d.parked.Store(true)
	if d.t.aborted.Load() || d.t.poller.park(d) != nil {
		// aborted meanwhile, or the poller cannot take it: read on here
		// unless abort already resumed this direction on a new goroutine
		return !d.parked.CompareAndSwap(true, false)
	}
	return true
}

// resume starts a parked direction again on a new goroutine; only the first
// of concurrent resumes (poller event, abort) does.
func (d *direction) resume() {
	if d.parked.CompareAndSwap(true, false) {
		go d.run()
	}
}

func (d *direction) releaseSmall() {
	if d.small != nil && d.pool != nil {
		d.pool.putSmall(d.small)
		d.small = nil
	}
}

// read returns the next bytes from src; the slice is valid until the next read.
func (d *direction) read() ([]byte, error) {
	if d.lingerDue() {
		// keep a linger deadline at least lingerTime/2 ahead (d.now: the clock at the last write)
		d.rdl = d.now + lingerTime
		if err := d.src.SetReadDeadline(d.t.base.Add(d.rdl)); err != nil {
			return nil, err
		}
	}
	if d.inq {
		// rawCopy and tlsCopy write what they read: no bytes come back
		d.rerr, d.wfailed, d.drained = nil, false, false
		d.inRaw = true
		err := d.rc.Read(d.readFn)
		d.inRaw = false
		if d.deferClose {
			d.deferClose = false
			d.t.closeAll()
		}
		if err != nil {
			return nil, err
		}
		return nil, d.rerr
	}
	if d.rc != nil {
		d.rn, d.rerr = 0, nil
		if err := d.rc.Read(d.readFn); err != nil {
			return nil, err
		}
		if d.rerr != nil {
			return nil, d.rerr
		}
		if d.rn <= 0 {
			return nil, io.EOF
		}
		return (*d.buf)[:d.rn], nil
	}
	return d.readConn()
}

// readConn reads src through its own Read (TLS, wrappers): small reads use
// the small buffer, big ones the pool's. The slice is valid until the next
// read.
func (d *direction) readConn() ([]byte, error) {
	if d.buf == nil && !d.grow {
		if d.small == nil {
			if d.pool != nil {
				d.small = d.pool.getSmall()
			} else {
				d.small = make([]byte, smallBufSize)
			}
		}
		n, err := d.src.Read(d.small)
		if n < drainMin || err != nil || !d.tlsSrc {
			d.grow = n == len(d.small)
			return d.small[:n], err
		}
		// a bigger message (or a big one sent in small records): continue in
		// the big buffer with what TLS already holds, for one write
		d.buf = d.getBuf()
		n = copy(*d.buf, d.small[:n])
		n, err = d.drain(*d.buf, n)
		d.grow = n == len(*d.buf)
		return (*d.buf)[:n], err
	}
	if d.buf == nil {
		d.buf = d.getBuf()
	}
	n, err := d.src.Read(*d.buf)
	if n > 0 && err == nil && d.tlsSrc {
		n, err = d.drain(*d.buf, n)
	}
	d.grow = n == len(*d.buf)
	return (*d.buf)[:n], err
}

// drain appends to buf[:n] what a TLS source has already decrypted or
// received (whole records), without waiting for the socket: a read deadline
// in the past makes a read that would need the socket fail at once, and a TLS
// read timeout loses nothing. A message spanning several records then costs
// one write instead of one per record.
func (d *direction) drain(buf []byte, n int) (int, error) {
	if n == len(buf) {
		return n, nil
	}
	if d.inq {
		// inside tlsCopy: the transport fails with errDrained instead of waiting
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = d.src.Read(buf[n:])
			n += m
		}
		return n, err
	}
	if err := d.src.SetReadDeadline(aLongTimeAgo); err != nil {
		return n, nil
	}
	var err error
	for n < len(buf) {
		var m int
		m, err = d.src.Read(buf[n:])
		n += m
		if err != nil {
			break
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil
	}
	var dl time.Time
	if d.rdl > 0 {
		dl = d.t.base.Add(d.rdl)
	}
	if e := d.src.SetReadDeadline(dl); e != nil && err == nil {
		err = e
	}
	return n, err
}

// lingerDue reports whether a direction that may park must move its linger
// deadline before it waits for bytes again.
func (d *direction) lingerDue() bool {
	return d.fd >= 0 && d.t.poller != nil && d.rdl-d.now < lingerTime/2
}

// waitReadable is what rawCopy and tlsCopy return once src is drained: false,
// to wait for readability within the same RawConn.Read (which keeps a
// readiness edge that came after the last read), with the buffer handed back
// and the linger deadline moved if it is due. Moving the deadline here, not
// in a new RawConn.Read, spares the read into EAGAIN a new one starts with.
func (d *direction) waitReadable() bool {
	d.releaseBuf()
	if d.lingerDue() {
		d.rdl = d.now + lingerTime
		if err := d.src.SetReadDeadline(d.t.base.Add(d.rdl)); err != nil {
			d.rerr = err
			return true
		}
	}
	return false
}

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// write writes all of p to dst under a write deadline, so a peer that stops
// reading ends the tunnel after the idle timeout. On plain sockets the
// deadline is kept at least idle/2 ahead (few deadline updates) and a timeout
// is retried while bytes move; other connections (TLS cannot write again after
// a timeout) get a fresh full deadline before every write.
func (d *direction) write(p []byte) bool {
	t := d.t
	now := time.Since(t.base) // the bytes have just been read
	if t.idle > 0 {
		d.touch(now)
	}
	for len(p) > 0 {
		if d.timedWDL {
			// no deadline to move per write (a timer update each): idleCheck
			// aborts the tunnel if this write is still blocked after the idle timeout
			d.writing.Store(int64(now) + 1)
		} else if t.idle > 0 {
			if d.strictWDL || d.wdl-now < t.idle/2 {
				d.wdl = now + t.idle
				if err := d.dst.SetWriteDeadline(t.base.Add(d.wdl)); err != nil {
					d.fail(d.dstName(), err)
					return false
				}
			}
		}
		if t.aborted.Load() {
			// after our deadline update: abort's expired deadline may be gone
			return false
		}
		var n int
		var err error
		if d.sw != nil {
			n, err = d.sw.Write(p)
		} else {
			n, err = d.dst.Write(p)
		}
		if d.timedWDL {
			d.writing.Store(0)
		}
		d.n += int64(n)
		p = p[n:]
		now = time.Since(t.base)
		if err == nil {
			continue
		}
		// A timeout before our deadline is not ours: report it as an error.
		if t.idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			if now >= d.wdl {
				if !d.strictWDL && (n > 0 || now-time.Duration(t.last.Load()) < t.idle) {
					// Progress, or the other direction is moving bytes.
					if n > 0 {
						d.touch(now)
					}
					continue
				}
				// No byte moved for the idle timeout, or a connection that
				// cannot resume after a write timeout (TLS) accepted nothing
				// for a whole idle timeout.
				d.abort(ReasonIdleTimeout)
				return false
			}
		}
		d.fail(d.dstName(), err)
		return false
	}
	d.now = now
	if t.idle > 0 {
		d.touch(now)
	}
	return true
}

// touch records byte movement at offset now, at most once per t.gran.
func (d *direction) touch(now time.Duration) {
	if now-d.stored >= d.t.gran {
		d.stored = now
		d.t.last.Store(int64(now))
	}
}

// readTimedOut handles an expired read deadline: if either direction moved
// bytes within the idle timeout the deadline moves to last activity + idle and
// it returns true; otherwise the tunnel is idle and is aborted.
func (d *direction) readTimedOut() bool {
	t := d.t
	now := time.Since(t.base)
	if now < d.rdl {
		d.fail(d.srcName(), os.ErrDeadlineExceeded) // not our deadline
		return false
	}
	last := time.Duration(t.last.Load())
	if now-last >= t.idle {
		t.abort(ReasonIdleTimeout)
		return false
	}
	d.rdl = last + t.idle
	if err := d.src.SetReadDeadline(t.base.Add(d.rdl)); err != nil {
		d.fail(d.srcName(), err)
		return false
	}
	return true
}

// eof propagates EOF from src as a half-close of dst.
func (d *direction) eof() {
	d.t.setReason(d.closed())
	if cw, ok := d.dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	d.t.abort(d.closed())
}

func (d *direction) fail(side string, err error) {
	d.abort("error: " + side + ": " + err.Error())
}

// abort aborts the tunnel, or, inside rawRead, has run do it once the
// RawConn.Read is over: closing src waits for that Read to end.
func (d *direction) abort(reason string) {
	if d.inRaw {
		d.t.setReason(reason)
		d.deferClose = true
		return
	}
	d.t.abort(reason)
}
