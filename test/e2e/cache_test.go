package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cacheBackend counts requests per path and answers "n=COUNT PATH": the query's h=Name:value pairs become
// response fields, status= the status, sleep= a delay before the head, ims304 a 304 to a request with
// If-Modified-Since or If-None-Match, cut a body cut short (Content-Length larger than what is sent; cutafter=N
// from the N+1th request on), gz a
// gzipped body for clients whose Accept-Encoding has gzip (with Vary: Accept-Encoding).
type cacheBackend struct {
	*backend
	mu     sync.Mutex
	counts map[string]int
	heads  map[string]http.Header // the last request's header, by path
}

func newCacheBackend(t *testing.T) *cacheBackend {
	cb := &cacheBackend{counts: map[string]int{}, heads: map[string]http.Header{}}
	cb.backend = newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		cb.mu.Lock()
		cb.counts[r.URL.Path]++
		n := cb.counts[r.URL.Path]
		cb.heads[r.URL.Path] = r.Header.Clone()
		cb.mu.Unlock()
		if d, err := time.ParseDuration(q.Get("sleep")); err == nil {
			time.Sleep(d)
		}
		if q.Has("ims304") && (r.Header.Get("If-Modified-Since") != "" || r.Header.Get("If-None-Match") != "") {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		for _, h := range q["h"] {
			k, v, _ := strings.Cut(h, ":")
			w.Header().Add(k, v)
		}
		w.Header().Set("X-Method", r.Method)
		body := fmt.Sprintf("n=%d %s\n", n, r.URL.Path)
		if q.Has("big") {
			body = strings.Repeat(body, 20000)
		}
		if q.Has("gz") {
			w.Header().Set("Vary", "Accept-Encoding")
			if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				io.WriteString(zw, body)
				zw.Close()
				w.Header().Set("Content-Encoding", "gzip")
				body = b.String()
			}
		}
		status := http.StatusOK
		fmt.Sscan(q.Get("status"), &status)
		after := -1
		fmt.Sscan(q.Get("cutafter"), &after)
		if q.Has("cut") || after >= 0 && n > after {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)+1000))
			w.WriteHeader(status)
			io.WriteString(w, body)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	return cb
}

func (cb *cacheBackend) head(path string) http.Header {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.heads[path]
}

func (cb *cacheBackend) count(path string) int {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.counts[path]
}

const cacheConf = `events {}
http {
    proxy_cache_path {{CACHE}} levels=1:2 keys_zone=z:1m inactive=10m;
    server {
        listen {{PORT}};
        add_header X-Cache-Status $upstream_cache_status always;
        location / {
            proxy_pass http://127.0.0.1:{{APP}};
            proxy_cache z;
            proxy_cache_valid 200 1m;
        }
        location /v/ {
            proxy_pass http://127.0.0.1:{{APP}};
            proxy_cache z;
        }
        location /b/ {
            proxy_pass http://127.0.0.1:{{APP}};
            proxy_cache z;
            proxy_cache_valid any 1m;
            proxy_cache_bypass $http_x_nocache;
            proxy_no_cache $http_x_nostore;
        }
        location /m/ {
            proxy_pass http://127.0.0.1:{{APP}};
            proxy_cache z;
            proxy_cache_valid 1m;
            proxy_cache_min_uses 2;
        }
        location /s/ {
            proxy_pass http://127.0.0.1:{{APP}};
            proxy_cache z;
            proxy_cache_key $uri;
            proxy_cache_valid 200 1s;
            proxy_cache_use_stale error timeout http_500 updating;
            proxy_cache_revalidate on;
        }
        location /l/ {
            proxy_pass http://127.0.0.1:{{APP}};
            proxy_cache z;
            proxy_cache_key $uri;
            proxy_cache_valid 1m;
            proxy_cache_lock on;
        }
        location /gone/ {
            proxy_pass http://127.0.0.1:{{APP2}};
            proxy_cache z;
            proxy_cache_valid 1s;
            proxy_cache_use_stale error;
        }
        location /dead/ {
            proxy_pass http://127.0.0.1:{{DEAD}};
            proxy_cache z;
            proxy_cache_key $uri;
            proxy_cache_valid 1m;
        }
    }
}
`

