package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastcgiCacheConf is the WordPress "FastCGI cache" of the tutorials, with locations for the other directives.
const fastcgiCacheConf = `events {}
http {
    fastcgi_cache_path {{CACHE}} levels=1:2 keys_zone=WORDPRESS:100m inactive=60m;
    fastcgi_cache_key "$scheme$request_method$host$request_uri";
    server {
        listen {{PORT}};
        root html;
        set $skip_cache 0;
        if ($request_method = POST) { set $skip_cache 1; }
        if ($query_string ~ "nocache") { set $skip_cache 1; }
        if ($http_cookie ~* "wordpress_logged_in") { set $skip_cache 1; }
        add_header X-Cache $upstream_cache_status;
        location ~ \.php$ {
            include fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass 127.0.0.1:{{FPM}};
            fastcgi_cache_bypass $skip_cache;
            fastcgi_no_cache $skip_cache;
            fastcgi_cache WORDPRESS;
            fastcgi_cache_valid 200 60m;
        }
        location / {
            include fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root/c.php;
            fastcgi_pass 127.0.0.1:{{FPM}};
            fastcgi_cache WORDPRESS;
            fastcgi_cache_valid 200 60m;
            location /hk/ {
                fastcgi_pass 127.0.0.1:{{FPM}};
                fastcgi_cache_key "$host$request_uri";
            }
            location /ign/ {
                fastcgi_pass 127.0.0.1:{{FPM}};
                fastcgi_ignore_headers Cache-Control Expires Set-Cookie;
            }
            location /st/ {
                fastcgi_pass 127.0.0.1:{{FPM}};
                fastcgi_cache_valid 200 1s;
                fastcgi_cache_use_stale error timeout http_500 updating;
            }
            location /mu/ {
                fastcgi_pass 127.0.0.1:{{FPM}};
                fastcgi_cache_min_uses 2;
                fastcgi_cache_methods POST;
            }
            location /lk/ {
                fastcgi_pass 127.0.0.1:{{FPM}};
                fastcgi_cache_lock on;
            }
            location /nokey/ {
                fastcgi_pass 127.0.0.1:{{FPM}};
                fastcgi_cache_key "";
            }
        }
    }
}
`

// fastcgiCachePHP counts the requests for each URI and says which one it answers ("n=2 GET /c.php?a"), so a HIT
// shows as an older count; cookie= and h= set response fields, a file "fail" next to it makes every answer 500.
const fastcgiCachePHP = `<?php
$u = $_SERVER['REQUEST_URI'];
$f = fopen(__DIR__ . '/n-' . md5($u), 'c+'); flock($f, LOCK_EX);
$n = (int)stream_get_contents($f) + 1; ftruncate($f, 0); rewind($f); fwrite($f, "$n"); fclose($f);
if (isset($_GET['cookie'])) setcookie('c', $_GET['cookie']);
foreach ((array)($_GET['h'] ?? []) as $h) header($h, false);
if (file_exists(__DIR__ . '/fail')) { http_response_code(500); echo "fail\n"; exit; }
if (isset($_GET['sleep'])) usleep((int)($_GET['sleep'] * 1000000));
if (isset($_GET['gz'])) {
    header('Vary: Accept-Encoding');
    if (strpos($_SERVER['HTTP_ACCEPT_ENCODING'] ?? '', 'gzip') !== false) {
        header('Content-Encoding: gzip');
        echo gzencode("n=$n gzip\n");
        exit;
    }
}
echo "n=$n " . $_SERVER['REQUEST_METHOD'] . " $u " . ($_SERVER['HTTP_COOKIE'] ?? '') . "\n";
`

type fcacheSite struct {
	s *Sluice
	c *http.Client
}

