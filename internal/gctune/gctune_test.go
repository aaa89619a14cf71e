package gctune

import (
	"context"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

const mib = 1 << 20

func TestHeadroom(t *testing.T) {
	tests := []struct {
		name string
		live uint64
		rate float64 // bytes/s
		want uint64
	}{
		{"empty heap, idle", 0, 0, IdleHeadroom},
		{"small heap, idle: the 4 MiB floor", 8 * mib, 0, 4 * mib},
		{"large heap, idle: a fifth", 100 * mib, 0, 20 * mib},
		{"trickle below the floor", 8 * mib, 8 * mib, 4 * mib}, // 2 MiB in 250 ms
		{"busy: 250 ms of allocation", 8 * mib, 100 * mib, 25 * mib},
		{"busy, large heap: the larger of the two", 200 * mib, 100 * mib, 40 * mib},
		{"very busy: capped", 8 * mib, 1000 * mib, MaxHeadroom},
		{"very busy, huge heap: a fifth beyond the cap", 1000 * mib, 1000 * mib, 200 * mib},
	}
	for _, tt := range tests {
		if got := Headroom(tt.live, tt.rate); got != tt.want {
			t.Errorf("%s: Headroom(%d MiB, %.0f MiB/s) = %.2f MiB, want %.2f MiB", tt.name, tt.live/mib, tt.rate/mib, float64(got)/mib, float64(tt.want)/mib)
		}
	}
}

func TestPercent(t *testing.T) {
	tests := []struct {
		scan, headroom uint64
		want           int
	}{
		{0, 4 * mib, 100},       // nothing known yet: Go's default
		{1 * mib, 4 * mib, 100}, // Go's minimum heap (4 MiB at 100 %) scales with the percent
		{1 * mib, 64 * mib, 1600},
		{4 * mib, 4 * mib, 100},
		{20 * mib, 4 * mib, 20},
		{10 * mib, 64 * mib, 640},
		{1 << 40, 4 * mib, 1}, // never 0 (collect continuously) or negative (off)
	}
	for _, tt := range tests {
		if got := Percent(tt.scan, tt.headroom); got != tt.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", tt.scan, tt.headroom, got, tt.want)
		}
	}
}

