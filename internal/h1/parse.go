package h1

import (
	"bufio"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sluice-proxy/sluice/internal/httpsyntax"
)

// parseHead parses the ordinary request heads (origin-form URI, HTTP/1.0 or 1.1, CRLF lines, no
// Transfer-Encoding, at most one Host and one Content-Length) straight from the connection's buffer into a
// Request, with one string for the whole head and one slice for every header value. It returns the head's
// length, or 0, having consumed nothing, for anything else, which http.ReadRequest then parses: the fast path never accepts a head
// http.ReadRequest refuses, and yields the same Request for those it takes (FuzzParseHead checks both).
//
// net/http's parse was 12% of the CPU of a proxied request: a textproto reader, a string per line and a
// []string per header, a Request and a context copy of it.
//
// hint, when not 0, is the head's length as already found in the buffer.
//
// st, when not nil, is storage for the URL and the first values (the request's own: see reqStore).
func parseHead(br *bufio.Reader, tmpl *http.Request, hint int, st *reqStore) int {
	end := -1
	var b []byte
	if hint > 0 && hint <= br.Buffered() {
		b, _ = br.Peek(br.Buffered())
		end = hint
	}
	for end < 0 {
		b, _ = br.Peek(br.Buffered())
		if end = httpsyntax.HeadEnd(b, false); end >= 0 {
			break
		}
		if br.Buffered() == br.Size() {
			return 0 // longer than the buffer: net/http reads it in pieces
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return 0 // the error is http.ReadRequest's to report
		}
	}
	if !parseHeadBytes(b[:end], tmpl, st) {
		return 0
	}
	br.Discard(end)
	return end
}

// maxNames is how many distinct field names parseHeadBytes takes; a head with more goes to ReadRequest.
const maxNames = 32

// plainURL is url.ParseRequestURI's result for an origin-form target whose path holds only characters that
// need no escaping (so Path is the path as sent and RawPath is empty), without its parse; false for others.
func plainURL(uri string, u *url.URL) (*url.URL, bool) {
	path, query, hasQuery := httpsyntax.CutByte(uri, '?')
	for i := 0; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			return nil, false
		}
	}
	if u == nil {
		u = new(url.URL)
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return u, true
}

// reqStore is storage for what the fast path would otherwise allocate per request: the URL and the backing
// array of the first values. It lives in the request's response (one allocation), as long as the request.
// base, when set, is a zero request whose context is that response's: a parse starts from it, so that a
// response the connection reuses hands its parsed request to the handler without WithContext's copy.
type reqStore struct {
	url  url.URL
	vals [8]string
	base *http.Request
}

// plainPathByte marks the bytes url.URL keeps unescaped in a path: unreserved characters and the reserved ones
// RFC 3986 allows in a path segment (but not !'()*, which url.URL.EscapedPath escapes).
var plainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~/$&+,:;=@" {
		t[c] = true
	}
	return t
}()

