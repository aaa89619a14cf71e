package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMirror: mirror sends a copy of each request to another location in the background. What the mirror's
// upstream saw was compared with nginx 1.22 on the same configuration: the method, headers and arguments of
// the request, its body with mirror_request_body on (none with it off), one copy per mirror line, and no
// copy when the location answers in its rewrite phase (return). Unlike nginx, the request's own answer does
// not wait for its mirrors: here the mirror's upstream holds its answer until the client has had its own.
func TestMirror(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 16)
	release := make(chan struct{})
	app := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.HasPrefix(r.URL.Path, "/mirror") || strings.HasPrefix(r.URL.Path, "/second") {
			seen <- r.Method + " " + r.URL.RequestURI() + " body=" + string(body) + " x=" + r.Header.Get("X-Test")
			if r.URL.Query().Get("cut") != "" {
				// a body shorter than its length: the proxy aborts the mirror's response (panic(ErrAbortHandler))
				w.Header().Set("Content-Length", "100")
				io.WriteString(w, "short")
				return
			}
			if r.URL.Query().Get("hold") != "" {
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			}
			return
		}
		io.WriteString(w, "main "+r.Method+" "+string(body))
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location = /m { internal; proxy_pass http://127.0.0.1:{{APP}}/mirror$request_uri; }
        location = /m2 { internal; proxy_pass http://127.0.0.1:{{APP}}/second$request_uri; }
        location /a/ { mirror /m; proxy_pass http://127.0.0.1:{{APP}}; }
        location /b/ { mirror /m; mirror /m2; mirror_request_body off; proxy_pass http://127.0.0.1:{{APP}}; }
        location /c/ { mirror /m; return 200 "returned"; }
    }
}
`, "PORT", port, "APP", app.Port))
	c := httpClient(addr(port), nil)
	next := func() string {
		t.Helper()
		select {
		case s := <-seen:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no mirrored request")
			return ""
		}
	}
	// a GET whose mirror is held: the client gets its answer first
	if r := get(t, c, "http://mi.test/a/x?q=1&hold=1", http.Header{"X-Test": {"t1"}}); r.Body != "main GET " {
		t.Errorf("GET: %q", r.Body)
	}
	if got := next(); got != "GET /mirror/a/x?q=1&hold=1 body= x=t1" {
		t.Errorf("mirrored GET: %q", got)
	}
	close(release)
	post := func(path, body string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://mi.test"+path, strings.NewReader(body))
		return do(t, c, req).Body
	}
	if got := post("/a/p", "hello body"); got != "main POST hello body" {
		t.Errorf("POST: %q", got)
	}
	if got := next(); got != "POST /mirror/a/p body=hello body x=" {
		t.Errorf("mirrored POST: %q", got)
	}
	if got := post("/b/p?z=2", "body b"); got != "main POST body b" {
		t.Errorf("POST, two mirrors: %q", got)
	}
	two := []string{next(), next()}
	if !(strings.Join(two, "|") == "POST /mirror/b/p?z=2 body= x=|POST /second/b/p?z=2 body= x=" ||
		strings.Join(two, "|") == "POST /second/b/p?z=2 body= x=|POST /mirror/b/p?z=2 body= x=") {
		t.Errorf("two mirrors without the body: %q", two)
	}
	// a mirror whose upstream cuts its body ends alone: the process goes on
	if r := get(t, c, "http://mi.test/a/x?cut=1", nil); r.Body != "main GET " {
		t.Errorf("GET with a cut mirror: %q", r.Body)
	}
	next()
	time.Sleep(200 * time.Millisecond)
	if r := get(t, c, "http://mi.test/a/y", nil); r.Body != "main GET " {
		t.Errorf("after a cut mirror: %q", r.Body)
	}
	next()
	if r := get(t, c, "http://mi.test/c/r", nil); r.Body != "returned" {
		t.Errorf("return: %q", r.Body)
	}
	select {
	case s := <-seen:
		t.Errorf("a location that returns in its rewrite phase mirrored %q", s)
	case <-time.After(500 * time.Millisecond):
	}
}
