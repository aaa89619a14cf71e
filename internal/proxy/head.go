package proxy

import (
	"bufio"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sluice-proxy/sluice/internal/httpsyntax"
)

// writeHead writes a request without a body straight into bw, byte for byte as (*http.Request).Write would,
// without its formatting and transfer-writer allocations. Its header is hl, or r.Header when hl is nil. It
// returns false, having written nothing, for what it does not handle (a body, trailers, an unusual URL or
// Host): Write does those.
func writeHead(bw *bufio.Writer, r *http.Request, hl *headerList) bool {
	if (r.Body != nil && r.Body != http.NoBody) || r.ContentLength != 0 || r.TransferEncoding != nil || r.Trailer != nil || r.URL == nil {
		return false
	}
	u := r.URL
	uri := u.Opaque
	if uri == "" || uri[0] != '/' || strings.HasPrefix(uri, "//") || u.RawQuery != "" || u.ForceQuery || hasCTL(uri) {
		return false
	}
	host := r.Host
	if host == "" {
		host = u.Host
	}
	if host == "" || host[0] == '[' || !ascii(host) || !httpguts.ValidHostHeader(host) {
		return false
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	// the head is appended in the writer's free space and written with one Write (a call per piece cost
	// about 60 instructions each); a head larger than that space is appended to a new array
	b := bw.AvailableBuffer()
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	if hl == nil {
		var arr [32]field
		hl = &headerList{kv: arr[:0]}
		for k, v := range r.Header {
			hl.add(k, v)
		}
	}
	ua := "Go-http-client/1.1"
	if v, ok := hl.get("User-Agent"); ok {
		ua = ""
		if len(v) > 0 {
			ua = v[0]
		}
	}
	if ua != "" {
		b = appendField(b, "User-Agent", ua)
	}
	if conn, _ := hl.get("Connection"); r.Close && !hasCloseToken(conn) {
		b = append(b, "Connection: close\r\n"...)
	}
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		b = append(b, "Content-Length: 0\r\n"...)
	}
	// sorted by name, as net/http writes a map (the list is the request's: sorting it changes nothing else)
	slices.SortFunc(hl.kv, func(a, b field) int { return strings.Compare(a.name, b.name) })
	for _, f := range hl.kv {
		switch f.name {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !httpguts.ValidHeaderFieldName(f.name) {
			continue
		}
		for _, v := range f.vals {
			b = appendField(b, f.name, v)
		}
	}
	bw.Write(append(b, "\r\n"...))
	return true
}

// appendField appends a header line with its value as net/http writes it: CR and LF become spaces, then the
// value is trimmed.
func appendField(b []byte, k, v string) []byte {
	if httpsyntax.LineBreak(v) {
		v = strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
	}
	return httpsyntax.AppendField(b, k, textproto.TrimString(v))
}

// hasCloseToken reports whether Connection values carry the token "close" (net/http's hasToken).
func hasCloseToken(vals []string) bool {
	if len(vals) == 0 {
		return false
	}
	v := vals[0]
	for sp := 0; sp <= len(v)-5; sp++ {
		if b := v[sp]; b != 'c' && b != 'C' {
			continue
		}
		if !strings.EqualFold(v[sp:sp+5], "close") {
			continue
		}
		if (sp == 0 || isTokenBoundary(v[sp-1])) && (sp+5 == len(v) || isTokenBoundary(v[sp+5])) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
