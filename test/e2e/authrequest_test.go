package e2e

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAuthRequestAsNginx: auth_request authorises requests through a subrequest to an authentication service.
// Every status and header below was observed from nginx 1.22 with the same configuration and service: 2xx lets
// the request on (204 too), 401 is answered with the service's WWW-Authenticate (and error_page 401 can turn it
// into a redirect to a login page, keeping that header), 403 is 403, anything else (500, a 302, a missing auth
// location) is 500; auth_request_set takes values from the subrequest's upstream; with satisfy any a matching
// allow suffices; the service sees a GET with $request_method and $request_uri of the request. Deliberately
// unlike nginx, the subrequest carries no Content-Length of the request's body (nginx sends it without the
// body, so the service waits for bytes that never come unless the configuration removes the header).
func TestAuthRequestAsNginx(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	svc := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.HasPrefix(r.URL.Path, "/echo") {
			io.WriteString(w, "app "+r.Method+" body="+string(body))
			return
		}
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" cl="+r.Header.Get("Content-Length")+" uri="+r.Header.Get("X-Original-URI")+
			" method="+r.Header.Get("X-Original-Method"))
		mu.Unlock()
		w.Header().Set("X-User", "alice")
		switch r.Header.Get("X-Mode") {
		case "deny":
			w.WriteHeader(http.StatusForbidden)
		case "unauth":
			w.Header().Set("WWW-Authenticate", `Bearer realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "err":
			w.WriteHeader(http.StatusInternalServerError)
		case "redir":
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
		case "nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "slowunauth":
			time.Sleep(300 * time.Millisecond)
			w.WriteHeader(http.StatusUnauthorized)
		}
		io.WriteString(w, "auth body")
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        root html;
        location = /auth {
            internal;
            proxy_pass http://127.0.0.1:{{SVC}}/check;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
        }
        location /private/ {
            auth_request /auth;
            auth_request_set $user $upstream_http_x_user;
            auth_request_set $st $upstream_status;
            add_header X-User $user always;
            add_header X-St $st always;
            proxy_pass http://127.0.0.1:{{SVC}}/echo;
        }
        location /any/ { satisfy any; allow 127.0.0.1; deny all; auth_request /auth; }
        location /err/ { auth_request /auth; error_page 401 = @login; }
        location @login { return 302 /login?from=$request_uri; }
        location /nowhere/ { auth_request /missing-auth; }
        location = /ret403 { return 403; }
        location /r403/ { auth_request /ret403; }
    }
}
`, "PORT", port, "SVC", svc.Port), withFile("html/any/x", []byte("any file\n")), withFile("html/err/x", []byte("err file\n")),
		withFile("html/nowhere/x", []byte("x\n")), withFile("html/r403/x", []byte("x\n")))
	c := httpClient(addr(port), nil)
	for _, tc := range []struct {
		mode, path string
		code       int
		body       string
		want       string // "Name: value" lines, "|" between
	}{
		{"ok", "/private/x", 200, "app GET body=", "X-User: alice|X-St: 200"},
		{"nocontent", "/private/x", 200, "app GET body=", "X-St: 204"},
		{"deny", "/private/x", 403, "", "X-User: alice|X-St: 403"},
		{"unauth", "/private/x", 401, "", `Www-Authenticate: Bearer realm="x"|X-St: 401`},
		{"err", "/private/x", 500, "", "X-St: 500"},
		{"redir", "/private/x", 500, "", "X-St: 302"},
		{"deny", "/any/x", 200, "any file\n", ""},
		{"unauth", "/err/x", 302, "", `Location: /login?from=/err/x|Www-Authenticate: Bearer realm="x"`},
		{"ok", "/nowhere/x", 500, "", ""},
		{"ok", "/r403/x", 403, "", ""},
	} {
		r := get(t, c, "http://err.test"+tc.path, http.Header{"X-Mode": {tc.mode}})
		if r.StatusCode != tc.code || tc.body != "" && r.Body != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.mode, tc.path, r.StatusCode, r.Body, tc.code, tc.body)
		}
		for _, line := range strings.Split(tc.want, "|") {
			if k, v, ok := strings.Cut(line, ": "); ok && r.Header.Get(k) != v && !(k == "Location" && strings.HasSuffix(r.Header.Get(k), v)) {
				t.Errorf("%s %s: %s %q, want %q", tc.mode, tc.path, k, r.Header.Get(k), v)
			}
		}
	}

	// a POST: the service gets a GET without the body's length, the application the POST and its body
	mu.Lock()
	seen = nil
	mu.Unlock()
	req, _ := http.NewRequest("POST", "http://err.test/private/x?a=1", strings.NewReader("hello"))
	req.Header.Set("X-Mode", "ok")
	if r := do(t, c, req); r.StatusCode != 200 || r.Body != "app POST body=hello" {
		t.Errorf("POST: %d %q", r.StatusCode, r.Body)
	}
	mu.Lock()
	got := strings.Join(seen, "; ")
	mu.Unlock()
	if got != "GET /check cl= uri=/private/x?a=1 method=POST" {
		t.Errorf("the service saw %q", got)
	}

	// a client that half-closes while it is authorised cancels the request: it must not get the file (the
	// subrequest ended unanswered, which once counted as a 200)
	for i := 0; i < 3; i++ {
		hc, err := net.DialTimeout("tcp", addr(port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(hc, "GET /err/x HTTP/1.1\r\nHost: a.test\r\nX-Mode: slowunauth\r\n\r\n")
		hc.(*net.TCPConn).CloseWrite()
		hc.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(hc)
		hc.Close()
		if strings.Contains(string(got), "err file") || strings.HasPrefix(string(got), "HTTP/1.1 200") {
			t.Fatalf("half-closed client got the protected file: %q", got)
		}
	}

	// a WebSocket upgrade is authorised by a plain GET and not tunnelled to the service
	conn, err := net.DialTimeout("tcp", addr(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, _ := exchangeOn(t, conn, "GET /private/ws HTTP/1.1\r\nHost: a.test\r\nX-Mode: deny\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if r == nil || r.StatusCode != 403 {
		t.Errorf("upgrade with a refusing service: %v", r)
	}
}
