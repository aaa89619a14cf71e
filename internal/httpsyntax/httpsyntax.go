// Package httpsyntax holds the small checks of HTTP/1 field syntax (RFC 9110 §5) that sluice's own head
// parsers (requests in h1, responses in proxy), the framing guard and the tunnel's handshake share, with
// textproto's rules so they accept exactly what net/http would, and the header-map lookup they share.
package httpsyntax

import (
	"bytes"
	"math/bits"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Token reports whether s is a non-empty token: a method, or a header name (a space before the colon is
// not one).
func Token(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// Value reports whether v is a field value without control bytes other than tab (obs-text is allowed).
func Value[T string | []byte](v T) bool {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		if x := word(v, i); below(x, ' ') || has(x, 0x7f) {
			break // a control byte or a tab in these eight: the loop below tells which
		}
	}
	for ; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// NameSafe reports whether k can be written as a field name without breaking the head it is written in: not
// empty, no space or control byte, no colon, nothing from DEL up (net/http writes no other names either).
func NameSafe(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ { // (names are short: eight bytes at a time gains nothing here)
		if c := k[i]; c <= ' ' || c == ':' || c >= 0x7f {
			return false
		}
	}
	return true
}

// LineBreak reports whether v holds a CR or an LF (a value that must be cleaned before it is written).
func LineBreak(v string) bool {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		if x := word(v, i); has(x, '\r') || has(x, '\n') {
			return true
		}
	}
	for ; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			return true
		}
	}
	return false
}

// Eight bytes at a time (SWAR): Value and LineBreak test a word for a byte below or equal to a value with a
// few arithmetic operations instead of one comparison per byte (values such as User-Agent or Cookie run to
// hundreds of bytes); each test is exact for the word as a whole (it may not tell which byte).
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// word is s[i:i+8] as a little-endian word (the compiler makes the eight loads one).
func word[T string | []byte](s T, i int) uint64 {
	w := s[i : i+8] // (indexing s[i+1] and on checked each index apart, which kept the loads apart too)
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// below reports whether a byte of x is less than n (n <= 128).
func below(x, n uint64) bool { return (x-ones*n)&^x&highs != 0 }

// has reports whether a byte of x equals b.
func has(x, b uint64) bool { return below(x^(ones*b), 1) }

// HeadEnd returns the length of the head that starts b, up to and including the empty line that ends it,
// or -1 when b holds none: the first "\r\n\r\n" (bytes.Index's answer, plus 4), or with lf also the first
// "\n\n" if that comes earlier (a response head may end its lines with bare LFs). It walks from line feed to
// line feed (bytes.IndexByte, many bytes a step) and checks only around them: bytes.Index for "\r\n\r\n"
// stopped at every CR and compared there (600 instructions for a short head).
func HeadEnd(b []byte, lf bool) int {
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j
		if n := blankAt(b, i, lf); n > 0 {
			return n
		}
	}
}

// blankAt is HeadEnd's check at b[j]: when it is the line feed before an empty line, the head's length.
func blankAt(b []byte, j int, lf bool) int {
	switch {
	case b[j] != '\n':
	case lf && j+1 < len(b) && b[j+1] == '\n':
		return j + 2
	case j >= 1 && j+2 < len(b) && b[j-1] == '\r' && b[j+1] == '\r' && b[j+2] == '\n':
		return j + 3
	}
	return 0
}

// NextField takes the field line at the start of s: a token name, a colon, the value (optional white space
// around it) and the line end, CRLF (or a bare LF, when lf is set). It returns the name, whether it is
// already canonical (as textproto.CanonicalMIMEHeaderKey would make it: used as it is, no copy), the value
// without the white space around it and what follows the line. On the empty line that ends a head, end is
// set (name and value empty). ok is false for anything else: a folded line, no colon, a name that is not a
// token, a control byte in the value, no line end in s; the caller then leaves the head to a parser that
// names the fault. One pass over the line: the name's bytes through the class table up to the colon, the
// value's eight at a time up to the line end.
func NextField[T string | []byte](s T, lf bool) (name, value, rest T, canonical, end, ok bool) {
	if len(s) > 0 && (s[0] == '\r' || s[0] == '\n') {
		switch {
		case len(s) >= 2 && s[0] == '\r' && s[1] == '\n':
			return name, value, s[2:], false, true, true
		case lf && s[0] == '\n':
			return name, value, s[1:], false, true, true
		}
		return
	}
	i := 0
	want, bad := uint8(cLower), uint8(0) // want: the case that is wrong here (lower at the start, after '-')
	for ; i < len(s); i++ {
		cl := nameClass[s[i]]
		if cl&cToken == 0 {
			break
		}
		bad |= cl & want
		want = cl >> cNextShift
	}
	if i == 0 || i == len(s) || s[i] != ':' {
		return
	}
	j := i + 1
	for j+8 <= len(s) {
		x := word(s, j)
		z := x ^ (ones * 0x7f)
		// the high bit of each byte below ' ' or equal to DEL; the lowest one set is exact (a borrow only
		// marks bytes above it)
		if m := ((x-ones*' ')&^x | (z-ones)&^z) & highs; m != 0 {
			j += bits.TrailingZeros64(m) / 8
			if s[j] != '\t' {
				break
			}
			j++ // a tab belongs to the value
			continue
		}
		j += 8
	}
	for ; j < len(s); j++ {
		if c := s[j]; c < ' ' && c != '\t' || c == 0x7f {
			break
		}
	}
	switch {
	case j+1 < len(s) && s[j] == '\r' && s[j+1] == '\n':
		rest = s[j+2:]
	case lf && j < len(s) && s[j] == '\n':
		rest = s[j+1:]
	default:
		return
	}
	return s[:i], TrimOWS(s[i+1 : j]), rest, bad == 0, false, true
}

