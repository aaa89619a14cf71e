package e2e

// End-to-end checks of nginx semantics users rely on: return, rewrite, if,
// map, error_page, add_header inheritance, proxy_redirect, server_name
// selection, the automatic trailing-slash redirect, client_max_body_size,
// static files, access logs, proxy_pass URI rules, dual-stack listens and
// keepalive_requests. nginx's documented behaviour is the reference.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// semStart runs conf with {{PORT}} set to a fresh port (plus the other
// placeholders in kv) and returns the port and the process.
func semStart(t *testing.T, conf string, opts []option, kv ...any) (int, *Sluice) {
	t.Helper()
	port := freePort(t)
	s := start(t, fill(t, conf, append([]any{"PORT", port}, kv...)...), opts...)
	return port, s
}

// semURL is http://127.0.0.1:port + path.
func semURL(port int, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", port, path) }

// semGet GETs path on port with the Host header host ("" = 127.0.0.1:port)
// and extra headers given as name, value pairs.
func semGet(t *testing.T, port int, path, host string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, semURL(port, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, httpClient(addr(port), nil), req)
}

// semRaw sends one raw request on a new connection and reads one response.
func semRaw(t *testing.T, port int, raw, method string) response {
	t.Helper()
	return rawExchange(t, rawConn(t, addr(port), nil), raw, method)[0]
}

// mediaType is the media type of a Content-Type value without parameters
// ("" when it does not parse).
func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

// closedWithoutResponse reads r (c or a reader on it) until EOF or error; it
// reports what was read and whether the peer closed c (EOF or reset) within
// timeout.
func closedWithoutResponse(c net.Conn, r io.Reader, timeout time.Duration) (data []byte, closed bool) {
	c.SetReadDeadline(time.Now().Add(timeout))
	data, err := io.ReadAll(r)
	if err == nil {
		return data, true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return data, false
	}
	return data, true // connection reset counts as closed
}

func TestSemReturn(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    include mime.types;
    default_type application/octet-stream;
    server {
        listen {{PORT}};
        location = /text { default_type text/x-sem; return 200 "text"; }
        location = /robots.txt { return 200 "User-agent: *"; }
        location = /moved { return 301 /x; }
        location = /away { return 302 https://example.org/; }
        location = /nf { return 404; }
        location = /drop { return 444; }
    }
}
`, nil)

	t.Run("200 text", func(t *testing.T) {
		r := semGet(t, port, "/text", "")
		if r.StatusCode != 200 || r.Body != "text" {
			t.Fatalf("GET /text = %s %q, want 200 \"text\"", r.Status, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); mediaType(ct) != "text/x-sem" {
			t.Errorf("Content-Type %q, want the location's default_type text/x-sem", ct)
		}
	})
	t.Run("200 text type from extension", func(t *testing.T) {
		// nginx's ngx_http_send_response picks the type from the URI's
		// extension first: the classic robots.txt return is text/plain.
		r := semGet(t, port, "/robots.txt", "")
		if r.StatusCode != 200 || r.Body != "User-agent: *" {
			t.Fatalf("GET /robots.txt = %s %q", r.Status, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); mediaType(ct) != "text/plain" {
			t.Errorf("Content-Type %q, want text/plain (mime.types for .txt; default_type is application/octet-stream)", ct)
		}
	})
	t.Run("301 relative", func(t *testing.T) {
		r := semGet(t, port, "/moved", "")
		if r.StatusCode != 301 {
			t.Fatalf("GET /moved = %s, want 301", r.Status)
		}
		if want := semURL(port, "/x"); r.Header.Get("Location") != want {
			t.Errorf("Location %q, want %q (absolute_redirect on)", r.Header.Get("Location"), want)
		}
	})
	t.Run("301 relative with other Host", func(t *testing.T) {
		// nginx builds the absolute URL from the Host name and the port the
		// request came in on.
		r := semGet(t, port, "/moved", "sem.test")
		if want := fmt.Sprintf("http://sem.test:%d/x", port); r.StatusCode != 301 || r.Header.Get("Location") != want {
			t.Errorf("GET /moved Host sem.test = %s Location %q, want 301 %q", r.Status, r.Header.Get("Location"), want)
		}
	})
	t.Run("301 relative with Host port", func(t *testing.T) {
		// The port is the one the request arrived on, not the Host's.
		r := semGet(t, port, "/moved", "sem.test:9999")
		if want := fmt.Sprintf("http://sem.test:%d/x", port); r.StatusCode != 301 || r.Header.Get("Location") != want {
			t.Errorf("GET /moved Host sem.test:9999 = %s Location %q, want 301 %q", r.Status, r.Header.Get("Location"), want)
		}
	})
	t.Run("302 absolute", func(t *testing.T) {
		r := semGet(t, port, "/away", "")
		if r.StatusCode != 302 || r.Header.Get("Location") != "https://example.org/" {
			t.Errorf("GET /away = %s Location %q, want 302 https://example.org/", r.Status, r.Header.Get("Location"))
		}
	})
	t.Run("404 default page", func(t *testing.T) {
		r := semGet(t, port, "/nf", "")
		if r.StatusCode != 404 {
			t.Fatalf("GET /nf = %s, want 404", r.Status)
		}
		if !strings.Contains(r.Body, "404 Not Found") {
			t.Errorf("404 body %q does not mention \"404 Not Found\"", r.Body)
		}
		if ct := r.Header.Get("Content-Type"); mediaType(ct) != "text/html" {
			t.Errorf("404 page Content-Type %q, want text/html", ct)
		}
	})
	t.Run("444 closes", func(t *testing.T) {
		c := rawConn(t, addr(port), nil)
		if _, err := io.WriteString(c, "GET /drop HTTP/1.1\r\nHost: sem.test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		data, closed := closedWithoutResponse(c, c, 3*time.Second)
		if len(data) > 0 {
			t.Errorf("return 444 sent %q; want the connection closed with no response", data)
		}
		if !closed {
			t.Errorf("return 444: connection still open after 3 s; want it closed")
		}
	})
}

func TestSemRewrite(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        location /old/ {
            rewrite ^/old/(.*)$ /new/$1 last;
            return 500 "rewrite last did not stop the rewrite statements";
        }
        location /new/ { return 200 "new:$uri:$args"; }
        location /brk/ {
            rewrite ^/brk/(.*)$ /up/$1 break;
            proxy_pass http://127.0.0.1:{{ECHO}};
        }
        location = /r { rewrite ^/r$ /target permanent; }
        location = /t { rewrite ^ /target redirect; }
        location = /set { set $v "v-$arg_a"; return 200 $v; }
    }
}
`, nil, "ECHO", echo.Port)

	t.Run("last rematches", func(t *testing.T) {
		r := semGet(t, port, "/old/a/b?q=1", "")
		if r.StatusCode != 200 || r.Body != "new:/new/a/b:q=1" {
			t.Errorf("GET /old/a/b?q=1 = %s %q, want 200 \"new:/new/a/b:q=1\"", r.Status, r.Body)
		}
	})
	t.Run("break proxies rewritten URI", func(t *testing.T) {
		r := semGet(t, port, "/brk/x?q=1", "")
		if r.StatusCode != 200 {
			t.Fatalf("GET /brk/x?q=1 = %s %q", r.Status, r.Body)
		}
		if seen := decodeSeen(t, r.Body); seen.URI != "/up/x?q=1" {
			t.Errorf("upstream saw %q, want /up/x?q=1 (rewritten URI, args kept)", seen.URI)
		}
	})
	t.Run("permanent", func(t *testing.T) {
		r := semGet(t, port, "/r?a=1", "")
		if want := semURL(port, "/target?a=1"); r.StatusCode != 301 || r.Header.Get("Location") != want {
			t.Errorf("GET /r?a=1 = %s Location %q, want 301 %q", r.Status, r.Header.Get("Location"), want)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		r := semGet(t, port, "/t", "")
		if want := semURL(port, "/target"); r.StatusCode != 302 || r.Header.Get("Location") != want {
			t.Errorf("GET /t = %s Location %q, want 302 %q", r.Status, r.Header.Get("Location"), want)
		}
	})
	t.Run("set", func(t *testing.T) {
		r := semGet(t, port, "/set?a=hello", "")
		if r.StatusCode != 200 || r.Body != "v-hello" {
			t.Errorf("GET /set?a=hello = %s %q, want 200 \"v-hello\"", r.Status, r.Body)
		}
	})
}

func TestSemIf(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        location /cors {
            if ($request_method = OPTIONS) {
                add_header X-Pre 1 always;
                return 204;
            }
            add_header X-Get g;
            return 200 "get";
        }
        location /flag {
            if ($http_x_flag) { return 200 "flag:$http_x_flag"; }
            return 200 "noflag";
        }
        location /cap/ {
            if ($uri ~ ^/cap/(\w+)$) { return 200 $1; }
            return 404;
        }
    }
}
`, nil)

	t.Run("OPTIONS", func(t *testing.T) {
		r := semRaw(t, port, "OPTIONS /cors HTTP/1.1\r\nHost: sem.test\r\n\r\n", "OPTIONS")
		if r.StatusCode != 204 || r.Body != "" {
			t.Errorf("OPTIONS /cors = %s %q, want 204 with no body", r.Status, r.Body)
		}
		if r.Header.Get("X-Pre") != "1" {
			t.Errorf("OPTIONS /cors: X-Pre %q, want 1", r.Header.Get("X-Pre"))
		}
		if v := r.Header.Get("X-Get"); v != "" {
			t.Errorf("OPTIONS /cors: X-Get %q; the if block's add_header replaces the location's", v)
		}
	})
	t.Run("GET", func(t *testing.T) {
		r := semGet(t, port, "/cors", "")
		if r.StatusCode != 200 || r.Body != "get" {
			t.Errorf("GET /cors = %s %q, want 200 \"get\"", r.Status, r.Body)
		}
		if r.Header.Get("X-Pre") != "" || r.Header.Get("X-Get") != "g" {
			t.Errorf("GET /cors: X-Pre %q X-Get %q, want \"\" and g", r.Header.Get("X-Pre"), r.Header.Get("X-Get"))
		}
	})
	for _, tc := range []struct{ flag, want string }{{"", "noflag"}, {"yes", "flag:yes"}, {"0", "noflag"}} {
		t.Run("flag="+tc.flag, func(t *testing.T) {
			var hdr []string
			if tc.flag != "" {
				hdr = []string{"X-Flag", tc.flag}
			}
			r := semGet(t, port, "/flag", "", hdr...)
			if r.StatusCode != 200 || r.Body != tc.want {
				t.Errorf("GET /flag with X-Flag %q = %s %q, want %q (empty and \"0\" are false)", tc.flag, r.Status, r.Body, tc.want)
			}
		})
	}
	t.Run("regex capture", func(t *testing.T) {
		r := semGet(t, port, "/cap/word_1", "")
		if r.StatusCode != 200 || r.Body != "word_1" {
			t.Errorf("GET /cap/word_1 = %s %q, want 200 \"word_1\"", r.Status, r.Body)
		}
		if r := semGet(t, port, "/cap/a/b", ""); r.StatusCode != 404 {
			t.Errorf("GET /cap/a/b = %s, want 404 (if does not match)", r.Status)
		}
	})
}

func TestSemMap(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    map $uri $mapped {
        default                             none;
        /m/exact                            exact;
        ~^/m/(?<name>[a-z]+)/(\d+)$         "$name-$2";
        ~*^/m/CI/                           ci;
    }
    server {
        listen {{PORT}};
        location = /up { return 200 $connection_upgrade; }
        location /m/ { return 200 "$mapped"; }
    }
}
`, nil)

	t.Run("no Upgrade", func(t *testing.T) {
		r := semGet(t, port, "/up", "")
		if r.StatusCode != 200 || r.Body != "close" {
			t.Errorf("GET /up without Upgrade = %s %q, want \"close\"", r.Status, r.Body)
		}
	})
	t.Run("Upgrade", func(t *testing.T) {
		r := semRaw(t, port, "GET /up HTTP/1.1\r\nHost: sem.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "GET")
		if r.StatusCode != 200 || r.Body != "upgrade" {
			t.Errorf("GET /up with Upgrade: websocket = %s %q, want \"upgrade\"", r.Status, r.Body)
		}
	})
	for path, want := range map[string]string{
		"/m/exact":   "exact",
		"/m/abc/42":  "abc-42",
		"/m/ci/x":    "ci",
		"/m/other/x": "none",
	} {
		t.Run("map "+path, func(t *testing.T) {
			r := semGet(t, port, path, "")
			if r.StatusCode != 200 || r.Body != want {
				t.Errorf("GET %s = %s %q, want %q", path, r.Status, r.Body, want)
			}
		})
	}
}

