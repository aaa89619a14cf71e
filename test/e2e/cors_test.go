//lint:file-ignore SA1019 h2Transport is x/net's HTTP/2 transport, the client that can send extended CONNECT

package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestCORS is the CORS matrix: allowed, disallowed, wildcard subdomains, *, credentials, preflights (answered
// by sluice, never by the upstream) and error responses (502, 404, error_page), each with Vary: Origin.
func TestCORS(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	dead := freePort(t)
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        cors_origins https://app.example.org https://*.example.net;
        cors_methods GET POST PUT;
        cors_headers Content-Type X-Token;
        cors_expose_headers X-Backend;
        cors_max_age 10m;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /dead { proxy_pass http://127.0.0.1:{{DEAD}}; }
        location /files/ { root html; }
        location /paged { proxy_pass http://127.0.0.1:{{DEAD}}; error_page 502 /50x.html; }
        location = /50x.html { root html; }
        location /creds { cors_credentials on; proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /any { cors_origins *; cors_headers *; proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /anycreds { cors_origins *; cors_credentials on; proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /off { cors_origins off; proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, []option{withFile("html/50x.html", []byte("sorry\n"))}, "ECHO", echo.Port, "DEAD", dead)

	const allowed, sub, evil = "https://app.example.org", "https://eu.api.example.net", "https://evil.example.com"
	cases := []struct {
		name, method, path, origin string
		hdr                        []string
		status                     int
		acao                       string // want Access-Control-Allow-Origin ("" = none)
		creds                      bool
		vary                       bool
	}{
		{"allowed exact", "GET", "/x", allowed, nil, 200, allowed, false, true},
		{"allowed case-insensitive host", "GET", "/x", "https://APP.example.org", nil, 200, "https://APP.example.org", false, true},
		{"allowed wildcard subdomain", "GET", "/x", sub, nil, 200, sub, false, true},
		{"wildcard needs a subdomain", "GET", "/x", "https://example.net", nil, 200, "", false, true},
		{"wildcard suffix is a label boundary", "GET", "/x", "https://evilexample.net", nil, 200, "", false, true},
		{"other scheme", "GET", "/x", "http://app.example.org", nil, 200, "", false, true},
		{"disallowed", "GET", "/x", evil, nil, 200, "", false, true},
		{"null origin", "GET", "/x", "null", nil, 200, "", false, true},
		{"no origin", "GET", "/x", "", nil, 200, "", false, true},
		{"502 allowed", "GET", "/dead", allowed, nil, 502, allowed, false, true},
		{"502 disallowed", "GET", "/dead", evil, nil, 502, "", false, true},
		{"404 allowed", "GET", "/files/nope", allowed, nil, 404, allowed, false, true},
		{"error_page allowed", "GET", "/paged", allowed, nil, 502, allowed, false, true},
		{"credentials reflect", "GET", "/creds", allowed, nil, 200, allowed, true, true},
		{"credentials disallowed", "GET", "/creds", evil, nil, 200, "", false, true},
		{"star", "GET", "/any", evil, nil, 200, "*", false, true},
		{"star with credentials reflects", "GET", "/anycreds", evil, nil, 200, evil, true, true},
		{"off", "GET", "/off", allowed, nil, 200, "", false, false},
		{"preflight allowed", "OPTIONS", "/x", allowed, []string{"Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "x-token"}, 204, allowed, false, true},
		{"preflight disallowed", "OPTIONS", "/x", evil, []string{"Access-Control-Request-Method", "PUT"}, 204, "", false, true},
		{"preflight on a dead upstream", "OPTIONS", "/dead", allowed, []string{"Access-Control-Request-Method", "GET"}, 204, allowed, false, true},
		{"plain OPTIONS goes upstream", "OPTIONS", "/x", allowed, nil, 200, allowed, false, true},
	}
	client := httpClient(addr(port), nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, semURL(port, tc.path), nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			r := do(t, client, req)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %q)", r.StatusCode, tc.status, r.Body)
			}
			if got := r.Header.Values("Access-Control-Allow-Origin"); strings.Join(got, ",") != tc.acao {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.acao)
			}
			if got := r.Header.Get("Access-Control-Allow-Credentials") == "true"; got != tc.creds {
				t.Errorf("Access-Control-Allow-Credentials %q, want credentials=%v", r.Header.Get("Access-Control-Allow-Credentials"), tc.creds)
			}
			if got := hasToken(strings.Join(r.Header.Values("Vary"), ","), "Origin"); got != tc.vary {
				t.Errorf("Vary %q, want Origin listed: %v", r.Header.Values("Vary"), tc.vary)
			}
			preflight := tc.method == "OPTIONS" && len(tc.hdr) > 0
			if preflight && tc.acao != "" {
				if got := r.Header.Get("Access-Control-Allow-Methods"); got != "GET, POST, PUT" {
					t.Errorf("Access-Control-Allow-Methods %q", got)
				}
				if got := r.Header.Get("Access-Control-Allow-Headers"); got != "Content-Type, X-Token" {
					t.Errorf("Access-Control-Allow-Headers %q", got)
				}
				if got := r.Header.Get("Access-Control-Max-Age"); got != "600" {
					t.Errorf("Access-Control-Max-Age %q, want 600", got)
				}
			}
			if preflight && tc.acao == "" && r.Header.Get("Access-Control-Allow-Methods") != "" {
				t.Errorf("disallowed preflight got Access-Control-Allow-Methods %q", r.Header.Get("Access-Control-Allow-Methods"))
			}
			if !preflight && tc.acao != "" && tc.status == 200 && r.Header.Get("Access-Control-Expose-Headers") != "X-Backend" {
				t.Errorf("Access-Control-Expose-Headers %q, want X-Backend", r.Header.Get("Access-Control-Expose-Headers"))
			}
		})
	}
	t.Run("preflights never reach the upstream", func(t *testing.T) {
		for _, s := range echo.all() {
			if s.Method == "OPTIONS" && s.Header.Get("Access-Control-Request-Method") != "" {
				t.Errorf("upstream saw a preflight: %v", s.Header)
			}
		}
	})
	t.Run("star reflects requested headers only as tokens", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", semURL(port, "/any"), nil)
		req.Header.Set("Origin", evil)
		req.Header.Set("Access-Control-Request-Method", "PUT")
		req.Header.Set("Access-Control-Request-Headers", "x-a, x-b")
		if r := do(t, client, req); r.Header.Get("Access-Control-Allow-Headers") != "x-a, x-b" {
			t.Errorf("Access-Control-Allow-Headers %q, want the requested list", r.Header.Get("Access-Control-Allow-Headers"))
		}
	})
}

// TestCORSUpstreamHeadersReplaced: when sluice owns CORS, an upstream's Access-Control-Allow-Origin (here a
// permissive "*") never reaches a disallowed origin, and an allowed one gets exactly one value.
func TestCORSUpstreamHeadersReplaced(t *testing.T) {
	t.Parallel()
	raw := newRawBackend(t, "HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nVary: Origin\r\nContent-Length: 2\r\n\r\nok")
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        cors_origins https://app.example.org;
        location / { proxy_pass http://127.0.0.1:{{RAW}}; }
    }
}
`, nil, "RAW", raw.Port)
	r := semGet(t, port, "/", "", "Origin", "https://evil.example.com")
	if v := r.Header.Values("Access-Control-Allow-Origin"); len(v) != 0 {
		t.Errorf("disallowed origin got Access-Control-Allow-Origin %q from the upstream", v)
	}
	if v := r.Header.Values("Vary"); len(v) != 1 {
		t.Errorf("Vary %q, want Origin once", v)
	}
	r = semGet(t, port, "/", "", "Origin", "https://app.example.org")
	if v := r.Header.Values("Access-Control-Allow-Origin"); len(v) != 1 || v[0] != "https://app.example.org" {
		t.Errorf("Access-Control-Allow-Origin %q, want the origin once", v)
	}
}

// TestCORSNginxWay: the recipe nginx users write (add_header … always and an if answering OPTIONS) works as in
// nginx: the preflight is answered without the upstream, errors carry the header thanks to `always`.
func TestCORSNginxWay(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	dead := freePort(t)
	port, _ := semStart(t, `events {}
http {
    map $http_origin $cors_origin {
        default "";
        "https://app.example.org" $http_origin;
    }
    server {
        listen {{PORT}};
        location / {
            if ($request_method = OPTIONS) {
                add_header Access-Control-Allow-Origin $cors_origin always;
                add_header Access-Control-Allow-Methods "GET, POST" always;
                add_header Vary Origin always;
                return 204;
            }
            add_header Access-Control-Allow-Origin $cors_origin always;
            add_header Vary Origin always;
            proxy_pass http://127.0.0.1:{{ECHO}};
        }
        location /dead {
            add_header Access-Control-Allow-Origin $cors_origin always;
            add_header Vary Origin always;
            proxy_pass http://127.0.0.1:{{DEAD}};
        }
    }
}
`, nil, "ECHO", echo.Port, "DEAD", dead)
	client := httpClient(addr(port), nil)
	req, _ := http.NewRequest("OPTIONS", semURL(port, "/api"), nil)
	req.Header.Set("Origin", "https://app.example.org")
	req.Header.Set("Access-Control-Request-Method", "POST")
	r := do(t, client, req)
	if r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.org" || r.Header.Get("Access-Control-Allow-Methods") != "GET, POST" {
		t.Errorf("preflight: %d %v", r.StatusCode, r.Header)
	}
	if len(echo.all()) != 0 {
		t.Errorf("the upstream saw the preflight")
	}
	r = semGet(t, port, "/api", "", "Origin", "https://app.example.org")
	if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.org" || r.Header.Get("Vary") != "Origin" {
		t.Errorf("GET: %d %v", r.StatusCode, r.Header)
	}
	r = semGet(t, port, "/api", "", "Origin", "https://evil.example.com")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("disallowed origin got %q (an empty value must not be sent)", r.Header.Get("Access-Control-Allow-Origin"))
	}
	r = semGet(t, port, "/dead", "", "Origin", "https://app.example.org")
	if r.StatusCode != 502 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.org" {
		t.Errorf("502: %d %v (add_header … always applies to errors)", r.StatusCode, r.Header)
	}
}

// TestWebSocketOrigin: an upgrade from an origin outside websocket_origins (by default cors_origins) gets 403
// and never reaches the upstream; allowed, same-origin and Origin-less upgrades pass.
func TestWebSocketOrigin(t *testing.T) {
	t.Parallel()
	ws := newWSEcho(t)
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        cors_origins https://app.example.org;
        location /ws { proxy_pass http://127.0.0.1:{{WS}}; }
        location /only { websocket_origins https://chat.example.org; proxy_pass http://127.0.0.1:{{WS}}; }
        location /open { websocket_origins *; proxy_pass http://127.0.0.1:{{WS}}; }
    }
}
`, nil, "WS", ws.Port)
	cases := []struct {
		path, host, origin string
		status             int
	}{
		{"/ws", "site.test", "https://app.example.org", 101},
		{"/ws", "site.test", "https://evil.example.com", 403},
		{"/ws", "site.test", "null", 403},
		{"/ws", "site.test", "", 101},
		{"/ws", "site.test", "http://site.test", 101},  // same origin
		{"/ws", "site.test", "https://site.test", 403}, // plain-HTTP port: another scheme is another origin
		{"/only", "site.test", "https://chat.example.org", 101},
		{"/only", "site.test", "https://app.example.org", 403},
		{"/open", "site.test", "https://evil.example.com", 101},
	}
	for _, tc := range cases {
		t.Run(tc.path+" "+tc.origin, func(t *testing.T) {
			before := len(ws.all())
			req := wsUpgradeRequest(tc.path, tc.host)
			if tc.origin != "" {
				req = strings.Replace(req, "\r\n\r\n", "\r\nOrigin: "+tc.origin+"\r\n\r\n", 1)
			}
			r := semRaw(t, port, req, "GET")
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			if reached := len(ws.all()) > before; reached != (tc.status == 101) {
				t.Errorf("upstream reached: %v, want %v", reached, tc.status == 101)
			}
		})
	}
}

