package tunnel

import (
	"net/http"
	"strings"
	"testing"
)

func TestAcceptKey(t *testing.T) {
	// The example from RFC 6455 §1.3.
	if got, want := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Fatalf("AcceptKey = %q, want %q", got, want)
	}
	long := strings.Repeat("k", 300) // longer than the stack buffer
	if AcceptKey(long) == AcceptKey(long[:299]) {
		t.Fatal("AcceptKey ignores the tail of a long key")
	}
}

func TestRequestedProtocol(t *testing.T) {
	tests := []struct {
		name         string
		header       http.Header
		major, minor int
		want         string
		ok           bool
	}{
		{"websocket", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, 1, 1, "websocket", true},
		{"mixed case", http.Header{"Connection": {"UPGRADE"}, "Upgrade": {"WebSocket"}}, 1, 1, "websocket", true},
		{"keep-alive list", http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}, 1, 1, "websocket", true},
		{"list with tabs", http.Header{"Connection": {"keep-alive,\tupgrade\t"}, "Upgrade": {"websocket"}}, 1, 1, "websocket", true},
		{"second Connection line", http.Header{"Connection": {"keep-alive", "upgrade"}, "Upgrade": {"websocket"}}, 1, 1, "websocket", true},
		{"other protocol lower-cased", http.Header{"Connection": {"upgrade"}, "Upgrade": {"TLS/1.2"}}, 1, 1, "tls/1.2", true},
		{"h2c refused", http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}}, 1, 1, "", false},
		{"h2c skipped in list", http.Header{"Connection": {"upgrade"}, "Upgrade": {"h2c, websocket"}}, 1, 1, "websocket", true},
		{"HTTP/1.0 refused", http.Header{"Connection": {"upgrade"}, "Upgrade": {"websocket"}}, 1, 0, "", false},
		{"HTTP/2 refused", http.Header{"Connection": {"upgrade"}, "Upgrade": {"websocket"}}, 2, 0, "", false},
		{"no Connection", http.Header{"Upgrade": {"websocket"}}, 1, 1, "", false},
		{"Connection without upgrade token", http.Header{"Connection": {"keep-alive, upgrade-insecure"}, "Upgrade": {"websocket"}}, 1, 1, "", false},
		{"no Upgrade", http.Header{"Connection": {"upgrade"}}, 1, 1, "", false},
		{"empty Upgrade", http.Header{"Connection": {"upgrade"}, "Upgrade": {" "}}, 1, 1, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RequestedProtocol(tt.header, tt.major, tt.minor)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("RequestedProtocol = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCheckResponse(t *testing.T) {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	wsReq := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {key}}
	good := func() *http.Response {
		return &http.Response{StatusCode: 101, Header: http.Header{
			"Connection":           {"Upgrade"},
			"Upgrade":              {"websocket"},
			"Sec-Websocket-Accept": {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
		}}
	}
	with := func(f func(*http.Response)) *http.Response { r := good(); f(r); return r }
	tests := []struct {
		name    string
		req     http.Header
		resp    *http.Response
		wantErr string // substring; "" = no error
	}{
		{"good", wsReq, good(), ""},
		{"good mixed case", wsReq, with(func(r *http.Response) {
			r.Header.Set("Upgrade", "WebSocket")
			r.Header.Set("Connection", "keep-alive, UPGRADE")
		}), ""},
		{"no key sent, no accept needed", http.Header{"Connection": {"upgrade"}, "Upgrade": {"websocket"}},
			with(func(r *http.Response) { r.Header.Del("Sec-Websocket-Accept") }), ""},
		{"other protocol", http.Header{"Connection": {"upgrade"}, "Upgrade": {"foo/2"}},
			&http.Response{StatusCode: 101, Header: http.Header{"Connection": {"upgrade"}, "Upgrade": {"FOO/2"}}}, ""},
		{"one of several offered", http.Header{"Connection": {"upgrade"}, "Upgrade": {"foo, bar"}},
			&http.Response{StatusCode: 101, Header: http.Header{"Connection": {"upgrade"}, "Upgrade": {"bar"}}}, ""},
		{"wrong status", wsReq, with(func(r *http.Response) { r.StatusCode = 200 }), "status 200"},
		{"nil response", wsReq, nil, "no upstream response"},
		{"missing Connection", wsReq, with(func(r *http.Response) { r.Header.Del("Connection") }), "Connection: upgrade"},
		{"Connection without upgrade", wsReq, with(func(r *http.Response) { r.Header.Set("Connection", "keep-alive") }), "Connection: upgrade"},
		{"missing Upgrade", wsReq, with(func(r *http.Response) { r.Header.Del("Upgrade") }), "lacks an Upgrade"},
		{"wrong protocol", wsReq, with(func(r *http.Response) { r.Header.Set("Upgrade", "tls/1.2") }), `switched to "tls/1.2"`},
		{"h2c never accepted", http.Header{"Connection": {"upgrade"}, "Upgrade": {"h2c, websocket"}},
			with(func(r *http.Response) { r.Header.Set("Upgrade", "h2c") }), `switched to "h2c"`},
		{"bad accept", wsReq, with(func(r *http.Response) { r.Header.Set("Sec-Websocket-Accept", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=") }), "does not match"},
		{"missing accept", wsReq, with(func(r *http.Response) { r.Header.Del("Sec-Websocket-Accept") }), "lacks Sec-WebSocket-Accept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckResponse(tt.req, tt.resp)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("CheckResponse: unexpected error %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("CheckResponse: no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("CheckResponse error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func BenchmarkRequestedProtocol(b *testing.B) {
	h := http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"WebSocket"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := RequestedProtocol(h, 1, 1); !ok {
			b.Fatal("not an upgrade")
		}
	}
}