// TestPolicy feeds the policy samples 100 ms apart and checks the headroom it chooses and when it returns
// memory to the OS.
func TestPolicy(t *testing.T) {
	type step struct {
		alloc    uint64 // bytes allocated since the previous sample
		retained uint64 // heap held from the OS
		headroom uint64 // want
		free     bool   // want
	}
	busy := func(alloc uint64) step { return step{alloc, 60 * mib, alloc * 10 / 4, false} } // 100 ms of alloc → 250 ms
	// settling is the stopped samples before Settle has passed: nothing is returned yet.
	settling := func(retained, headroom uint64) []step {
		var ss []step
		for at := time.Duration(0); at < Settle; at += Tick {
			ss = append(ss, step{0, retained, headroom, false})
		}
		return ss
	}
	join := func(parts ...[]step) []step { return slices.Concat(parts...) }
	tests := []struct {
		name  string
		live  uint64 // 10 MiB unless set: idle headroom 4 MiB
		steps []step
	}{
		{"idle stays small, nothing to free", 0, []step{
			{0, 12 * mib, 4 * mib, false},
			{100 << 10, 12 * mib, 4 * mib, false},
			{100 << 10, 12 * mib, 4 * mib, false},
		}},
		{"busy grows the headroom with the rate", 0, []step{
			{0, 12 * mib, 4 * mib, false},
			busy(8 * mib), busy(12 * mib), busy(16 * mib),
		}},
		{"very busy is capped", 0, []step{
			{0, 12 * mib, 4 * mib, false},
			{100 * mib, 80 * mib, MaxHeadroom, false},
		}},
		{"a dip halves the headroom, it does not drop it", 0, []step{
			{0, 12 * mib, 4 * mib, false},
			busy(16 * mib),
			{4 * mib, 60 * mib, 20 * mib, false}, // 40 MiB/s now; 160 MiB/s halved is 80 MiB/s → 20 MiB
			busy(16 * mib),
		}},
		{"busy then quiet: idle headroom, and one forced collection once quiet for Settle", 0, join(
			[]step{{0, 12 * mib, 4 * mib, false}, busy(16 * mib), busy(16 * mib)},
			settling(60*mib, 4*mib),
			[]step{
				{0, 60 * mib, 4 * mib, true},
				{0, 11 * mib, 4 * mib, false},
				{0, 11 * mib, 4 * mib, false},
			})},
		{"busy then quiet with a small heap: nothing to free", 0, []step{
			{0, 12 * mib, 4 * mib, false},
			busy(16 * mib),
			{0, 13 * mib, 4 * mib, false}, // under 10 live + 4 slack
			{0, 13 * mib, 4 * mib, false},
		}},
		{"a large heap growing slowly, then quiet: the garbage beyond a tenth of live goes back", 80 * mib, join(
			[]step{
				{0, 82 * mib, 16 * mib, false},
				{2 * mib, 90 * mib, 16 * mib, false}, // 20 MiB/s: active, under the idle headroom
			},
			settling(89*mib, 16*mib),
			[]step{{0, 89 * mib, 16 * mib, true}}, // quiet, 9 MiB over live
		)},
		{"a large heap growing slowly, then quiet: little garbage stays", 80 * mib, join(
			[]step{
				{0, 82 * mib, 16 * mib, false},
				{2 * mib, 87 * mib, 16 * mib, false},
			},
			settling(87*mib, 16*mib),
			[]step{{0, 87 * mib, 16 * mib, false}}, // 7 MiB over live: under a tenth
		)},
		{"a trickle under the quiet rate never forces a collection", 0, []step{
			{0, 60 * mib, 4 * mib, false},
			{300 << 10, 60 * mib, 4 * mib, false}, // 3 MiB/s
			{300 << 10, 60 * mib, 4 * mib, false},
		}},
		{"a burst, then moderate traffic: no forced collection until allocation stops", 80 * mib, []step{
			{0, 82 * mib, 16 * mib, false},
			{8 * mib, 100 * mib, 20 * mib, false},   // 80 MiB/s: connections opening
			{100 << 10, 100 * mib, 16 * mib, false}, // 1 MiB/s: a WebSocket echo, quiet but not stopped
			{300 << 10, 100 * mib, 16 * mib, false}, // 3 MiB/s
			{100 << 10, 100 * mib, 16 * mib, false},
			{0, 100 * mib, 16 * mib, false}, // stopped, 400 ms after the burst
			{0, 100 * mib, 16 * mib, false}, // 500 ms
			{0, 100 * mib, 16 * mib, true},  // past Settle
			{0, 100 * mib, 16 * mib, false}, // once
		}},
		{"busy, moderate, then quiet: the collection waits for quiet", 0, []step{
			{0, 12 * mib, 4 * mib, false},
			busy(16 * mib),
			{1 * mib, 60 * mib, 20 * mib, false}, // halving
			{1 * mib, 60 * mib, 10 * mib, false},
			{1 * mib, 60 * mib, 5 * mib, false},
			{1 * mib, 60 * mib, 4 * mib, false}, // no longer busy, but not quiet either (10 MiB/s)
			{0, 60 * mib, 4 * mib, false},
			{0, 60 * mib, 4 * mib, false},
			{0, 60 * mib, 4 * mib, false},
			{0, 60 * mib, 4 * mib, false},
			{0, 60 * mib, 4 * mib, false},
			{0, 60 * mib, 4 * mib, true},
		}},
		{"after a burst, a small periodic allocation between the rates does not put the collection off", 0, join(
			[]step{{0, 12 * mib, 4 * mib, false}, busy(16 * mib)},
			[]step{
				{0, 60 * mib, 4 * mib, false},
				{100 << 10, 60 * mib, 4 * mib, false}, // 1 MiB/s: a TLS health check, say
				{0, 60 * mib, 4 * mib, false},
				{100 << 10, 60 * mib, 4 * mib, false},
				{0, 60 * mib, 4 * mib, false},
				{100 << 10, 60 * mib, 4 * mib, false}, // past Settle, but not stopped
				{0, 60 * mib, 4 * mib, true},
			},
		)},
		{"bursts closer than Settle: one forced collection, after the last", 0, join(
			[]step{{0, 12 * mib, 4 * mib, false}, busy(16 * mib)},
			settling(60*mib, 4*mib)[:3], // a pause shorter than Settle
			[]step{busy(16 * mib)},
			settling(60*mib, 4*mib)[:4],
			[]step{busy(16 * mib)},
			settling(60*mib, 4*mib),
			[]step{
				{0, 60 * mib, 4 * mib, true},
				{0, 60 * mib, 4 * mib, false}, // done once
			},
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := tt.live
			if live == 0 {
				live = 10 * mib
			}
			var p policy
			at := time.Unix(1000, 0)
			var allocs uint64
			for i, st := range tt.steps {
				allocs += st.alloc
				at = at.Add(Tick)
				percent, free := p.step(Sample{At: at, Allocs: allocs, Live: live, Scan: live, Retained: st.retained})
				if want := Percent(live, st.headroom); percent != want || free != st.free {
					t.Errorf("step %d: percent %d, free %v; want %d (%.1f MiB headroom), free %v", i, percent, free, want, float64(st.headroom)/mib, st.free)
				}
			}
		})
	}
}