func TestSemErrorPage(t *testing.T) {
	t.Parallel()
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch {
		case strings.Contains(r.URL.Path, "500"):
			w.WriteHeader(500)
			io.WriteString(w, "upstream-500")
		case strings.Contains(r.URL.Path, "404"):
			w.WriteHeader(404)
			io.WriteString(w, "upstream-404")
		default:
			io.WriteString(w, "upstream-ok")
		}
	}))
	dead := freePort(t)
	const page404 = "<p>custom not found</p>\n"
	const page500 = "<p>custom error</p>\n"
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        root html;
        error_page 404 /custom404.html;
        location / { }
        location = /gone { return 404; }
        location /down/ {
            error_page 502 = @fallback;
            proxy_pass http://127.0.0.1:{{DEAD}};
        }
        location /soft/ { error_page 404 = @fallback; }
        location @fallback { return 200 "fallback"; }
        location /ie/ {
            proxy_intercept_errors on;
            error_page 500 /e.html;
            proxy_pass http://127.0.0.1:{{UP}};
        }
        location /noie/ {
            error_page 500 /e.html;
            proxy_pass http://127.0.0.1:{{UP}};
        }
    }
}
`, []option{withFile("html/custom404.html", []byte(page404)), withFile("html/e.html", []byte(page500))},
		"DEAD", dead, "UP", up.Port)

	t.Run("missing file", func(t *testing.T) {
		r := semGet(t, port, "/missing.html", "")
		if r.StatusCode != 404 || r.Body != page404 {
			t.Errorf("GET /missing.html = %s %q, want 404 with the custom404.html body", r.Status, r.Body)
		}
	})
	t.Run("return 404", func(t *testing.T) {
		r := semGet(t, port, "/gone", "")
		if r.StatusCode != 404 || r.Body != page404 {
			t.Errorf("GET /gone (return 404) = %s %q, want 404 with the custom404.html body", r.Status, r.Body)
		}
	})
	t.Run("502 named location", func(t *testing.T) {
		r := semGet(t, port, "/down/x", "")
		if r.StatusCode != 200 || r.Body != "fallback" {
			t.Errorf("GET /down/x (upstream down) = %s %q, want 200 \"fallback\" (error_page 502 = @fallback)", r.Status, r.Body)
		}
	})
	t.Run("404 named location", func(t *testing.T) {
		r := semGet(t, port, "/soft/x", "")
		if r.StatusCode != 200 || r.Body != "fallback" {
			t.Errorf("GET /soft/x (no such file) = %s %q, want 200 \"fallback\" (error_page 404 = @fallback)", r.Status, r.Body)
		}
	})
	t.Run("intercept 500", func(t *testing.T) {
		r := semGet(t, port, "/ie/500", "")
		if r.StatusCode != 500 || r.Body != page500 {
			t.Errorf("GET /ie/500 = %s %q, want 500 with the e.html body", r.Status, r.Body)
		}
	})
	t.Run("intercept passes 200", func(t *testing.T) {
		r := semGet(t, port, "/ie/ok", "")
		if r.StatusCode != 200 || r.Body != "upstream-ok" {
			t.Errorf("GET /ie/ok = %s %q, want 200 \"upstream-ok\"", r.Status, r.Body)
		}
	})
	t.Run("intercept without matching error_page", func(t *testing.T) {
		// The location's own error_page replaces the server's list, so an
		// upstream 404 has no error_page here and passes unchanged.
		r := semGet(t, port, "/ie/404", "")
		if r.StatusCode != 404 || r.Body != "upstream-404" {
			t.Errorf("GET /ie/404 = %s %q, want 404 \"upstream-404\" (server-level error_page 404 is not inherited)", r.Status, r.Body)
		}
	})
	t.Run("no intercept", func(t *testing.T) {
		r := semGet(t, port, "/noie/500", "")
		if r.StatusCode != 500 || r.Body != "upstream-500" {
			t.Errorf("GET /noie/500 = %s %q, want the upstream's 500 \"upstream-500\" (proxy_intercept_errors off)", r.Status, r.Body)
		}
	})
}

func TestSemAddHeader(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        add_header X-Srv s;
        location /a { return 200 "a"; }
        location /loc { add_header X-Loc l; return 200 "loc"; }
        location /nf { add_header X-A 1; add_header X-B 2 always; return 404; }
        location /p/ { add_header X-A 1; proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, nil, "ECHO", echo.Port)

	t.Run("inherited", func(t *testing.T) {
		r := semGet(t, port, "/a", "")
		if r.StatusCode != 200 || r.Header.Get("X-Srv") != "s" {
			t.Errorf("GET /a = %s X-Srv %q, want 200 with the server-level X-Srv: s", r.Status, r.Header.Get("X-Srv"))
		}
	})
	t.Run("location replaces server list", func(t *testing.T) {
		r := semGet(t, port, "/loc", "")
		if r.Header.Get("X-Loc") != "l" {
			t.Errorf("GET /loc: X-Loc %q, want l", r.Header.Get("X-Loc"))
		}
		if v := r.Header.Get("X-Srv"); v != "" {
			t.Errorf("GET /loc: X-Srv %q; a location with add_header must not inherit the server's", v)
		}
	})
	t.Run("404 needs always", func(t *testing.T) {
		r := semGet(t, port, "/nf", "")
		if r.StatusCode != 404 {
			t.Fatalf("GET /nf = %s, want 404", r.Status)
		}
		if v := r.Header.Get("X-A"); v != "" {
			t.Errorf("404 carries X-A %q; add_header without always applies only to 2xx/3xx", v)
		}
		if v := r.Header.Get("X-B"); v != "2" {
			t.Errorf("404 X-B %q, want 2 (always)", v)
		}
	})
	t.Run("proxied 200", func(t *testing.T) {
		r := semGet(t, port, "/p/x", "")
		if r.StatusCode != 200 || r.Header.Get("X-A") != "1" {
			t.Errorf("GET /p/x = %s X-A %q, want 200 with X-A: 1", r.Status, r.Header.Get("X-A"))
		}
	})
}

func TestSemProxyRedirect(t *testing.T) {
	t.Parallel()
	var upPort atomic.Int64
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", fmt.Sprintf("http://127.0.0.1:%d/base/next", upPort.Load()))
		w.WriteHeader(http.StatusFound)
	}))
	upPort.Store(int64(up.Port))
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        location /app/ { proxy_pass http://127.0.0.1:{{UP}}/base/; }
        location /off/ { proxy_pass http://127.0.0.1:{{UP}}/base/; proxy_redirect off; }
        location /ex/ {
            proxy_pass http://127.0.0.1:{{UP}}/base/;
            proxy_redirect http://127.0.0.1:{{UP}}/base/ /mapped/;
        }
    }
}
`, nil, "UP", up.Port)
	upstreamLoc := fmt.Sprintf("http://127.0.0.1:%d/base/next", up.Port)

	// nginx makes a rewritten relative Location absolute (absolute_redirect);
	// a relative one is accepted as equivalent for clients.
	for _, tc := range []struct{ path, want string }{{"/app/x", "/app/next"}, {"/ex/x", "/mapped/next"}} {
		t.Run(tc.path, func(t *testing.T) {
			r := semGet(t, port, tc.path, "")
			loc := r.Header.Get("Location")
			if r.StatusCode != 302 || (loc != semURL(port, tc.want) && loc != tc.want) {
				t.Errorf("GET %s = %s Location %q; upstream sent %q, want %q (or %q)", tc.path, r.Status, loc, upstreamLoc, semURL(port, tc.want), tc.want)
			} else if loc == tc.want {
				t.Logf("GET %s: Location %q is relative; nginx sends %q", tc.path, loc, semURL(port, tc.want))
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		r := semGet(t, port, "/off/x", "")
		if loc := r.Header.Get("Location"); r.StatusCode != 302 || loc != upstreamLoc {
			t.Errorf("GET /off/x = %s Location %q, want 302 %q unchanged (proxy_redirect off)", r.Status, loc, upstreamLoc)
		}
	})
}

func TestSemServerName(t *testing.T) {
	t.Parallel()
	port2 := freePort(t)
	port, _ := semStart(t, `events {}
http {
    server { listen {{PORT}}; server_name first.test;          return 200 "first"; }
    server { listen {{PORT}}; server_name exact.example.com;   return 200 "exact"; }
    server { listen {{PORT}}; server_name *.example.com;       return 200 "wild-front"; }
    server { listen {{PORT}}; server_name www.example.*;       return 200 "wild-back"; }
    server { listen {{PORT}}; server_name .dot.test;           return 200 "dot"; }
    server { listen {{PORT}}; server_name ~^\w+\.regex\.test$;     return 200 "regex"; }

    server { listen {{PORT2}}; server_name a.test; return 200 "q-a"; }
    server { listen {{PORT2}} default_server; server_name b.test; return 200 "q-b"; }
}
`, nil, "PORT2", port2)

	for _, tc := range []struct{ host, want string }{
		{"first.test", "first"},
		{"exact.example.com", "exact"},
		{fmt.Sprintf("exact.example.com:%d", port), "exact"},
		{"EXACT.Example.COM", "exact"},
		{"exact.example.com.", "exact"},
		{"a.example.com", "wild-front"},
		{"www.example.com", "wild-front"}, // *.example.com wins over www.example.*
		{"www.example.org", "wild-back"},
		{"dot.test", "dot"},
		{"x.dot.test", "dot"},
		{"foo.regex.test", "regex"},
		{"a.b.regex.test", "first"},
		{"unknown.test", "first"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			r := semGet(t, port, "/", tc.host)
			if r.StatusCode != 200 || r.Body != tc.want {
				t.Errorf("Host %q -> %s %q, want %q", tc.host, r.Status, r.Body, tc.want)
			}
		})
	}
	t.Run("default_server", func(t *testing.T) {
		for host, want := range map[string]string{"a.test": "q-a", "b.test": "q-b", "unknown.test": "q-b"} {
			r := semGet(t, port2, "/", host)
			if r.StatusCode != 200 || r.Body != want {
				t.Errorf("port with default_server, Host %q -> %s %q, want %q", host, r.Status, r.Body, want)
			}
		}
	})
}

