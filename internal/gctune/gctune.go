// Package gctune sets the garbage collector's target for a proxy: small headroom while idle, enough headroom
// while busy that collections stay a few per second, and memory handed back as soon as traffic stops.
//
// Go's default (GOGC=100) lets the heap grow to twice what is live before collecting. For a proxy holding many
// idle connections the live heap is mostly those connections, and the doubling shows up as resident memory per
// connection; so while idle the headroom is a fifth of the live heap, at least 4 MiB. Under load a proxy
// allocates quickly (several KB per proxied request) and a few MiB of headroom would mean dozens of collections
// a second; so the headroom also covers what is allocated in 250 ms (at most 64 MiB): at most about four
// collections a second, whatever the request rate. When allocation slows (under 4 MiB/s), the headroom shrinks
// at once; when it has stopped (under 512 KiB/s), Settle after the last busy moment, one forced collection
// returns what the activity left to the OS (debug.FreeOSMemory), unless that is under 4 MiB or a tenth of the
// live heap: an idle proxy holds little more than its live heap. The wait lets connections that just went quiet
// let go of what they held while active (a WebSocket tunnel parks after 250 ms): collected any earlier, their
// buffers would still be live, and would become garbage that no collection comes for while the process stays
// idle. Moderate traffic (a WebSocket echo allocates a few MiB/s) never forces one: a forced
// collection of a large live heap (many idle tunnels) stalls a GOMAXPROCS=1 process for 100 ms and more.
// The tuner samples runtime/metrics every 100 ms and after each collection; debug.SetGCPercent does not stop
// the world (it takes the heap lock), so retuning often is cheap. Once allocation has stopped and nothing is left
// to return, the ticker sleeps until the next collection (which any new allocation brings within the idle
// headroom), so an idle process does not wake ten times a second. Setting GOGC in the environment turns the
// tuner off.
package gctune

import (
	"context"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// IdlePercent is the idle headroom in percent of the live heap, for large heaps.
	IdlePercent = 20
	// IdleHeadroom is the least headroom in bytes (Go's default minimum heap).
	IdleHeadroom = 4 << 20
	// Window is how much allocation the headroom covers: a collection at most every Window under load.
	Window = 250 * time.Millisecond
	// MaxHeadroom caps the headroom that the allocation rate asks for.
	MaxHeadroom = 64 << 20
	// Tick is how often the tuner samples the heap.
	Tick = 100 * time.Millisecond
	// Settle is how long after the last busy sample memory is returned: longer than a WebSocket tunnel takes to
	// park (250 ms), so that a burst of new tunnels has let go of its buffers.
	Settle = 500 * time.Millisecond
	// QuietRate is the allocation rate (bytes/s) under which the process counts as quiet.
	QuietRate = 4 << 20
	// StoppedRate is the allocation rate (bytes/s) under which activity has stopped and memory may be returned.
	StoppedRate = 512 << 10
	// freeSlack is how far the heap held from the OS must exceed the live heap (or a tenth of it, if more) before
	// it is worth a forced collection.
	freeSlack = 4 << 20
)

// Headroom is the GC headroom in bytes for a live heap of live bytes allocating rate bytes per second: the idle
// headroom (a fifth of live, at least IdleHeadroom), or what is allocated in Window if that is more (at most
// MaxHeadroom).
func Headroom(live uint64, rate float64) uint64 {
	idle := max(live*IdlePercent/100, IdleHeadroom)
	busy := uint64(min(rate*Window.Seconds(), MaxHeadroom))
	return max(idle, busy)
}

// Percent is the GOGC value that gives headroom bytes over a heap whose collection is paced on scan bytes
// (live heap + goroutine stacks + globals: the runtime's goal is live + scan*GOGC/100). The runtime's minimum
// heap (4 MiB at GOGC=100) scales with GOGC too, so scan counts as at least that: a small heap's goal is then
// about the headroom, not a multiple of it.
func Percent(scan, headroom uint64) int {
	return int(min(max(headroom*100/max(scan, minHeap), 1), math.MaxInt32))
}

// minHeap is the runtime's minimum heap goal at GOGC=100.
const minHeap = 4 << 20

// Sample is what the tuner reads from the runtime each tick.
type Sample struct {
	At       time.Time
	Allocs   uint64 // bytes allocated since the start (cumulative)
	Live     uint64 // live heap at the end of the last collection
	Scan     uint64 // Live plus goroutine stacks and globals
	Retained uint64 // heap memory held from the OS: objects (live or not yet swept), free and unused spans
}

// policy is the tuner's memory between samples.
type policy struct {
	last    Sample
	rate    float64   // bytes/s, follows a rise at once and halves per sample on a dip
	active  bool      // allocation since memory was last returned: return it once stopped, Settle after busyAt
	stopped bool      // the last sample allocated under StoppedRate
	busyAt  time.Time // the last sample that allocated over QuietRate
}

