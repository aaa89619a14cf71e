package tunnel

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestTrackerCounts(t *testing.T) {
	tr := NewTracker()
	type tun struct {
		ctx  context.Context
		done func()
	}
	metas := []Meta{
		{Location: "/a", Upstream: "u", Peer: "10.0.0.1:80"},
		{Location: "/a", Upstream: "u", Peer: "10.0.0.1:80"},
		{Location: "/b", Upstream: "u", Peer: "10.0.0.2:80"},
	}
	var tuns []tun
	for _, m := range metas {
		ctx, done := tr.Track(context.Background(), m)
		tuns = append(tuns, tun{ctx, done})
	}
	checks := []struct {
		open, p1, p2 int
	}{{3, 2, 1}, {2, 1, 1}, {1, 0, 1}, {0, 0, 0}}
	for i, c := range checks {
		if i > 0 {
			tuns[i-1].done()
			tuns[i-1].done() // idempotent
			if tuns[i-1].ctx.Err() == nil {
				t.Errorf("done did not release the tunnel context")
			}
		}
		if got := tr.Open(); got != c.open {
			t.Errorf("step %d: Open = %d, want %d", i, got, c.open)
		}
		if got := tr.OpenFor("10.0.0.1:80"); got != c.p1 {
			t.Errorf("step %d: OpenFor(p1) = %d, want %d", i, got, c.p1)
		}
		if got := tr.OpenFor("10.0.0.2:80"); got != c.p2 {
			t.Errorf("step %d: OpenFor(p2) = %d, want %d", i, got, c.p2)
		}
	}
	if got := tr.OpenFor("never"); got != 0 {
		t.Errorf("OpenFor(unknown) = %d", got)
	}
}

func TestTrackerParentCancel(t *testing.T) {
	tr := NewTracker()
	parent, cancel := context.WithCancel(context.Background())
	ctx, done := tr.Track(parent, Meta{})
	defer done()
	cancel()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("tunnel context not cancelled with its parent")
	}
}

// fakeTunnels starts n goroutines that behave like Run: they end when their
// context is cancelled, after delay.
func fakeTunnels(tr *Tracker, n int, delay time.Duration, m Meta) {
	for range n {
		ctx, done := tr.Track(context.Background(), m)
		go func() {
			<-ctx.Done()
			time.Sleep(delay)
			done()
		}()
	}
}

func TestTrackerShutdown(t *testing.T) {
	tr := NewTracker()
	fakeTunnels(tr, 100, 10*time.Millisecond, Meta{Peer: "p"})
	if got := tr.Open(); got != 100 {
		t.Fatalf("Open = %d, want 100", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := tr.Open(); got != 0 {
		t.Fatalf("Open after Shutdown = %d, want 0", got)
	}
	if got := tr.OpenFor("p"); got != 0 {
		t.Fatalf("OpenFor after Shutdown = %d, want 0", got)
	}
	// A tunnel tracked after Shutdown starts cancelled.
	late, done := tr.Track(context.Background(), Meta{})
	defer done()
	if late.Err() == nil {
		t.Fatal("tunnel tracked after Shutdown is not cancelled")
	}
}

func TestTrackerShutdownBoundedByContext(t *testing.T) {
	tr := NewTracker()
	ctx, done := tr.Track(context.Background(), Meta{}) // never finishes
	defer done()
	sctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if ctx.Err() == nil {
		t.Fatal("Shutdown did not cancel the tunnel")
	}
	if tr.Open() != 1 {
		t.Fatalf("Open = %d, want the stuck tunnel counted", tr.Open())
	}
}

func TestTrackerWait(t *testing.T) {
	tr := NewTracker()
	if err := tr.Wait(context.Background()); err != nil {
		t.Fatalf("Wait with nothing open: %v", err)
	}
	var dones []func()
	for range 5 {
		_, done := tr.Track(context.Background(), Meta{})
		dones = append(dones, done)
	}
	short, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := tr.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with tunnels open = %v, want deadline exceeded", err)
	}
	waited := make(chan error, 3)
	for range 3 {
		go func() { waited <- tr.Wait(context.Background()) }()
	}
	for i, done := range dones {
		select {
		case err := <-waited:
			t.Fatalf("Wait returned (%v) with %d tunnels open", err, len(dones)-i)
		case <-time.After(5 * time.Millisecond):
		}
		done()
	}
	for range 3 {
		select {
		case err := <-waited:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not return after the last tunnel finished")
		}
	}
	// Wait is reusable once tunnels open again.
	_, done := tr.Track(context.Background(), Meta{})
	go func() { time.Sleep(10 * time.Millisecond); done() }()
	if err := tr.Wait(context.Background()); err != nil || tr.Open() != 0 {
		t.Fatalf("second Wait = %v, open %d", err, tr.Open())
	}
}

func TestTrackerCloseMatching(t *testing.T) {
	tr := NewTracker()
	var ctxs []context.Context
	for _, loc := range []string{"/old", "/keep", "/old"} {
		ctx, done := tr.Track(context.Background(), Meta{Location: loc})
		defer done()
		ctxs = append(ctxs, ctx)
	}
	if n := tr.CloseMatching(func(m Meta) bool { return m.Location == "/old" }); n != 2 {
		t.Fatalf("CloseMatching = %d, want 2", n)
	}
	for i, want := range []bool{true, false, true} {
		if got := ctxs[i].Err() != nil; got != want {
			t.Errorf("tunnel %d cancelled = %v, want %v", i, got, want)
		}
	}
	if tr.Open() != 3 {
		t.Fatalf("CloseMatching changed Open to %d before done", tr.Open())
	}
}

func TestTrackerConcurrent(t *testing.T) {
	tr := NewTracker()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				_, done := tr.Track(context.Background(), Meta{Peer: string(rune('a' + g%2))})
				tr.Open()
				tr.OpenFor("a")
				done()
			}
		}()
	}
	wg.Wait()
	if tr.Open() != 0 || tr.OpenFor("a") != 0 || tr.OpenFor("b") != 0 {
		t.Fatalf("counts after balanced Track/done: %d %d %d", tr.Open(), tr.OpenFor("a"), tr.OpenFor("b"))
	}
}

