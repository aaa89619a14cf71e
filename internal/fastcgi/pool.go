package fastcgi

import (
	"context"
	"time"

	"github.com/sluice-proxy/sluice/internal/netutil"
)

// The pool of kept connections to one application address.
//
// php-fpm binds a worker to a kept connection until the connection closes, and a connection it has no free
// worker for waits in the listen backlog. So an idle kept connection holds a worker, and a new connection made
// while every worker holds one of ours may wait until one of ours closes. The pool works with that:
//
//   - a request takes an idle connection; if there is none and no request is using a connection, it dials;
//   - otherwise it waits up to handoverWait for a connection another request finishes with (handed over, never
//     idle) and dials only after that. Under load, connections are passed from request to request and none is
//     dialled or closed; a burst larger than the pool still opens new connections after a few milliseconds;
//   - a new connection unanswered for probeGrace may be waiting for a worker our idle or finishing connections
//     hold: a finishing connection is then closed instead of handed over, and every idle connection (of every
//     address: a second name for the same php-fpm) is closed, which frees workers.
type pool struct {
	idle       []*conn
	waiters    []*waiter // FIFO
	inflight   int       // requests holding a connection (or dialling one)
	probes     int       // dialled connections not yet answered
	probeSince time.Time // when the oldest unanswered probe started
}

type waiter struct {
	ch   chan *conn // a handed-over connection, or nil: dial
	gone bool       // gave up waiting
}

const (
	probeGrace   = 50 * time.Millisecond
	handoverWait = 10 * time.Millisecond
)

func (c *Client) poolFor(key poolKey) *pool {
	if c.pools == nil {
		c.pools = map[poolKey]*pool{}
	}
	p := c.pools[key]
	if p == nil {
		p = &pool{}
		c.pools[key] = p
	}
	return p
}

// get returns a kept connection for key, or nil when the caller is to dial (it must then call probed). Either
// way the request counts as in flight until release.
func (c *Client) get(ctx context.Context, key poolKey) (*conn, error) {
	for {
		c.mu.Lock()
		p := c.poolFor(key)
		if n := len(p.idle); n > 0 {
			cn := p.idle[n-1]
			p.idle = p.idle[:n-1]
			c.mu.Unlock()
			if !c.usable(cn) {
				cn.nc.Close()
				continue
			}
			c.hold(p)
			return cn, nil
		}
		if p.inflight == 0 {
			p.inflight++
			c.startProbe(p, time.Now())
			c.mu.Unlock()
			return nil, nil
		}
		w := &waiter{ch: make(chan *conn, 1)}
		p.waiters = append(p.waiters, w)
		c.mu.Unlock()
		timer := time.NewTimer(handoverWait)
		var cn *conn
		select {
		case cn = <-w.ch:
			timer.Stop()
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
		c.mu.Lock()
		if !w.gone {
			w.gone = true
		} else if cn == nil {
			select { // a handover that raced with the timeout
			case cn = <-w.ch:
			default:
			}
		}
		if cn == nil {
			if err := ctx.Err(); err != nil {
				c.mu.Unlock()
				return nil, err
			}
			p.inflight++
			c.startProbe(p, time.Now())
			c.mu.Unlock()
			return nil, nil
		}
		c.mu.Unlock()
		// handed over by a request that has just read its END_REQUEST: no need to probe the socket (a
		// connection the application closed meanwhile is caught by Do's retry)
		if cn.rr.br.Buffered() != 0 {
			cn.nc.Close()
			continue
		}
		c.hold(p)
		return cn, nil
	}
}

// dialing counts a request that dials its own connection instead of taking a kept one: in flight, and probing
// until its response header arrives (as when get finds nothing to hand out).
func (c *Client) dialing(key poolKey) {
	c.mu.Lock()
	p := c.poolFor(key)
	p.inflight++
	c.startProbe(p, time.Now())
	c.mu.Unlock()
}

func (c *Client) hold(p *pool) {
	c.mu.Lock()
	p.inflight++
	c.mu.Unlock()
}

// release ends a request's use of the pool (its connection was put back, handed over or closed).
func (c *Client) release(key poolKey) {
	c.mu.Lock()
	if p := c.poolFor(key); p.inflight > 0 {
		p.inflight--
	}
	c.mu.Unlock()
}

func (c *Client) startProbe(p *pool, now time.Time) {
	if p.probes == 0 {
		p.probeSince = now
	}
	p.probes++
	if c.unpin == nil {
		c.unpin = time.AfterFunc(probeGrace, c.unpinIdle)
	}
}

func (c *Client) usable(cn *conn) bool {
	// a connection that can carry its request in its first read is checked there (HeadFirst), not here
	return !(c.IdleTimeout > 0 && time.Since(cn.idleAt) > c.IdleTimeout) && cn.rr.br.Buffered() == 0 &&
		(cn.hf.CanDefer() || netutil.Alive(cn.nc))
}

// probed ends a probe: its response header arrived, or it failed.
func (c *Client) probed(key poolKey, counted bool) {
	if !counted {
		return
	}
	c.mu.Lock()
	p := c.poolFor(key)
	if p.probes > 0 {
		p.probes--
	}
	p.probeSince = time.Now()
	c.mu.Unlock()
}

// wake hands cn to the longest-waiting request still waiting, and reports whether there was one.
func (c *Client) wake(p *pool, cn *conn) bool {
	for len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		if w.gone {
			continue
		}
		w.gone = true
		w.ch <- cn
		return true
	}
	return false
}

