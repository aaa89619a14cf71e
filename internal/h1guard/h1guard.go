// Package h1guard refuses ambiguous HTTP/1.x request framing before net/http parses it. net/http "repairs"
// some framing (it drops Content-Length beside Transfer-Encoding, unfolds obs-fold, ignores Transfer-Encoding
// in HTTP/1.0); a front proxy that frames the same bytes differently can then smuggle a request. nginx refuses
// them with 400, and so does a connection wrapped by Wrap: it scans each request head as it passes through
// Read, follows the body framing to find the next head on a keep-alive connection, and never copies a body.
package h1guard

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/sluice-proxy/sluice/internal/httpsyntax"
)

// Violation is why a request head was refused and the status nginx answers it with. It is the error a
// guarded connection's Read returns once the server reads the refused head (the server answers it).
type Violation struct {
	Status int    // 400, 414, 494 (nginx's 400 "Request Header Or Cookie Too Large"), 501 or 505
	Reason string // completes nginx's "client sent …": `invalid header line`
	// More: the client sent more than the refused part (bytes after the line found wrong, or a line cut off
	// at the limit), so it may still be sending (lingering_close on lingers, as nginx does for a refused
	// request whose buffer holds more)
	More bool
	// Head is the refused head as far as it was read and accepted: the request line as sent (also one the
	// scanner refused), then the header lines before the one refused, CRLF-terminated. nginx's access log line
	// for the refused request shows that much of it ($request, $http_*).
	Head []byte
}

func (v *Violation) Error() string { return "client sent " + v.Reason }

type state uint8

const (
	stHead      state = iota // reading a request head, line by line
	stBody                   // Content-Length body: remain bytes
	stChunkSize              // a chunk-size line (size, extensions)
	stChunkData              // chunk data: remain bytes, then CRLF
	stTrailer                // trailer lines up to the empty line
	stAwait                  // after an Upgrade/CONNECT head: the response decides between tunnel and HTTP
	stOff                    // no longer guarding: a tunnel, or broken body framing (see broken)
)

// Scanner is the framing state of one connection's client-to-server byte stream. It holds at most one
// partial line (bounded by the head limit), never a body.
type Scanner struct {
	st       state
	maxHead  int   // bytes a head may have; past it net/http answers 431 itself and the scanner stops
	head     int   // bytes of the current head so far
	remain   int64 // body or chunk bytes still to skip (chunk data: including its CRLF)
	line     []byte
	text     []byte // the current head's lines so far, kept by the line-by-line scan for a refusal (Violation.Head)
	reqLine  bool   // the request line was seen
	http10   bool
	tunnel   bool // Upgrade header or CONNECT: the response may switch protocols
	clSeen   bool
	cl       int64
	teSeen   bool
	held     []byte // bytes read while waiting for an upgrade's answer (scanned if it is not a 101)
	connect  bool
	overflow bool // more than held can take arrived before an upgrade's answer
	violated *Violation
	// broken: the body's framing broke (a bad chunk). net/http fails that body itself; the connection is
	// refused if net/http ever reads another head on it.
	broken *Violation
	slow   bool // no fastHead (tests compare the two)
}

// NewScanner returns a scanner expecting a request head; maxHead bounds a head (large_client_header_buffers'
// size; +4096 of slack, net/http's figure).
func NewScanner(maxHead int) *Scanner { return &Scanner{maxHead: maxHead + 4096} }

