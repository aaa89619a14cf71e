package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSCGI runs ruTorrent's recipe (include scgi_params; scgi_pass) against a real SCGI server, uWSGI's
// --scgi-socket with the WSGI app of TestUWSGI, on its unix socket and on TCP. The expected environ, answers and
// log lines are nginx 1.22's with the same configuration and application.
func TestSCGI(t *testing.T) {
	t.Parallel()
	sock, up := startUWSGIOn(t, "--scgi-socket")
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    client_max_body_size 20m;
    scgi_cache_path {{CACHE}} keys_zone=z:1m;
    upstream grp { server 127.0.0.1:{{DEAD}}; server 127.0.0.1:{{UP}}; }
    server {
        listen {{PORT}};
        server_name app.test;
        root /srv/app;
        location / { include scgi_params; scgi_pass unix:{{SOCK}}; }
        location /tcp/ { include scgi_params; scgi_pass 127.0.0.1:{{UP}}; }
        location /stream { include scgi_params; scgi_buffering off; scgi_pass 127.0.0.1:{{UP}}; }
        location /slow { include scgi_params; scgi_read_timeout 1s; scgi_pass 127.0.0.1:{{UP}}; }
        location /hidden { rewrite ^ /status break; include scgi_params; scgi_hide_header X-App; scgi_pass 127.0.0.1:{{UP}}; }
        location /cached/ { include scgi_params; scgi_cache z; scgi_cache_key $uri; scgi_cache_valid 200 1m; add_header X-C $upstream_cache_status; scgi_pass 127.0.0.1:{{UP}}; }
        location /down/ { include scgi_params; scgi_pass 127.0.0.1:{{DEAD}}; }
        location /group/ { include scgi_params; scgi_param UWSGI_SCHEME $scheme; scgi_pass grp; }
        location /bare/ { include scgi_params; scgi_pass_request_headers off; scgi_pass 127.0.0.1:{{UP}}; }
    }
}
`, "PORT", port, "UP", up, "SOCK", sock, "DEAD", freePort(t), "CACHE", t.TempDir()))
	c := httpClient(addr(port), nil)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := func(t *testing.T, method, path, body string, hdr map[string]string) map[string]string {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return appEnviron(t, c, req)
	}

	t.Run("environ over the unix socket", func(t *testing.T) {
		got := env(t, "GET", "/env?x=1&y=2", "", map[string]string{"X-Custom": "hi", "User-Agent": "e2e"})
		checkEnviron(t, got, map[string]string{"REQUEST_METHOD": "GET", "DOCUMENT_URI": "/env", "QUERY_STRING": "x=1&y=2",
			"REQUEST_URI": "/env?x=1&y=2", "CONTENT_LENGTH": "0", "CONTENT_TYPE": "", "SCGI": "1", "DOCUMENT_ROOT": "/srv/app",
			"SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_SCHEME": "http", "SERVER_NAME": "app.test", "SERVER_PORT": fmt.Sprint(port),
			"REMOTE_ADDR": "127.0.0.1", "HTTP_X_CUSTOM": "hi", "HTTP_USER_AGENT": "e2e", "HTTP_HOST": addr(port), "body": ""})
		if _, ok := got["PATH_INFO"]; ok {
			t.Errorf("PATH_INFO = %q: scgi_params sets none", got["PATH_INFO"])
		}
	})
	t.Run("POST over TCP", func(t *testing.T) {
		checkEnviron(t, env(t, "POST", "/tcp/env?q", "a=b&c=d", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}),
			map[string]string{"REQUEST_METHOD": "POST", "DOCUMENT_URI": "/tcp/env", "QUERY_STRING": "q",
				"CONTENT_LENGTH": "7", "CONTENT_TYPE": "application/x-www-form-urlencoded", "body": "a=b&c=d"})
	})
	t.Run("scgi_pass_request_headers off", func(t *testing.T) {
		got := env(t, "GET", "/bare/env", "", map[string]string{"X-Custom": "hi"})
		if got["HTTP_X_CUSTOM"] != "" || got["HTTP_HOST"] != "" || got["DOCUMENT_URI"] != "/bare/env" {
			t.Errorf("environ %v: want no HTTP_* fields", got)
		}
	})
	t.Run("upstream group fails over", func(t *testing.T) {
		checkEnviron(t, env(t, "GET", "/group/env", "", nil), map[string]string{"DOCUMENT_URI": "/group/env", "UWSGI_SCHEME": "http"})
		if !eventually(5*time.Second, func() bool {
			return strings.Contains(s.Log(), `connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: app.test, request: "GET /group/env HTTP/1.1", upstream: "scgi://127.0.0.1:`)
		}) {
			t.Errorf("no connect() failed line for the dead peer:\n%s", s.Log())
		}
	})
	t.Run("scgi_cache", func(t *testing.T) {
		for _, want := range []string{"MISS", "HIT"} {
			if r := get(t, c, url+"/cached/env", nil); r.StatusCode != 200 || r.Header.Get("X-C") != want {
				t.Errorf("%d X-C %q, want 200 %s", r.StatusCode, r.Header.Get("X-C"), want)
			}
		}
	})
	t.Run("a body both ways", func(t *testing.T) { echoMegabytes(t, c, url+"/echo") })

	t.Run("scgi_buffering off streams", func(t *testing.T) { appStreams(t, c, url+"/stream") })
	t.Run("status and fields of the app", func(t *testing.T) {
		appStatus(t, c, url+"/status")
		if r := get(t, c, url+"/hidden", nil); r.Body != "short and stout\n" || r.Header.Get("X-App") != "" || len(r.Header.Values("Set-Cookie")) != 2 {
			t.Errorf("scgi_hide_header X-App: %q %v", r.Body, r.Header)
		}
	})
	t.Run("the server down is 502", func(t *testing.T) { appFails(t, c, s, url, "scgi") })
	t.Run("scgi_read_timeout is 504", func(t *testing.T) { appTimesOut(t, c, s, url, "scgi") })
}
