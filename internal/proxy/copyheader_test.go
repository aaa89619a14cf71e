package proxy

import (
	"bufio"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
)

// TestCopyResponseHeaderList: walking the fields parseHead listed gives the client the same header, and notes
// the same fields, as walking the upstream's map (the form a response read by http.ReadResponse takes): hop-by-
// hop fields, fields the upstream's Connection names, hidden ones (by default, proxy_hide_header,
// proxy_pass_header), repeated ones, Location rewriting, a missing Content-Type.
func TestCopyResponseHeaderList(t *testing.T) {
	conf := &config.LocConf{}
	conf.ProxyHideHeaders.V = []string{"x-secret"}
	conf.ProxyPassHeaders.V = []string{"Server"}
	conf.ProxyRedirect = config.Opt[[]config.Redirect]{Set: true} // off: the Location is kept as sent
	for _, fields := range []string{
		"Content-Type: text/plain\r\nContent-Length: 2\r\nDate: x\r\nServer: up\r\n",
		"Connection: keep-alive, X-Foo\r\nKeep-Alive: timeout=5\r\nX-Foo: a\r\nX-Kept: b\r\nX-Kept: c\r\nContent-Length: 0\r\n",
		"X-Foo: a\r\nX-Kept: b\r\nConnection: X-Foo\r\nContent-Length: 0\r\n", // named before Connection comes
		"X-Secret: s\r\nX-Accel-Buffering: no\r\nX-Accel-Expires: 1\r\nLocation: /there\r\nRefresh: 1; url=/x\r\nContent-Length: 0\r\n",
		"Transfer-Encoding2: x\r\nTe: y\r\nTrailer: z\r\nUpgrade: w\r\nProxy-Authenticate: v\r\nContent-Length: 0\r\n",
	} {
		block := "HTTP/1.1 200 OK\r\n" + fields + "\r\n"
		var st respStore
		req := &http.Request{Method: http.MethodGet}
		resp, _ := parseHead([]byte(block), bufio.NewReader(strings.NewReader("")), req, &st)
		if resp == nil {
			t.Fatalf("parseHead refused %q", block)
		}
		list := st.fieldsOf(resp)
		if list == nil {
			t.Fatalf("no list for %q", block)
		}
		pr := &Request{Conf: conf}
		p := &Proxy{}
		viaList, viaMap := http.Header{}, http.Header{}
		ufList := p.copyResponseHeader(viaList, resp.Header, list, pr)
		ufMap := p.copyResponseHeader(viaMap, resp.Header, nil, pr)
		if !reflect.DeepEqual(viaList, viaMap) || ufList != ufMap {
			t.Errorf("%q:\nlist %v %+v\nmap  %v %+v", fields, viaList, ufList, viaMap, ufMap)
		}
		if _, ok := viaList["Keep-Alive"]; ok || viaList["X-Foo"] != nil || viaList["X-Secret"] != nil || viaList["Date"] != nil {
			t.Errorf("%q: hop-by-hop, named or hidden field copied: %v", fields, viaList)
		}
	}
	// an HTTP/1.1 "Connection: close" leaves the map, as net/http deletes it, and the list with it: the two
	// still agree, so the list is walked
	var st respStore
	resp, _ := parseHead([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n"), bufio.NewReader(strings.NewReader("")), &http.Request{Method: http.MethodGet}, &st)
	if resp == nil || len(st.fieldsOf(resp)) != 2 || resp.Header["Connection"] != nil || st.fields.Values("Connection") != nil {
		t.Errorf("Connection: close: resp %v, list %v; want a response, no Connection, a list of two", resp, st.fieldsOf(resp))
	}
}

// TestParseHeadListOnly: a store whose caller reads the list gets no header map, and its list answers for
// the header ($upstream_http_NAME) as the map does for a store that makes one.
func TestParseHeadListOnly(t *testing.T) {
	block := []byte("HTTP/1.1 200 OK\r\nX-Up: a\r\nset-cookie: 1\r\nSet-Cookie: 2\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	var withMap, listed respStore
	listed.listOnly = true
	req := &http.Request{Method: http.MethodGet}
	mresp, _ := parseHead(block, bufio.NewReader(strings.NewReader("")), req, &withMap)
	lresp, _ := parseHead(block, bufio.NewReader(strings.NewReader("")), req, &listed)
	if mresp == nil || lresp == nil {
		t.Fatal("parseHead refused the block")
	}
	if lresp.Header != nil || listed.hdr != nil {
		t.Errorf("list only: a header map was made: %v", lresp.Header)
	}
	if listed.fieldsOf(lresp) == nil {
		t.Error("list only: no list")
	}
	if _, ok := withMap.header(mresp).(http.Header); !ok {
		t.Error("with a map: the header is not the map")
	}
	for _, name := range []string{"X-Up", "Set-Cookie", "Connection", "Content-Length", "X-None"} {
		want := mresp.Header[name]
		if got := listed.header(lresp).Values(name); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: list %q, map %q", name, got, want)
		}
	}
}

// TestParseHeadNoContentWithLength: a 204 that declares a body is answered without one, and its connection is
// not reused (what the upstream writes after the head would be read as the next response); a 304's length is
// the representation's and keeps the connection.
func TestParseHeadNoContentWithLength(t *testing.T) {
	for _, tc := range []struct {
		head  string
		close bool
	}{
		{"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", true},
		{"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 204 No Content\r\n\r\n", false},
		{"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false},
	} {
		var st respStore
		resp, _ := parseHead([]byte(tc.head), bufio.NewReader(strings.NewReader("")), &http.Request{Method: http.MethodGet}, &st)
		if resp == nil || resp.Close != tc.close || resp.Body != http.NoBody {
			t.Errorf("%q: %v, want Close %v and no body", tc.head, resp, tc.close)
		}
	}
}