// Scan follows p, the next bytes from the client. It returns the first violation found or nil, and with a
// violation how many bytes of p precede the refused head (earlier, complete requests that may be served).
func (s *Scanner) Scan(p []byte) (*Violation, int) {
	size, start := len(p), 0
	for len(p) > 0 && s.violated == nil {
		switch s.st {
		case stOff:
			return nil, 0
		case stAwait:
			if s.overflow || len(s.held)+len(p) > 4096 {
				s.overflow, s.held = true, nil // a tunnel's early data, or refused below if no tunnel follows
				return nil, 0
			}
			s.held = append(s.held, p...)
			return nil, 0
		case stBody:
			n := min(int64(len(p)), s.remain)
			p, s.remain = p[n:], s.remain-n
			if s.remain == 0 {
				s.next()
			}
		case stChunkData:
			n := min(int64(len(p)), s.remain)
			// the last two bytes of remain are the CRLF after the data
			if s.remain <= 2 {
				for i := int64(0); i < n; i++ {
					if want := "\r\n"[2-s.remain+i]; p[i] != want {
						s.breakBody()
						return nil, 0
					}
				}
			} else if n > s.remain-2 {
				for i := s.remain - 2; i < n; i++ {
					if want := "\r\n"[i-(s.remain-2)]; p[i] != want {
						s.breakBody()
						return nil, 0
					}
				}
			}
			p, s.remain = p[n:], s.remain-n
			if s.remain == 0 {
				s.st = stChunkSize
			}
		default: // line-oriented states
			if s.st == stHead && s.head == 0 {
				start = size - len(p)
				if !s.slow && len(s.line) == 0 {
					if n := s.fastHead(p); n > 0 {
						p = p[n:]
						continue
					}
				}
			}
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				if s.account(len(p)) {
					s.line = append(s.line, p...)
				}
				p = nil
				continue
			}
			l := p[:i+1]
			p = p[i+1:]
			if !s.account(len(l)) {
				continue
			}
			if len(s.line) > 0 {
				s.line = append(s.line, l...)
				l = s.line
			}
			s.lineDone(l)
			s.line = s.line[:0]
		}
	}
	if s.violated == nil {
		return nil, 0
	}
	s.violated.More = s.violated.More || len(p) > 0
	return s.violated, start
}

// fastHead takes a complete, ordinary head at the start of p in one pass and returns its length; 0 leaves p
// to the line-by-line scan, which then finds and names whatever made it unusual. Ordinary: a request line
// that is not CONNECT, token names, valid values, CRLF line ends, no leading empty line, at most one
// Content-Length, no Transfer-Encoding or Upgrade, within the head limit. It accepts only what the
// line-by-line scan accepts, and leaves the scanner as that would (FuzzFastHead); most heads are ordinary,
// and this costs about half as much.
func (s *Scanner) fastHead(p []byte) int {
	i := bytes.IndexByte(p, '\n')
	if i < 2 || p[i-1] != '\r' || i+1 > s.maxHead {
		return 0
	}
	l := p[:i-1]
	sp := 0
	for sp < len(l) && methodTable[l[sp]] {
		sp++
	}
	rest := l[min(sp+1, len(l)):]
	if sp == 0 || sp >= len(l) || l[sp] != ' ' || len(rest) < 10 || string(l[:sp]) == "CONNECT" {
		return 0
	}
	target, version := rest[:len(rest)-9], rest[len(rest)-9:]
	if string(version[:8]) != " HTTP/1." || (version[8] != '0' && version[8] != '1') {
		return 0
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return 0
		}
	}
	http10 := version[8] == '0'
	off := i + 1
	clSeen, cl := false, int64(0)
	for {
		name, value, rest, _, end, ok := httpsyntax.NextField(p[off:], false)
		if !ok || len(p)-len(rest) > s.maxHead {
			return 0
		}
		if off = len(p) - len(rest); end {
			break
		}
		switch len(name) {
		case len("content-length"):
			if !equalFold(name, "content-length") {
				break
			}
			n, ok := httpsyntax.Length(value)
			if clSeen || !ok {
				return 0
			}
			clSeen, cl = true, n
		case len("transfer-encoding"):
			if equalFold(name, "transfer-encoding") {
				return 0
			}
		case len("upgrade"):
			if equalFold(name, "upgrade") {
				return 0
			}
		}
	}
	s.head, s.reqLine, s.http10, s.clSeen, s.cl = off, true, http10, clSeen, cl
	s.endHead()
	return off
}

// account counts n more bytes of a line against the limits; past them the scanner stops guarding (net/http
// refuses an over-long head or chunk line itself) and reports false.
func (s *Scanner) account(n int) bool {
	s.head += n
	limit := s.maxHead
	if s.st != stHead {
		limit = 4096 // net/http's limit for a chunk line and for trailers is of this order
	}
	if s.head > limit {
		if s.st == stHead {
			// nginx: a request line longer than the buffer is a 414, a longer head a 400 "Request Header Or
			// Cookie Too Large" (its 494)
			if !s.reqLine {
				s.keep(s.line) // as much of the request line as was read
				s.fail(414, "too long URI")
			} else {
				s.fail(494, "too long header line")
			}
			s.violated.More = true // the line goes on
		} else {
			s.breakBody()
		}
		s.line = nil
		return false
	}
	return true
}

