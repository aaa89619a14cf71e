package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestH5BPHeadersAsNginx: h5bp's server-configs-nginx chooses its security headers and expiry by the type of
// the response being sent (maps on $sent_http_content_type feeding add_header and `expires $expires`). sluice
// sent none of those headers ($sent_http_* was empty until the access log) and refused `expires` with a
// variable. The expected values are nginx 1.22's on the same configuration.
func TestH5BPHeadersAsNginx(t *testing.T) {
	t.Parallel()
	var files []option
	for name, body := range map[string]string{"index.html": "<p>home</p>\n", "404.html": "<p>gone</p>\n", "main.css": "body{}\n", "a.png": "png", "data.json": "{}\n"} {
		files = append(files, withFile("html/"+name, []byte(body)))
	}
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    include mime.types;
    map $sent_http_content_type $x_frame_options {
        ~*text/html DENY;
    }
    map $sent_http_content_type $cors {
        ~*image/ "*";
    }
    map $sent_http_content_type $expires {
        default          1M;
        ~*text/css       1y;
        ~*application/json 0;
        ~*text/html      0;
    }
    server {
        listen {{PORT}};
        root html;
        error_page 404 /404.html;
        expires $expires;
        add_header X-Frame-Options $x_frame_options always;
        add_header Access-Control-Allow-Origin $cors;
        location /arg/ { alias html/; expires $arg_e; }
        location /mod/ { alias html/; expires modified $arg_e; }
    }
}
`, "PORT", port), files...)
	c := httpClient(addr(port), nil)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for _, tc := range []struct {
		path, xfo, cors, cacheControl string
		status                        int
	}{
		{"/", "DENY", "", "max-age=0", 200},
		{"/main.css", "", "", "max-age=31536000", 200},
		{"/a.png", "", "*", "max-age=2592000", 200},
		{"/data.json", "", "", "max-age=0", 200},
		// an error page: add_header … always, and no expiry (not a 2xx or 3xx)
		{"/nope", "DENY", "", "", 404},
		// values nginx does not read as a time send nothing
		{"/arg/main.css?e=bogus", "", "", "", 200},
		{"/arg/main.css?e=", "", "", "", 200},
		{"/arg/main.css?e=-1", "", "", "no-cache", 200},
		{"/arg/main.css?e=epoch", "", "", "no-cache", 200},
		{"/arg/main.css?e=max", "", "", "max-age=315360000", 200},
		{"/arg/main.css?e=off", "", "", "", 200},
		{"/arg/main.css?e=@25h", "", "", "", 200},
		{"/mod/main.css?e=@1h", "", "", "", 200}, // daily time with modified
	} {
		r := get(t, c, base+tc.path, nil)
		if r.StatusCode != tc.status || r.Header.Get("X-Frame-Options") != tc.xfo || r.Header.Get("Access-Control-Allow-Origin") != tc.cors || r.Header.Get("Cache-Control") != tc.cacheControl {
			t.Errorf("%s: %d X-Frame-Options %q Access-Control-Allow-Origin %q Cache-Control %q, want %d %q %q %q", tc.path, r.StatusCode,
				r.Header.Get("X-Frame-Options"), r.Header.Get("Access-Control-Allow-Origin"), r.Header.Get("Cache-Control"), tc.status, tc.xfo, tc.cors, tc.cacheControl)
		}
		if (tc.cacheControl == "") != (r.Header.Get("Expires") == "") {
			t.Errorf("%s: Expires %q with Cache-Control %q", tc.path, r.Header.Get("Expires"), r.Header.Get("Cache-Control"))
		}
	}

	// expires @10h: the next 10:00 local time, max-age counted in whole seconds (nginx's ngx_next_time)
	now := time.Now()
	r := get(t, c, base+"/arg/main.css?e=@10h", nil)
	at, err := time.Parse(time.RFC1123, r.Header.Get("Expires"))
	if err != nil {
		t.Fatalf("Expires %q: %v", r.Header.Get("Expires"), err)
	}
	if l := at.In(time.Local); l.Hour() != 10 || l.Minute() != 0 || !at.After(now) || at.Sub(now) > 24*time.Hour {
		t.Errorf("@10h: Expires %v (now %v)", l, now)
	}
	var age int64
	if _, err := fmt.Sscanf(r.Header.Get("Cache-Control"), "max-age=%d", &age); err != nil || age < int64(at.Sub(now)/time.Second)-2 || age > int64(at.Sub(now)/time.Second)+1 {
		t.Errorf("@10h: Cache-Control %q, Expires in %v", r.Header.Get("Cache-Control"), at.Sub(now))
	}
}

// TestIfEmptyStringAsNginx: WordPress cache recipes skip the cache with `if ($query_string != "")`; sluice
// refused the configuration (the empty string was dropped as if it were the space before the parenthesis).
func TestIfEmptyStringAsNginx(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        set $skip_cache 0;
        if ($query_string != "") {
            set $skip_cache 1;
        }
        if ( $http_x_empty = '' ) {
            set $skip_cache "${skip_cache}e";
        }
        location / { return 200 "skip=$skip_cache\n"; }
    }
}
`, "PORT", port))
	c := httpClient(addr(port), nil)
	for path, want := range map[string]string{"/": "skip=0e\n", "/?p=1": "skip=1e\n"} {
		if r := get(t, c, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil); r.StatusCode != 200 || r.Body != want {
			t.Errorf("%s: %d %q, want %q", path, r.StatusCode, r.Body, want)
		}
	}
	if r := get(t, c, fmt.Sprintf("http://127.0.0.1:%d/", port), map[string][]string{"X-Empty": {"x"}}); !strings.HasPrefix(r.Body, "skip=0\n") {
		t.Errorf("with X-Empty: %q", r.Body)
	}
}
