package static

import (
	"net/http"
	"strconv"
	"strings"
)

// IMS is if_modified_since: how an If-Modified-Since date is compared with the file's modification time.
type IMS uint8

const (
	IMSExact  IMS = iota // 304 only for the file's own time (nginx's default)
	IMSOff               // If-Modified-Since is ignored
	IMSBefore            // 304 for the file's time or any later one
)

// ParseIMS reads if_modified_since's argument.
func ParseIMS(s string) (IMS, bool) {
	switch s {
	case "exact":
		return IMSExact, true
	case "off":
		return IMSOff, true
	case "before":
		return IMSBefore, true
	}
	return 0, false
}

// conditional are the request headers that can make the answer something other than the whole file with 200.
var conditional = [...]string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}

// isConditional reports whether rh has any of the conditional headers.
func isConditional(rh http.Header) bool {
	for _, k := range conditional {
		if _, ok := rh[k]; ok {
			return true
		}
	}
	return false
}

// precondition is nginx's not_modified filter for a file about to be answered with 200, with its modification
// time (Unix seconds) and entity tag ("" with etag off): 412 when If-Unmodified-Since (a date before the file's,
// or one that does not parse) or If-Match fails; 304 when the If-Modified-Since and If-None-Match sent both say
// the client's copy is current; 0 to go on. nginx reads the first line of a repeated header.
func (req *Request) precondition(rh http.Header, mtime int64, etag string) int {
	if v := rh["If-Unmodified-Since"]; len(v) > 0 {
		if t, ok := parseTime(v[0]); !ok || t < mtime {
			return http.StatusPreconditionFailed
		}
	}
	if v := rh["If-Match"]; len(v) > 0 && !etagMatch(v[0], etag, false) {
		return http.StatusPreconditionFailed
	}
	ims, inm := rh["If-Modified-Since"], rh["If-None-Match"]
	if len(ims) == 0 && len(inm) == 0 {
		return 0
	}
	if len(ims) > 0 && req.modifiedSince(ims[0], mtime) {
		return 0
	}
	if len(inm) > 0 && !etagMatch(inm[0], etag, true) {
		return 0
	}
	return http.StatusNotModified
}

// Precondition is precondition for a response that is not a file (empty_gif): a body of its own modified at
// mtime with entity tag etag ("" for none), under if_modified_since mode ims.
func Precondition(rh http.Header, ims IMS, mtime int64, etag string) int {
	if !isConditional(rh) {
		return 0
	}
	return (&Request{IfModifiedSince: ims}).precondition(rh, mtime, etag)
}

// modifiedSince reports whether the file changed since the client's If-Modified-Since date, as if_modified_since
// says: exact takes any other date (also one that does not parse) as changed, before only an earlier one.
func (req *Request) modifiedSince(v string, mtime int64) bool {
	if req.IfModifiedSince == IMSOff {
		return true
	}
	t, ok := parseTime(v)
	if ok && t == mtime {
		return false
	}
	return req.IfModifiedSince == IMSExact || !ok || t < mtime
}

// parseTime parses an HTTP date (RFC 1123, RFC 850 or asctime) to Unix seconds.
func parseTime(v string) (int64, bool) {
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return t.Unix(), true
}

// etagMatch is nginx's entity-tag list match: "*" matches anything; otherwise an element of the comma-separated
// list must be etag, followed only by blanks. The weak comparison (If-None-Match) ignores "W/" prefixes; the
// strong one (If-Match) does not, so a weak tag never matches there. Without an etag nothing but "*" matches.
func etagMatch(list, etag string, weak bool) bool {
	if list == "*" {
		return true
	}
	if etag == "" {
		return false
	}
	if weak {
		etag = strings.TrimPrefix(etag, "W/")
	}
	for s := list; s != ""; {
		if weak && len(s) > 2 && s[0] == 'W' && s[1] == '/' {
			s = s[2:]
		}
		if len(etag) > len(s) {
			return false
		}
		if s[:len(etag)] == etag {
			if rest := strings.TrimLeft(s[len(etag):], " \t"); rest == "" || rest[0] == ',' {
				return true
			}
		}
		i := strings.IndexByte(s, ',')
		if i < 0 {
			return false
		}
		s = strings.TrimLeft(s[i:], " \t,")
	}
	return false
}

// byteRange is a part of a file: bytes start to end, end excluded.
type byteRange struct{ start, end int64 }