// TestWebSocketOriginHTTP2: a WebSocket over HTTP/2 (RFC 8441 extended CONNECT) meets websocket_origins like an
// HTTP/1.1 upgrade: a foreign Origin gets 403 and never reaches the upstream.
func TestWebSocketOriginHTTP2(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	ws := newWSEcho(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}} ssl;
        http2 on;
        server_name ws.test;
        ssl_certificate     ws.pem;
        ssl_certificate_key ws.key.pem;
        cors_origins https://app.example.org;
        location /ws { proxy_pass http://127.0.0.1:{{WS}}; }
    }
}
`, "PORT", port, "WS", ws.Port), ca.certFiles(t, "ws", ecdsaP256, "ws.test")...)
	tr := h2Transport(addr(port), ca.clientTLS("ws.test"))
	defer tr.CloseIdleConnections() //lint:ignore SA1019 x/net's HTTP/2 transport is the client that sends extended CONNECT
	for _, tc := range []struct {
		origin string
		status int
	}{{"https://evil.example.com", 403}, {"https://app.example.org", 200}, {"https://ws.test", 200}, {"", 200}} {
		before := len(ws.all())
		_, resp, err := h2WebSocketFrom(t, tr, "https://ws.test/ws", tc.origin)
		if err != nil || resp == nil {
			t.Fatalf("origin %q: %v", tc.origin, err)
		}
		if resp.StatusCode != tc.status {
			t.Errorf("origin %q: status %d, want %d", tc.origin, resp.StatusCode, tc.status)
		}
		if reached := len(ws.all()) > before; reached != (tc.status == 200) {
			t.Errorf("origin %q: upstream reached %v", tc.origin, reached)
		}
	}
}
