package tunnel

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"
)

// idleTunnelBytes opens n tunnels over loopback TCP, moves one byte each way
// through every one (so buffers were used), lets them go idle, and returns the
// heap plus goroutine-stack bytes per tunnel that Run added. The sockets
// themselves are created before the first measurement and are not counted;
// the goroutine calling Run is (in the proxy it is the request goroutine that
// exists anyway, about 8 KiB of stack of the figure).
func idleTunnelBytes(tb testing.TB, n int, opt Options) float64 {
	tb.Helper()
	users := make([]*fixture, 0, n)
	proxySide := make([][2]net.Conn, 0, n) // client, upstream
	for range n {
		u, c := tcpPair(tb)
		up, b := tcpPair(tb)
		users = append(users, &fixture{user: u, backend: b, stats: make(chan Stats, 1)})
		proxySide = append(proxySide, [2]net.Conn{c, up})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, f := range users {
		c, up := proxySide[i][0], proxySide[i][1]
		if opt.Poller != nil {
			Start(ctx, c, up, nil, nil, opt, func(st Stats) { f.stats <- st })
			continue
		}
		go func() { f.stats <- Run(ctx, c, up, nil, nil, opt) }()
	}
	one := make([]byte, 1)
	for _, f := range users {
		if _, err := f.user.Write([]byte("a")); err != nil {
			tb.Fatal(err)
		}
		if _, err := f.backend.Read(one); err != nil {
			tb.Fatal(err)
		}
		if _, err := f.backend.Write([]byte("b")); err != nil {
			tb.Fatal(err)
		}
		if _, err := f.user.Read(one); err != nil {
			tb.Fatal(err)
		}
	}
	settle := 100 * time.Millisecond // every direction blocked in its read
	if opt.Poller != nil {
		settle = 2*lingerTime + 100*time.Millisecond // every direction parked in the poller
	}
	time.Sleep(settle)
	runtime.GC()
	runtime.GC() // twice: pooled buffers survive one GC in the victim cache
	runtime.ReadMemStats(&after)
	tb.Logf("heap %+d B, stacks %+d B, objects %+d per tunnel", (int64(after.HeapAlloc)-int64(before.HeapAlloc))/int64(n), (int64(after.StackInuse)-int64(before.StackInuse))/int64(n), (int64(after.HeapObjects)-int64(before.HeapObjects))/int64(n))
	grown := float64(after.HeapAlloc+after.StackInuse) - float64(before.HeapAlloc+before.StackInuse)

	cancel()
	for _, f := range users {
		if st := f.wait(tb); st.Reason != ReasonShutdown {
			tb.Fatalf("reason = %q", st.Reason)
		}
	}
	return grown / float64(n)
}

func TestIdleTunnelMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens hundreds of sockets")
	}
	const n = 300
	poller := NewPoller() // nil where the platform has none: the case then measures goroutines
	defer poller.Close()
	tests := []struct {
		name     string
		opt      Options
		min, max float64 // bytes per idle tunnel
	}{
		// With a pool an idle tunnel holds no copy buffer.
		{"shared pool", Options{Pool: NewBufferPool(0), IdleTimeout: time.Minute}, 0, DefaultBufferSize},
		// Parked in a poller (Start): no goroutine and no buffer, only the tunnel's own state (about 1.2 KiB;
		// stacks the previous case freed can make the figure negative).
		{"shared pool, poller", Options{Pool: NewBufferPool(0), Poller: poller, IdleTimeout: time.Minute}, -16 << 10, 4 << 10},
		// Without one each direction keeps its 16 KiB buffer: this case shows
		// the measurement sees buffers.
		{"no pool", Options{IdleTimeout: time.Minute}, 2 * DefaultBufferSize, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opt.Poller == nil && tt.max < DefaultBufferSize {
				t.Skip("no poller on this platform")
			}
			per := idleTunnelBytes(t, n, tt.opt)
			t.Logf("%.0f bytes per idle tunnel (heap + goroutine stacks, including the caller's goroutine)", per)
			if per < tt.min || per > tt.max {
				t.Fatalf("%.0f bytes per idle tunnel, want between %.0f and %.0f", per, tt.min, tt.max)
			}
		})
	}
}

func BenchmarkIdleTunnelMemory(b *testing.B) {
	pool := NewBufferPool(0)
	for b.Loop() {
		b.ReportMetric(idleTunnelBytes(b, 200, Options{Pool: pool, IdleTimeout: time.Minute}), "B/idle-tunnel")
	}
}
