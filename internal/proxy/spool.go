package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/internal/cache"
)

// Spool lets a buffered response (proxy_buffering on) run ahead of a slower client, as nginx's proxy_buffers
// and temporary files do: the upstream is read at its own pace into memory and then into a temporary file,
// so its connection (a php-fpm worker, an application thread) is released once the whole response is in, not
// once a slow client has taken it.
type Spool struct {
	Mem     int64  // bytes held in memory ahead of the client (proxy_buffers: number × size)
	MaxFile int64  // bytes held in a temporary file beyond that (proxy_max_temp_file_size; 0: no file)
	Dir     string // where the temporary file is made ("": the system's temporary directory)
	// Bufs gives and takes the memory buffers (*[]byte, all of one size).
	Bufs *sync.Pool
	// Interrupt, if set, ends a read of the body in progress on the spool's goroutine: the client went away
	// and the upstream need not be waited for. The body's read then fails.
	Interrupt func()
	// Done, if set, is called on the spool's goroutine once the whole body has been read: the upstream's
	// part is over (least_conn and max_conns count the peer's connection no more, as in nginx).
	Done func()
	// Ended is when the whole body had been read (zero: it was not); set on the spool's goroutine, read once
	// Stream has returned.
	Ended time.Time
	// FileError reports a temporary file that could not be made or written; the response then goes on at
	// the client's pace.
	FileError func(error)
}

// spoolAfter is how many bytes Stream copies itself before a Spool takes over: a response the socket buffers
// take at once never costs a goroutine.
const spoolAfter = 32 << 10

// spooled is one response's spool: one goroutine (fill) reads the body into queued memory buffers, then
// into the file once they are full; the handler's goroutine (drain) writes to the client in order.
type spooled struct {
	sp   *Spool
	body io.Reader

	mu      sync.Mutex
	cond    sync.Cond
	queue   []*[]byte // memory buffers, each holding len(*b) bytes, oldest first
	mem     int64     // the queued buffers' size
	file    *os.File  // nil until first needed; unlinked at once
	fileOff int64     // bytes of the file not yet sent start here …
	fileEnd int64     // … and end here; the file's bytes come after every queued buffer's
	noFile  bool      // the file failed: memory only
	done    bool      // fill has ended …
	err     error     // … with this error (nil: the body's end)
	stop    bool      // the client went away: fill ends at its next turn
}

// spool copies the rest of body to w through a spool; total is what was copied before, size the expected
// total (-1: unknown). It returns as Stream does, once fill has ended.
func (sp *Spool) copy(w http.ResponseWriter, body io.Reader, buf []byte, flushEach bool, total, size int64) (int64, error) {
	s := &spooled{sp: sp, body: body}
	s.cond.L = &s.mu
	filled := make(chan struct{})
	go func() {
		defer close(filled)
		defer s.recoverFill()
		s.fill()
	}()
	total, err := s.drain(w, buf, flushEach, total, size)
	<-filled
	s.release()
	return total, err
}

// fill reads the body until its end, an error, or the client going away.
func (s *spooled) fill() {
	var scratch *[]byte // the read buffer for bytes going to the file
	yielded := false    // the last turn gave drain its chance before choosing the file
	defer func() {
		if scratch != nil {
			s.put(scratch)
		}
	}()
	for {
		s.mu.Lock()
		for !s.stop && !s.room() {
			s.cond.Wait()
		}
		if s.stop {
			s.mu.Unlock()
			return
		}
		toFile := s.fileEnd > s.fileOff || s.mem >= s.sp.Mem
		limit := s.sp.MaxFile - s.fileSize() // the file is at most MaxFile bytes (nginx's max_temp_file_size)
		s.mu.Unlock()

		if toFile && !yielded {
			// let drain run first: with one P (worker_processes 1) fill would otherwise go on into the file
			// while a client that keeps up waits for its turn to take the queued buffer
			yielded = true
			runtime.Gosched()
			continue
		}
		yielded = false
		if toFile && s.file == nil && !s.makeFile() {
			continue // memory only, at the client's pace
		}
		var b *[]byte
		if toFile {
			if scratch == nil {
				scratch = s.sp.Bufs.Get().(*[]byte)
			}
			b = scratch
		} else {
			b = s.sp.Bufs.Get().(*[]byte)
		}
		p := *b
		if toFile {
			p = p[:min(int64(len(p)), limit)]
		}
		n, err := s.body.Read(p)
		if n > 0 && toFile {
			if werr := s.toFile(p[:n]); werr != nil && err == nil {
				err = werr // the body cannot go on whole
			}
		}
		s.mu.Lock()
		if n > 0 && !toFile {
			*b = p[:n]
			s.queue = append(s.queue, b)
			s.mem += int64(cap(p)) // a buffer counts whole, however little it holds: a trickle cannot pile up buffers
		} else if !toFile {
			s.put(b)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			s.done, s.err = true, err
		}
		done, whole := s.done, s.done && s.err == nil
		s.cond.Broadcast()
		s.mu.Unlock()
		if whole {
			s.sp.Ended = time.Now()
			if s.sp.Done != nil {
				s.sp.Done()
			}
		}
		if done {
			return
		}
	}
}

