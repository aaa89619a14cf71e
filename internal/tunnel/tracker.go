package tunnel

import (
	"context"
	"sync"
	"sync/atomic"
)

// trackerShards spreads tunnel registration over independent locks.
const trackerShards = 32

// Meta labels a tracked tunnel for metrics and least_conn.
type Meta struct {
	Location string
	Upstream string // upstream group name
	Peer     string // upstream peer address
}

// Tracker counts open tunnels and lets a shutdown or reload end them. Safe for
// concurrent use; registering a tunnel takes one of several sharded locks and
// a few atomics, never a tracker-wide lock. The zero value is not usable; call
// NewTracker.
type Tracker struct {
	open   atomic.Int64
	nextID atomic.Uint64
	closed atomic.Bool // Shutdown was called: new tunnels start cancelled
	peers  sync.Map    // peer string -> *atomic.Int64; entries are kept at zero
	shards [trackerShards]trackerShard

	zeroMu sync.Mutex
	zeroCh chan struct{} // closed when open drops to zero; nil if nobody waits
}

type trackerShard struct {
	mu sync.Mutex
	m  map[uint64]*tracked
	_  [48]byte // keep shards on separate cache lines
}

// tracked is one tracked tunnel and the context Track returns for it. Its AfterFunc lets a tunnel register
// its abort directly (see newTunnel), so an idle tunnel holds no cancel context, Done channel or children map.
type tracked struct {
	context.Context // the parent: Value and Deadline
	meta            Meta
	t               *Tracker
	shard           *trackerShard
	id              uint64
	peer            *atomic.Int64
	finished        atomic.Bool

	mu    sync.Mutex
	err   error
	ch    chan struct{} // made by the first Done
	after []*afterFunc
}

type afterFunc struct{ f func() }

func (e *tracked) Done() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ch == nil {
		e.ch = make(chan struct{})
		if e.err != nil {
			close(e.ch)
		}
	}
	return e.ch
}

func (e *tracked) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// AfterFunc runs f on its own goroutine once the context is cancelled (at once if it already is), as
// context.AfterFunc does; stop reports whether it kept f from running.
func (e *tracked) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	e.mu.Lock()
	if e.err != nil {
		e.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	e.after = append(e.after, a)
	e.mu.Unlock()
	return func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for i, x := range e.after {
			if x == a {
				e.after = append(e.after[:i], e.after[i+1:]...)
				return true
			}
		}
		return false
	}
}

// cancel cancels the context: Done closes, registered functions start. Idempotent.
func (e *tracked) cancel() {
	e.mu.Lock()
	if e.err != nil {
		e.mu.Unlock()
		return
	}
	e.err = context.Canceled
	if e.ch != nil {
		close(e.ch)
	}
	after := e.after
	e.after = nil
	e.mu.Unlock()
	for _, a := range after {
		go a.f()
	}
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	t := &Tracker{}
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]*tracked)
	}
	return t
}

// Track registers a tunnel. The returned context is derived from parent and is
// cancelled by Shutdown or CloseMatching (or at once if Shutdown already ran);
// pass it to Run and call done when Run returns. done is idempotent.
func (t *Tracker) Track(parent context.Context, m Meta) (ctx context.Context, done func()) {
	id := t.nextID.Add(1)
	e := &tracked{Context: parent, meta: m, t: t, shard: &t.shards[id%trackerShards], id: id}
	if parent.Done() != nil {
		stop := context.AfterFunc(parent, e.cancel)
		e.after = append(e.after, &afterFunc{f: func() { stop() }}) // cancelled first: forget the parent
	}
	t.open.Add(1)
	e.peer = t.peerCounter(m.Peer)
	e.peer.Add(1)

	sh := e.shard
	sh.mu.Lock()
	if t.closed.Load() {
		e.cancel()
	}
	sh.m[id] = e
	sh.mu.Unlock()
	return e, e.done
}

func (e *tracked) done() {
	if e.finished.Swap(true) {
		return
	}
	e.shard.mu.Lock()
	delete(e.shard.m, e.id)
	e.shard.mu.Unlock()
	e.cancel()
	e.peer.Add(-1)
	if e.t.open.Add(-1) == 0 {
		e.t.signalZero()
	}
}

func (t *Tracker) peerCounter(peer string) *atomic.Int64 {
	if v, ok := t.peers.Load(peer); ok {
		return v.(*atomic.Int64)
	}
	v, _ := t.peers.LoadOrStore(peer, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// Open reports the number of tunnels open now.
func (t *Tracker) Open() int { return int(t.open.Load()) }

// OpenFor reports the number of open tunnels to one upstream peer (Meta.Peer).
func (t *Tracker) OpenFor(peer string) int {
	if v, ok := t.peers.Load(peer); ok {
		return int(v.(*atomic.Int64).Load())
	}
	return 0
}

// CloseMatching cancels every open tunnel whose Meta satisfies match (for a
// reload that removed its location or peer) and returns how many it
// cancelled. It does not wait for them to finish.
func (t *Tracker) CloseMatching(match func(Meta) bool) int {
	var cancels []func()
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, e := range sh.m {
			if match(e.meta) {
				cancels = append(cancels, e.cancel)
			}
		}
		sh.mu.Unlock()
	}
	for _, c := range cancels {
		c()
	}
	return len(cancels)
}

// Shutdown cancels every open tunnel, and every tunnel tracked afterwards, and
// waits for them to finish (their done called) or for ctx to end, in which
// case it returns ctx's error.
func (t *Tracker) Shutdown(ctx context.Context) error {
	t.closed.Store(true)
	t.CloseMatching(func(Meta) bool { return true })
	return t.Wait(ctx)
}

// Wait blocks until no tunnel is open or ctx ends (graceful drain), returning
// ctx's error in the latter case.
func (t *Tracker) Wait(ctx context.Context) error {
	t.zeroMu.Lock()
	if t.open.Load() == 0 {
		t.zeroMu.Unlock()
		return nil
	}
	if t.zeroCh == nil {
		t.zeroCh = make(chan struct{})
	}
	ch := t.zeroCh
	t.zeroMu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *Tracker) signalZero() {
	t.zeroMu.Lock()
	if t.zeroCh != nil && t.open.Load() == 0 {
		close(t.zeroCh)
		t.zeroCh = nil
	}
	t.zeroMu.Unlock()
}

// Groups reports the open tunnels counted by their Meta (for metrics and the status page).
func (t *Tracker) Groups() map[Meta]int {
	out := map[Meta]int{}
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, e := range sh.m {
			out[e.meta]++
		}
		sh.mu.Unlock()
	}
	return out
}

// Opened reports how many tunnels were tracked since the Tracker was made.
func (t *Tracker) Opened() uint64 { return t.nextID.Load() }
