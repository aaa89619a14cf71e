package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestOCSPStapling serves a certificate file whose CA runs an OCSP responder: with ssl_stapling on the handshake
// carries the responder's "good" answer (fetched in the background, then refreshed by sluice), with it off none.
func TestOCSPStapling(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	var asked atomic.Int64
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		asked.Add(1)
		now := time.Now()
		resp, err := ocsp.CreateResponse(ca.cert, ca.cert, ocsp.Response{
			Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
		}, ca.key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	}))
	t.Cleanup(responder.Close)

	// a leaf naming the responder, in a chain file that holds the issuer too
	key, leafPEM := ca.issueWithOCSP(t, responder.URL, "stapled.test")
	chain := append(leafPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	on, off := freePort(t), freePort(t)
	conf := fill(t, `events {}
http {
    ssl_certificate     stapled.pem;
    ssl_certificate_key stapled.key.pem;
    server {
        listen 127.0.0.1:{{ON}} ssl;
        server_name stapled.test;
        ssl_stapling on;
        location / { return 200; }
    }
    server {
        listen 127.0.0.1:{{OFF}} ssl;
        server_name stapled.test;
        location / { return 200; }
    }
}
`, "ON", on, "OFF", off)
	start(t, conf, withFile("conf/stapled.pem", chain), withFile("conf/stapled.key.pem", key))

	staple := func(port int) []byte {
		c, err := tls.Dial("tcp", addr(port), ca.clientTLS("stapled.test"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().OCSPResponse
	}
	var got []byte
	if !eventually(15*time.Second, func() bool { got = staple(on); return len(got) > 0 }) {
		t.Fatalf("no OCSP staple with ssl_stapling on (responder asked %d times)", asked.Load())
	}
	resp, err := ocsp.ParseResponse(got, ca.cert)
	if err != nil || resp.Status != ocsp.Good {
		t.Fatalf("stapled response: %v, %+v", err, resp)
	}
	if s := staple(off); len(s) != 0 {
		t.Errorf("a staple was sent with ssl_stapling off")
	}
}

// issueWithOCSP makes an ECDSA leaf for names naming ocspURL as its responder; it returns PEM key and certificate.
func (ca *testCA) issueWithOCSP(t *testing.T, ocspURL string, names ...string) (keyPEM, certPEM []byte) {
	t.Helper()
	certPEM0, keyPEM0 := ca.issue(t, ecdsaP256, names...)
	blk, _ := pem.Decode(certPEM0)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    leaf.NotBefore,
		NotAfter:     leaf.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		OCSPServer:   []string{ocspURL},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, leaf.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return keyPEM0, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestOCSPStaplingFile: with ssl_stapling on, ssl_stapling_file's DER response is stapled as it is, for a
// certificate that names no responder (nginx 1.22 side by side: openssl s_client -status shows the file's
// "good" response; without ssl_stapling on, none). A file that is no OCSP response is refused at load.
func TestOCSPStaplingFile(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	certPEM, keyPEM := ca.issue(t, ecdsaP256, "file.test")
	blk, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := ocsp.CreateResponse(ca.cert, ca.cert, ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour)}, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	conf := `events {}
http {
    ssl_certificate     file.pem;
    ssl_certificate_key file.key.pem;
    ssl_stapling_file   resp.der;
    server {
        listen 127.0.0.1:{{ON}} ssl;
        ssl_stapling on;
        location / { return 200; }
    }
    server {
        listen 127.0.0.1:{{OFF}} ssl;
        location / { return 200; }
    }
}
`
	files := []option{withFile("conf/file.pem", certPEM), withFile("conf/file.key.pem", keyPEM)}
	on, off := freePort(t), freePort(t)
	start(t, fill(t, conf, "ON", on, "OFF", off), append(files, withFile("conf/resp.der", der))...)
	staple := func(port int) []byte {
		c, err := tls.Dial("tcp", addr(port), ca.clientTLS("file.test"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().OCSPResponse
	}
	if got := staple(on); !bytes.Equal(got, der) {
		t.Errorf("stapled %d bytes, want the file's %d", len(got), len(der))
	}
	if got := staple(off); len(got) != 0 {
		t.Errorf("a staple was sent with ssl_stapling off")
	}

	prefix, confPath, _ := newPrefix(t, fill(t, conf, "ON", freePort(t), "OFF", freePort(t)), append(files, withFile("conf/resp.der", []byte("garbage")))...)
	if code, out := runSluice(t, "-t", "-p", prefix+"/", "-c", confPath); code == 0 || !strings.Contains(out, "resp.der is not a DER OCSP response") || !strings.Contains(out, "sluice.conf:5") {
		t.Errorf("a garbage ssl_stapling_file: exit %d, %s", code, out)
	}
}