// ForcedRange is nginx's range filter for a proxied 200 of size bytes under proxy_force_ranges: one range at
// most (more: the whole body), If-Range against the upstream's ETag and Last-Modified (lastModified, "" for
// none). ok false: the whole body; status 416: not satisfiable; otherwise the body's bytes start to end
// (excluded) answer with 206.
func ForcedRange(rh http.Header, size int64, etag, lastModified string) (start, end int64, status int, ok bool) {
	mtime := int64(-1)
	if t, ok := parseTime(lastModified); ok {
		mtime = t
	}
	rs, res := ranges(rh, size, mtime, etag, 1)
	switch res {
	case rangeNotSatisfiable:
		return 0, 0, http.StatusRequestedRangeNotSatisfiable, true
	case rangeOK:
		return rs[0].start, rs[0].end, http.StatusPartialContent, true
	}
	return 0, 0, 0, false
}

// ContentRange is the Content-Range value of bytes start to end (excluded) of size.
func ContentRange(start, end, size int64) string {
	var b [64]byte
	return string(contentRange(b[:0], byteRange{start, end}, size))
}

// The outcomes of a Range header.
const (
	rangeDeclined       = iota // the whole file with 200
	rangeOK                    // 206 with the ranges
	rangeNotSatisfiable        // 416
)

// ranges is nginx's range filter for a file of size bytes about to be answered with 200: it reads a "bytes="
// Range header (other units, and If-Range naming another version, get the whole file) with at most max ranges
// (more: the whole file, as are ranges that add up to more than the file).
func ranges(rh http.Header, size int64, mtime int64, etag string, max int) ([]byteRange, int) {
	v := rh["Range"]
	if len(v) == 0 || len(v[0]) < len("bytes=x") || !strings.EqualFold(v[0][:len("bytes=")], "bytes=") {
		return nil, rangeDeclined
	}
	if ir := rh["If-Range"]; len(ir) > 0 {
		c := ir[0]
		if len(c) >= 2 && c[len(c)-1] == '"' {
			if etag == "" || c != etag {
				return nil, rangeDeclined
			}
		} else if t, ok := parseTime(c); !ok || t != mtime {
			return nil, rangeDeclined
		}
	}
	return parseRanges(v[0][len("bytes="):], size, max)
}

// parseRanges reads the range set after "bytes=" as nginx does: blanks are allowed around numbers, "N-" runs to
// the end, "-N" is the last N bytes; a range starting past the end is skipped, and if none is left the answer
// is 416; a malformed set is 416 too, but an empty range at offset 0 (an empty file, "0-" of nothing) declines.
func parseRanges(p string, size int64, max int) ([]byteRange, int) {
	const cutoff, cutlim = (1<<63 - 1) / 10, (1<<63 - 1) % 10
	i := 0
	at := func() byte { // nginx reads a NUL-terminated string: its end is 0
		if i < len(p) {
			return p[i]
		}
		return 0
	}
	blanks := func() {
		for at() == ' ' {
			i++
		}
	}
	number := func() (int64, bool) { // false without a digit, or past the largest offset
		c := at()
		if c < '0' || c > '9' {
			return 0, false
		}
		var n int64
		for ; c >= '0' && c <= '9'; c = at() {
			if n >= cutoff && (n > cutoff || int64(c-'0') > cutlim) {
				return 0, false
			}
			n = n*10 + int64(c-'0')
			i++
		}
		return n, true
	}
	var rs []byteRange
	var total int64
	for {
		var start, end int64
		var ok bool
		suffix, open := false, false
		blanks()
		if at() == '-' {
			suffix = true
			i++
		} else {
			if start, ok = number(); !ok {
				return nil, rangeNotSatisfiable
			}
			blanks()
			if at() != '-' {
				return nil, rangeNotSatisfiable
			}
			i++
			blanks()
			if c := at(); c == ',' || c == 0 {
				end, open = size, true
			}
		}
		if !open {
			if end, ok = number(); !ok {
				return nil, rangeNotSatisfiable
			}
			blanks()
			if c := at(); c != ',' && c != 0 {
				return nil, rangeNotSatisfiable
			}
			if suffix {
				start = 0
				if end < size {
					start = size - end
				}
				end = size - 1
			}
			if end >= size {
				end = size
			} else {
				end++
			}
		}
		if start < end {
			rs = append(rs, byteRange{start, end})
			if total > 1<<63-1-(end-start) {
				return nil, rangeNotSatisfiable
			}
			total += end - start
			if max == 0 {
				return nil, rangeDeclined
			}
			max--
		} else if start == 0 {
			return nil, rangeDeclined
		}
		if at() != ',' {
			break
		}
		i++
	}
	if len(rs) == 0 {
		return nil, rangeNotSatisfiable
	}
	if total > size {
		return nil, rangeDeclined
	}
	return rs, rangeOK
}

// contentRange formats a Content-Range value for bytes start to end (excluded) of size.
func contentRange(dst []byte, r byteRange, size int64) []byte {
	dst = append(dst, "bytes "...)
	dst = strconv.AppendInt(dst, r.start, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, r.end-1, 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, size, 10)
}