// put hands a connection whose response was read to its end to a waiting request, or keeps it idle. While a
// probe has waited past probeGrace the connection is closed instead, to free its worker for the probe.
func (c *Client) put(cn *conn) {
	cn.nc.SetDeadline(time.Time{})
	now := time.Now()
	cn.idleAt = now
	var evict []*conn
	c.mu.Lock()
	p := c.poolFor(cn.key)
	if p.probes > 0 && now.Sub(p.probeSince) > probeGrace {
		c.mu.Unlock()
		cn.nc.Close()
		return
	}
	if c.wake(p, cn) {
		c.mu.Unlock()
		return
	}
	if len(p.idle) >= p.inflight {
		// no more idle connections than requests in flight (this one included): each POST dials its own
		// connection, and keeping every one would pin a php-fpm worker per POST until the idle timeout
		c.mu.Unlock()
		cn.nc.Close()
		return
	}
	if c.reap == nil && c.IdleTimeout > 0 {
		c.reap = time.AfterFunc(c.IdleTimeout, c.reapIdle)
	}
	list := p.idle
	for len(list) > 0 && (len(list) >= max(c.MaxIdle, 1) || c.IdleTimeout > 0 && now.Sub(list[0].idleAt) > c.IdleTimeout) {
		evict = append(evict, list[0])
		list = list[1:]
	}
	p.idle = append(list, cn)
	c.mu.Unlock()
	for _, e := range evict {
		e.nc.Close()
	}
}

// unpinIdle runs when a probe has waited probeGrace: the application may have no free worker because idle
// connections hold them, including ones kept for another address of the same application (a second name, a
// unix socket and a port). Every idle connection is closed, which frees those workers.
func (c *Client) unpinIdle() {
	now := time.Now()
	var evict []*conn
	c.mu.Lock()
	c.unpin = nil
	stuck, waiting := false, false
	for _, p := range c.pools {
		if p.probes > 0 {
			waiting = true
			stuck = stuck || now.Sub(p.probeSince) >= probeGrace
		}
	}
	if stuck {
		for _, p := range c.pools {
			evict = append(evict, p.idle...)
			p.idle = nil
		}
	}
	if waiting {
		c.unpin = time.AfterFunc(probeGrace, c.unpinIdle)
	}
	c.mu.Unlock()
	for _, e := range evict {
		e.nc.Close()
	}
}

// reapIdle closes connections idle longer than IdleTimeout: each holds a php-fpm worker.
func (c *Client) reapIdle() {
	now := time.Now()
	var evict []*conn
	c.mu.Lock()
	any := false
	for _, p := range c.pools {
		for len(p.idle) > 0 && now.Sub(p.idle[0].idleAt) > c.IdleTimeout {
			evict = append(evict, p.idle[0])
			p.idle = p.idle[1:]
		}
		any = any || len(p.idle) > 0
	}
	if any {
		c.reap.Reset(c.IdleTimeout / 2)
	} else {
		c.reap = nil
	}
	c.mu.Unlock()
	for _, e := range evict {
		e.nc.Close()
	}
}

// CloseIdle closes every idle connection (on reload and shutdown: idle connections hold php-fpm workers).
func (c *Client) CloseIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pools {
		for _, cn := range p.idle {
			cn.nc.Close()
		}
		p.idle = nil
	}
}

// Idle returns how many idle connections are pooled (for tests and status).
func (c *Client) Idle() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.pools {
		n += len(p.idle)
	}
	return n
}
