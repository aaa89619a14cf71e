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
