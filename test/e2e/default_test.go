package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// The built-in default config listens on these fixed ports, so the tests that
// run it are not parallel (Go runs non-parallel tests one after another).
var defaultPorts = []int{8080, 8443, 8081}

// startDefault runs sluice with an empty prefix and no config, skipping the
// test when one of the default ports is taken.
func startDefault(t *testing.T) *Sluice {
	t.Helper()
	for _, p := range defaultPorts {
		if !portFree(p) {
			t.Skipf("127.0.0.1:%d is in use; the built-in config needs ports 8080, 8443 and 8081 free (or run the test in its own network namespace: unshare -n)", p)
		}
	}
	return start(t, "", withBuiltinConfig())
}

func TestDefaultConfig(t *testing.T) {
	s := startDefault(t)

	t.Run("welcome page", func(t *testing.T) {
		r := get(t, httpClient("127.0.0.1:8080", nil), "http://127.0.0.1:8080/", nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET http://127.0.0.1:8080/ = %s", r.Status)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("welcome page Content-Type %q, want text/html", ct)
		}
		for _, want := range []string{`id="status"`, "/wss"} {
			if !strings.Contains(r.Body, want) {
				t.Errorf("welcome page lacks %q:\n%s", want, r.Body)
			}
		}
	})

	t.Run("wss echo", func(t *testing.T) {
		// The built-in certificate comes from the internal CA: trusting the root `sluice ca-cert` prints verifies it.
		code, root := runSluice(t, "ca-cert", "-p", s.Prefix+"/")
		pool := x509.NewCertPool()
		if code != 0 || !pool.AppendCertsFromPEM([]byte(root)) {
			t.Fatalf("sluice ca-cert: %d %q", code, root)
		}
		d := wsDialer("127.0.0.1:8443", &tls.Config{RootCAs: pool})
		c := dialWS(t, d, "wss://127.0.0.1:8443/wss", nil)
		echoOnce(t, c, websocket.TextMessage, "default config echo")
		echoOnce(t, c, websocket.BinaryMessage, "\x00\x01default")
	})

	t.Run("CA and certificate under the prefix", func(t *testing.T) {
		var found []string
		filepath.WalkDir(s.Prefix, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".pem") || strings.HasSuffix(p, ".crt")) {
				found = append(found, p)
			}
			return nil
		})
		if len(found) == 0 {
			t.Errorf("no certificate file (*.pem, *.crt) under the prefix %s after first start", s.Prefix)
		}
	})
}