// breakBody stops following a body whose framing broke.
func (s *Scanner) breakBody() {
	s.st, s.line = stOff, nil
	s.broken = &Violation{Status: 400, Reason: "invalid chunked body"}
}

func (s *Scanner) fail(status int, reason string) {
	s.violated = &Violation{Status: status, Reason: reason, Head: s.text}
}

// keep adds a line (without its CRLF) of the current head to text, for a refusal's Violation.Head.
func (s *Scanner) keep(l []byte) {
	s.text = append(append(s.text, l...), '\r', '\n')
}

// lineDone handles one complete line (ending in LF) of a head, a chunk size or a trailer.
func (s *Scanner) lineDone(l []byte) {
	if len(l) < 2 || l[len(l)-2] != '\r' {
		if s.st == stHead {
			s.fail(400, "invalid header line (bare LF)")
		} else {
			s.breakBody()
		}
		return
	}
	l = l[:len(l)-2]
	switch s.st {
	case stChunkSize:
		s.chunkSize(l)
	case stTrailer:
		if len(l) == 0 {
			s.next()
		}
	case stHead:
		if bytes.IndexByte(l, '\r') >= 0 {
			s.fail(400, "invalid header line (bare CR)")
			return
		}
		if !s.reqLine {
			if len(l) > 0 { // empty lines before a request line are skipped, as nginx and RFC 9112 §2.2 do
				s.keep(l) // (also a refused one: nginx logs it as sent)
				s.requestLine(l)
			}
			return
		}
		if len(l) == 0 {
			s.endHead()
			return
		}
		s.header(l)
		if s.violated == nil {
			s.keep(l)
		}
	}
}

func (s *Scanner) requestLine(l []byte) {
	sp := bytes.IndexByte(l, ' ')
	last := bytes.LastIndexByte(l, ' ')
	if sp <= 0 || last == sp {
		s.fail(400, "invalid request")
		return
	}
	method, target, version := l[:sp], l[sp+1:last], l[last+1:]
	for _, c := range method {
		if !methodTable[c] {
			s.fail(400, "invalid method")
			return
		}
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			s.fail(400, "invalid request")
			return
		}
	}
	if len(target) == 0 || len(version) != 8 || string(version[:5]) != "HTTP/" || !isDigit(version[5]) || version[6] != '.' || !isDigit(version[7]) {
		s.fail(400, "invalid request")
		return
	}
	if version[5] != '1' {
		s.fail(505, "unsupported HTTP version")
		return
	}
	s.reqLine = true
	s.http10 = version[7] == '0'
	s.connect = string(method) == "CONNECT"
}

func (s *Scanner) header(l []byte) {
	if l[0] == ' ' || l[0] == '\t' {
		s.fail(400, "invalid header line (obs-fold)")
		return
	}
	colon := bytes.IndexByte(l, ':')
	if colon <= 0 {
		s.fail(400, "invalid header line")
		return
	}
	name := l[:colon]
	for _, c := range name {
		if !isToken(c) {
			s.fail(400, "invalid header name")
			return
		}
	}
	value := l[colon+1:]
	if !httpsyntax.Value(value) {
		s.fail(400, "invalid header value")
		return
	}
	switch {
	case equalFold(name, "content-length"):
		value = httpsyntax.TrimOWS(value) // (bytes.Trim builds its cutset per call)
		// a second Content-Length is refused even with the same value, as nginx does: net/http would fold
		// identical ones, a front proxy may frame by either
		n, ok := httpsyntax.Length(value)
		if s.clSeen {
			s.fail(400, `duplicate header line: "Content-Length"`)
		} else if !ok {
			s.fail(400, `invalid "Content-Length" header`)
		}
		s.clSeen, s.cl = true, n
	case equalFold(name, "transfer-encoding"):
		value = httpsyntax.TrimOWS(value)
		if s.teSeen {
			s.fail(400, `duplicate header line: "Transfer-Encoding"`)
		} else if !equalFold(value, "chunked") {
			s.fail(501, `unknown "Transfer-Encoding"`)
		}
		s.teSeen = true
	case equalFold(name, "upgrade"):
		s.tunnel = true
	}
}