// step takes a new sample and returns the GOGC value to use and whether to return memory to the OS now: after
// activity, on the first sample under StoppedRate more than Settle after the last busy one (over QuietRate), when
// the heap holds more than the larger of freeSlack and a tenth of the live heap beyond the live heap (garbage
// that no quiet allocation would collect soon). Allocation between the two rates (a health check, a trickle of
// messages) neither counts as activity nor restarts the wait. Two forced collections are at least Settle apart,
// however traffic comes in bursts.
func (p *policy) step(s Sample) (percent int, free bool) {
	quiet, stopped := false, false
	if !p.last.At.IsZero() && s.At.After(p.last.At) && s.Allocs >= p.last.Allocs {
		now := float64(s.Allocs-p.last.Allocs) / s.At.Sub(p.last.At).Seconds()
		quiet, stopped = now <= QuietRate, now <= StoppedRate
		if quiet {
			p.rate = now // traffic stopped: shrink at once
		} else {
			p.rate = max(now, p.rate/2)
			p.active, p.busyAt = true, s.At
		}
	}
	p.last = s
	p.stopped = stopped
	if p.active && stopped && s.At.Sub(p.busyAt) > Settle {
		p.active = false
		free = s.Retained > s.Live+max(freeSlack, s.Live/10)
	}
	return p.percent(s), free
}

// idle reports whether sampling may stop until the next collection: allocation has stopped and no memory waits
// to be returned. Any allocation brings a collection within the idle headroom, and that wakes the sampler.
func (p *policy) idle() bool { return p.stopped && !p.active }

// percent is the GOGC value for the heap of s at the current allocation rate.
func (p *policy) percent(s Sample) int { return Percent(s.Scan, Headroom(s.Live, p.rate)) }

// Enabled reports whether the tuner should run: not when the user set GOGC.
func Enabled() bool {
	_, set := os.LookupEnv("GOGC")
	return !set
}

// Run starts the tuner: it samples the heap every Tick on its own goroutine, and after every collection (when
// the live heap is known anew, so a heap that grows quickly never runs on a stale, too generous percent), and
// adjusts the GC percent until ctx ends. While the process does not allocate, the sampling goroutine sleeps
// until a collection wakes it.
func Run(ctx context.Context) { start(ctx) }

func start(ctx context.Context) *tuner {
	t := &tuner{r: newReader(), current: -1, wake: make(chan struct{}, 1)}
	t.tick(time.Now())
	afterGC(ctx, t.retune)
	go t.loop(ctx)
	return t
}

// tuner applies the policy; the ticker and the finalizer goroutine share it.
type tuner struct {
	mu      sync.Mutex
	r       *reader
	p       policy
	current int

	wake  chan struct{} // a collection happened: wakes a sleeping loop (capacity 1, never blocks the sender)
	ticks atomic.Int64  // samples taken by loop, so tests can see it sleep
}

// loop samples every Tick, and sleeps while the policy is idle until a collection wakes it.
func (t *tuner) loop(ctx context.Context) {
	timer := time.NewTimer(Tick)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-timer.C:
			if t.tick(now) {
				select { // drop a wake-up from a collection while awake
				case <-t.wake:
				default:
				}
				select {
				case <-ctx.Done():
					return
				case <-t.wake:
				}
				// The sample just after waking measures the rate over the whole sleep; it only sets the
				// baseline, the next one (Tick later) sees the rate of what woke us.
				t.tick(time.Now())
			}
			timer.Reset(Tick)
		}
	}
}

// tick takes a sample for the policy, sets its percent and returns memory when it says so. It reports whether
// the policy is idle.
func (t *tuner) tick(now time.Time) (idle bool) {
	t.ticks.Add(1)
	t.mu.Lock()
	percent, free := t.p.step(t.r.read(now))
	t.set(percent)
	idle = t.p.idle()
	t.mu.Unlock()
	if free {
		debug.FreeOSMemory() // collects with the idle goal just set, then returns the free pages
	}
	return idle
}

// retune recomputes the percent for the live heap a collection just measured, at the current rate.
func (t *tuner) retune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.set(t.p.percent(t.r.read(time.Now())))
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *tuner) set(percent int) {
	if percent != t.current {
		debug.SetGCPercent(percent)
		t.current = percent
	}
}

// afterGC calls f on the finalizer goroutine after each garbage collection until ctx ends: an unreachable
// sentinel's finalizer runs once the collection that found it is done, and re-arms a new sentinel.
func afterGC(ctx context.Context, f func()) {
	type sentinel struct{ _ [16]byte } // not zero-sized: finalizers need a real allocation
	var arm func()
	arm = func() {
		runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
			if ctx.Err() != nil {
				return
			}
			f()
			arm()
		})
	}
	arm()
}

// reader reads a Sample from runtime/metrics without allocating.
type reader struct{ samples []metrics.Sample }

const (
	mAllocs = iota
	mLive
	mStacks
	mGlobals
	mObjects
	mFree
	mUnused
)

func newReader() *reader {
	names := []string{
		mAllocs:  "/gc/heap/allocs:bytes",
		mLive:    "/gc/heap/live:bytes",
		mStacks:  "/gc/scan/stack:bytes",
		mGlobals: "/gc/scan/globals:bytes",
		mObjects: "/memory/classes/heap/objects:bytes",
		mFree:    "/memory/classes/heap/free:bytes",
		mUnused:  "/memory/classes/heap/unused:bytes",
	}
	r := &reader{samples: make([]metrics.Sample, len(names))}
	for i, n := range names {
		r.samples[i].Name = n
	}
	return r
}

func (r *reader) read(now time.Time) Sample {
	metrics.Read(r.samples)
	v := func(i int) uint64 {
		if r.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return r.samples[i].Value.Uint64()
	}
	return Sample{
		At:       now,
		Allocs:   v(mAllocs),
		Live:     v(mLive),
		Scan:     v(mLive) + v(mStacks) + v(mGlobals),
		Retained: v(mObjects) + v(mFree) + v(mUnused),
	}
}
