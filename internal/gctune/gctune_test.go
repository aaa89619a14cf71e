package gctune

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	tests := []struct {
		live uint64
		want int
	}{
		{0, 100},
		{1 << 20, 100}, // tiny heap: Go's default
		{4 << 20, 100}, // 4 MiB headroom = 100 %
		{8 << 20, 50},  // 4 MiB headroom = 50 %
		{16 << 20, 25},
		{20 << 20, 20},  // 20 % from here on
		{100 << 20, 20}, // 9,000 idle tunnels
		{1 << 30, 20},
	}
	for _, tt := range tests {
		if got := Percent(tt.live); got != tt.want {
			t.Errorf("Percent(%d) = %d, want %d", tt.live, got, tt.want)
		}
	}
}

// TestRunFollowsTheLiveHeap: after collections with a large live heap the GC percent is the tuner's, and
// cancelling stops it.
func TestRunFollowsTheLiveHeap(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	Run(ctx)
	live := make([][]byte, 0, 64)
	for range 64 {
		live = append(live, make([]byte, 1<<20)) // 64 MiB live: 20 %
	}
	want := Percent(64 << 20)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer goroutine runs the tuner
		got := debug.SetGCPercent(-1)
		debug.SetGCPercent(got)
		if got == want {
			runtime.KeepAlive(live)
			return
		}
	}
	t.Fatalf("GC percent never became %d with 64 MiB live", want)
}
