package e2e

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestLimitRate: limit_rate paces responses to the client, static and proxied, from the directive, from
// `set $limit_rate` and from an upstream's X-Accel-Limit-Rate. Only the lower bound of each transfer time is
// checked (about (size - rate) / rate: nginx 1.22 took 4.0 s for 100,000 bytes at 20k, sluice 4.0–4.8 s);
// $limit_rate reads as nginx 1.22 answered (0 unless set, "3k" reads 3072).
func TestLimitRate(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz\n"), 1000) // 37,000 bytes
	app := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/accel" {
			w.Header().Set("X-Accel-Limit-Rate", "10240")
		}
		w.Write(body)
	}))
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        root html;
        location /slow/ { alias html/; limit_rate 10k; }
        location /set/ { alias html/; set $limit_rate 10k; }
        location /after/ { alias html/; limit_rate 1k; limit_rate_after 40k; }
        location /up/ { proxy_pass http://127.0.0.1:{{APP}}/; }
        location /ign/ { proxy_pass http://127.0.0.1:{{APP}}/; proxy_ignore_headers X-Accel-Limit-Rate; }
        location = /v { return 200 "rate=$limit_rate\n"; }
        location = /v2 { set $limit_rate 3k; return 200 "rate=$limit_rate\n"; }
    }
}
`, "PORT", port, "APP", app.Port), withFile("html/f.bin", body))
	c := httpClient(addr(port), nil)
	fetch := func(path string) time.Duration {
		t.Helper()
		begin := time.Now()
		resp, err := c.Get("http://lr.test" + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(begin)
		if err != nil || !bytes.Equal(got, body) || resp.Header.Get("X-Accel-Limit-Rate") != "" {
			t.Fatalf("%s: %d bytes, %v, X-Accel-Limit-Rate %q", path, len(got), err, resp.Header.Get("X-Accel-Limit-Rate"))
		}
		return took
	}
	type result struct {
		path string
		took time.Duration
	}
	paths := []string{"/slow/f.bin", "/set/f.bin", "/up/accel"}
	done := make(chan result, len(paths))
	for _, p := range paths {
		go func() { done <- result{p, fetch(p)} }()
	}
	for range paths {
		r := <-done
		// 37,000 bytes at 10,240 a second, the first second's worth at once: at least 2.6 s
		if r.took < 2500*time.Millisecond {
			t.Errorf("%s took %v: not limited to 10k a second", r.path, r.took)
		}
	}
	for _, tc := range []struct{ path, want string }{{"/v", "rate=0\n"}, {"/v2", "rate=3072\n"}} {
		if r := get(t, c, "http://lr.test"+tc.path, nil); r.Body != tc.want {
			t.Errorf("%s: %q, want %q", tc.path, r.Body, tc.want)
		}
	}
	// unlimited below limit_rate_after, and an ignored X-Accel-Limit-Rate: both whole at once; their time is
	// not asserted, the body is (a pacing bug that loses bytes shows there)
	fetch("/after/f.bin")
	fetch("/ign/accel")
}
