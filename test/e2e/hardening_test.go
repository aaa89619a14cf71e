package e2e

import (
	"net/http"
	"strconv"
	"testing"
)

// TestHardeningFromReview covers defects found in review: each case is what a client or upstream would see.
func TestHardeningFromReview(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	raw := newRawBackend(t, "HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 25\r\n\r\n<script>alert(1)</script>")
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /api { proxy_pass http://127.0.0.1:{{ECHO}}/; }
        location /raw { proxy_pass http://127.0.0.1:{{RAW}}; }
    }
}
`, "PORT", port, "ECHO", echo.Port, "RAW", raw.Port))
	base := "http://" + addr(port)
	client := &http.Client{}

	t.Run("underscore headers are not forwarded", func(t *testing.T) {
		r := get(t, client, base+"/x", http.Header{"X_real_ip": {"6.6.6.6"}, "X-Ok": {"1"}})
		seen := decodeSeen(t, r.Body)
		if seen.Header.Get("X_real_ip") != "" || seen.Header.Get("X-Ok") != "1" {
			t.Errorf("upstream saw %v", seen.Header)
		}
	})
	t.Run("no Content-Type is invented", func(t *testing.T) {
		r := get(t, client, base+"/raw", nil)
		if ct, ok := r.Header["Content-Type"]; ok {
			t.Errorf("client got Content-Type %q; the upstream sent none", ct)
		}
	})
	t.Run("dot segment with parameter is refused", func(t *testing.T) {
		c := rawConn(t, addr(port), nil)
		rs := rawExchange(t, c, "GET /public/..;/admin HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
		if rs[0].StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", rs[0].StatusCode)
		}
	})
	t.Run("a // target stays origin-form upstream", func(t *testing.T) {
		r := get(t, client, base+"/api/evil.com/admin", nil)
		seen := decodeSeen(t, r.Body)
		if seen.URI != "//evil.com/admin" || seen.Host != "127.0.0.1:"+strconv.Itoa(echo.Port) {
			t.Errorf("upstream saw URI %q Host %q", seen.URI, seen.Host)
		}
	})
	t.Run("HTTP/1.0 without Host gets the default server", func(t *testing.T) {
		c := rawConn(t, addr(port), nil)
		rs := rawExchange(t, c, "GET /hc HTTP/1.0\r\n\r\n", "GET")
		if rs[0].StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", rs[0].StatusCode)
		}
	})
}