// heldHeap is the heap memory the process holds from the OS.
func heldHeap() Sample { return newReader().read(time.Now()) }

// TestBusyThenIdleReturnsMemory: while allocation is fast the tuner lets the heap grow past the idle goal; when
// it stops, the heap the process holds from the OS comes back down to about the live heap (with the runtime's
// own pacing nothing would collect the garbage of a heap that no longer allocates).
func TestBusyThenIdleReturnsMemory(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	debug.FreeOSMemory()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	Run(ctx)

	peak := churn(1500 * time.Millisecond)
	busyPercent := debug.SetGCPercent(-1)
	debug.SetGCPercent(busyPercent)
	if peak < 32*mib {
		t.Fatalf("the heap held at most %d MiB while busy; want well over 16 MiB live + the idle headroom", peak/mib)
	}

	// idle: no allocation; the tuner's next quiet samples collect and return the memory
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if s := heldHeap(); s.Retained < s.Live+freeSlack {
			t.Logf("busy: %d MiB held (GOGC %d); idle: %d MiB held, %d MiB live", peak/mib, busyPercent, s.Retained/mib, s.Live/mib)
			return
		}
	}
	s := heldHeap()
	t.Fatalf("5 s after allocation stopped the heap holds %d MiB (%d MiB live); want it back under live + %d MiB", s.Retained/mib, s.Live/mib, freeSlack/mib)
}

// churn keeps 16 MiB live in 1 KiB pieces and replaces them at about 200 MiB/s (a busy proxy's rate) for d,
// and returns the most heap held meanwhile.
func churn(d time.Duration) (peak uint64) {
	const rate = 200 * mib
	ring := make([][]byte, 16<<10)
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		for j := range 1 << 10 { // 1 MiB
			ring[(i<<10+j)%len(ring)] = make([]byte, 1<<10)
		}
		peak = max(peak, heldHeap().Retained)
		if ahead := time.Duration(i+1) * time.Second / (rate / mib); ahead > time.Since(start) {
			time.Sleep(ahead - time.Since(start))
		}
	}
	return peak
}

// TestIdleSleeps: once allocation stops the sampler stops waking (it used to tick ten times a second for ever);
// allocation brings a collection, which wakes it, and it sleeps again when allocation stops.
func TestIdleSleeps(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tu := start(ctx)

	// quietSecond waits (up to 20 s) for a second in which the sampler took at most one sample.
	quietSecond := func(when string) {
		t.Helper()
		var last int64
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			n := tu.ticks.Load()
			time.Sleep(time.Second)
			if last = tu.ticks.Load() - n; last <= 1 {
				return
			}
		}
		tu.mu.Lock()
		p := tu.p
		tu.mu.Unlock()
		t.Fatalf("%s: the sampler still took %d samples a second after 20 s without allocation (rate %.0f B/s, stopped %v, active %v)", when, last, p.rate, p.stopped, p.active)
	}
	quietSecond("idle")

	before := tu.ticks.Load()
	churn(500 * time.Millisecond)
	if n := tu.ticks.Load() - before; n < 2 {
		t.Fatalf("the sampler took %d samples during 500 ms of allocation at 200 MiB/s; want it awake", n)
	}
	quietSecond("idle again")
}
