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
	// a field count that differs from the map's (an HTTP/1.1 "Connection: close" is deleted from the map, as
	// net/http does) gives no list: the map is walked
	var st respStore
	resp, _ := parseHead([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), bufio.NewReader(strings.NewReader("")), &http.Request{Method: http.MethodGet}, &st)
	if resp == nil || st.fieldsOf(resp) != nil {
		t.Errorf("Connection: close: resp %v, list %v; want a response and no list", resp, st.fieldsOf(resp))
	}
}