func BenchmarkTrackerTrack(b *testing.B) {
	tr := NewTracker()
	m := Meta{Location: "/ws", Upstream: "u", Peer: "10.0.0.1:80"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, done := tr.Track(context.Background(), m)
			done()
		}
	})
}

// TestTrackContext checks the context Track returns behaves as a cancel context: Done, Err, AfterFunc (run
// once on cancel, or not at all once stopped), cancellation by CloseMatching and by the parent, and values and
// children derived from it.
func TestTrackContext(t *testing.T) {
	type key struct{}
	tr := NewTracker()
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	defer cancelParent()

	a, doneA := tr.Track(parent, Meta{Peer: "a"})
	defer doneA()
	ran := make(chan string, 4)
	context.AfterFunc(a, func() { ran <- "context.AfterFunc" })
	af := a.(interface{ AfterFunc(func()) func() bool })
	af.AfterFunc(func() { ran <- "direct" })
	stop := af.AfterFunc(func() { ran <- "stopped one" })
	if !stop() || stop() {
		t.Fatal("stop: want true once, then false")
	}
	child, cancelChild := context.WithCancel(a)
	defer cancelChild()
	if a.Value(key{}) != "v" || a.Err() != nil {
		t.Fatalf("before cancel: value %v, err %v", a.Value(key{}), a.Err())
	}
	if n := tr.CloseMatching(func(m Meta) bool { return m.Peer == "a" }); n != 1 {
		t.Fatalf("CloseMatching = %d", n)
	}
	<-a.Done()
	<-child.Done()
	if a.Err() != context.Canceled {
		t.Fatalf("err = %v", a.Err())
	}
	got := map[string]bool{<-ran: true, <-ran: true}
	if !got["context.AfterFunc"] || !got["direct"] {
		t.Fatalf("ran %v", got)
	}
	select {
	case s := <-ran:
		t.Fatalf("%s ran", s)
	default:
	}
	af.AfterFunc(func() { ran <- "late" }) // registered after cancel: runs at once
	if s := <-ran; s != "late" {
		t.Fatalf("ran %s", s)
	}

	b, doneB := tr.Track(parent, Meta{Peer: "b"})
	defer doneB()
	cancelParent()
	<-b.Done()
	if b.Err() != context.Canceled {
		t.Fatalf("after the parent's cancel: err = %v", b.Err())
	}
}