func TestSemServerNameRegexCapture(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    server { listen {{PORT}}; server_name first.test; return 200 "first"; }
    server { listen {{PORT}}; server_name ~^(?<sub>.+)\.regex\.test$; return 200 "regex:$sub"; }
}
`, nil)
	for host, want := range map[string]string{"foo.regex.test": "regex:foo", "a.b.regex.test": "regex:a.b", "other.test": "first"} {
		r := semGet(t, port, "/", host)
		if r.StatusCode != 200 || r.Body != want {
			t.Errorf("Host %q -> %s %q, want %q", host, r.Status, r.Body, want)
		}
	}
}

func TestSemAutoSlashRedirect(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        location /app/ { proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /plain/ { return 200 "plain"; }
        location / { return 200 "root"; }
    }
}
`, nil, "ECHO", echo.Port)

	t.Run("proxied", func(t *testing.T) {
		r := semGet(t, port, "/app?x=1", "")
		if want := semURL(port, "/app/?x=1"); r.StatusCode != 301 || r.Header.Get("Location") != want {
			t.Errorf("GET /app?x=1 = %s Location %q, want 301 %q", r.Status, r.Header.Get("Location"), want)
		}
		if n := len(echo.all()); n != 0 {
			t.Errorf("upstream received %d request(s) for /app; want the redirect without proxying", n)
		}
	})
	t.Run("not proxied", func(t *testing.T) {
		// Only proxy_pass (and the other *_pass) locations redirect.
		r := semGet(t, port, "/plain", "")
		if r.StatusCode != 200 || r.Body != "root" {
			t.Errorf("GET /plain = %s %q, want 200 \"root\" from location / (no auto redirect without proxy_pass)", r.Status, r.Body)
		}
	})
}