// cacheGet sends one request and returns its status, X-Cache-Status, body and header.
func cacheGet(t *testing.T, c *http.Client, method, path string, hdr ...string) (int, string, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://cache.test"+strings.ReplaceAll(path, " ", "%20"), nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] != "" {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Cache-Status"), string(b), resp.Header
}

// TestProxyCache: proxy_cache's statuses, what is stored, and what a HIT answers. Every expected status was
// observed from nginx 1.22 side by side on the same configuration and upstream (the sequences of
// $upstream_cache_status below are nginx's).
func TestProxyCache(t *testing.T) {
	t.Parallel()
	app := newCacheBackend(t)
	dir := filepath.Join(t.TempDir(), "cache")
	port := freePort(t)
	app2 := newCacheBackend(t)
	conf := fill(t, cacheConf, "PORT", port, "APP", app.Port, "CACHE", dir, "DEAD", freePort(t), "APP2", app2.Port)
	s := start(t, conf)
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: dialTo(addr(port)), DisableCompression: true}}

	// each case: requests in order and the X-Cache-Status each gets (nginx's), and the requests that reached
	// the upstream
	for _, tc := range []struct {
		name, path string
		want       []string
		upstream   int
	}{
		{"valid", "/a", []string{"MISS", "HIT"}, 1},
		{"max-age", "/v/cc?h=Cache-Control:max-age=60", []string{"MISS", "HIT"}, 1},
		{"s-maxage", "/v/sm?h=Cache-Control:s-maxage=60", []string{"MISS", "HIT"}, 1},
		{"no valid time", "/v/none", []string{"MISS", "MISS"}, 2},
		{"no-cache", "/v/nc?h=Cache-Control:no-cache,max-age=60", []string{"MISS", "MISS"}, 2},
		{"private", "/v/pr?h=Cache-Control:private", []string{"MISS", "MISS"}, 2},
		{"max-age=0", "/v/ma0?h=Cache-Control:max-age=0", []string{"MISS", "MISS"}, 2},
		{"x-accel-expires", "/v/xa?h=X-Accel-Expires:60", []string{"MISS", "HIT"}, 1},
		{"x-accel-expires 0", "/v/xa0?h=X-Accel-Expires:0&h=Cache-Control:max-age=60", []string{"MISS", "MISS"}, 2},
		// (nginx 1.22 reads the fields in order, and Go's server sends them sorted: the other order is a unit test)
		{"no-cache before x-accel-expires", "/v/ccxa?h=Cache-Control:no-cache&h=X-Accel-Expires:60", []string{"MISS", "MISS"}, 2},
		{"expires", "/v/exp?h=Expires:Thu, 01 Jan 2037 00:00:00 GMT", []string{"MISS", "HIT"}, 1},
		{"expires past", "/v/expold?h=Expires:Thu, 01 Jan 1998 00:00:00 GMT", []string{"MISS", "MISS"}, 2},
		{"set-cookie", "/sc?h=Set-Cookie:a=b", []string{"MISS", "MISS"}, 2},
		{"vary star", "/vs?h=Vary:*", []string{"MISS", "MISS"}, 2},
		{"vary", "/vy?h=Vary:Cookie", []string{"MISS", "HIT"}, 1}, // (one variant: neither request has a Cookie)
		{"404 not valid", "/404?status=404", []string{"MISS", "MISS"}, 2},
		{"min_uses 2", "/m/m", []string{"MISS", "MISS", "HIT", "HIT"}, 2},
	} {
		for i, want := range tc.want {
			if _, got, _, _ := cacheGet(t, c, "GET", tc.path); got != want {
				t.Errorf("%s: request %d: %s, want %s", tc.name, i+1, got, want)
			}
		}
		u, _ := url.Parse(tc.path)
		if n := app.count(u.Path); n != tc.upstream {
			t.Errorf("%s: upstream saw %d requests, want %d", tc.name, n, tc.upstream)
		}
	}

	// bypass: the response is taken from the upstream and stored, replacing the entry (nginx: BYPASS n=1,
	// HIT n=1, BYPASS n=2, HIT n=2); no_cache: not stored (MISS, MISS, and then stored: HIT); "0" is false
	for i, step := range []struct{ hdr, want, body string }{
		{"X-Nocache", "BYPASS", "n=1 /b/b\n"}, {"", "HIT", "n=1 /b/b\n"},
		{"X-Nocache", "BYPASS", "n=2 /b/b\n"}, {"", "HIT", "n=2 /b/b\n"},
	} {
		if _, got, body, _ := cacheGet(t, c, "GET", "/b/b", step.hdr, "1"); got != step.want || body != step.body {
			t.Errorf("bypass: request %d: %s %q, want %s %q", i+1, got, body, step.want, step.body)
		}
	}
	for i, step := range []struct{ hdr, want string }{{"X-Nostore", "MISS"}, {"", "MISS"}, {"", "HIT"}} {
		if _, got, _, _ := cacheGet(t, c, "GET", "/b/ns", step.hdr, "1"); got != step.want {
			t.Errorf("no_cache: request %d: %s, want %s", i+1, got, step.want)
		}
	}
	for i, want := range []string{"MISS", "HIT"} {
		if _, got, _, _ := cacheGet(t, c, "GET", "/b/z", "X-Nocache", "0"); got != want {
			t.Errorf("bypass \"0\": request %d: %s, want %s", i+1, got, want)
		}
	}

	// Vary: a variant per value of the fields named
	do := func(path string, hdr ...string) (string, string, http.Header) {
		_, got, body, h := cacheGet(t, c, "GET", path, hdr...)
		return got, body, h
	}
	checkVary(t, do, "/vc?h=Vary:Cookie", "/vg?gz", func(n int, cookie string) string { return fmt.Sprintf("n=%d /vc\n", n) })
	// two Vary lines (an application's Cookie, a compression layer's Accept-Encoding): the variant is of both
	// (nginx 1.22 keeps the last line only, and gives alice's page to mallory)
	for i, step := range []struct{ cookie, want, body string }{
		{"c=alice", "MISS", "n=1 /v2\n"}, {"c=mallory", "MISS", "n=2 /v2\n"}, {"c=alice", "HIT", "n=1 /v2\n"},
	} {
		if got, body, _ := do("/v2?h=Vary:Cookie&h=Vary:Accept-Encoding", "Cookie", step.cookie); got != step.want || body != step.body {
			t.Errorf("two Vary lines: request %d (%s): %s %q, want %s %q", i+1, step.cookie, got, body, step.want, step.body)
		}
	}

	// HEAD: a miss goes upstream as GET (proxy_cache_convert_head) and fills the entry; GET and HEAD then hit
	if st, got, body, h := cacheGet(t, c, "HEAD", "/h"); st != 200 || got != "MISS" || body != "" || h.Get("X-Method") != "GET" || h.Get("Content-Length") != "7" {
		t.Errorf("HEAD miss: %d %s %q %v", st, got, body, h)
	}
	if _, got, body, _ := cacheGet(t, c, "GET", "/h"); got != "HIT" || body != "n=1 /h\n" {
		t.Errorf("GET after HEAD: %s %q", got, body)
	}

	// conditional requests: a HIT answers 304 without Content-Type (nginx's head), as does a cacheable MISS,
	// whose body still fills the entry; the upstream never sees the client's conditions
	const cond = "/c?h=ETag:\"e1\"&h=Last-Modified:Mon, 01 Jan 2024 00:00:00 GMT&h=Accept-Ranges:bytes"
	if st, got, _, h := cacheGet(t, c, "GET", cond, "If-None-Match", `"e1"`); st != 304 || got != "MISS" || h.Get("Content-Type") != "" || h.Get("Etag") != `"e1"` {
		t.Errorf("conditional MISS: %d %s %v", st, got, h)
	}
	if app.head("/c").Get("If-None-Match") != "" {
		t.Errorf("If-None-Match reached the upstream")
	}
	if st, got, body, _ := cacheGet(t, c, "GET", cond); st != 200 || got != "HIT" || body != "n=1 /c\n" {
		t.Errorf("after the conditional MISS: %d %s %q", st, got, body)
	}
	for _, tc := range []struct {
		hdr    []string
		status int
		body   string
	}{
		{[]string{"If-None-Match", `"e1"`}, 304, ""},
		{[]string{"If-Modified-Since", "Mon, 01 Jan 2024 00:00:00 GMT"}, 304, ""},
		{[]string{"If-Match", `"zz"`}, 412, ""},
		{[]string{"Range", "bytes=2-5"}, 206, "1 /c"},
		{[]string{"Range", "bytes=200-"}, 416, ""},
	} {
		st, got, body, h := cacheGet(t, c, "GET", cond, tc.hdr...)
		if st != tc.status || got != "HIT" || (tc.body != "" && body != tc.body) || (st == 304 && h.Get("Content-Type") != "") {
			t.Errorf("HIT with %v: %d %s %q %v, want %d %q", tc.hdr, st, got, body, h, tc.status, tc.body)
		}
	}
	// without Accept-Ranges from the upstream nginx answers a cached entry whole
	if st, _, _, _ := cacheGet(t, c, "GET", "/nr?h=ETag:\"e2\""); st != 200 {
		t.Errorf("miss: %d", st)
	}
	if st, got, _, _ := cacheGet(t, c, "GET", "/nr?h=ETag:\"e2\"", "Range", "bytes=2-5"); st != 200 || got != "HIT" {
		t.Errorf("range without Accept-Ranges: %d %s, want 200 HIT", st, got)
	}

	// stale: after expiry a 500 (listed in proxy_cache_use_stale) gets the stale entry (STALE); a 404 (not
	// listed) passes (EXPIRED) and replaces nothing, a 200 is stored again (EXPIRED, then HIT)
	cacheGet(t, c, "GET", "/s/e")
	time.Sleep(2100 * time.Millisecond)
	for i, step := range []struct{ q, want, body string }{
		{"?status=500", "STALE", "n=1 /s/e\n"},
		{"?status=404", "EXPIRED", "n=3 /s/e\n"},
		{"", "EXPIRED", "n=4 /s/e\n"},
		{"", "HIT", "n=4 /s/e\n"},
	} {
		if _, got, body, _ := cacheGet(t, c, "GET", "/s/e"+step.q); got != step.want || body != step.body {
			t.Errorf("stale step %d: %s %q, want %s %q", i+1, got, body, step.want, step.body)
		}
	}
	// updating: while one request fetches the expired entry (EXPIRED), another gets the stale one (UPDATING)
	cacheGet(t, c, "GET", "/s/u")
	time.Sleep(2100 * time.Millisecond)
	slow := inFlight(func() (*http.Response, error) { return c.Get("http://cache.test/s/u?sleep=1s") })
	time.Sleep(300 * time.Millisecond)
	if _, got, body, _ := cacheGet(t, c, "GET", "/s/u"); got != "UPDATING" || body != "n=1 /s/u\n" {
		t.Errorf("during the update: %s %q, want UPDATING", got, body)
	}
	if r := <-slow; r.err != nil || r.header.Get("X-Cache-Status") != "EXPIRED" || r.body != "n=2 /s/u\n" {
		t.Errorf("the updating request: %v %v %q, want EXPIRED", r.err, r.header, r.body)
	}
	// an upstream gone: the expired entry answers (proxy_cache_use_stale error)
	cacheGet(t, c, "GET", "/gone/x")
	app2.Close()
	time.Sleep(2100 * time.Millisecond)
	if st, got, body, _ := cacheGet(t, c, "GET", "/gone/x"); st != 200 || got != "STALE" || body != "n=1 /gone/x\n" {
		t.Errorf("upstream gone: %d %s %q, want 200 STALE", st, got, body)
	}

	// revalidation: the expired entry's Last-Modified goes as If-Modified-Since; the 304 makes it fresh
	const rv = "/s/r?ims304=1&h=Last-Modified:Mon, 01 Jan 2024 00:00:00 GMT"
	cacheGet(t, c, "GET", rv)
	time.Sleep(2100 * time.Millisecond)
	for i, want := range []string{"REVALIDATED", "HIT"} {
		if st, got, body, _ := cacheGet(t, c, "GET", rv); st != 200 || got != want || body != "n=1 /s/r\n" {
			t.Errorf("revalidate %d: %d %s %q, want 200 %s", i+1, st, got, body, want)
		}
	}
	if ims := app.head("/s/r").Get("If-Modified-Since"); ims != "Mon, 01 Jan 2024 00:00:00 GMT" {
		t.Errorf("revalidation sent If-Modified-Since %q", ims)
	}

	// lock: of five concurrent requests for a missing entry one reaches the upstream
	var wg sync.WaitGroup
	var hits atomic.Int32
	for range 5 {
		wg.Go(func() {
			if _, got, _, _ := cacheGet(t, c, "GET", "/l/x?sleep=300ms"); got == "HIT" {
				hits.Add(1)
			}
		})
	}
	wg.Wait()
	if n := app.count("/l/x"); n != 1 || hits.Load() != 4 {
		t.Errorf("proxy_cache_lock: upstream saw %d requests, %d HITs; want 1, 4", n, hits.Load())
	}

	// a transfer cut short leaves no entry
	for i := range 2 {
		c2 := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: dialTo(addr(port))}}
		resp, err := c2.Get("http://cache.test/cut?cut=1")
		if err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		_ = i
	}
	if n := app.count("/cut"); n != 2 {
		t.Errorf("a cut transfer was stored: upstream saw %d requests, want 2", n)
	}

	// a large body streams and is stored; its HIT comes from the file
	_, _, big, _ := cacheGet(t, c, "GET", "/big?big=1")
	if _, got, body, _ := cacheGet(t, c, "GET", "/big?big=1"); got != "HIT" || body != big || len(body) < 100000 {
		t.Errorf("large HIT: %s, %d bytes (miss %d)", got, len(body), len(big))
	}

	// the files are nginx's layout: levels=1:2 directories named by the md5's last digits, no temporary file
	files := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
			rel, _ := filepath.Rel(dir, p)
			parts := strings.Split(rel, string(filepath.Separator))
			if len(parts) != 3 || len(parts[0]) != 1 || len(parts[1]) != 2 || len(parts[2]) != 32 || !strings.HasSuffix(parts[2], parts[1]+parts[0]) {
				t.Errorf("cache file %s is not in nginx's levels=1:2 layout", rel)
			}
		}
		return nil
	})
	if files == 0 {
		t.Error("no cache files")
	}

	// a dead upstream with a fresh entry: HIT; stale entries of /dead/ are never made, so the miss gets 502
	if st, got, _, _ := cacheGet(t, c, "GET", "/dead/x"); st != 502 || got != "MISS" {
		t.Errorf("dead upstream: %d %s, want 502 MISS", st, got)
	}

	// a reload keeps the cache and its index
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload"); code != 0 {
		t.Fatalf("reload: %d %s", code, out)
	}
	time.Sleep(300 * time.Millisecond)
	if _, got, body, _ := cacheGet(t, c, "GET", "/a"); got != "HIT" || body != "n=1 /a\n" {
		t.Errorf("after reload: %s %q, want HIT", got, body)
	}
	// a restart rebuilds the index from the directory
	s.stop()
	port2 := freePort(t)
	start(t, fill(t, cacheConf, "PORT", port2, "APP", app.Port, "CACHE", dir, "DEAD", freePort(t), "APP2", app2.Port))
	c = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: dialTo(addr(port2))}}
	if _, got, body, _ := cacheGet(t, c, "GET", "/a"); got != "HIT" || body != "n=1 /a\n" {
		t.Errorf("after restart: %s %q, want HIT", got, body)
	}
}

