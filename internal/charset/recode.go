package charset

import (
	"io"
	"strconv"
)

// The ways a body is recoded.
const (
	byteToByte = iota // single-byte to single-byte: a byte for a byte
	toUTF8            // single-byte to utf-8
	fromUTF8          // utf-8 to single-byte; a code point the map lacks becomes "&#N;"
)

type recoding struct {
	kind  int
	table *[256]byte // byteToByte
	m     *Map       // toUTF8, fromUTF8
}

// Recoder recodes a body as it streams, writing the result on. It holds at most the 3 bytes of a UTF-8
// sequence split across writes, and writes out what each Write gave it before returning.
type Recoder struct {
	r     recoding
	out   io.Writer
	saved []byte
	buf   []byte
}

// chunk is how much recoded output is gathered before it is written on.
const chunk = 4096

// Write recodes b.
func (rc *Recoder) Write(b []byte) (int, error) {
	n := len(b)
	switch rc.r.kind {
	case byteToByte:
		for _, c := range b {
			rc.buf = append(rc.buf, rc.r.table[c])
			if err := rc.spill(); err != nil {
				return 0, err
			}
		}
	case toUTF8:
		for _, c := range b {
			rc.buf = append(rc.buf, rc.r.m.toUTF8[c]...)
			if err := rc.spill(); err != nil {
				return 0, err
			}
		}
	case fromUTF8:
		if err := rc.fromUTF8(b); err != nil {
			return 0, err
		}
	}
	if len(rc.buf) > 0 {
		if _, err := rc.out.Write(rc.buf); err != nil {
			return 0, err
		}
		rc.buf = rc.buf[:0]
	}
	return n, nil
}

// spill writes the gathered output on once it reaches chunk.
func (rc *Recoder) spill() error {
	if len(rc.buf) < chunk {
		return nil
	}
	_, err := rc.out.Write(rc.buf)
	rc.buf = rc.buf[:0]
	return err
}

// fromUTF8 recodes UTF-8 as nginx does: an invalid sequence becomes "?", a code point without a byte in the
// map "&#N;", and an incomplete sequence at the end of b waits for the next write (dropped if the body ends).
func (rc *Recoder) fromUTF8(b []byte) error {
	for len(rc.saved) > 0 && len(b) > 0 {
		// complete a sequence split across writes
		k := min(4-len(rc.saved), len(b))
		seq := append(rc.saved[:len(rc.saved):len(rc.saved)], b[:k]...)
		n, used := decode(seq)
		if n == incomplete {
			if len(seq) < 4 {
				rc.saved = seq
				return nil
			}
			used = len(seq)
		}
		if used < len(rc.saved) {
			used = len(rc.saved)
		}
		rc.emit(n)
		b = b[used-len(rc.saved):]
		rc.saved = rc.saved[:0]
	}
	for len(b) > 0 {
		if b[0] < 0x80 {
			rc.buf = append(rc.buf, b[0])
			b = b[1:]
		} else {
			n, used := decode(b)
			if n == incomplete {
				rc.saved = append(rc.saved[:0], b...)
				break
			}
			rc.emit(n)
			b = b[used:]
		}
		if err := rc.spill(); err != nil {
			return err
		}
	}
	return nil
}

// emit writes the byte the map gives the code point n, else its character reference, or "?" when n is not
// a code point.
func (rc *Recoder) emit(n uint32) {
	switch {
	case n > 0x10ffff:
		rc.buf = append(rc.buf, '?')
		return
	case n < 0x10000:
		if c, ok := rc.r.m.fromUTF8[rune(n)]; ok && c != 0 {
			rc.buf = append(rc.buf, c)
			return
		}
	}
	rc.buf = append(rc.buf, "&#"...)
	rc.buf = strconv.AppendUint(rc.buf, uint64(n), 10)
	rc.buf = append(rc.buf, ';')
}

const (
	invalid    = 0xffffffff
	incomplete = 0xfffffffe
)

// decode is nginx's UTF-8 decoder: the code point at the start of p (a non-empty slice) and the bytes it
// took. An invalid sequence gives invalid (a byte below 0x80 where a continuation belongs is taken with it,
// as nginx does), a sequence cut short incomplete.
func decode(p []byte) (uint32, int) {
	u := uint32(p[0])
	var valid uint32
	var n int
	switch {
	case u >= 0xf0:
		u, valid, n = u&0x07, 0xffff, 3
	case u >= 0xe0:
		u, valid, n = u&0x0f, 0x7ff, 2
	case u >= 0xc2:
		u, valid, n = u&0x1f, 0x7f, 1
	default:
		return invalid, 1
	}
	if len(p)-1 < n {
		return incomplete, 0
	}
	for i := 1; i <= n; i++ {
		c := uint32(p[i])
		if c < 0x80 {
			return invalid, i + 1
		}
		u = u<<6 | c&0x3f
	}
	if u > valid {
		return u, n + 1
	}
	return invalid, n + 1
}
