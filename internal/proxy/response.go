package proxy

import (
	"bufio"
	"io"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// parseHead parses a response header block (block: the status line, the header lines and the empty line that
// ends them) the way http.ReadResponse does, for the ordinary case only: CRLF or LF line ends, no folded
// lines, a three-digit status, no Transfer-Encoding, and a body bounded by one Content-Length or absent by
// status or method. The block becomes one string that names and values slice, instead of a string per line
// and value. It returns nil for anything else; http.ReadResponse then reads the block (with its errors).
// The caller consumes the block from br once it is accepted; the response, its header map and its body live in
// st (the caller's storage, reused across responses; nil: a new one).
func parseHead(block []byte, br *bufio.Reader, req *http.Request, st *respStore) (*http.Response, []string) {
	s := string(block)
	line, rest, _ := httpsyntax.CutByte(s, '\n')
	line = strings.TrimSuffix(line, "\r")
	proto, status, ok := httpsyntax.CutByte(line, ' ')
	if !ok {
		return nil, nil
	}
	status = strings.TrimLeft(status, " ")
	if len(status) < 3 || (len(status) > 3 && status[3] != ' ') || !digit(status[0]) || !digit(status[1]) || !digit(status[2]) || strings.IndexByte(status, '\r') >= 0 {
		return nil, nil
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		return nil, nil
	}
	code := int(status[0]-'0')*100 + int(status[1]-'0')*10 + int(status[2]-'0')

	// the fields are gathered first (names compared in a small array, not looked up in the map) and the map
	// is filled once
	// (most heads have a few fields: their arrays are small, as zeroing the large ones cost 150 instructions)
	lines := strings.Count(rest, "\n")
	var names8 [8]string
	var values8 [8][]string
	names, values := names8[:], values8[:]
	if lines > len(names8) {
		var namesMax [maxFields]string
		var valuesMax [maxFields][]string
		names, values = namesMax[:], valuesMax[:]
	}
	if st == nil {
		st = new(respStore)
	}
	// the values' backing array is the response's own, never the store's: the client's response header
	// holds these slices until it is written, which can be after the store went to another request
	var strs []string
	nf := 0
	var cl []string
	var conn []string
	for {
		k, v, next, canonical, end, ok := httpsyntax.NextField(rest, true)
		if !ok {
			return nil, nil // no line end (not a whole block), a folded line, a bad name or value
		}
		if rest = next; end {
			if rest != "" {
				return nil, nil // the block ends here, before where it was found to end
			}
			break
		}
		if !canonical {
			k = http.CanonicalHeaderKey(k)
		}
		switch k {
		case "Transfer-Encoding", "Pragma":
			return nil, nil
		}
		i := 0
		for i < nf && names[i] != k {
			i++
		}
		if i == len(names) {
			return nil, nil // more distinct fields than the array holds: ReadResponse reads them
		}
		if i == nf {
			if len(strs) == 0 {
				strs = make([]string, lines)
			}
			names[i], values[i], strs = k, strs[:1:1], strs[1:]
			values[i][0] = v
			nf++
		} else {
			values[i] = append(values[i], v)
		}
		switch k {
		case "Content-Length":
			cl = values[i]
		case "Connection":
			conn = values[i]
		}
	}
	st.fields.reset()
	for i := range nf {
		st.fields.add(names[i], values[i])
	}
	var h http.Header // nil when the caller reads the list (listOnly)
	if !st.listOnly {
		if h = st.hdr; h == nil {
			h = make(http.Header, nf)
			st.hdr = h
		} else {
			clear(h) // the previous response's (an interim one, or one an earlier request was done with)
		}
		for i := range nf {
			h[names[i]] = values[i]
		}
	}
	resp := &st.resp
	*resp = http.Response{Status: status, StatusCode: code, Proto: proto, ProtoMajor: major, ProtoMinor: minor, Header: h, Request: req, ContentLength: -1}
	if len(cl) > 1 {
		return nil, nil
	}
	if len(cl) == 1 {
		n, ok := httpsyntax.Length(cl[0]) // (more than 18 digits: left to ReadResponse)
		if !ok {
			return nil, nil
		}
		resp.ContentLength = n
	}
	noBody := req.Method == http.MethodHead || code/100 == 1 || code == http.StatusNoContent || code == http.StatusNotModified
	if !noBody && len(cl) == 0 {
		return nil, nil // delimited by the connection's end
	}
	var tokens []string
	for _, v := range conn {
		tokens = appendTokens(tokens, v)
	}
	// net/http's shouldClose
	hasClose := httpguts.HeaderValuesContainsToken(conn, "close")
	switch {
	case major < 1:
		resp.Close = true
	case major == 1 && minor == 0:
		resp.Close = hasClose || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	default:
		resp.Close = hasClose
		if hasClose {
			delete(h, "Connection")
			st.fields.del("Connection")
		}
	}
	if code == http.StatusNoContent && resp.ContentLength > 0 {
		// a 204 has no body (RFC 9110 §15.3.5) but this upstream declared one: whatever it writes after the
		// head would be read as the next response on this connection, so the connection is not reused
		resp.Close = true
	}
	switch {
	case noBody:
		if req.Method != http.MethodHead {
			resp.ContentLength = 0
		}
		resp.Body = http.NoBody
	case resp.ContentLength == 0:
		resp.Body = http.NoBody
	default:
		st.lb = lengthBody{br: br, n: resp.ContentLength}
		resp.Body = &st.lb
	}
	return resp, tokens
}

// maxFields is how many distinct header fields parseHead gathers; a response with more is left to
// http.ReadResponse.
const maxFields = 32

// respStore is what parseHead fills for a response, in one piece: the response, its body and its header map,
// and the same fields as a list in the order they came (see fieldsOf). The map and the list's array are kept
// (cleared) when the store is reused.
type respStore struct {
	resp   http.Response
	lb     lengthBody
	hdr    http.Header
	fields headerList
	// listOnly: the caller reads the header through the list alone (fieldsOf, Fields), so parseHead leaves
	// resp.Header nil instead of filling a map with the same fields (about 450 instructions a response, and
	// the map's clearing touched memory the list does not)
	listOnly bool
}

// respKeep is what a store keeps when it is reused for another response: its header map and its field
// list's array (neither cleared here: parseHead clears them before it fills them).
type respKeep struct {
	hdr    http.Header
	fields headerList
}

// kept returns st's reusable storage, for restore into the emptied store. (Building a new store around it
// and copying that in cost about 140 instructions per exchange.)
func (st *respStore) kept() respKeep { return respKeep{st.hdr, st.fields} }

// restore puts the storage k back into an emptied store.
func (st *respStore) restore(k respKeep) { st.hdr, st.fields = k.hdr, k.fields }

// fieldsOf returns the header of resp as a list when parseHead read it into st: copyResponseHeader walks the
// list instead of the map (a map walk costs a random start and a step per field: about 450 instructions for
// a response of three fields). The list and resp.Header hold the same fields, and nothing changes the map
// between the parse and the copy; nil for a response read by http.ReadResponse.
func (st *respStore) fieldsOf(resp *http.Response) []field {
	if resp != &st.resp || (!st.listOnly && len(st.fields.kv) != len(resp.Header)) {
		return nil
	}
	return st.fields.kv
}

// header returns resp's header for $upstream_http_NAME: the list when parseHead read resp into st, else
// resp's map.
func (st *respStore) header(resp *http.Response) vars.Fields {
	if resp == &st.resp && st.listOnly {
		return &st.fields
	}
	return resp.Header
}

// lengthBody is a body of known length read from the connection's reader, with net/http's body semantics:
// the last bytes come with io.EOF, an early end of the connection is io.ErrUnexpectedEOF.
type lengthBody struct {
	br     *bufio.Reader
	n      int64 // bytes left
	eof    bool
	closed bool
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof || b.n <= 0 {
		b.eof = true
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if err == io.EOF {
		b.eof = true
		if b.n > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	if err == nil && b.n == 0 {
		err = io.EOF
		b.eof = true
	}
	return n, err
}

// buffered returns the rest of the body when the reader holds all of it already (a small response arrives
// with its head), without consuming it (see consume); nil otherwise.
func (b *lengthBody) buffered() []byte {
	if b.closed || b.eof || b.n <= 0 || int64(b.br.Buffered()) < b.n {
		return nil
	}
	p, _ := b.br.Peek(int(b.n))
	return p
}

// consume ends a body whose rest buffered returned.
func (b *lengthBody) consume() {
	b.br.Discard(int(b.n))
	b.n, b.eof = 0, true
}

// Close marks the body closed; the transport closes the connection under an unfinished body.
func (b *lengthBody) Close() error {
	b.closed = true
	return nil
}

func digit(c byte) bool { return '0' <= c && c <= '9' }

// appendTokens adds the header names a Connection value lists (not close, keep-alive or upgrade).
func appendTokens(out []string, val string) []string {
	for val != "" {
		var tok string
		tok, val, _ = strings.Cut(val, ",")
		tok = strings.TrimSpace(tok)
		if tok != "" && !strings.EqualFold(tok, "close") && !strings.EqualFold(tok, "keep-alive") && !strings.EqualFold(tok, "upgrade") {
			out = append(out, tok)
		}
	}
	return out
}