// endHead checks the head as a whole and sets up its body's framing.
func (s *Scanner) endHead() {
	switch {
	case s.teSeen && s.http10:
		s.fail(400, `HTTP/1.0 request with "Transfer-Encoding" header`)
		return
	case s.teSeen && s.clSeen:
		s.fail(400, `"Content-Length" and "Transfer-Encoding" headers at the same time`)
		return
	}
	s.tunnel = s.tunnel || s.connect
	switch {
	case s.teSeen:
		s.st, s.head = stChunkSize, 0
	case s.cl > 0:
		s.st, s.remain = stBody, s.cl
	default:
		s.next()
	}
}

// next starts on what follows a request: the next head, or the wait for an upgrade's answer.
func (s *Scanner) next() {
	tunnel := s.tunnel
	text := s.text[:0]
	if cap(text) > 1024 {
		text = nil // an idle connection keeps no large copy
	}
	*s = Scanner{maxHead: s.maxHead, line: s.line[:0], text: text, connect: s.connect && tunnel, slow: s.slow}
	if tunnel {
		s.st = stAwait
	}
}

func (s *Scanner) chunkSize(l []byte) {
	if i := bytes.IndexByte(l, ';'); i >= 0 {
		l = l[:i]
	}
	l = bytes.TrimRight(l, " \t")
	if len(l) == 0 || len(l) > 15 {
		s.breakBody()
		return
	}
	var n int64
	for _, c := range l {
		switch {
		case isDigit(c):
			n = n<<4 | int64(c-'0')
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			n = n<<4 | int64(c|0x20-'a'+10)
		default:
			s.breakBody()
			return
		}
	}
	s.head = 0
	if n == 0 {
		s.st = stTrailer
		return
	}
	s.st, s.remain = stChunkData, n+2
}

// Answered tells the scanner the server's response to an Upgrade or CONNECT request begins with p: a 101
// (or a 2xx to CONNECT) hands the connection to a tunnel, anything else continues HTTP with the bytes the
// client sent meanwhile. It reports whether the scanner was waiting for that answer, and a violation in the
// held bytes.
func (s *Scanner) Answered(p []byte) (bool, *Violation) {
	if s.st != stAwait || len(p) < 12 || string(p[:7]) != "HTTP/1." {
		return false, nil
	}
	code := p[9:12]
	switch {
	case string(code) == "101" || s.connect && code[0] == '2':
		s.st, s.held = stOff, nil
		return true, nil
	case code[0] == '1': // 100 Continue and other interim answers
		return false, nil
	}
	held, overflow := s.held, s.overflow
	s.st, s.held, s.connect, s.overflow = stHead, nil, false, false
	if overflow {
		return true, &Violation{Status: 400, Reason: "request data while an upgrade was pending"}
	}
	v, _ := s.Scan(held)
	return true, v
}

// Guarding reports whether the scanner still follows the stream.
func (s *Scanner) Guarding() bool { return s.st != stOff }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isToken reports whether c may appear in a token (RFC 9110 §5.6.2): method and header names.
func isToken(c byte) bool { return tokenTable[c] }

var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// methodTable marks the bytes nginx takes in a method: upper-case letters, '_' and '-'. A method in another
// case ("get") is refused as nginx refuses it: an upstream that compares methods without case would take it
// for the GET that sluice's method rules (limit_except, CORS) did not see.
var methodTable = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	t['_'], t['-'] = true, true
	return t
}()

// equalFold compares b with the lower-case ASCII string s, ignoring b's case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != s[i] {
			return false
		}
	}
	return true
}

// Conn guards the request stream of one HTTP/1.x connection.
type Conn struct {
	net.Conn
	mu       sync.Mutex // the scanner: net/http's background read runs while a handler writes
	s        *Scanner
	awaiting atomic.Bool // the scanner waits for an upgrade's answer (checked by Write without the lock)
	// idle: net/http is between requests (reading a head), so a refusal cannot cut into a response. Set by
	// the server's ConnState hook; a new connection starts idle.
	idle    atomic.Bool
	pending atomic.Pointer[Violation] // a refused head not yet answered: an earlier request's response comes first
	// OnWriteTimeout, if set, is called with the connection under the guard the first time a write to the client
	// fails on its deadline (send_timeout), including net/http's own flush after a handler returned, which no
	// handler sees fail.
	OnWriteTimeout func(c net.Conn)
	timedOut       atomic.Bool
}

