package e2e

import (
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// tutorialConf is shared/scenarios/tutorial.conf's site with test ports: one
// HTTPS port serving a WebSocket service at /wss and an HTTP app at /Tomcat.
const tutorialConf = `events {}
http {
    server {
        listen {{PORT}} ssl;
        server_name abc.com;
        ssl_certificate     cert.pem;
        ssl_certificate_key key.pem;
        location /wss {
            proxy_pass http://127.0.0.1:{{WSPORT}};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header X-Real-IP $remote_addr;
        }
        location /Tomcat {
            proxy_pass http://127.0.0.1:{{HTTPPORT}};
            proxy_http_version 1.1;
            proxy_set_header X-Real-IP $remote_addr;
        }
    }
}
`

// tutorialSite runs tutorialConf with a certificate for abc.com.
type tutorialSite struct {
	ca    *testCA
	port  int
	ws    *wsEcho
	http  *backend
	proxy *Sluice
}

func startTutorial(t *testing.T) *tutorialSite {
	t.Helper()
	s := &tutorialSite{ca: newCA(t), ws: newWSEcho(t), http: newHTTPEcho(t), port: freePort(t)}
	certPEM, keyPEM := s.ca.issue(t, ecdsaP256, "abc.com")
	conf := fill(t, tutorialConf, "PORT", s.port, "WSPORT", s.ws.Port, "HTTPPORT", s.http.Port)
	s.proxy = start(t, conf, withFile("conf/cert.pem", certPEM), withFile("conf/key.pem", keyPEM))
	return s
}

func TestTutorialConfig(t *testing.T) {
	t.Parallel()
	site := startTutorial(t)
	target := addr(site.port)

	t.Run("Tomcat", func(t *testing.T) {
		c := httpClient(target, site.ca.clientTLS(""))
		r := get(t, c, "https://abc.com/Tomcat/x?q=1", nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET https://abc.com/Tomcat/x = %s, body %q; want 200 from the HTTP backend", r.Status, r.Body)
		}
		seen := decodeSeen(t, r.Body)
		if seen.URI != "/Tomcat/x?q=1" {
			t.Errorf("backend saw URI %q, want /Tomcat/x?q=1", seen.URI)
		}
		if got := seen.Header.Get("X-Real-IP"); got != "127.0.0.1" {
			t.Errorf("backend saw X-Real-IP %q, want 127.0.0.1", got)
		}
		if want := addr(site.http.Port); seen.Host != want {
			t.Errorf("backend saw Host %q, want the proxy_pass host %q", seen.Host, want)
		}
		if seen.Proto != "HTTP/1.1" {
			t.Errorf("backend saw %s, want HTTP/1.1 (proxy_http_version 1.1)", seen.Proto)
		}
	})

	t.Run("wss", func(t *testing.T) {
		d := wsDialer(target, site.ca.clientTLS(""))
		c := dialWS(t, d, "wss://abc.com/wss", nil)
		echoOnce(t, c, websocket.TextMessage, "hello over wss")
		echoOnce(t, c, websocket.BinaryMessage, "\x00\x01\x02\xff binary")
		echoOnce(t, c, websocket.TextMessage, "second text")
		reqs := site.ws.all()
		if len(reqs) == 0 {
			t.Fatal("WebSocket backend saw no request")
		}
		h := reqs[len(reqs)-1].Header
		if got := h.Get("X-Real-IP"); got != "127.0.0.1" {
			t.Errorf("WebSocket backend saw X-Real-IP %q, want 127.0.0.1", got)
		}
		if !hasToken(h.Get("Connection"), "upgrade") || !hasToken(h.Get("Upgrade"), "websocket") {
			t.Errorf("WebSocket backend saw Connection %q, Upgrade %q; want upgrade/websocket",
				h.Get("Connection"), h.Get("Upgrade"))
		}
	})

	t.Run("dot-segments route to Tomcat", func(t *testing.T) {
		c := rawConn(t, target, site.ca.clientTLS("abc.com"))
		rs := rawExchange(t, c, "GET /wss/../Tomcat/x HTTP/1.1\r\nHost: abc.com\r\n\r\n", "GET")
		r := rs[0]
		if r.StatusCode != http.StatusOK || r.Header.Get("X-Backend") != "http-echo" {
			t.Fatalf("GET /wss/../Tomcat/x = %s (X-Backend %q), body %q; want 200 from the /Tomcat backend",
				r.Status, r.Header.Get("X-Backend"), r.Body)
		}
		seen := decodeSeen(t, r.Body)
		t.Logf("backend saw URI %q", seen.URI)
		if got := seen.Header.Get("X-Real-IP"); got != "127.0.0.1" {
			t.Errorf("backend saw X-Real-IP %q, want 127.0.0.1 (the /Tomcat location's headers)", got)
		}
		if n := len(site.ws.all()); n > 1 {
			t.Errorf("WebSocket backend saw %d requests; the dot-segment request must not reach it", n)
		}
	})
}
