// Package fastcgi is sluice's FastCGI client (the protocol php-fpm speaks) and the fastcgi_pass content handler.
//
// The wire format (FastCGI 1.0 specification): every message is a record of an 8-byte header (version, type,
// request id, content length, padding length) followed by content and padding. A request is BEGIN_REQUEST, a
// PARAMS stream (name-value pairs, ended by an empty record), a STDIN stream (the request body, ended by an
// empty record); the application answers with STDOUT (CGI headers, a blank line, the body) and STDERR streams
// and one END_REQUEST. sluice sends one request at a time per connection (php-fpm does not multiplex), always
// with request id 1, and keeps the connection when it set FCGI_KEEP_CONN and the response was read to its end.
package fastcgi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Record types (FastCGI 1.0, section 8).
const (
	typeBeginRequest    = 1
	typeAbortRequest    = 2
	typeEndRequest      = 3
	typeParams          = 4
	typeStdin           = 5
	typeStdout          = 6
	typeStderr          = 7
	typeData            = 8
	typeGetValues       = 9
	typeGetValuesResult = 10
	typeUnknownType     = 11
)

const (
	version1      = 1
	roleResponder = 1
	flagKeepConn  = 1
	headerLen     = 8
	maxContent    = 65535
	requestID     = 1
)

// protocolStatus values of END_REQUEST.
const (
	statusRequestComplete = 0
	statusCantMpxConn     = 1
	statusOverloaded      = 2
	statusUnknownRole     = 3
)

// ErrProtocol reports a record stream that breaks the FastCGI protocol.
var ErrProtocol = errors.New("fastcgi: protocol error")

// record is one record read from the application; content aliases the reader's buffer until the next read.
type record struct {
	typ     uint8
	id      uint16
	content []byte
}

// recordReader reads records from a connection, reusing one buffer that grows to the largest record seen
// (php-fpm writes records of up to 8 KiB; the protocol allows 64 KiB), so a new connection costs little.
type recordReader struct {
	br  *bufio.Reader
	buf []byte
	h   [headerLen]byte
}

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{br: bufio.NewReaderSize(r, 8<<10), buf: make([]byte, 8<<10+8)}
}

// next reads one record. It refuses a version other than 1 and any type an application may not send to a
// web server; io.EOF means the stream ended cleanly between records, io.ErrUnexpectedEOF inside one.
func (rr *recordReader) next() (record, error) {
	h := rr.h[:]
	if _, err := io.ReadFull(rr.br, h); err != nil {
		return record{}, err
	}
	if h[0] != version1 {
		return record{}, fmt.Errorf("%w: version %d", ErrProtocol, h[0])
	}
	rec := record{typ: h[1], id: binary.BigEndian.Uint16(h[2:4])}
	n := int(binary.BigEndian.Uint16(h[4:6]))
	pad := int(h[6])
	switch rec.typ {
	case typeStdout, typeStderr, typeEndRequest, typeGetValuesResult, typeUnknownType:
	default:
		return record{}, fmt.Errorf("%w: unexpected record type %d", ErrProtocol, rec.typ)
	}
	if n+pad > len(rr.buf) {
		rr.buf = make([]byte, n+pad)
	}
	if _, err := io.ReadFull(rr.br, rr.buf[:n+pad]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return record{}, err
	}
	rec.content = rr.buf[:n]
	if rec.typ == typeEndRequest && n < 8 {
		return record{}, fmt.Errorf("%w: short END_REQUEST", ErrProtocol)
	}
	return rec, nil
}

// endRequest decodes END_REQUEST's body: the application's exit status and the protocol status.
func endRequest(content []byte) (appStatus uint32, protoStatus uint8) {
	return binary.BigEndian.Uint32(content[0:4]), content[4]
}

// recordWriter writes records to a connection through a buffer; flush sends what is buffered.
type recordWriter struct {
	bw      *bufio.Writer
	out     holdWriter
	h, zero [headerLen]byte // a record header being written; padding
	body    [8]byte         // BEGIN_REQUEST's body
}

func newRecordWriter(w io.Writer) *recordWriter {
	rw := &recordWriter{out: holdWriter{w: w}}
	rw.bw = bufio.NewWriterSize(&rw.out, 8<<10)
	return rw
}

// holdWriter is where the buffer goes: the connection, or, while held, nowhere (the last flush is kept).
type holdWriter struct {
	w    io.Writer
	hold bool
	held []byte
}

func (h *holdWriter) Write(p []byte) (int, error) {
	if h.hold {
		h.held = p
		return len(p), nil
	}
	return h.w.Write(p)
}

// flushHeld empties the buffer without writing it and returns what it held (nil when empty), for the caller to
// send another way. The bytes are the buffer's: they stay valid until the next write.
func (rw *recordWriter) flushHeld() []byte {
	rw.out.hold, rw.out.held = true, nil
	rw.bw.Flush() // cannot fail: holdWriter takes everything
	held := rw.out.held
	rw.out.hold, rw.out.held = false, nil
	return held
}

