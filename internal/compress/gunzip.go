package compress

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// Gunzip is one level's gunzip settings: a gzip-encoded response goes out decompressed to a client that does not
// take gzip by the gzip_* rules (gzip_http_version, gzip_proxied, gzip_disable), which Test holds whether or
// not gzip itself is on.
type Gunzip struct {
	Test    *Gzip
	BufSize int // gunzip_buffers' size: the most decompressed bytes written on at once
}

// Encoded reports whether a response with header h is one gunzip takes: its Content-Encoding is gzip alone.
func (u *Gunzip) Encoded(h http.Header) bool {
	ce := h["Content-Encoding"]
	return len(ce) > 0 && strings.EqualFold(ce[0], "gzip")
}

// Inflates reports whether the response with header h to request r is decompressed (it is gzip-encoded and
// the client does not take gzip). The cache uses it to send such a response whole, without ranges of its
// compressed bytes.
func (u *Gunzip) Inflates(r *http.Request, h http.Header) bool {
	return u.Encoded(h) && !u.Test.Accepts(r, h)
}

// ErrGunzip wraps a gzip body that cannot be decompressed (corrupt, or cut short); the response is then cut,
// as nginx cuts it.
var ErrGunzip = errors.New("gunzip")

// Inflater decompresses a gzip body written to it (several members in a row are one body, as zlib reads them)
// and writes the result on as it streams. Its decoder pulls from the writes on a goroutine of its own, which
// runs only while a Write or Close waits for it, so the body is never held beyond the current write and the
// decoder's window.
type Inflater struct {
	out   io.Writer
	size  int
	feed  chan []byte // the next compressed bytes; closed when the body ends or is abandoned
	ack   chan error  // nil: the bytes fed were used; anything else: the decoder stopped (io.EOF: a clean end)
	run   bool        // the goroutine was started
	ended bool        // the goroutine has stopped
	err   error
}

// NewInflater returns an Inflater writing to out in pieces of at most size bytes.
func NewInflater(out io.Writer, size int) *Inflater {
	if size <= 0 {
		size = 4096
	}
	return &Inflater{out: out, size: size, feed: make(chan []byte), ack: make(chan error)}
}

// Write decompresses p. An error in the gzip stream (ErrGunzip) or from the writer below ends the body.
func (z *Inflater) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	z.start()
	z.feed <- p
	if err := <-z.ack; err != nil {
		z.stopped(err)
		return 0, z.err
	}
	return len(p), nil
}

// Close ends the body: a gzip stream cut short (or none at all) is ErrGunzip.
func (z *Inflater) Close() error {
	if z.err != nil || z.ended {
		return z.err
	}
	z.start()
	close(z.feed)
	z.stopped(<-z.ack)
	return z.err
}

// Abandon stops the decoder after a response that failed (its output is not wanted).
func (z *Inflater) Abandon() {
	if z.run && !z.ended {
		close(z.feed)
		<-z.ack
		z.ended = true
	}
}

func (z *Inflater) stopped(err error) {
	z.ended = true
	if err != io.EOF {
		z.err = err
	}
}

func (z *Inflater) start() {
	if !z.run {
		z.run = true
		go z.decode()
	}
}

// decode runs the decoder until the body ends or fails, and reports how on ack to the Write or Close waiting
// for it (the decoder only runs while one waits); then the Inflater no longer feeds it.
func (z *Inflater) decode() {
	z.ack <- z.inflate(&feedReader{z: z})
}

func (z *Inflater) inflate(src *feedReader) error {
	zr, err := gzip.NewReader(src)
	if err != nil {
		return gunzipError(err)
	}
	buf := make([]byte, z.size)
	for {
		n, err := zr.Read(buf)
		if n > 0 {
			if _, werr := z.out.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return gunzipError(err)
		}
	}
}

func gunzipError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // no gzip stream at all
	}
	return fmt.Errorf("%w: %v", ErrGunzip, err)
}

// feedReader gives the decoder the bytes of each Write in turn; once it has used one write's bytes it says so
// and waits for the next.
type feedReader struct {
	z   *Inflater
	cur []byte
	fed bool // a write's bytes were taken (and are to be acknowledged once used)
}

func (f *feedReader) Read(b []byte) (int, error) {
	if len(f.cur) == 0 {
		if f.fed {
			f.z.ack <- nil
		}
		p, ok := <-f.z.feed
		f.fed = ok
		if !ok {
			return 0, io.EOF
		}
		f.cur = p
	}
	n := copy(b, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}
