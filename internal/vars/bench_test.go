package vars

import (
	"net/netip"
	"testing"
	"time"
)

const combined = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`

func benchRequest(b *testing.B) *Request {
	hr := readRequest(b, "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\n"+
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0\r\nReferer: https://example.com/\r\n\r\n")
	return &Request{
		HTTP:          hr,
		Start:         time.Now(),
		RemoteAddr:    netip.MustParseAddrPort("192.0.2.10:51234"),
		URI:           "/index.html",
		Args:          "x=1",
		Status:        200,
		BodyBytesSent: 4321,
	}
}

func benchTemplate(b *testing.B, src string, tab *Table) *Template {
	tp, err := Compile(src, tab)
	if err != nil {
		b.Fatal(err)
	}
	return tp
}

// BenchmarkAccessLogAppend is the combined log format written into a reused buffer: 0 allocs/op.
func BenchmarkAccessLogAppend(b *testing.B) {
	tp := benchTemplate(b, combined, NewTable())
	r := benchRequest(b)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = tp.AppendEscaped(buf[:0], r, EscapeDefault)
	}
}

func BenchmarkProxyHeadersAppend(b *testing.B) {
	tp := benchTemplate(b, "$scheme://$host$request_uri|$proxy_add_x_forwarded_for|$http_upgrade", NewTable())
	r := benchRequest(b)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = tp.Append(buf[:0], r)
	}
}

// BenchmarkEvalSingleVar is `proxy_set_header Upgrade $http_upgrade`: the header string itself, 0 allocs.
func BenchmarkEvalSingleVar(b *testing.B) {
	tp := benchTemplate(b, "$http_user_agent", NewTable())
	r := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = tp.Eval(r)
	}
}

// BenchmarkEvalComputed is `proxy_set_header X-Real-IP $remote_addr` on a reused Request: the string only.
func BenchmarkEvalComputed(b *testing.B) {
	tp := benchTemplate(b, "$remote_addr", NewTable())
	r := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = tp.Eval(r)
	}
}

// BenchmarkMapWebSocket evaluates the WebSocket recipe's map on a fresh request each time (no cache hit).
func BenchmarkMapWebSocket(b *testing.B) {
	tab := NewTable()
	v := buildMap(b, tab, "$http_upgrade", "connection_upgrade", false, false,
		MapEntry{"default", "upgrade"}, MapEntry{"", "close"})
	base := benchRequest(b)
	base.HTTP.Header.Set("Upgrade", "WebSocket")
	b.ReportAllocs()
	for b.Loop() {
		r := Request{HTTP: base.HTTP}
		if r.Value(v) != "upgrade" {
			b.Fatal("wrong value")
		}
	}
}

func BenchmarkTimeLocal(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendTimeLocal(buf[:0], time.Now())
	}
}