// recoverFill ends a fill that panicked (a body reader's bug) as a failed read: on the handler's goroutine the
// panic would have ended the request, on this one it would end the process.
func (s *spooled) recoverFill() {
	if r := recover(); r != nil {
		s.mu.Lock()
		if !s.done {
			s.done, s.err = true, fmt.Errorf("panic reading the response: %v", r)
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// room reports whether fill may read more: memory has room and no file bytes wait (they go first), or the
// file has room.
func (s *spooled) room() bool {
	if s.fileEnd > s.fileOff || s.mem >= s.sp.Mem {
		return !s.noFile && s.sp.MaxFile > 0 && s.fileSize() < s.sp.MaxFile
	}
	return true
}

// fileSize is the size the file has for fill: 0 once the client has caught up (toFile starts it over).
func (s *spooled) fileSize() int64 {
	if s.fileEnd == s.fileOff {
		return 0
	}
	return s.fileEnd
}

// makeFile makes the temporary file, unlinked at once so that nothing is left behind whatever happens to
// the process. A failure is reported and leaves the spool to memory.
func (s *spooled) makeFile() bool {
	f, err := os.CreateTemp(s.sp.Dir, "sluice-spool-")
	if err != nil {
		s.mu.Lock()
		s.noFile = true
		s.mu.Unlock()
		if s.sp.FileError != nil {
			s.sp.FileError(err)
		}
		return false
	}
	os.Remove(f.Name())
	s.file = f // (drain reads it only after fileEnd moved, under mu)
	return true
}

// toFile appends p to the file; bytes already sent let the file start over.
func (s *spooled) toFile(p []byte) error {
	s.mu.Lock()
	if s.fileEnd == s.fileOff {
		s.fileOff, s.fileEnd = 0, 0
	}
	off := s.fileEnd
	s.mu.Unlock()
	if _, err := s.file.WriteAt(p, off); err != nil {
		if s.sp.FileError != nil {
			s.sp.FileError(err)
		}
		return err
	}
	s.mu.Lock()
	s.fileEnd += int64(len(p))
	s.mu.Unlock()
	return nil
}

// put gives a buffer back whole.
func (s *spooled) put(b *[]byte) {
	*b = (*b)[:cap(*b)]
	s.sp.Bufs.Put(b)
}

// drain writes what fill read to w, in order, until fill has ended and all is sent, or w fails.
func (s *spooled) drain(w http.ResponseWriter, buf []byte, flushEach bool, total, size int64) (int64, error) {
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && s.fileEnd == s.fileOff && !s.done {
			s.cond.Wait()
		}
		var p []byte
		var b *[]byte
		switch {
		case len(s.queue) > 0:
			b = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.mem -= int64(cap(*b))
			p = *b
		case s.fileEnd > s.fileOff:
			off := s.fileOff
			n := min(int64(len(buf)), s.fileEnd-off)
			s.mu.Unlock()
			m, err := s.file.ReadAt(buf[:n], off)
			s.mu.Lock()
			if m < int(n) {
				// the file lost bytes it had taken: the body cannot go on whole
				s.mu.Unlock()
				s.cut()
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return total, err
			}
			s.fileOff += n
			p = buf[:n]
		default: // done, all sent
			err := s.err
			s.mu.Unlock()
			return total, err
		}
		s.cond.Broadcast() // room for fill
		more := len(s.queue) > 0 || s.fileEnd > s.fileOff
		s.mu.Unlock()

		_, werr := w.Write(p)
		if b != nil {
			s.put(b)
		}
		if werr != nil {
			s.cut()
			return total, nil // client went away; nothing to report upstream-side
		}
		total += int64(len(p))
		if (flushEach || !more) && total != size {
			if Flush(w) != nil {
				s.cut()
				return total, nil
			}
		}
	}
}

// cut stops fill after the client went away, interrupting a read that may wait for the upstream.
func (s *spooled) cut() {
	s.mu.Lock()
	s.stop = true
	done := s.done
	s.cond.Broadcast()
	s.mu.Unlock()
	if !done && s.sp.Interrupt != nil {
		s.sp.Interrupt()
	}
}

// release gives back the buffers still queued and closes the file; fill has ended.
func (s *spooled) release() {
	for _, b := range s.queue {
		s.put(b)
	}
	s.queue = nil
	if s.file != nil {
		s.file.Close()
	}
}

// CommitEarly has sp commit the cache entry being stored through tee once it has read the whole body, before a
// slow client has it (then a waiter on the cache lock, or the next request, gets the entry), after what sp.Done
// already did. The returned message is a failed commit's, to be logged once Stream has returned (the spool's
// goroutine does not touch the request).
func CommitEarly(sp *Spool, cr *cache.Request, tee *cache.Tee) *string {
	c := &earlyCommit{then: sp.Done, cr: cr, tee: tee}
	sp.Done = c.done
	return &c.msg
}

type earlyCommit struct {
	then func()
	cr   *cache.Request
	tee  *cache.Tee
	msg  string
}

func (c *earlyCommit) done() {
	if c.then != nil {
		c.then()
	}
	c.cr.End(c.tee, nil, func(msg string) { c.msg = msg })
}