// parseHeadBytes parses head (a whole head, ending in an empty line) into r; false: not a head the fast path
// takes. A header map in r is cleared and filled instead of a new one made; st (nil: none) holds the URL and
// the first values.
func parseHeadBytes(head []byte, r *http.Request, st *reqStore) bool {
	s := string(head) // the one copy: every string of the Request is a part of it
	line, rest, _ := httpsyntax.CutByte(s, '\n')
	line, cr := strings.CutSuffix(line, "\r")
	method, rest1, ok1 := httpsyntax.CutByte(line, ' ')
	uri, proto, ok2 := httpsyntax.CutByte(rest1, ' ')
	if !cr || !ok1 || !ok2 || !httpsyntax.Token(method) || len(uri) == 0 || uri[0] != '/' || !validURI(uri) {
		return false
	}
	var minor int
	switch proto {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		return false
	}
	var su *url.URL
	if st != nil {
		su = &st.url
	}
	u, ok := plainURL(uri, su)
	if !ok {
		var err error
		if u, err = url.ParseRequestURI(uri); err != nil {
			return false
		}
	}
	// count the header lines first, so every value can share one backing array as in textproto
	n := strings.Count(rest, "\n") - 1 // a bare LF is refused below: this counts the CRLF lines, quickly
	if n < 0 {
		return false
	}
	h := r.Header // a cleared map the connection reuses, if it has one
	if h == nil {
		h = make(http.Header, n)
	} else if len(h) > 0 {
		clear(h)
	}
	var vals []string
	if st != nil && n <= len(st.vals) {
		vals = st.vals[:n]
	} else {
		vals = make([]string, n)
	}
	host, hosts, cl, cls := "", 0, int64(0), 0
	pragmaNoCache := false
	// the fields gathered here and put in the map once each at the end: a lookup before every assignment (for
	// a repeated name) cost as much as the assignment
	// (most heads have a few fields: their arrays are small, as zeroing the large ones cost 150 instructions)
	var names8 [8]string
	var slots8 [8][]string
	names, slots := names8[:], slots8[:]
	if n > len(names8) {
		var namesMax [maxNames]string
		var slotsMax [maxNames][]string
		names, slots = namesMax[:], slotsMax[:]
	}
	nf := 0
	for {
		name, value, next, canonical, end, ok := httpsyntax.NextField(rest, false)
		if !ok {
			return false // a bare LF, no name, a bad name or value
		}
		if rest = next; end {
			break
		}
		if !canonical {
			name = textproto.CanonicalMIMEHeaderKey(name)
		}
		switch name {
		case "Host":
			hosts++
			host = value
			continue
		case "Content-Length":
			cls++
			v, ok := httpsyntax.Length(value)
			if !ok {
				return false
			}
			cl = v
		case "Transfer-Encoding":
			return false
		case "Pragma":
			pragmaNoCache = pragmaNoCache || value == "no-cache"
		}
		i := 0
		for i < nf && (len(names[i]) != len(name) || names[i] != name) {
			i++
		}
		switch {
		case i < nf:
			slots[i] = append(slots[i], value)
		case nf == len(names):
			return false // more distinct names than gathered here: ReadRequest parses the head
		case len(vals) > 0:
			names[nf], slots[nf], vals = name, vals[:1:1], vals[1:]
			slots[nf][0] = value
			nf++
		default:
			names[nf], slots[nf] = name, []string{value}
			nf++
		}
	}
	if hosts > 1 || cls > 1 {
		return false
	}
	var connection []string
	cacheControl := false
	for i := range nf {
		h[names[i]] = slots[i]
		switch names[i] {
		case "Connection":
			connection = slots[i]
		case "Cache-Control":
			cacheControl = true
		}
	}
	if pragmaNoCache && !cacheControl {
		h["Cache-Control"] = []string{"no-cache"} // net/http's fixPragmaCacheControl
	}
	if st != nil && st.base != nil {
		*r = *st.base // zero but for the context (see reqStore)
	} else {
		*r = http.Request{}
	}
	r.Method, r.URL, r.Proto, r.ProtoMajor, r.ProtoMinor = method, u, proto, 1, minor
	r.Header, r.ContentLength, r.Host, r.RequestURI = h, cl, host, uri
	r.Close = shouldClose(minor, connection)
	return true
}

// shouldClose is net/http's reading of a request's Connection header.
func shouldClose(minor int, conn []string) bool {
	hasClose := httpguts.HeaderValuesContainsToken(conn, "close")
	if minor == 0 {
		return hasClose || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	}
	return hasClose
}

// validURI reports whether the request target holds only visible ASCII (anything else goes to net/http).
func validURI(u string) bool {
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// lengthBody is a request body of declared length read from the connection's buffer.
type lengthBody struct {
	br     *bufio.Reader
	remain int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.br.Read(p)
	b.remain -= int64(n)
	if err == io.EOF {
		if b.remain > 0 {
			err = io.ErrUnexpectedEOF
		}
	} else if err == nil && b.remain == 0 {
		err = io.EOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
