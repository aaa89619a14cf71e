package proxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// unevenReader gives data in reads of random sizes, pausing now and then, as an upstream does.
type unevenReader struct {
	data []byte
	rng  *rand.Rand
	err  error // returned instead of io.EOF at the end
}

func (r *unevenReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	if r.rng.IntN(50) == 0 {
		time.Sleep(time.Millisecond)
	}
	n := min(len(p), 1+r.rng.IntN(20000), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// slowWriter is a client that takes its bytes in bursts.
type slowWriter struct {
	bytes.Buffer
	rng     *rand.Rand
	h       http.Header
	flushes int
}

func (w *slowWriter) Header() http.Header { return w.h }
func (w *slowWriter) WriteHeader(int)     {}
func (w *slowWriter) Flush()              { w.flushes++ }
func (w *slowWriter) Write(p []byte) (int, error) {
	if w.rng.IntN(20) == 0 {
		time.Sleep(time.Millisecond)
	}
	return w.Buffer.Write(p)
}

// Stream through a spool delivers every byte once and in order, whatever the memory and file limits (a file
// that fills up, starts over, or cannot be made), and reports a failed body after what was read.
func TestSpoolOrder(t *testing.T) {
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	bufs := &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		sp       Spool
		fileErrs bool
		bodyErr  error
	}{
		{"memory only", Spool{Mem: 8 << 10}, false, nil},
		{"small file", Spool{Mem: 4 << 10, MaxFile: 100 << 10, Dir: dir}, false, nil},
		{"large file", Spool{Mem: 32 << 10, MaxFile: 1 << 30, Dir: dir}, false, nil},
		{"no directory", Spool{Mem: 16 << 10, MaxFile: 1 << 30, Dir: filepath.Join(dir, "missing")}, true, nil},
		{"body fails", Spool{Mem: 4 << 10, MaxFile: 1 << 20, Dir: dir}, false, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			sp := tc.sp
			sp.Bufs = bufs
			var fileErrs int
			sp.FileError = func(error) { fileErrs++ }
			w := &slowWriter{rng: rand.New(rand.NewPCG(3, 4)), h: http.Header{}}
			buf := make([]byte, 32<<10)
			n, err := Stream(w, &unevenReader{data: data, rng: rng, err: tc.bodyErr}, buf, false, -1, func() *Spool { return &sp })
			if !errors.Is(err, tc.bodyErr) {
				t.Fatalf("error %v, want %v", err, tc.bodyErr)
			}
			if n != int64(len(data)) || !bytes.Equal(w.Bytes(), data) {
				t.Fatalf("copied %d bytes (%d written), want the %d in order", n, w.Len(), len(data))
			}
			if (fileErrs > 0) != tc.fileErrs {
				t.Errorf("%d temporary file errors reported", fileErrs)
			}
			if w.flushes == 0 {
				t.Error("never flushed")
			}
		})
	}
}

// trickle gives 100 bytes a read until stopped, counting them.
type trickle struct {
	n    atomic.Int64
	stop atomic.Bool
}

func (r *trickle) Read(p []byte) (int, error) {
	if r.stop.Load() {
		return 0, io.EOF
	}
	n := min(len(p), 100)
	r.n.Add(int64(n))
	return n, nil
}

// stallWriter takes the first after bytes, then blocks until released.
type stallWriter struct {
	after   int64
	n       atomic.Int64
	release chan struct{}
}

func (w *stallWriter) Header() http.Header { return http.Header{} }
func (w *stallWriter) WriteHeader(int)     {}
func (w *stallWriter) Flush()              {}
func (w *stallWriter) Write(p []byte) (int, error) {
	if w.n.Load() >= w.after {
		<-w.release
	}
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// A trickling upstream cannot pile up memory behind a client that stopped reading: a memory buffer counts
// whole however few bytes it holds, so without a file the spool reads nothing more once its budget is taken.
func TestSpoolMemoryBound(t *testing.T) {
	bufs := &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	r := &trickle{}
	w := &stallWriter{after: spoolAfter, release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Stream(w, r, make([]byte, 32<<10), false, -1, func() *Spool { return &Spool{Mem: 64 << 10, Bufs: bufs} })
	}()
	time.Sleep(300 * time.Millisecond)
	held := r.n.Load() - w.n.Load()
	r.stop.Store(true)
	close(w.release)
	<-done
	if held > 1000 {
		t.Errorf("%d bytes read past what the client took: the spool kept reading small pieces into new buffers", held)
	}
}

// panicky gives some bytes, then panics, as a body reader with a bug would.
type panicky struct{ n int }

func (r *panicky) Read(p []byte) (int, error) {
	if r.n >= 1<<20 {
		panic("reader bug")
	}
	n := min(len(p), 4096)
	r.n += n
	return n, nil
}

// A panic while the spool reads the body ends the response as a failed read, as it would have on the handler's
// goroutine, instead of the process.
func TestSpoolPanic(t *testing.T) {
	bufs := &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	w := &slowWriter{rng: rand.New(rand.NewPCG(5, 6)), h: http.Header{}}
	n, err := Stream(w, &panicky{}, make([]byte, 32<<10), false, -1, func() *Spool { return &Spool{Mem: 64 << 10, Bufs: bufs} })
	if err == nil || n != 1<<20 {
		t.Fatalf("copied %d bytes, error %v; want the 1 MiB before the panic and an error", n, err)
	}
}
