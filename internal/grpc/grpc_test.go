package grpc

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/vars"
)

func TestPeerHost(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"tcp", "127.0.0.1:50051"},
		{"tcp", "[::1]:443"},
		{"unix", "/run/grpc/app.sock"},
		{"unix", "/tmp/a b:c.sock"},
	} {
		if n, a := dialAddr(peerHost(tc.network, tc.addr)); n != tc.network || a != tc.addr {
			t.Errorf("%s %s: dialAddr(peerHost) = %s %s", tc.network, tc.addr, n, a)
		}
	}
}

// TestOutRequest: the fields sent to the server are the client's less the connection's own, Host (which
// becomes :authority) and Content-Length; TE goes on as "trailers" when the client asked for trailers;
// grpc_set_header replaces, adds (a repeated name) and removes (an empty value), and Host sets :authority.
func TestOutRequest(t *testing.T) {
	tab := vars.NewTable()
	tmpl := func(s string) *vars.Template {
		v, err := vars.Compile(s, tab)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name      string
		in        http.Header
		set       []config.HeaderSet
		pass      config.GRPCPass
		authority string
		want      http.Header
	}{
		{"defaults", http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}, "Connection": {"x-hop"}, "X-Hop": {"1"},
			"Upgrade": {"h2c"}, "Content-Length": {"5"}, "X_under": {"u"}, "Grpc-Timeout": {"1S"}},
			nil, config.GRPCPass{Network: "tcp", Addr: "127.0.0.1:50051"}, "127.0.0.1:50051",
			http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}, "Grpc-Timeout": {"1S"}}},
		{"te without trailers", http.Header{"Te": {"gzip"}}, nil, config.GRPCPass{Network: "unix", Addr: "/s"}, "localhost", http.Header{}},
		{"set", http.Header{"X-A": {"client"}, "X-B": {"client"}},
			[]config.HeaderSet{{Key: "X-A", Value: tmpl("one")}, {Key: "X-A", Value: tmpl("two"), Again: true}, {Key: "X-B", Value: tmpl("")}, {Key: "Host", Value: tmpl("svc.internal")}},
			config.GRPCPass{Network: "tcp", Addr: "pool"}, "svc.internal",
			http.Header{"X-A": {"one", "two"}}},
	} {
		c := &config.LocConf{GRPC: &tc.pass}
		c.GRPCSetHeaders.V = tc.set
		r := &http.Request{Method: "POST", RequestURI: "/pkg.Svc/Call", Header: tc.in, ProtoMajor: 2}
		h := NewHandler(slog.New(slog.NewTextHandler(io.Discard, nil)))
		out, ok := h.outRequest(&Request{R: r, V: &vars.Request{}, Conf: c, Log: h.Log})
		if !ok {
			t.Fatalf("%s: refused", tc.name)
		}
		if out.Host != tc.authority || out.URL.Opaque != "/pkg.Svc/Call" {
			t.Errorf("%s: authority %q path %q", tc.name, out.Host, out.URL.Opaque)
		}
		for k, v := range tc.want {
			if !slices.Equal(out.Header[k], v) {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, out.Header[k], v)
			}
		}
		if len(out.Header) != len(tc.want) {
			t.Errorf("%s: header %v, want %v", tc.name, out.Header, tc.want)
		}
	}
}