// Wrap guards c; maxHead is the head limit the server enforces (its MaxHeaderBytes).
func Wrap(c net.Conn, maxHead int) *Conn {
	g := &Conn{Conn: c, s: NewScanner(maxHead)}
	g.idle.Store(true)
	return g
}

// Pending reports whether a refused head waits to be answered: the next Read returns it without waiting for
// the socket.
func (c *Conn) Pending() bool { return c.pending.Load() != nil }

// SetMaxHead sets the head limit for the heads that follow (a reload may change it).
func (c *Conn) SetMaxHead(n int) {
	c.mu.Lock()
	c.s.maxHead = n + 4096
	c.mu.Unlock()
}

// SetIdle records whether net/http is between requests (http.StateIdle) or serving one.
func (c *Conn) SetIdle(idle bool) { c.idle.Store(idle) }

// Read passes the client's bytes on after scanning them. A refused head is never passed on: once the requests
// before it were answered, every Read returns its *Violation, which the server answers before it closes the
// connection.
func (c *Conn) Read(p []byte) (int, error) {
	if c.pending.Load() != nil {
		return c.refuseWhenIdle(p)
	}
	n, err := c.Conn.Read(p)
	if n == 0 {
		return n, err
	}
	c.mu.Lock()
	if !c.s.Guarding() {
		c.mu.Unlock()
		return n, err
	}
	v, keep := c.s.Scan(p[:n])
	c.awaiting.Store(c.s.st == stAwait)
	broken := c.s.broken
	c.mu.Unlock()
	if v == nil {
		if broken != nil {
			c.pending.Store(broken) // net/http sees the bad chunk and fails the body; no head follows it
		}
		return n, err
	}
	c.pending.Store(v)
	if keep > 0 {
		return keep, nil
	}
	return c.refuseWhenIdle(p)
}

// refuseWhenIdle returns the pending refusal once the server reads the next head. A read before that is a
// read during a response (the server's watch for a client gone): it waits on the socket as a real one would
// (the server ends it with a deadline), discarding what the client sends after the refused head.
func (c *Conn) refuseWhenIdle(p []byte) (int, error) {
	for !c.idle.Load() {
		if _, err := c.Conn.Read(p); err != nil {
			return 0, err
		}
	}
	return 0, c.pending.Load()
}

// Write passes the server's bytes on; the first answer to an upgrade request tells the scanner whether a
// tunnel follows.
func (c *Conn) Write(p []byte) (int, error) {
	if c.awaiting.Load() {
		c.mu.Lock()
		decided, v := c.s.Answered(p)
		if decided {
			c.awaiting.Store(false)
		}
		c.mu.Unlock()
		if v != nil {
			// the bytes held while the upgrade was pending start a bad head (not yet parsed by net/http, which
			// read at most one byte of it): the next Read refuses
			c.pending.Store(v)
		}
	}
	n, err := c.Conn.Write(p)
	c.wrote(err)
	return n, err
}

// ReadFrom lets net/http's response.ReadFrom reach the socket's (sendfile(2) for a static file on plain TCP).
// A connection that cannot, or an answer the guard must watch (one to an upgrade request), goes through Write.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok || c.awaiting.Load() {
		return io.Copy(writerOnly{c}, r)
	}
	n, err := rf.ReadFrom(r)
	c.wrote(err)
	return n, err
}

// wrote reports a write that failed on its deadline to OnWriteTimeout, once.
func (c *Conn) wrote(err error) {
	if err != nil && c.OnWriteTimeout != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.timedOut.Swap(true) {
		c.OnWriteTimeout(c.Conn)
	}
}

// writerOnly hides ReadFrom, so io.Copy uses Write.
type writerOnly struct{ io.Writer }

// Unwrap returns the connection under the guard, for a tunnel once net/http has handed the connection over.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// NetConn is the socket under the guard: an idle tunnel waits for its readability.
func (c *Conn) NetConn() net.Conn {
	if nc, ok := c.Conn.(interface{ NetConn() net.Conn }); ok {
		return nc.NetConn()
	}
	return c.Conn
}

// CloseWrite lets a tunnel half-close the client side through the guard.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
