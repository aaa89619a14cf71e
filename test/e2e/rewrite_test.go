package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRewriteAsNginx: rewrite-phase behaviour as observed from nginx 1.22 on the same configuration.
func TestRewriteAsNginx(t *testing.T) {
	t.Parallel()
	www := t.TempDir()
	for name, body := range map[string]string{"hello.txt": "hello\n", "dir/index.html": "index\n"} {
		p := filepath.Join(www, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        root {{WWW}};
        location /v/ { return 200 "v uri=$uri args=$args\n"; }
        location /flagless/ { rewrite ^ /v/from-flagless; }
        location /multi/ { rewrite ^/multi/(.*)$ /multi2/$1; rewrite ^/multi2/(.*)$ /v/m-$1; }
        location /flagbreak/ { rewrite ^ /v/x; break; }
        location /ifbreak/ { if ($arg_b) { rewrite ^ /v/ifbreak break; } return 200 "no\n"; }
        location /argsq/ { rewrite ^/argsq/(.*)$ /v/argsq?x=$1? last; }
        location /dropargs/ { rewrite ^ /v/dropped? last; }
        location /args/ { rewrite ^/args/(.*)$ /v/args?x=$1 last; }
        location /redirargs/ { rewrite ^/redirargs/(.*)$ /target?y=$1 redirect; }
        location /redir/ { rewrite ^/redir/(.*)$ /dest/$1 redirect; }
        location /al/ {
            alias {{WWW}}/;
            if (!-e $request_filename) { return 404 "nope $request_filename\n"; }
        }
        location /tf/ { alias {{WWW}}/; try_files $uri $uri/ =418; }
    }
}
`, "PORT", port, "WWW", www))
	c := httpClient(addr(port), nil)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for _, tc := range []struct {
		path     string
		status   int
		body     string // "" with a Location: not checked
		location string
	}{
		// a rewrite without a flag: the other statements run, then the locations are searched again
		{"/flagless/x?k=v", 200, "v uri=/v/from-flagless args=k=v\n", ""},
		{"/multi/abc", 200, "v uri=/v/m-abc args=\n", ""},
		// break keeps the request in its location, also from inside an if (a file lookup: none)
		{"/flagbreak/x", 404, "", ""},
		{"/ifbreak/x?b=1", 404, "", ""},
		{"/ifbreak/x", 200, "no\n", ""},
		// a final "?" drops the request's arguments; without it they follow the replacement's
		{"/argsq/abc?q=1", 200, "v uri=/v/argsq args=x=abc\n", ""},
		{"/dropargs/x?q=1", 200, "v uri=/v/dropped args=\n", ""},
		{"/args/abc?q=1", 200, "v uri=/v/args args=x=abc&q=1\n", ""},
		{"/redirargs/abc?q=1", 302, "", base + "/target?y=abc&q=1"},
		// captures from an escaped path are escaped again in arguments and in a redirect's path
		{"/args/a%26b", 200, "v uri=/v/args args=x=a%26b\n", ""},
		{"/args/a%20b%2Bc", 200, "v uri=/v/args args=x=a%20b%2Bc\n", ""},
		{"/redir/a%20b", 302, "", base + "/dest/a%20b"},
		{"/redir/a%26b%3F", 302, "", base + "/dest/a&b?"},
		{"/redir/%C3%BC%25", 302, "", base + "/dest/%C3%BC%25"},
		// $request_filename maps through alias in the rewrite phase
		{"/al/hello.txt", 200, "hello\n", ""},
		{"/al/missing", 404, "nope " + www + "/missing\n", ""},
		// try_files $uri/ finds a directory: the static handler's redirect to the slash
		{"/tf/dir", 301, "", base + "/tf/dir/"},
		{"/tf/dir/", 200, "index\n", ""},
		{"/tf/hello.txt", 200, "hello\n", ""},
	} {
		resp, err := c.Get(base + tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d (body %q)", tc.path, resp.StatusCode, tc.status, body)
			continue
		}
		if tc.body != "" && string(body) != tc.body {
			t.Errorf("%s: body %q, want %q", tc.path, body, tc.body)
		}
		if tc.location != "" && resp.Header.Get("Location") != tc.location {
			t.Errorf("%s: Location %q, want %q", tc.path, resp.Header.Get("Location"), tc.location)
		}
	}
}

// TestRedirectsAsNginx: the Location of redirects sluice writes, as nginx 1.22 writes it for the same
// configuration and a request with "Host: EXAMPLE.test.": the host lower-cased without its trailing dot,
// absolute_redirect, port_in_redirect, server_name_in_redirect, and proxy_redirect with a variable in its
// "from" part, with regex captures, and by default, the result made absolute like nginx's own redirects.
func TestRedirectsAsNginx(t *testing.T) {
	t.Parallel()
	var upPort int
	up := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d/up/new", upPort), http.StatusFound)
	}))
	upPort = up.Port
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        server_name main.test;
        location /def/ { proxy_pass http://127.0.0.1:{{UP}}/up/; }
        location /var/ { proxy_redirect http://$proxy_host/up/ /explvar/; proxy_pass http://127.0.0.1:{{UP}}/up/; }
        location /re/ { proxy_redirect ~^http://[^/]+/up/(.*)$ /explre/$1; proxy_pass http://127.0.0.1:{{UP}}/up/; }
        location /relr/ { absolute_redirect off; return 302 /target; }
        location /noport/ { port_in_redirect off; return 302 /target; }
        location /sname/ { server_name_in_redirect on; return 302 /target; }
        location /host/ { return 302 /target; }
    }
}
`, "PORT", port, "UP", up.Port))
	c := httpClient(addr(port), nil)
	p := fmt.Sprint(port)
	for path, want := range map[string]string{
		"/def/x":    "http://example.test:" + p + "/def/new",
		"/var/x":    "http://example.test:" + p + "/explvar/new",
		"/re/x":     "http://example.test:" + p + "/explre/new",
		"/relr/x":   "/target",
		"/noport/x": "http://example.test/target",
		"/sname/x":  "http://main.test:" + p + "/target",
		"/host/x":   "http://example.test:" + p + "/target",
	} {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+p+path, nil)
		req.Host = "EXAMPLE.test."
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("%s: Location %q, want %q", path, got, want)
		}
	}
}

