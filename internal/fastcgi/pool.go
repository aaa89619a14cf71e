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
// while every worker holds one of ours would wait forever. The pool therefore learns php-fpm's capacity
// instead of guessing it:
//
//   - a request takes an idle connection, or a connection handed over by a request that just finished;
//   - otherwise it dials a new one (a probe), but only while no other probe is unanswered: an unanswered probe
//     may sit in the backlog, meaning every worker is busy with our connections. Later requests queue for a
//     handover instead, which under load keeps every connection in use and none is dialled or closed;
//   - a probe that is answered proves one more worker, and wakes a queued request to probe again;
//   - a connection finishing while a probe has waited longer than probeGrace is closed rather than handed on,
//     freeing its worker for the probe; capacity is then known and probing pauses for probePause;
//   - a probe unanswered for probeGrace also closes every idle connection, of every address: they may hold
//     the workers (another name for the same php-fpm);
//   - a queued request that gets nothing within queueWait (or by the end of a pause) dials anyway, so a pool
//     can never wedge.
type pool struct {
	idle       []*conn
	waiters    []*waiter // FIFO
	probes     int       // dialled connections not yet answered
	probeSince time.Time // when the oldest unanswered probe started
	pauseUntil time.Time // no probing before this, unless nothing is open
}

type waiter struct {
	ch   chan *conn // a handed-over connection, or nil: dial
	gone bool       // gave up waiting
}

const (
	probeGrace = 50 * time.Millisecond
	probePause = time.Second
	queueWait  = 2 * time.Second
)

func (c *Client) poolFor(key string) *pool {
	if c.pools == nil {
		c.pools = map[string]*pool{}
	}
	p := c.pools[key]
	if p == nil {
		p = &pool{}
		c.pools[key] = p
	}
	return p
}

// get returns a kept connection for key, or nil when the caller is to dial (it is then a probe and must call
// probed). It may wait for a connection another request hands over.
func (c *Client) get(ctx context.Context, key string) (*conn, error) {
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
			return cn, nil
		}
		now := time.Now()
		if p.probes == 0 && now.After(p.pauseUntil) {
			c.startProbe(p, now)
			c.mu.Unlock()
			return nil, nil
		}
		w := &waiter{ch: make(chan *conn, 1)}
		p.waiters = append(p.waiters, w)
		wait := queueWait
		if d := p.pauseUntil.Sub(now); d > 0 && d < wait {
			wait = d // when probing resumes, probe
		}
		c.mu.Unlock()
		timer := time.NewTimer(wait)
		var cn *conn
		select {
		case cn = <-w.ch:
			timer.Stop()
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
		c.mu.Lock()
		if !w.gone && cn == nil {
			w.gone = true
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
			c.startProbe(p, time.Now()) // woken to probe, or waited long enough
			c.mu.Unlock()
			return nil, nil
		}
		c.mu.Unlock()
		if !c.usable(cn) {
			cn.nc.Close()
			continue
		}
		return cn, nil
	}
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

func (c *Client) usable(cn *conn) bool {
	return !(c.IdleTimeout > 0 && time.Since(cn.idleAt) > c.IdleTimeout) && cn.rr.br.Buffered() == 0 && netutil.Alive(cn.nc)
}

// probed ends a probe: answered (the application had a worker for it: wake a queued request to probe for
// another) or failed (wake one to try for itself, so a stopped application fails every request at once).
func (c *Client) probed(key string, counted, answered bool) {
	if !counted {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.poolFor(key)
	if p.probes > 0 {
		p.probes--
	}
	p.probeSince = time.Now()
	if !answered || time.Now().After(p.pauseUntil) {
		c.wake(p, nil)
	}
}

// wake hands cn (nil: "dial") to the longest-waiting request still waiting, and reports whether there was one.
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
		p.pauseUntil = now.Add(probePause)
		c.mu.Unlock()
		cn.nc.Close()
		return
	}
	if c.wake(p, cn) {
		c.mu.Unlock()
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
