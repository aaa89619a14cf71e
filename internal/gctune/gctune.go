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
	"runtime/debug"
	"runtime/metrics"
	"time"
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

// Run adjusts the GC percent every interval until ctx ends.
func Run(ctx context.Context, interval time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := -1
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := Percent(sample[0].Value.Uint64()); p != current {
				debug.SetGCPercent(p)
				current = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
