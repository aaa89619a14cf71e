package server

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-proxy/sluice/internal/certs"
)

// benchTLSServer starts a server with one HTTPS server block (an ECDSA P-256 certificate) whose locations (and
// other server directives) are locs, and returns its base URL and the document root (dir/www).
func benchTLSServer(b testing.TB, locs func(dir string) string) (url, www string) {
	b.Helper()
	port := freePort(b)
	dir := b.TempDir()
	www = filepath.Join(dir, "www")
	os.MkdirAll(filepath.Join(www, "static"), 0o755)
	os.WriteFile(filepath.Join(www, "static/index.html"), []byte(strings.Repeat("<p>sluice bench</p>\n", 50)), 0o644)
	certFile, keyFile, _, err := certs.WriteTestCerts(dir, []string{"localhost", "127.0.0.1"}, "ecdsa")
	if err != nil {
		b.Fatal(err)
	}
	startServer(b, dir, `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:`+itoa(port)+` ssl;
        ssl_certificate `+certFile+`;
        ssl_certificate_key `+keyFile+`;
`+locs(dir)+`
    }
}
`)
	return "https://127.0.0.1:" + itoa(port), www
}

// keepAliveClient keeps its HTTPS connections open between requests.
func keepAliveClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 8,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
	}}
}

// benchGets runs b.N GETs of url with client and checks each answer is a 200.
func benchGets(b *testing.B, client *http.Client, url string) {
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkStaticTLS is the benchmark's static row: a 1 KiB file over a keep-alive HTTPS connection.
func BenchmarkStaticTLS(b *testing.B) {
	url, _ := benchTLSServer(b, func(dir string) string {
		return "location /static/ { root " + filepath.Join(dir, "www") + "; }"
	})
	benchGets(b, keepAliveClient(), url+"/static/index.html")
}

// BenchmarkFastCGITLS is the benchmark's PHP row with Go's FastCGI responder in php-fpm's place: a hello world
// over a keep-alive HTTPS connection, the standard fastcgi_params plus SCRIPT_FILENAME.
func BenchmarkFastCGITLS(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "fcgi.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go fcgi.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "Hello, world\n")
	}))
	url, _ := benchTLSServer(b, func(dir string) string {
		return `location ~ \.php$ {
            root ` + filepath.Join(dir, "www") + `;
            fastcgi_pass unix:` + sock + `;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            include fastcgi_params;
        }`
	})
	benchGets(b, keepAliveClient(), url+"/hello.php")
}

// BenchmarkTLSHandshake is the benchmark's new-connection row: each request on a new connection that resumes
// the TLS session and offers only an X25519 key share (as wrk with OpenSSL 3.0 does), answered by a static file
// so the handshake and connection setup dominate.
func BenchmarkTLSHandshake(b *testing.B) {
	url, _ := benchTLSServer(b, func(dir string) string {
		return "location /static/ { root " + filepath.Join(dir, "www") + "; }"
	})
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(8),
			CurvePreferences: []tls.CurveID{tls.X25519}},
	}}
	benchGets(b, client, url+"/static/index.html")
}

// BenchmarkStaticKeepAlive is a raw keep-alive client (allocating nothing) fetching a 100-byte file through an
// alias location, whole, revalidated (304) and in part (206), next to a `return` as the request path's baseline.
// cpu-ns/op is the process's CPU time per request (client included).
func BenchmarkStaticKeepAlive(b *testing.B) {
	www := b.TempDir()
	file := filepath.Join(www, "small.txt")
	os.WriteFile(file, []byte(strings.Repeat("x", 99)+"\n"), 0o644)
	fi, err := os.Stat(file)
	if err != nil {
		b.Fatal(err)
	}
	lastModified := fi.ModTime().UTC().Format(http.TimeFormat)
	port := benchServer(b, `keepalive_requests 100000000;
        location /static/ { alias `+www+`/; }
        location = /ret { return 200 "hello\n"; }`)
	c, br, body := rawClient(b, port)
	for _, bc := range []struct {
		name, path, header string
		status             int
	}{
		{"return", "/ret", "", http.StatusOK},
		{"file", "/static/small.txt", "", http.StatusOK},
		{"notmodified", "/static/small.txt", "If-Modified-Since: " + lastModified, http.StatusNotModified},
		{"range", "/static/small.txt", "Range: bytes=10-19", http.StatusPartialContent},
	} {
		b.Run(bc.name, func(b *testing.B) {
			head := "GET " + bc.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n"
			if bc.header != "" {
				head += bc.header + "\r\n"
			}
			req := []byte(head + "\r\n")
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != bc.status {
				b.Fatalf("%s: %s, want %d", bc.path, resp.Status, bc.status)
			}
			b.ReportAllocs()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				if err := roundTrip(c, br, req, body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the user and system CPU time the process has used, in nanoseconds: the server's and the raw
// client's, which are the same for both sub-benchmarks, so differences are the server's.
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
