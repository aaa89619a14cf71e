// Package h2xconnect lets the HTTP/2 server accept extended CONNECT (RFC 8441, WebSocket over HTTP/2).
//
// golang.org/x/net/http2 (like the copy bundled in net/http) reads GODEBUG once, in its init function, and
// accepts extended CONNECT only when it contains http2xconnect=1. This package adds that setting to the
// process environment from its own init, which by the Go specification runs before theirs: packages are
// initialised in import-path order as soon as their imports are, this one imports only os and strings, and
// "github.com/…" sorts before "golang.org/…" and "net/…". Import it (blank) from every package that serves
// HTTP/2. Whether a listener advertises the setting is decided per connection by http2_extended_connect.
// An explicit http2xconnect=0 in the environment is respected.
package h2xconnect

import (
	"os"
	"strings"
)

func init() {
	g := os.Getenv("GODEBUG")
	if strings.Contains(g, "http2xconnect=") {
		return
	}
	if g != "" {
		g += ","
	}
	os.Setenv("GODEBUG", g+"http2xconnect=1")
}