// nameClass classes the bytes of a field name for NextField.
var nameClass = func() (t [256]uint8) {
	for c := range 128 {
		if httpguts.IsTokenRune(rune(c)) {
			t[c] |= cToken
		}
		switch {
		case 'a' <= c && c <= 'z':
			t[c] |= cLower
		case 'A' <= c && c <= 'Z':
			t[c] |= cUpper
		}
		next := uint8(cUpper) // the case that is wrong after c: upper, but lower after a dash
		if c == '-' {
			next = cLower
		}
		t[c] |= next << cNextShift
	}
	return t
}()

// nameClass bits: the case of a letter, whether the byte is a token character, and (from cNextShift up) the
// case that is wrong for the byte after it, so that NextField's loop needs one shift to carry it.
const (
	cLower = 1 << iota
	cUpper
	cToken

	cNextShift = 4
)

// AppendField appends the field line "k: v\r\n" to b.
func AppendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	return append(b, "\r\n"...)
}

// CutByte is strings.Cut for a one-byte separator, without strings.Index's choice of search (the head
// parsers cut every line this way).
func CutByte(s string, c byte) (before, after string, found bool) {
	if i := strings.IndexByte(s, c); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// TrimOWS trims the optional white space (spaces and tabs) around a field value.
func TrimOWS[T string | []byte](s T) T {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// Length parses a Content-Length value: one to eighteen decimal digits, nothing else (no sign, no space),
// as net/http requires.
func Length[T string | []byte](v T) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// First is h.Get(key) for a key already in canonical form, without canonicalising it again.
func First(h http.Header, key string) string { return FirstOf(h[key]) }

// FirstOf is a field's first value, "" when it has none.
func FirstOf(vs []string) string {
	if len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Status returns the decimal form of a status code. Codes 100–599 come from a table built once, so
// recording $upstream_status for every request allocates nothing (strconv.Itoa allocates above 99).
func Status(code int) string {
	if code >= 100 && code < 100+len(statusStrings) {
		return statusStrings[code-100]
	}
	return strconv.Itoa(code)
}

// statusStrings holds "100" to "599"; it is never written after it is built.
var statusStrings = func() (t [500]string) {
	for i := range t {
		t[i] = strconv.Itoa(100 + i)
	}
	return t
}()

// Reason is nginx's reason phrase for code (ngx_http_status_lines): "Moved Temporarily" for 302, "Not Allowed"
// for 405, "Gateway Time-out" for 504, …, and "" for a code nginx has none for (its status line is then "418 ").
// 1xx codes, which nginx never writes itself, get net/http's.
func Reason(code int) string {
	if code < 200 || code >= len(reasons) {
		return http.StatusText(code)
	}
	return reasons[code]
}

// reasons is nginxReasons indexed by code (no map lookup per response).
var reasons = func() (t [600]string) {
	for code, r := range nginxReasons {
		t[code] = r
	}
	return t
}()

// nginxReasons are nginx 1.22's status lines, by code.
var nginxReasons = map[int]string{
	200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 206: "Partial Content",
	301: "Moved Permanently", 302: "Moved Temporarily", 303: "See Other", 304: "Not Modified",
	307: "Temporary Redirect", 308: "Permanent Redirect",
	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
	405: "Not Allowed", 406: "Not Acceptable", 408: "Request Time-out", 409: "Conflict", 410: "Gone",
	411: "Length Required", 412: "Precondition Failed", 413: "Request Entity Too Large",
	414: "Request-URI Too Large", 415: "Unsupported Media Type", 416: "Requested Range Not Satisfiable",
	421: "Misdirected Request", 429: "Too Many Requests",
	500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
	503: "Service Temporarily Unavailable", 504: "Gateway Time-out", 505: "HTTP Version Not Supported",
	507: "Insufficient Storage",
}

// ContainsFold reports whether list has s, ignoring ASCII case (header names in *_pass_header and the like); the
// length and first byte are compared before EqualFold, which most names differ in.
func ContainsFold(list []string, s string) bool {
	for _, x := range list {
		if len(x) == len(s) && len(s) > 0 && x[0]|0x20 == s[0]|0x20 && strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