func TestSemClientMaxBodySize(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port, _ := semStart(t, `events {}
http {
    client_max_body_size 10;
    server {
        listen {{PORT}};
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, nil, "ECHO", echo.Port)
	big := strings.Repeat("b", 100)
	sawBig := func() bool {
		for _, s := range echo.all() {
			if s.Body == big {
				return true
			}
		}
		return false
	}

	t.Run("Content-Length 100", func(t *testing.T) {
		r := semRaw(t, port, "POST /cl HTTP/1.1\r\nHost: sem.test\r\nContent-Length: 100\r\n\r\n"+big, "POST")
		if r.StatusCode != 413 {
			t.Errorf("POST 100 bytes (Content-Length) = %s %q, want 413", r.Status, r.Body)
		}
		for _, s := range echo.all() {
			if s.URI == "/cl" {
				t.Errorf("upstream received the oversized request (body %d bytes)", len(s.Body))
			}
		}
	})
	t.Run("chunked 100", func(t *testing.T) {
		r := semRaw(t, port, "POST /ch HTTP/1.1\r\nHost: sem.test\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"64\r\n"+big+"\r\n0\r\n\r\n", "POST")
		if r.StatusCode != 413 {
			t.Errorf("POST 100 bytes (chunked) = %s %q, want 413", r.Status, r.Body)
		}
		if sawBig() {
			t.Errorf("upstream received the whole 100-byte chunked body")
		}
	})
	t.Run("Content-Length 5", func(t *testing.T) {
		r := semRaw(t, port, "POST /small HTTP/1.1\r\nHost: sem.test\r\nContent-Length: 5\r\n\r\nhello", "POST")
		if r.StatusCode != 200 {
			t.Fatalf("POST 5 bytes = %s %q, want 200", r.Status, r.Body)
		}
		if s := decodeSeen(t, r.Body); s.Body != "hello" {
			t.Errorf("upstream saw body %q, want \"hello\"", s.Body)
		}
	})
	t.Run("chunked exactly 10", func(t *testing.T) {
		r := semRaw(t, port, "POST /ten HTTP/1.1\r\nHost: sem.test\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"4\r\n0123\r\n6\r\n456789\r\n0\r\n\r\n", "POST")
		if r.StatusCode != 200 {
			t.Fatalf("POST 10 bytes chunked (= the limit) = %s %q, want 200", r.Status, r.Body)
		}
		if s := decodeSeen(t, r.Body); s.Body != "0123456789" {
			t.Errorf("upstream saw body %q, want \"0123456789\"", s.Body)
		}
	})
}

func TestSemStatic(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    include mime.types;
    default_type application/octet-stream;
    server {
        listen {{PORT}};
        root html;
        index index.html;
        location / { }
    }
}
`, []option{
		withFile("html/index.html", []byte("<h1>root index</h1>")),
		withFile("html/dir/index.html", []byte("<h1>dir index</h1>")),
		withFile("html/style.css", []byte("body{}")),
		withFile("html/noext", []byte("raw")),
		withFile("html/empty/.keep", nil),
	})

	t.Run("index", func(t *testing.T) {
		r := semGet(t, port, "/", "")
		if r.StatusCode != 200 || r.Body != "<h1>root index</h1>" {
			t.Errorf("GET / = %s %q, want index.html", r.Status, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); mediaType(ct) != "text/html" {
			t.Errorf("GET / Content-Type %q, want text/html", ct)
		}
		r = semGet(t, port, "/dir/", "")
		if r.StatusCode != 200 || r.Body != "<h1>dir index</h1>" {
			t.Errorf("GET /dir/ = %s %q, want dir/index.html", r.Status, r.Body)
		}
	})
	t.Run("directory redirect", func(t *testing.T) {
		r := semGet(t, port, "/dir", "")
		if want := semURL(port, "/dir/"); r.StatusCode != 301 || r.Header.Get("Location") != want {
			t.Errorf("GET /dir = %s Location %q, want 301 %q", r.Status, r.Header.Get("Location"), want)
		}
		r = semGet(t, port, "/dir?a=1", "")
		if want := semURL(port, "/dir/?a=1"); r.StatusCode != 301 || r.Header.Get("Location") != want {
			t.Errorf("GET /dir?a=1 = %s Location %q, want 301 %q", r.Status, r.Header.Get("Location"), want)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if r := semGet(t, port, "/nope.html", ""); r.StatusCode != 404 {
			t.Errorf("GET /nope.html = %s, want 404", r.Status)
		}
	})
	t.Run("directory without index", func(t *testing.T) {
		if r := semGet(t, port, "/empty/", ""); r.StatusCode != 403 {
			t.Errorf("GET /empty/ (no index.html, autoindex off) = %s, want 403", r.Status)
		}
	})
	t.Run("mime types", func(t *testing.T) {
		r := semGet(t, port, "/style.css", "")
		if r.StatusCode != 200 || r.Body != "body{}" {
			t.Fatalf("GET /style.css = %s %q", r.Status, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); mediaType(ct) != "text/css" {
			t.Errorf("GET /style.css Content-Type %q, want text/css (built-in mime.types)", ct)
		}
		r = semGet(t, port, "/noext", "")
		if ct := r.Header.Get("Content-Type"); r.StatusCode != 200 || mediaType(ct) != "application/octet-stream" {
			t.Errorf("GET /noext = %s Content-Type %q, want 200 application/octet-stream (default_type)", r.Status, ct)
		}
	})
}

// combinedLine matches a combined-format line for GET /plain from 127.0.0.1
// with no user, no referrer and User-Agent sem-agent.
var combinedLine = regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /plain HTTP/1\.1" 200 5 "-" "sem-agent"$`)

func TestSemAccessLog(t *testing.T) {
	t.Parallel()
	port, s := semStart(t, `events {}
http {
    log_format j escape=json '{"s":"$status","u":"$uri"}';
    server {
        listen {{PORT}};
        location /j/ { access_log logs/j.log j; return 200 "json"; }
        location = /j/nf { access_log logs/j.log j; return 404; }
        location = /plain { access_log logs/c.log; return 200 "plain"; }
    }
}
`, nil)
	readLines := func(name string) []string {
		data, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", name))
		var lines []string
		for _, l := range strings.Split(string(data), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
		return lines
	}

	t.Run("json", func(t *testing.T) {
		semGet(t, port, "/j/a%22b%5Cc", "")
		semGet(t, port, "/j/nf", "")
		var lines []string
		if !eventually(3*time.Second, func() bool { lines = readLines("j.log"); return len(lines) >= 2 }) {
			t.Fatalf("logs/j.log has %d line(s) %q after 2 requests, want 2", len(lines), lines)
		}
		want := []map[string]string{{"s": "200", "u": `/j/a"b\c`}, {"s": "404", "u": "/j/nf"}}
		for i, l := range lines {
			var got map[string]string
			if err := json.Unmarshal([]byte(l), &got); err != nil {
				t.Errorf("line %d %q is not valid JSON: %v", i+1, l, err)
				continue
			}
			if i < len(want) && (got["s"] != want[i]["s"] || got["u"] != want[i]["u"]) {
				t.Errorf("line %d = %v, want %v", i+1, got, want[i])
			}
		}
		if len(lines) != 2 {
			t.Errorf("logs/j.log has %d lines, want 2: %q", len(lines), lines)
		}
	})
	t.Run("combined", func(t *testing.T) {
		semGet(t, port, "/plain", "", "User-Agent", "sem-agent")
		var lines []string
		if !eventually(3*time.Second, func() bool { lines = readLines("c.log"); return len(lines) >= 1 }) {
			t.Fatalf("logs/c.log is still empty after a request")
		}
		if len(lines) != 1 || !combinedLine.MatchString(lines[0]) {
			t.Errorf("logs/c.log = %q, want one combined line like `127.0.0.1 - - [time] \"GET /plain HTTP/1.1\" 200 5 \"-\" \"sem-agent\"`", lines)
		}
	})
}

func TestSemProxyPassURI(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        location /name/ { proxy_pass http://127.0.0.1:{{ECHO}}/remote/; }
        location /plain/ { proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /var/ { set $b 127.0.0.1:{{ECHO}}; proxy_pass http://$b; }
        location /host/ { proxy_set_header Host $host; proxy_pass http://127.0.0.1:{{ECHO}}; }
        location /xff/ {
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_pass http://127.0.0.1:{{ECHO}};
        }
    }
}
`, nil, "ECHO", echo.Port)
	echoHost := addr(echo.Port)

	for _, tc := range []struct{ path, uri string }{
		{"/name/x?q=1", "/remote/x?q=1"},
		{"/name/a/b%20c", "/remote/a/b%20c"},
		{"/plain/x?q=1", "/plain/x?q=1"},
		{"/plain/a%20b", "/plain/a%20b"},
		{"/var/x?q=1", "/var/x?q=1"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := semGet(t, port, tc.path, "front.test")
			if r.StatusCode != 200 {
				t.Fatalf("GET %s = %s %q", tc.path, r.Status, r.Body)
			}
			seen := decodeSeen(t, r.Body)
			if seen.URI != tc.uri {
				t.Errorf("GET %s: upstream saw %q, want %q", tc.path, seen.URI, tc.uri)
			}
			if seen.Host != echoHost {
				t.Errorf("GET %s: upstream saw Host %q, want $proxy_host %q", tc.path, seen.Host, echoHost)
			}
		})
	}
	t.Run("Host $host", func(t *testing.T) {
		r := semGet(t, port, "/host/x", "Front.Test:8443")
		if r.StatusCode != 200 {
			t.Fatalf("GET /host/x = %s %q", r.Status, r.Body)
		}
		if seen := decodeSeen(t, r.Body); seen.Host != "front.test" {
			t.Errorf("upstream saw Host %q, want $host = front.test (lower case, no port)", seen.Host)
		}
	})
	t.Run("X-Forwarded-For", func(t *testing.T) {
		r := semGet(t, port, "/xff/x", "", "X-Forwarded-For", "10.0.0.1")
		if got := decodeSeen(t, r.Body).Header.Get("X-Forwarded-For"); got != "10.0.0.1, 127.0.0.1" {
			t.Errorf("upstream saw X-Forwarded-For %q, want \"10.0.0.1, 127.0.0.1\"", got)
		}
		r = semGet(t, port, "/xff/x", "")
		if got := decodeSeen(t, r.Body).Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("upstream saw X-Forwarded-For %q without a client header, want 127.0.0.1", got)
		}
	})
}

func TestSemDualStackListen(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("::1 is not available: %v", err)
	}
	ln.Close()
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        listen [::]:{{PORT}};
        location / { return 200 "dual"; }
    }
}
`, nil)
	for _, target := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("[::1]:%d", port)} {
		t.Run(target, func(t *testing.T) {
			r := get(t, httpClient(target, nil), "http://"+target+"/", nil)
			if r.StatusCode != 200 || r.Body != "dual" {
				t.Errorf("GET http://%s/ = %s %q, want 200 \"dual\"", target, r.Status, r.Body)
			}
		})
	}
}

func TestSemKeepaliveRequests(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    keepalive_requests 2;
    server {
        listen {{PORT}};
        location / { return 200 "ka"; }
    }
}
`, nil)
	c := rawConn(t, addr(port), nil)
	br := bufio.NewReader(c)
	send := func(n int) response {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: sem.test\r\n\r\n", n); err != nil {
			t.Fatalf("writing request %d: %v", n, err)
		}
		return readResponse(t, c, br, "GET")
	}
	r1 := send(1)
	if r1.StatusCode != 200 || r1.Close {
		t.Fatalf("first response = %s close=%v, want 200 kept alive", r1.Status, r1.Close)
	}
	r2 := send(2)
	if r2.StatusCode != 200 {
		t.Fatalf("second response = %s", r2.Status)
	}
	// http.ReadResponse removes "Connection: close" from the header map and
	// reports it as Close.
	if !r2.Close {
		t.Errorf("second response has no Connection: close (keepalive_requests 2)")
	}
	rest, closed := closedWithoutResponse(c, br, 3*time.Second)
	if !closed || len(rest) > 0 {
		t.Errorf("after the second response: closed=%v, extra bytes %q; want the connection closed", closed, rest)
	}
}

// TestSemKeepAliveStateIsPerRequest: requests on one keep-alive connection (HTTP/1.1, and HTTP/2 streams) share
// no state (sluice reuses its per-request objects): a variable set, a regex capture, a cached map value, the
// upstream variables and a matched location's add_header of one request are gone in the next.
func TestSemKeepAliveStateIsPerRequest(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	echo := newHTTPEcho(t)
	tlsPort := freePort(t)
	port, _ := semStart(t, `events {}
http {
    map $uri $mapped { /map "hit"; default ""; }
    server {
        listen {{PORT}};
        listen {{TLSPORT}} ssl;
        http2 on;
        ssl_certificate     site.pem;
        ssl_certificate_key site.key.pem;
        location ~ ^/set/(\w+)$ { set $x $1; add_header X-Set $x; return 200 "x=$x 1=$1"; }
        location = /map { return 200 "m=$mapped"; }
        location = /up { add_header X-Up $upstream_status; proxy_pass http://127.0.0.1:{{ECHO}}; }
        location = /show { return 200 "x=$x 1=$1 m=$mapped ua=$upstream_addr us=$upstream_status"; }
    }
}
`, ca.certFiles(t, "site", ecdsaP256, "sem.test"), "ECHO", echo.Port, "TLSPORT", tlsPort)

	t.Run("HTTP/1.1", func(t *testing.T) {
		c := rawConn(t, addr(port), nil)
		br := bufio.NewReader(c)
		checkNoSharedState(t, func(path string) response {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: sem.test\r\n\r\n", path); err != nil {
				t.Fatalf("writing request for %s: %v", path, err)
			}
			r := readResponse(t, c, br, "GET")
			if r.Close {
				t.Fatalf("%s: connection not kept alive", path)
			}
			return r
		})
	})
	t.Run("HTTP/2", func(t *testing.T) {
		tr := &http.Transport{DialContext: dialTo(addr(tlsPort)), TLSClientConfig: ca.clientTLS(""), ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
		checkNoSharedState(t, func(path string) response {
			req, _ := http.NewRequest(http.MethodGet, "https://sem.test"+path, nil)
			r := do(t, client, req)
			if r.Proto != "HTTP/2.0" {
				t.Fatalf("%s over %s, want HTTP/2.0", path, r.Proto)
			}
			return r
		})
	})
}

// checkNoSharedState sends requests that leave state behind, each followed by one that must not see it.
func checkNoSharedState(t *testing.T, get func(path string) response) {
	t.Helper()
	empty := "x= 1= m= ua= us="
	for i := 0; i < 3; i++ {
		if r := get("/set/abc"); r.Body != "x=abc 1=abc" || r.Header.Get("X-Set") != "abc" {
			t.Fatalf("/set/abc = %q X-Set %q", r.Body, r.Header.Get("X-Set"))
		}
		if r := get("/show"); r.Body != empty || r.Header.Get("X-Set") != "" {
			t.Fatalf("/show after /set/abc = %q X-Set %q, want %q and no X-Set", r.Body, r.Header.Get("X-Set"), empty)
		}
		if r := get("/map"); r.Body != "m=hit" {
			t.Fatalf("/map = %q", r.Body)
		}
		if r := get("/show"); r.Body != empty {
			t.Fatalf("/show after /map = %q, want %q", r.Body, empty)
		}
		if r := get("/up"); r.StatusCode != 200 || r.Header.Get("X-Up") != "200" {
			t.Fatalf("/up = %s X-Up %q", r.Status, r.Header.Get("X-Up"))
		}
		if r := get("/show"); r.Body != empty || r.Header.Get("X-Up") != "" || r.Header.Get("X-Backend") != "" {
			t.Fatalf("/show after /up = %q (X-Up %q X-Backend %q), want %q and no upstream headers", r.Body,
				r.Header.Get("X-Up"), r.Header.Get("X-Backend"), empty)
		}
	}
}