// TestProxyCacheConfigErrors: a second proxy_cache_path with the same path is refused with both lines, as
// nginx refuses it.
func TestProxyCacheConfigErrors(t *testing.T) {
	t.Parallel()
	code, out := runSluice(t, "-t", "-c", writeTemp(t, `events {}
http {
    proxy_cache_path /tmp/sluice-dup-cache keys_zone=a:1m;
    proxy_cache_path /tmp/sluice-dup-cache keys_zone=b:1m;
}
`))
	if code == 0 || !strings.Contains(out, "the same path name") || !strings.Contains(out, ":3 and in ") || !strings.Contains(out, ":4") {
		t.Errorf("duplicate path: exit %d\n%s", code, out)
	}
}

func writeTemp(t *testing.T, conf string) string {
	p := filepath.Join(t.TempDir(), "sluice.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkVary checks the variants of two responses, as nginx 1.22 answered them: vc's Vary: Cookie gives alice
// and bob each their own page (MISS n=1, MISS n=2, then HIT with each one's; no cookie is a variant too), and
// gz's upstream gzips for the clients that take it (Vary: Accept-Encoding), each encoding a variant, "gzip,
// deflate" and "gzip,deflate" one. do sends a GET with the fields hdr (name, value) and returns its cache
// status, body and header; page is the body of the nth answer for vc to cookie.
func checkVary(t *testing.T, do func(path string, hdr ...string) (string, string, http.Header), vc, gz string, page func(n int, cookie string) string) {
	t.Helper()
	for i, step := range []struct {
		field, value, want string
		n                  int
	}{
		{"Cookie", "c=alice", "MISS", 1}, {"Cookie", "c=bob", "MISS", 2}, {"Cookie", "c=alice", "HIT", 1},
		{"Cookie", "c=bob", "HIT", 2}, {"", "", "MISS", 3}, {"", "", "HIT", 3}, {"Cookie", "c=bob", "HIT", 2},
		{"Accept-Encoding", "gzip", "MISS", 0}, {"", "", "MISS", 0}, {"Accept-Encoding", "gzip", "HIT", 0},
		{"", "", "HIT", 0}, {"Accept-Encoding", "gzip, deflate", "MISS", 0}, {"Accept-Encoding", "gzip,deflate", "HIT", 0},
	} {
		path := vc
		if i >= 7 {
			path = gz
		}
		got, body, h := do(path, step.field, step.value)
		switch {
		case got != step.want:
			t.Errorf("vary: request %d (%s: %s): %s, want %s", i+1, step.field, step.value, got, step.want)
		case path == vc && body != page(step.n, step.value):
			t.Errorf("vary cookie: request %d (%s): %q, want %q", i+1, step.value, body, page(step.n, step.value))
		case path == gz && (h.Get("Content-Encoding") == "gzip") != (step.value != ""):
			t.Errorf("vary accept-encoding: request %d (%q): Content-Encoding %q", i+1, step.value, h.Get("Content-Encoding"))
		}
	}
}

// TestProxyCacheBackgroundUpdate: with proxy_cache_use_stale updating and proxy_cache_background_update on, a
// request for an expired entry is answered with it at once (STALE) while a subrequest asks the upstream; the
// requests meanwhile get UPDATING, and the ones after the update HIT the new entry (nginx 1.22's sequence).
func TestProxyCacheBackgroundUpdate(t *testing.T) {
	t.Parallel()
	app := newCacheBackend(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    proxy_cache_path {{CACHE}} keys_zone=bg:1m;
    server {
        listen {{PORT}};
        location / {
            proxy_pass http://127.0.0.1:{{APP}};
            proxy_cache bg;
            proxy_cache_use_stale updating;
            proxy_cache_background_update on;
            add_header X-Cache-Status $upstream_cache_status;
        }
        location /rv/ {
            proxy_pass http://127.0.0.1:{{APP}};
            proxy_cache bg;
            proxy_cache_use_stale updating;
            proxy_cache_background_update on;
            proxy_cache_revalidate on;
            proxy_cache_valid 200 2s; # (the 304 carries no Cache-Control: the entry is fresh for this long again)
            add_header X-Cache-Status $upstream_cache_status;
        }
    }
}
`, "PORT", port, "APP", app.Port, "CACHE", filepath.Join(t.TempDir(), "cache")))
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: dialTo(addr(port))}}
	const path = "/bg?sleep=800ms&h=Cache-Control:max-age=1"
	if _, got, body, _ := cacheGet(t, c, "GET", path); got != "MISS" || body != "n=1 /bg\n" {
		t.Fatalf("first: %s %q", got, body)
	}
	time.Sleep(2100 * time.Millisecond)
	began := time.Now()
	if _, got, body, _ := cacheGet(t, c, "GET", path); got != "STALE" || body != "n=1 /bg\n" || time.Since(began) > 500*time.Millisecond {
		t.Errorf("expired: %s %q after %v; want STALE with the old page at once", got, body, time.Since(began))
	}
	if _, got, body, _ := cacheGet(t, c, "GET", path); got != "UPDATING" || body != "n=1 /bg\n" {
		t.Errorf("while updating: %s %q; want UPDATING", got, body)
	}
	if !eventually(3*time.Second, func() bool {
		_, got, body, _ := cacheGet(t, c, "GET", path)
		return got == "HIT" && body == "n=2 /bg\n"
	}) {
		t.Error("the background update did not store the new page")
	}
	if n := app.count("/bg"); n != 2 {
		t.Errorf("upstream saw %d requests, want 2", n)
	}

	// with proxy_cache_revalidate the update asks with the entry's validators (nginx sends them too), and a 304
	// makes the old page fresh again
	const rv = `/rv/r?ims304&h=ETag:"e1"&h=Cache-Control:max-age=1`
	if _, got, body, _ := cacheGet(t, c, "GET", rv); got != "MISS" || body != "n=1 /rv/r\n" {
		t.Fatalf("revalidate, first: %s %q", got, body)
	}
	time.Sleep(3100 * time.Millisecond)
	if _, got, _, _ := cacheGet(t, c, "GET", rv); got != "STALE" {
		t.Errorf("revalidate, expired: %s, want STALE", got)
	}
	if !eventually(3*time.Second, func() bool { return app.count("/rv/r") == 2 }) {
		t.Fatal("no background update")
	}
	if h := app.head("/rv/r"); h.Get("If-None-Match") != `"e1"` {
		t.Errorf("the background update sent If-None-Match %q, want the entry's \"e1\"", h.Get("If-None-Match"))
	}
	if !eventually(3*time.Second, func() bool {
		_, got, body, _ := cacheGet(t, c, "GET", rv)
		return got == "HIT" && body == "n=1 /rv/r\n"
	}) {
		t.Error("after the 304 the entry was not fresh again")
	}
}

// TestProxyCacheBackgroundUpdateFailures: a background update that outlives its request and then fails over to
// another peer (a dial after the request's connection went on) or whose upstream cuts the body (the handler
// aborts) neither crashes the process nor leaves the entry updating for good: the next request starts another
// update (STALE), and one that succeeds stores the page.
func TestProxyCacheBackgroundUpdateFailures(t *testing.T) {
	t.Parallel()
	app := newCacheBackend(t)
	hole, err := net.Listen("tcp", "127.0.0.1:0") // accepts (the kernel's backlog) and never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    proxy_cache_path {{CACHE}} keys_zone=bgf:1m;
    upstream u { server {{HOLE}}; server 127.0.0.1:{{APP}} backup; }
    server {
        listen {{PORT}};
        proxy_cache bgf;
        proxy_cache_use_stale updating;
        proxy_cache_background_update on;
        add_header X-Cache-Status $upstream_cache_status;
        location /u/ { proxy_pass http://u; proxy_read_timeout 500ms; }
        location /cut/ { proxy_pass http://127.0.0.1:{{APP}}; }
    }
}
`, "PORT", port, "APP", app.Port, "HOLE", hole.Addr().String(), "CACHE", filepath.Join(t.TempDir(), "cache")))
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: dialTo(addr(port))}}
	const failover = "/u/f?h=Cache-Control:max-age=1"
	if _, got, body, _ := cacheGet(t, c, "GET", failover); got != "MISS" || body != "n=1 /u/f\n" {
		t.Fatalf("failover, first: %s %q", got, body)
	}
	const cut = "/cut/c?cutafter=1&h=Cache-Control:max-age=1"
	if _, got, body, _ := cacheGet(t, c, "GET", cut); got != "MISS" || body != "n=1 /cut/c\n" {
		t.Fatalf("cut, first: %s %q", got, body)
	}
	time.Sleep(2100 * time.Millisecond)
	for _, p := range []string{failover, cut} {
		if _, got, _, _ := cacheGet(t, c, "GET", p); got != "STALE" {
			t.Errorf("%s expired: %s, want STALE", p, got)
		}
	}
	if !eventually(5*time.Second, func() bool {
		_, got, body, _ := cacheGet(t, c, "GET", failover)
		return got == "HIT" && body == "n=2 /u/f\n"
	}) {
		t.Error("the update that went on to the backup peer did not store the page")
	}
	// the cut update stored nothing and let go of the entry: a later request starts another (STALE, not UPDATING)
	if !eventually(5*time.Second, func() bool {
		_, got, _, _ := cacheGet(t, c, "GET", cut)
		return got == "STALE"
	}) {
		t.Error("after a cut update the entry stayed UPDATING")
	}
	if s.Exited() {
		t.Fatalf("sluice exited:\n%s", s.Log())
	}
}