// TestMapInclude: a map block reads the entries of an include in place, relative to the configuration's
// directory, as nginx does (sluice dropped them silently).
func TestMapInclude(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    map $uri $mapped {
        default dflt;
        include map-entries.conf;
        /after after;
    }
    server {
        listen {{PORT}};
        location / { return 200 "$mapped"; }
    }
}
`, "PORT", port), withFile("conf/map-entries.conf", []byte("/inc/a included-a;\n~^/re/ from-regex;\n")))
	for path, want := range map[string]string{"/inc/a": "included-a", "/re/x": "from-regex", "/after": "after", "/other": "dflt"} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("%s: $mapped %q, want %q", path, b, want)
		}
	}
}

// TestReturnStatusVariable: $status in a return's text is the code returned (nginx 1.22 answered "s=200",
// "s=403", "s=404", "s=500", "s=201"; sluice answered "s=000").
func TestReturnStatusVariable(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /a { return 200 "s=$status"; }
        location /b { return 403 "s=$status"; }
        location /c { return 404 "s=$status"; }
        location /e { return 201 "s=$status"; }
    }
}
`, "PORT", port))
	c := httpClient(addr(port), nil)
	for path, want := range map[string]string{"/a": "s=200", "/b": "s=403", "/c": "s=404", "/e": "s=201"} {
		if r := get(t, c, "http://rs.test"+path, nil); r.Body != want {
			t.Errorf("%s: %q, want %q", path, r.Body, want)
		}
	}
}

// TestRewriteLog: rewrite_log writes each regex tried and each rewrite's result at notice, worded as nginx 1.22
// wrote them for the same requests.
func TestRewriteLog(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	s := start(t, fill(t, `error_log stderr notice;
events {}
http {
    server {
        listen {{PORT}};
        server_name rl.test;
        rewrite_log on;
        rewrite ^/srv/(.*)$ /loc/$1;
        location /loc/ { rewrite ^/loc/(.*)$ /final/$1?x=1 last; rewrite ^/nope /z; }
        location /final/ { return 200 "final $uri $args"; }
        location /r/ { rewrite ^/r/(.*) /elsewhere/$1 redirect; }
    }
}
`, "PORT", port))
	c := httpClient(addr(port), nil)
	get(t, c, "http://rl.test/srv/a?q=2", nil)
	get(t, c, "http://rl.test/r/b", nil)
	want := []string{
		`"^/srv/(.*)$" matches "/srv/a"`,
		`rewritten data: "/loc/a", args: "q=2"`,
		`"^/loc/(.*)$" matches "/loc/a"`,
		`rewritten data: "/final/a", args: "x=1&q=2"`,
		`"^/srv/(.*)$" does not match "/r/b"`,
		`"^/r/(.*)" matches "/r/b"`,
		`rewritten redirect: "/elsewhere/b"`,
	}
	var got []string
	eventually(5*time.Second, func() bool {
		got = got[:0]
		for _, line := range strings.Split(s.Log(), "\n") {
			if _, msg, ok := strings.Cut(line, "[notice] "); ok && strings.Contains(msg, "*") {
				msg = msg[strings.Index(msg, " ")+1:] // pid#tid
				msg = msg[strings.Index(msg, " ")+1:] // *conn
				got = append(got, strings.SplitN(msg, ", client:", 2)[0])
			}
		}
		return len(got) >= len(want)
	})
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rewrite_log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
