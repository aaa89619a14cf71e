// Package gctune sets the garbage collector's target for a proxy: a small, steady headroom over the live heap.
//
// Go's default (GOGC=100) lets the heap grow to twice what is live before collecting. For a proxy holding many
// idle connections the live heap is mostly those connections, and the doubling shows up as resident memory per
// connection. The tuner keeps the headroom at a fifth of the live heap, but never below 4 MiB (Go's own minimum
// heap), so a proxy with little live data (plain request traffic) collects no more often than with the default.
// Setting GOGC in the environment turns the tuner off.
package gctune

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

const (
	// MinPercent is the headroom, in percent of the live heap, for large heaps.
	MinPercent = 20
	// MinHeadroom is the least headroom in bytes (Go's default minimum heap).
	MinHeadroom = 4 << 20
	// MaxPercent bounds the headroom of tiny heaps (Go's default).
	MaxPercent = 100
)

// Percent is the GOGC value the tuner chooses for a live heap of live bytes.
func Percent(live uint64) int {
	if live == 0 {
		return MaxPercent
	}
	p := int(uint64(MinHeadroom) * 100 / live)
	return min(max(p, MinPercent), MaxPercent)
}

// Enabled reports whether the tuner should run: not when the user set GOGC.
func Enabled() bool {
	_, set := os.LookupEnv("GOGC")
	return !set
}

// Run adjusts the GC percent after every collection (when the live heap is known anew) until ctx ends, so a
// heap that grows quickly (thousands of connections opening) never runs on a stale, too generous target.
func Run(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := -1
	tune := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		// tighten at once (a growing heap), loosen only by steps: each change stops the world briefly
		if p := Percent(sample[0].Value.Uint64()); p < current || p >= current+5 || current < 0 {
			debug.SetGCPercent(p)
			current = p
		}
	}
	tune()
	afterGC(ctx, tune)
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
