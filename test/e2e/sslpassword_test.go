package e2e

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// encryptKey encrypts a PEM private key with openssl, as PKCS#8 ("ENCRYPTED PRIVATE KEY") or the legacy way
// (Proc-Type: 4,ENCRYPTED), under passphrase.
func encryptKey(t *testing.T, keyPEM []byte, legacy bool, passphrase string) []byte {
	t.Helper()
	args := []string{"pkcs8", "-topk8", "-passout", "pass:" + passphrase}
	if legacy {
		args = []string{"ec", "-aes128", "-passout", "pass:" + passphrase}
	}
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = bytes.NewReader(keyPEM)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v", args, err)
	}
	return out
}

// TestSSLPasswordFile checks encrypted keys as nginx 1.22 takes them: each line of ssl_password_file is tried
// in turn (a wrong first line is no failure; a CR before the LF is dropped), PKCS#8 and legacy PEM encryption
// alike; a file without the passphrase, or no ssl_password_file, is a load error naming the key and the
// directive's place; and a reload whose passphrase fails keeps the running configuration serving.
func TestSSLPasswordFile(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	certPEM, keyPEM := ca.issue(t, ecdsaP256, "pw.test")
	const conf = `events {}
http {
    ssl_password_file {{PW}};
    server {
        listen 127.0.0.1:{{P}} ssl;
        ssl_certificate cert.pem;
        ssl_certificate_key {{KEY}};
        location / { return 200 "ok"; }
    }
}
`
	port := freePort(t)
	for _, legacy := range []bool{false, true} {
		files := []option{withFile("conf/cert.pem", certPEM),
			withFile("conf/enc.key", encryptKey(t, keyPEM, legacy, "secret2")),
			withFile("conf/pw.txt", []byte("wrong1\nsecret2\r\n")),
			withFile("conf/bad.txt", []byte("wrong1\nsecret2 \n"))}
		prefix, confPath, _ := newPrefix(t, fill(t, conf, "P", port, "PW", "bad.txt", "KEY", "enc.key"), files...)
		code, out := runSluice(t, "-t", "-p", prefix+"/", "-c", confPath)
		if code == 0 || !strings.Contains(out, "sluice.conf:6") || !strings.Contains(out, "enc.key") || !strings.Contains(out, "bad.txt") {
			t.Errorf("legacy %v, wrong passphrases: exit %d: %s", legacy, code, out)
		}
		os.WriteFile(confPath, []byte(strings.Replace(fill(t, conf, "P", port, "PW", "bad.txt", "KEY", "enc.key"), "    ssl_password_file bad.txt;\n", "", 1)), 0o600)
		if code, out := runSluice(t, "-t", "-p", prefix+"/", "-c", confPath); code == 0 || !strings.Contains(out, "ssl_password_file") {
			t.Errorf("legacy %v, no ssl_password_file: exit %d: %s", legacy, code, out)
		}
		s := start(t, fill(t, conf, "P", port, "PW", "pw.txt", "KEY", "enc.key"), files...)
		get := func() string {
			c, err := tls.Dial("tcp", addr(port), ca.clientTLS("pw.test"))
			if err != nil {
				t.Fatalf("legacy %v: TLS dial: %v", legacy, err)
			}
			c.Close()
			return c.ConnectionState().PeerCertificates[0].Subject.CommonName
		}
		if cn := get(); cn != "pw.test" {
			t.Errorf("legacy %v: certificate %q", legacy, cn)
		}
		// a reload whose passphrase no longer opens the key is refused with its place; the old one serves
		os.WriteFile(filepath.Join(s.Prefix, "conf", "pw.txt"), []byte("other\n"), 0o600)
		code, out = runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reload")
		if code == 0 || !strings.Contains(out, "enc.key") || !strings.Contains(out, "sluice.conf:6") {
			t.Errorf("legacy %v: reload with a wrong passphrase: exit %d: %s", legacy, code, out)
		}
		if cn := get(); cn != "pw.test" {
			t.Errorf("legacy %v: after the refused reload: certificate %q", legacy, cn)
		}
		s.stop()
	}
}

// TestProxySSLPasswordFile: an encrypted proxy_ssl_certificate_key opens with proxy_ssl_password_file, and the
// upstream sees the client certificate.
func TestProxySSLPasswordFile(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	certPEM, keyPEM := ca.issue(t, ecdsaP256, "client.test")
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
		}
	}))
	defer up.Close()
	up.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	up.StartTLS()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen 127.0.0.1:{{P}};
        location / {
            proxy_pass {{UP}};
            proxy_ssl_certificate client.pem;
            proxy_ssl_certificate_key client.key;
            proxy_ssl_password_file pw.txt;
        }
    }
}
`, "P", port, "UP", up.URL), withFile("conf/client.pem", certPEM), withFile("conf/pw.txt", []byte("no\nright\n")),
		withFile("conf/client.key", encryptKey(t, keyPEM, false, "right")))
	r := get(t, http.DefaultClient, "http://"+addr(port)+"/", nil)
	if r.StatusCode != http.StatusOK || r.Body != "client.test" {
		t.Fatalf("%d %q", r.StatusCode, r.Body)
	}
}