// do sends one request (hdr: name, value pairs) and returns its X-Cache, body and header.
func (fs *fcacheSite) do(t *testing.T, method, path string, hdr ...string) (string, string, http.Header) {
	t.Helper()
	_, _, body, h := cacheGet(t, fs.c, method, path, hdr...)
	return h.Get("X-Cache"), body, h
}

func startFastCGICache(t *testing.T) *fcacheSite {
	t.Helper()
	fpm := startPHPFPM(t)
	port := freePort(t)
	conf := fill(t, fastcgiCacheConf, "PORT", port, "FPM", fpm.Port, "CACHE", filepath.Join(t.TempDir(), "cache"))
	s := start(t, conf, withFile("html/c.php", []byte(fastcgiCachePHP)))
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: dialTo(addr(port)), DisableCompression: true}}
	return &fcacheSite{s: s, c: c}
}

// TestFastCGICache: fastcgi_cache with php-fpm, as nginx 1.22 answered the same configuration and script side
// by side (every X-Cache sequence below is nginx's, except where a comment says otherwise).
func TestFastCGICache(t *testing.T) {
	t.Parallel()
	fs := startFastCGICache(t)
	type step struct{ method, path, want, body string }
	run := func(name string, steps ...step) {
		t.Helper()
		for i, st := range steps {
			xc, body, _ := fs.do(t, st.method, st.path)
			if xc != st.want || st.body != "" && body != st.body {
				t.Errorf("%s: request %d (%s %s): %q %q, want %q %q", name, i+1, st.method, st.path, xc, body, st.want, st.body)
			}
		}
	}
	run("wordpress", step{"GET", "/c.php?p=1", "MISS", "n=1 GET /c.php?p=1 \n"}, step{"GET", "/c.php?p=1", "HIT", "n=1 GET /c.php?p=1 \n"})
	// the key has $request_method: HEAD has its own entry
	run("head", step{"HEAD", "/c.php?p=2", "MISS", ""}, step{"HEAD", "/c.php?p=2", "HIT", ""},
		step{"GET", "/c.php?p=2", "MISS", "n=2 GET /c.php?p=2 \n"}, step{"GET", "/c.php?p=2", "HIT", "n=2 GET /c.php?p=2 \n"})
	// a key without $request_method: nginx stores php-fpm's answer to HEAD (no body) and sends that empty
	// body to the GET that follows (HIT, ""); sluice's entry of a HEAD answers HEAD only (a difference)
	run("head, key without method", step{"HEAD", "/hk/a", "MISS", ""}, step{"GET", "/hk/a", "MISS", "n=2 GET /hk/a \n"},
		step{"GET", "/hk/a", "HIT", "n=2 GET /hk/a \n"}, step{"HEAD", "/hk/a", "HIT", ""})
	run("bypass", step{"GET", "/c.php?nocache=1", "BYPASS", "n=1 GET /c.php?nocache=1 \n"},
		step{"GET", "/c.php?nocache=1", "BYPASS", "n=2 GET /c.php?nocache=1 \n"})
	if xc, body, _ := fs.do(t, "GET", "/c.php?p=1", "Cookie", "wordpress_logged_in_1=x"); xc != "BYPASS" || body != "n=2 GET /c.php?p=1 wordpress_logged_in_1=x\n" {
		t.Errorf("logged in: %q %q, want BYPASS n=2", xc, body)
	}
	// $skip_cache kept the logged-in page out (fastcgi_no_cache): the anonymous one is still the entry
	run("no_cache", step{"GET", "/c.php?p=1", "HIT", "n=1 GET /c.php?p=1 \n"})
	// POST is not among the cached methods: no status at all
	run("post", step{"POST", "/c.php?p=1", "", "n=3 POST /c.php?p=1 \n"})
	run("set-cookie", step{"GET", "/c.php?cookie=x", "MISS", ""}, step{"GET", "/c.php?cookie=x", "MISS", "n=2 GET /c.php?cookie=x \n"})
	ign := "/ign/?cookie=x&h[]=Cache-Control:%20no-cache&h[]=Expires:%20Thu,%2001%20Jan%201970%2000:00:00%20GMT"
	run("ignore_headers", step{"GET", ign, "MISS", ""}, step{"GET", ign, "HIT", "n=1 GET " + ign + " \n"})
	if _, _, h := fs.do(t, "GET", ign); h.Get("Set-Cookie") != "c=x" || h.Get("Cache-Control") != "no-cache" {
		t.Errorf("ignore_headers: a HIT's fields %v, want the stored Set-Cookie and Cache-Control", h)
	}
	run("min_uses, methods", step{"GET", "/mu/a", "MISS", ""}, step{"GET", "/mu/a", "MISS", ""}, step{"GET", "/mu/a", "HIT", "n=2 GET /mu/a \n"},
		step{"POST", "/mu/p", "MISS", ""}, step{"POST", "/mu/p", "MISS", ""}, step{"POST", "/mu/p", "HIT", "n=2 POST /mu/p \n"},
		step{"GET", "/mu/p", "MISS", "n=3 GET /mu/p \n"})
	// without a key every URI of the location shares one entry, as in nginx
	run("empty key", step{"GET", "/nokey/a", "MISS", "n=1 GET /nokey/a \n"}, step{"GET", "/nokey/b", "HIT", "n=1 GET /nokey/a \n"})

	// Vary: each client its own cached page
	checkVary(t, func(path string, hdr ...string) (string, string, http.Header) { return fs.do(t, "GET", path, hdr...) },
		"/vary/a?h[]=Vary:%20Cookie", "/vary/g?gz=1", func(n int, cookie string) string {
			return fmt.Sprintf("n=%d GET /vary/a?h[]=Vary:%%20Cookie %s\n", n, cookie)
		})
	run("vary *", step{"GET", "/vary/s?h[]=Vary:%20*", "MISS", ""}, step{"GET", "/vary/s?h[]=Vary:%20*", "MISS", ""})

	// use_stale http_500: the expired entry answers the application's 500 (STALE), then a good answer replaces
	// it (EXPIRED, HIT)
	run("stale", step{"GET", "/st/b", "MISS", "n=1 GET /st/b \n"})
	time.Sleep(2100 * time.Millisecond)
	fail := filepath.Join(fs.s.Prefix, "html", "fail")
	os.WriteFile(fail, nil, 0o644)
	run("stale", step{"GET", "/st/b", "STALE", "n=1 GET /st/b \n"})
	os.Remove(fail)
	run("stale", step{"GET", "/st/b", "EXPIRED", "n=3 GET /st/b \n"}, step{"GET", "/st/b", "HIT", "n=3 GET /st/b \n"})

	// lock: the second request waits for the first to fill the entry and is answered from it (MISS, HIT); with
	// use_stale updating, a request while another updates the expired entry gets it (EXPIRED, UPDATING)
	concurrent := func(path string) (statuses, bodies []string) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				xc, body, _ := fs.do(t, "GET", path)
				mu.Lock()
				statuses, bodies = append(statuses, xc), append(bodies, body)
				mu.Unlock()
			}()
			if i == 0 {
				time.Sleep(300 * time.Millisecond)
			}
		}
		wg.Wait()
		slices.Sort(statuses)
		return statuses, bodies
	}
	if st, bodies := concurrent("/lk/x?sleep=1"); strings.Join(st, " ") != "HIT MISS" || bodies[0] != bodies[1] {
		t.Errorf("lock: %v %q, want HIT and MISS with one body", st, bodies)
	}
	run("updating", step{"GET", "/st/u?sleep=1", "MISS", ""})
	time.Sleep(2100 * time.Millisecond)
	if st, _ := concurrent("/st/u?sleep=1"); strings.Join(st, " ") != "EXPIRED UPDATING" {
		t.Errorf("updating: %v, want EXPIRED and UPDATING", st)
	}
}