// write sends content as records of type typ, split at the 64 KiB record limit and padded to 8 bytes as the
// specification recommends. An empty content writes one empty record (the end of a stream).
func (rw *recordWriter) write(typ uint8, content []byte) error {
	for {
		n := min(len(content), maxContent)
		pad := (8 - n%8) % 8
		h := rw.h[:]
		h[0], h[1], h[7] = version1, typ, 0
		binary.BigEndian.PutUint16(h[2:4], requestID)
		binary.BigEndian.PutUint16(h[4:6], uint16(n))
		h[6] = byte(pad)
		if _, err := rw.bw.Write(h); err != nil {
			return err
		}
		if _, err := rw.bw.Write(content[:n]); err != nil {
			return err
		}
		if pad > 0 {
			if _, err := rw.bw.Write(rw.zero[:pad]); err != nil {
				return err
			}
		}
		content = content[n:]
		if len(content) == 0 {
			return nil
		}
	}
}

// begin writes BEGIN_REQUEST for the responder role, asking the application to keep the connection if keep.
func (rw *recordWriter) begin(keep bool) error {
	rw.body = [8]byte{0, roleResponder}
	if keep {
		rw.body[2] = flagKeepConn
	}
	return rw.write(typeBeginRequest, rw.body[:])
}

func (rw *recordWriter) flush() error { return rw.bw.Flush() }

// paramEnc is how a protocol encodes a parameter: FastCGI writes both lengths (one or four bytes) and then
// the name and the value; uwsgi writes each as a two-byte length and its bytes; SCGI (no appendLen) ends each
// with a NUL.
type paramEnc struct {
	appendLen func(dst []byte, n int) []byte
	lensFirst bool
}

var (
	fcgiEnc  = paramEnc{fcgiLen, true}
	uwsgiEnc = paramEnc{uwsgiLen, false}
	scgiEnc  = paramEnc{}
)

// head appends what comes before a name or a value of n bytes, tail what comes after it.
func (e paramEnc) head(dst []byte, n int) []byte {
	if e.appendLen == nil {
		return dst
	}
	return e.appendLen(dst, n)
}

func (e paramEnc) tail(dst []byte) []byte {
	if e.appendLen == nil {
		return append(dst, 0)
	}
	return dst
}

// appendParam appends one FastCGI name-value pair.
func appendParam[S string | []byte](dst []byte, name string, value S) []byte {
	return appendParamIn(fcgiEnc, dst, name, value)
}

// appendParamIn appends one name-value pair as e encodes it.
func appendParamIn[S string | []byte](e paramEnc, dst []byte, name string, value S) []byte {
	if e.lensFirst {
		dst = e.appendLen(dst, len(name))
		dst = e.appendLen(dst, len(value))
		dst = append(dst, name...)
		return append(dst, value...)
	}
	dst = e.head(dst, len(name))
	dst = e.tail(append(dst, name...))
	dst = e.head(dst, len(value))
	return e.tail(append(dst, value...))
}

// appendParamJoined appends a header's values joined by sep as one pair.
func appendParamJoined(e paramEnc, dst, name []byte, vals []string, sep string) []byte {
	n := len(sep) * (len(vals) - 1)
	for _, v := range vals {
		n += len(v)
	}
	if e.lensFirst {
		dst = e.appendLen(dst, len(name))
		dst = e.appendLen(dst, n)
		dst = append(dst, name...)
	} else {
		dst = e.head(dst, len(name))
		dst = e.tail(append(dst, name...))
		dst = e.head(dst, n)
	}
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, sep...)
		}
		dst = append(dst, v...)
	}
	return e.tail(dst)
}

// fcgiLen is FastCGI's length: one byte below 128, else four with the high bit set.
func fcgiLen(dst []byte, n int) []byte {
	if n < 128 {
		return append(dst, byte(n))
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n)|1<<31)
}

// uwsgiLen is uwsgi's length: two bytes, little-endian (the packet's total bounds it: see UWSGIClient).
func uwsgiLen(dst []byte, n int) []byte { return binary.LittleEndian.AppendUint16(dst, uint16(n)) }

// parseParams decodes name-value pairs (as the application would read PARAMS); used by tests and fuzzing to
// check that what appendParam writes reads back the same.
func parseParams(b []byte) ([][2]string, error) {
	var out [][2]string
	readLen := func() (int, bool) {
		if len(b) == 0 {
			return 0, false
		}
		if b[0]&0x80 == 0 {
			n := int(b[0])
			b = b[1:]
			return n, true
		}
		if len(b) < 4 {
			return 0, false
		}
		n := int(binary.BigEndian.Uint32(b) &^ (1 << 31))
		b = b[4:]
		return n, true
	}
	for len(b) > 0 {
		nl, ok1 := readLen()
		vl, ok2 := readLen()
		if !ok1 || !ok2 || nl > len(b) || vl > len(b)-nl {
			return nil, ErrProtocol
		}
		out = append(out, [2]string{string(b[:nl]), string(b[nl : nl+vl])})
		b = b[nl+vl:]
	}
	return out, nil
}
