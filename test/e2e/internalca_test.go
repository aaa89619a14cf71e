package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestInternalCA serves `ssl_certificate internal;` and connects with a client that trusts only the root printed by
// `sluice ca-cert`, verifying normally (no InsecureSkipVerify).
func TestInternalCA(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port := freePort(t)
	conf := fill(t, `events {}
http {
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name internal.test .dev.test;
        ssl_certificate internal;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "PORT", port, "ECHO", echo.Port)
	s := start(t, conf)

	code, out := runSluice(t, "ca-cert", "-p", s.Prefix+"/")
	if code != 0 {
		t.Fatalf("sluice ca-cert exited %d: %s", code, out)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(out)) {
		t.Fatalf("sluice ca-cert printed no PEM certificate: %q", out)
	}
	if code, again := runSluice(t, "-p", s.Prefix+"/", "ca-cert"); code != 0 || again != out {
		t.Errorf("second ca-cert (flags first) printed a different root or failed (%d)", code)
	}

	for _, name := range []string{"internal.test", "dev.test", "api.dev.test"} {
		client := httpClient(addr(port), &tls.Config{ServerName: name, RootCAs: pool})
		resp, err := client.Get("https://" + name + "/hello")
		if err != nil {
			t.Fatalf("GET https://%s/ trusting the printed root: %v", name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET https://%s/ = %s", name, resp.Status)
		}
	}
	// A name the server does not carry is not certified.
	if _, err := tls.Dial("tcp", addr(port), &tls.Config{ServerName: "other.test", RootCAs: pool}); err == nil {
		t.Error("certificate verified for other.test")
	}

	// The CA is kept under the prefix with safe permissions.
	dir := filepath.Join(s.Prefix, "certs", "ca")
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "root-key.pem"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "issued", "*-key.pem"))
	for _, k := range keys {
		if fi, err := os.Stat(k); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", k, fi.Mode().Perm(), err)
		}
	}
	if len(keys) == 0 {
		t.Error("no issued key kept under certs/ca/issued")
	}
}
