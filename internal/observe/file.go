package observe

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// File is a log destination that can be reopened (USR1, `-s reopen`, logrotate) without losing lines.
// It is safe for concurrent use. Each Write is kept whole: without a buffer it is one write(2) on a file opened
// with O_APPEND, so lines from concurrent writers (and other processes) never interleave; with a buffer, whole
// Writes are collected and written together when the buffer would overflow, when the oldest buffered data is
// older than the flush interval, and on Flush, Reopen and Close.
type File struct {
	path    string
	bufSize int
	flush   time.Duration
	out     *output
	reg     *registry // set when the File belongs to a Files
	refs    int       // number of Files holding this File, guarded by reg.mu

	closed atomic.Bool
	mu     sync.Mutex // guards the fields below and orders buffered writes
	buf    []byte
	timer  *time.Timer
	err    error // a failed background flush, reported by the next Flush, Reopen or Close
}

// OpenFile opens the log destination path: "stderr" or "/dev/stderr" (standard error), "/dev/stdout" (standard
// output), "off" or "" (discard everything), or else a file opened O_WRONLY|O_APPEND|O_CREATE with mode 0644,
// its parent directories created 0755 if missing. A relative path is relative to the working directory.
// bufSize > 0 buffers up to that many bytes (nginx access_log buffer=); flush > 0 additionally writes buffered
// data once it is that old (flush=). flush is ignored without a buffer, where every Write is written at once.
func OpenFile(path string, bufSize int, flush time.Duration) (*File, error) {
	out, err := openOutput(path, false)
	if err != nil {
		return nil, err
	}
	return newFile(path, bufSize, flush, out), nil
}

func newFile(path string, bufSize int, flush time.Duration, out *output) *File {
	if bufSize < 0 || out.discard {
		bufSize = 0
	}
	if bufSize == 0 {
		flush = 0
	}
	return &File{path: path, bufSize: bufSize, flush: flush, out: out}
}

// Path returns the path f was opened with.
func (f *File) Path() string { return f.path }

// Write writes p, which should be one or more complete lines. It returns os.ErrClosed after Close.
func (f *File) Write(p []byte) (int, error) {
	if f.bufSize == 0 {
		if f.closed.Load() {
			return 0, os.ErrClosed
		}
		return f.out.write(p)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() {
		return 0, os.ErrClosed
	}
	if len(f.buf)+len(p) > f.bufSize {
		if err := f.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > f.bufSize {
			return f.out.write(p)
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(f.buf) == 0 {
		if f.buf == nil {
			f.buf = make([]byte, 0, f.bufSize)
		}
		if f.flush > 0 {
			if f.timer == nil {
				f.timer = time.AfterFunc(f.flush, f.flushOnTimer)
			} else {
				f.timer.Reset(f.flush)
			}
		}
	}
	f.buf = append(f.buf, p...)
	return len(p), nil
}

// Flush writes any buffered data. It also reports, once, an error from an earlier flush done on the interval.
func (f *File) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() {
		return nil
	}
	return f.flushPending()
}

// flushPending flushes the buffer and returns its error or else the pending background error, clearing it.
func (f *File) flushPending() error {
	err := f.flushLocked()
	if err == nil {
		err = f.err
	}
	f.err = nil
	return err
}

func (f *File) flushOnTimer() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() {
		return
	}
	if err := f.flushLocked(); err != nil && f.err == nil {
		f.err = err
	}
}

// flushLocked writes the buffer in one write.
func (f *File) flushLocked() error {
	if f.timer != nil {
		f.timer.Stop()
	}
	if len(f.buf) == 0 {
		return nil
	}
	_, err := f.out.write(f.buf)
	f.buf = f.buf[:0]
	return err
}

// Reopen flushes f and reopens its path, so that after logrotate renamed the file, lines go to a new file at
// the path. Lines written before Reopen returns go to the old file, after it to the new one; none are lost.
// If the path cannot be opened, f keeps writing to the old file and Reopen returns the error.
// It does nothing for the standard streams and "off".
func (f *File) Reopen() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() {
		return os.ErrClosed
	}
	ferr := f.flushPending()
	if err := f.out.reopen(); err != nil {
		return err
	}
	return ferr
}

// Close flushes f and closes it; later Writes fail with os.ErrClosed. The standard streams are flushed but
// not closed. A File obtained from Files is closed for every Files sharing it; use Files.CloseAll instead.
// Closing a closed File does nothing.
func (f *File) Close() error {
	if r := f.reg; r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.drop(f)
	}
	return f.close()
}

func (f *File) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() {
		return nil
	}
	err := f.flushPending()
	f.closed.Store(true)
	if f.timer != nil {
		f.timer.Stop()
	}
	if cerr := f.out.release(); err == nil {
		err = cerr
	}
	return err
}

// output is one open destination, shared by the Files writing to the same path.
type output struct {
	path    string // cleaned path, empty for the standard streams and discard
	std     bool   // os.Stdout or os.Stderr: never closed or reopened
	discard bool

	mu   sync.RWMutex // write holds it shared; reopen and release hold it exclusively
	f    *os.File     // nil once closed
	refs int
}

// canonicalPath names a destination so that different spellings of one destination share an output.
func canonicalPath(path string) string {
	switch path {
	case "", "off":
		return "off"
	case "stderr", "/dev/stderr":
		return "stderr"
	case "/dev/stdout":
		return "stdout"
	}
	return filepath.Clean(path)
}

func openOutput(path string, check bool) (*output, error) {
	switch canonicalPath(path) {
	case "off":
		return &output{discard: true, refs: 1}, nil
	case "stderr":
		return &output{std: true, f: os.Stderr, refs: 1}, nil
	case "stdout":
		return &output{std: true, f: os.Stdout, refs: 1}, nil
	}
	p := filepath.Clean(path)
	if check {
		return checkLogFile(p)
	}
	f, err := openLogFile(p)
	if err != nil {
		return nil, err
	}
	return &output{path: p, f: f, refs: 1}, nil
}

func openLogFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

// checkLogFile opens path for appending if it exists; if not, it creates nothing and checks that the nearest
// existing parent is a directory, so that serving could create it (see NewCheckFiles).
func checkLogFile(path string) (*output, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		return &output{path: path, f: f, refs: 1}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		switch {
		case err == nil && !fi.IsDir():
			return nil, &os.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		case err == nil:
			return &output{discard: true, refs: 1}, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
}

func (o *output) write(p []byte) (int, error) {
	if o.discard {
		return len(p), nil
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.f == nil {
		return 0, os.ErrClosed
	}
	// os.File serializes writes to one descriptor and finishes short writes before the next one starts.
	return o.f.Write(p)
}

// reopen opens the path anew and switches writers to it; writes in progress finish on the old descriptor.
func (o *output) reopen() error {
	if o.std || o.discard {
		return nil
	}
	nf, err := openLogFile(o.path)
	if err != nil {
		return err
	}
	o.mu.Lock()
	old := o.f
	if old == nil {
		o.mu.Unlock()
		nf.Close()
		return os.ErrClosed
	}
	o.f = nf
	o.mu.Unlock()
	return old.Close()
}

// release drops one reference and closes the descriptor with the last.
func (o *output) release() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refs--; o.refs > 0 || o.f == nil {
		return nil
	}
	f := o.f
	o.f = nil
	if o.std || o.discard {
		return nil
	}
	return f.Close()
}
