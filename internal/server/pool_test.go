package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/certs"
)

// TestRequestPoolNoCrossTalk runs many concurrent requests of every kind that ends differently (proxied, with a
// set body, a client body, returned, an internal redirect, static, an upstream that aborts mid-body, a client
// that gives up, a CORS answer) over HTTP/1.1 keep-alive and HTTP/2, each carrying its own id. Every answer must
// carry its own id only: a pooled request reused while something still held it shows up as another request's id
// (and, under -race, as a data race in the server), and so does a header of another request's reaching the
// upstream (a reused outgoing header map not cleared); a CORS header on a request without CORS is leaked state,
// and a limit_conn slot not released shows up as 503s.
func TestRequestPoolNoCrossTalk(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/abort":
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "/slow":
			time.Sleep(20 * time.Millisecond)
		}
		w.Header().Set("X-Up-Id", r.Header.Get("X-Id"))
		for k := range r.Header {
			// each client request carries a header of its own: another one here came from a reused request
			if strings.HasPrefix(k, "X-Own-") && k != http.CanonicalHeaderKey("X-Own-"+r.Header.Get("X-Id")) {
				fmt.Fprintf(w, "leaked %s ", k)
			}
		}
		fmt.Fprintf(w, "id=%s body=%s", r.Header.Get("X-Id"), body)
	}))
	defer up.Close()
	// a second upstream, for a location whose route a pooled request must not take from another's
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "other id=%s body=", r.Header.Get("X-Id"))
	}))
	defer other.Close()

	port, tlsPort := freePort(t), freePort(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	os.WriteFile(filepath.Join(dir, "www", "file.txt"), []byte("static"), 0o644)
	certFile, keyFile, _, err := certs.WriteTestCerts(dir, []string{"localhost", "127.0.0.1"}, "ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	u := strings.TrimPrefix(up.URL, "http://")
	startServer(t, dir, `events {}
http {
    log_format ids '$http_x_req $status $upstream_status $upstream_http_x_up_id';
    access_log `+filepath.Join(dir, "access.log")+` ids;
    limit_conn_zone $binary_remote_addr zone=perip:1m;
    server {
        listen 127.0.0.1:`+itoa(port)+`;
        listen 127.0.0.1:`+itoa(tlsPort)+` ssl;
        http2 on;
        ssl_certificate `+certFile+`;
        ssl_certificate_key `+keyFile+`;
        root `+filepath.Join(dir, "www")+`;
        add_header X-Id $http_x_req always;
        limit_conn perip 64;
        proxy_set_header X-Id $http_x_req;
        location /p { proxy_pass http://`+u+`; }
        location /other { proxy_pass http://`+strings.TrimPrefix(other.URL, "http://")+`; }
        location /slow { proxy_pass http://`+u+`; }
        location /abort { proxy_pass http://`+u+`; }
        location /setbody { proxy_set_body "set-$http_x_req"; proxy_pass http://`+u+`/p; }
        location /r { return 200 "id=$http_x_req body="; }
        location /e { error_page 404 = /r; return 404; }
        location /file.txt { }
        location /cors { cors_origins https://a.test; return 200 "id=$http_x_req body="; }
    }
}
`)

	h1 := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
	h2 := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	defer h1.CloseIdleConnections()
	defer h2.CloseIdleConnections()
	bases := []string{"http://127.0.0.1:" + itoa(port), "https://127.0.0.1:" + itoa(tlsPort)}
	clients := []*http.Client{h1, h2}

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < 120; i++ {
				id := fmt.Sprintf("g%di%d", g, i)
				k := rng.IntN(2)
				if err := poolRequest(clients[k], bases[k], id, rng.IntN(11)); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// poolRequest sends one request of the given kind carrying id and checks that the answer is id's.
func poolRequest(c *http.Client, base, id string, kind int) error {
	var req *http.Request
	want := "id=" + id + " body="
	switch kind {
	case 0:
		req = newReq(id, "GET", base+"/p?id="+id, nil)
	case 1:
		req = newReq(id, "POST", base+"/p?id="+id, strings.NewReader("client-"+id))
		want += "client-" + id
	case 2:
		req = newReq(id, "GET", base+"/setbody?id="+id, nil)
		want += "set-" + id
	case 3:
		req = newReq(id, "GET", base+"/r?id="+id, nil)
	case 4:
		req = newReq(id, "GET", base+"/e?id="+id, nil)
	case 5:
		req = newReq(id, "GET", base+"/file.txt?id="+id, nil)
		want = "static"
	case 6:
		req = newReq(id, "GET", base+"/abort?id="+id, nil)
		resp, err := c.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				return fmt.Errorf("%s: a body cut off by the upstream arrived whole", req.URL)
			}
			if got := resp.Header.Get("X-Id"); got != id {
				return fmt.Errorf("%s: X-Id %q, want %q", req.URL, got, id)
			}
		}
		return nil
	case 7:
		req = newReq(id, "GET", base+"/slow?id="+id, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		resp, err := c.Do(req.WithContext(ctx))
		if err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		return nil
	case 10: // another upstream
		req = newReq(id, "GET", base+"/other?id="+id, nil)
		want = "other id=" + id + " body="
	case 8, 9: // a CORS answer, and one without CORS sent with the same Origin
		path := "/cors"
		if kind == 9 {
			path = "/r"
		}
		req = newReq(id, "GET", base+path+"?id="+id, nil)
		req.Header.Set("Origin", "https://a.test")
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %v", req.URL, err)
	}
	if got, want := resp.Header.Get("Access-Control-Allow-Origin"), map[bool]string{true: "https://a.test"}[kind == 8]; got != want {
		resp.Body.Close()
		return fmt.Errorf("%s: Access-Control-Allow-Origin %q, want %q", req.URL, got, want)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: reading body: %v", req.URL, err)
	}
	if string(body) != want || resp.Header.Get("X-Id") != id {
		return fmt.Errorf("%s (%s): body %q X-Id %q, want %q and %q", req.URL, resp.Proto, body, resp.Header.Get("X-Id"), want, id)
	}
	return nil
}

// newReq is a request carrying id in X-Req and a header named for id (X-Own-id).
func newReq(id, method, url string, body io.Reader) *http.Request {
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("X-Req", id)
	req.Header.Set("X-Own-"+id, "1")
	return req
}

// TestSetBodyEarlyAnswer: with proxy_set_body a request without a body of its own goes upstream with one,
// written by the transport's goroutine; an upstream that answers before reading it ends the exchange while
// that goroutine is still writing. The pooled request must not hand its proxy state to the next request
// meanwhile: the race detector sees the goroutine reading a header map the next request fills (without it,
// Go can stop the process: concurrent map iteration and map write).
func TestSetBodyEarlyAnswer(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) {
		defer c.Close()
		// a small receive buffer keeps the body (4 MiB) from fitting in the socket buffers: some machines
		// allow 32 MiB of them on loopback, and the sender then finished before the answer came
		c.(*net.TCPConn).SetReadBuffer(32 << 10)
		// answer at once, before the body has been read; Connection: close, since this upstream answers one
		// request per connection
		io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy")
		time.Sleep(50 * time.Millisecond)
	})
	port := freePort(t)
	startServer(t, t.TempDir(), `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:`+itoa(port)+`;
        location /x {
            proxy_set_body "`+strings.Repeat("b", 4<<20)+`";
            proxy_set_header X-Req $http_x_req;
            proxy_pass http://`+up+`;
        }
    }
}
`)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				req := newReq(fmt.Sprintf("g%di%d", g, i), "GET", "http://127.0.0.1:"+itoa(port)+"/x", nil)
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("status %d, want the upstream's 503", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
}
