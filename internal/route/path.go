package route

import (
	"bytes"
	"errors"
	"strings"
)

// ErrBadPath reports a request path that nginx would refuse with 400 Bad Request.
var ErrBadPath = errors.New("route: bad request path")

// Path states of the normalisation machine, after the last byte written.
const (
	stUsual  = iota // inside a segment
	stSlash         // just after a '/'
	stDot           // after "/."
	stDotDot        // after "/.."
)

// Normalize decodes %XX escapes, merges repeated slashes, and resolves "." and ".." segments, as
// nginx does before location matching. It returns ErrBadPath (-> the server answers 400) for a
// path that does not start with "/", contains a NUL (raw or %00), has a bad % escape, or whose
// ".." climbs above the root.
//
// Decoded bytes take part in the rules like raw ones ("%2F" is a slash and is merged, "%2e%2e"
// is ".."), except that a decoded "%" is never decoded again. A path that needs no change is
// returned as is, without allocating.
func Normalize(raw string) (string, error) {
	if raw == "" || raw[0] != '/' {
		return "", ErrBadPath
	}
	if isNormal(raw) {
		return raw, nil
	}

	// The result is never longer than raw; short paths are built on the stack.
	var stack [256]byte
	var buf []byte
	if len(raw) <= len(stack) {
		buf = stack[:1]
	} else {
		buf = make([]byte, 1, len(raw))
	}
	buf[0] = '/'
	state := stSlash
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case 0:
			return "", ErrBadPath
		case '%':
			if i+2 >= len(raw) {
				return "", ErrBadPath
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return "", ErrBadPath
			}
			c = hi<<4 | lo
			i += 2
			if c == 0 {
				return "", ErrBadPath
			}
		}
		switch c {
		case '/':
			switch state {
			case stSlash: // merge
			case stDot: // "/./": drop the dot
				buf = buf[:len(buf)-1]
			case stDotDot: // "/../": drop the previous segment
				var ok bool
				if buf, ok = up(buf); !ok {
					return "", ErrBadPath
				}
			default:
				buf = append(buf, '/')
			}
			state = stSlash
		case '.':
			buf = append(buf, '.')
			switch state {
			case stSlash:
				state = stDot
			case stDot:
				state = stDotDot
			default:
				state = stUsual
			}
		default:
			buf = append(buf, c)
			state = stUsual
		}
	}
	switch state {
	case stDot: // trailing "/." -> "/"
		buf = buf[:len(buf)-1]
	case stDotDot: // trailing "/.." -> parent "/"
		var ok bool
		if buf, ok = up(buf); !ok {
			return "", ErrBadPath
		}
	}
	return string(buf), nil
}

// isNormal reports whether Normalize would return p unchanged without decoding anything:
// no '%', no NUL, no "//" and no "/.".
func isNormal(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%', 0:
			return false
		case '/':
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
				return false
			}
		}
	}
	return true
}

// up removes a trailing ".." and the segment before it from buf, which ends in "/..", leaving
// a '/' at the end. ok is false when there is no segment left to remove.
func up(buf []byte) (_ []byte, ok bool) {
	buf = buf[:len(buf)-2]
	if len(buf) == 1 {
		return buf, false
	}
	j := bytes.LastIndexByte(buf[:len(buf)-1], '/')
	return buf[:j+1], true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// EscapePath re-encodes a normalised path for sending upstream (escape only what must be escaped
// in a path: see pathEscape), so that what is sent matches what was matched. This is the set nginx
// escapes for proxy_pass.
// A path with nothing to escape is returned as is, without allocating.
func EscapePath(p string) string { return Escape(p, pathEscape) }

// Escape %-escapes (upper-case hex) the bytes of s that set marks; s itself when none is.
func Escape(s string, set *[256]bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if set[s[i]] {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if set[c] {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// EscapeSet marks the bytes of extra, control bytes, space, DEL and every byte from 0x80: the sets nginx
// escapes, which differ only in the printable bytes they add.
func EscapeSet(extra string) *[256]bool {
	var t [256]bool
	for c := 0; c < 256; c++ {
		t[c] = c <= ' ' || c >= 0x7f
	}
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	return &t
}

// pathEscape marks the bytes nginx 1.22 escapes in a decoded path it sends upstream (observed from it): control
// bytes, space, DEL, bytes from 0x80, the double quote and #%?<>\^`{|}.
var pathEscape = EscapeSet("\"#%?<>\\^`{|}")
