package static

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Validators holds the formatted Last-Modified, ETag and Content-Length values of recently served files, so
// a file served again costs no formatting and no allocation. The text depends only on the file's modification
// time (whole seconds) and size, which are the key: a changed file has another key and gets its own entry.
// A fixed number of slots bounds it; the zero value is ready and safe for concurrent use.
type Validators struct {
	slots [256]atomic.Pointer[validators]
}

// validators is one entry. It is never changed once stored; its slices are shared read-only by the responses
// (capacity 1: a header Add appends to a copy).
type validators struct {
	mtime, size  int64
	lastModified []string
	etag         []string
	length       []string
	acceptRanges []string
	ctype        []string // the Content-Type the entry was last used with
}

// get returns the entry for (mtime, size) with ctype as its Content-Type, making it when the slot holds another.
func (v *Validators) get(mtime time.Time, size int64, ctype string) *validators {
	sec := mtime.Unix()
	h := uint64(sec)*0x9e3779b97f4a7c15 ^ uint64(size)*0xc2b2ae3d27d4eb4f
	slot := &v.slots[h>>56]
	e := slot.Load()
	if e != nil && e.mtime == sec && e.size == size {
		if e.ctype[0] == ctype {
			return e
		}
		ne := *e // the same validators used with another type (another file, or location's types)
		ne.ctype = []string{ctype}
		slot.Store(&ne)
		return &ne
	}
	e = newValidators(mtime, size, ctype)
	slot.Store(e)
	return e
}

// newValidators formats the values for a file of size bytes last modified at mtime.
func newValidators(mtime time.Time, size int64, ctype string) *validators {
	var b [96]byte // a date (29 bytes), an ETag (at most 35) and a length (at most 19)
	text := appendHTTPTime(b[:0], mtime)
	lm := len(text)
	text = appendETag(text, mtime, size)
	et := len(text)
	text = strconv.AppendInt(text, size, 10)
	s := string(text)
	vals := &[5]string{s[:lm], s[lm:et], s[et:], "bytes", ctype}
	return &validators{mtime: mtime.Unix(), size: size, lastModified: vals[0:1:1], etag: vals[1:2:2],
		length: vals[2:3:3], acceptRanges: vals[3:4:4], ctype: vals[4:5:5]}
}
