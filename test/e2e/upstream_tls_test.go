package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestHTTPSUpstream: proxy_pass to an https:// upstream verifies its certificate against
// proxy_ssl_trusted_certificate for proxy_ssl_name, and sends that name as SNI with proxy_ssl_server_name on.
func TestHTTPSUpstream(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	certPEM, keyPEM := ca.issue(t, ecdsaP256, "up.test")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sni := make(chan string, 4)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure "+r.Host)
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sni <- h.ServerName
		return nil, nil
	}}
	up.StartTLS()
	t.Cleanup(up.Close)
	upPort := up.Listener.Addr().(interface{ String() string }).String()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})

	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /good {
            proxy_pass https://{{UP}};
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate ca.pem;
            proxy_ssl_name up.test;
            proxy_ssl_server_name on;
        }
        location /badname {
            proxy_pass https://{{UP}};
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate ca.pem;
            proxy_ssl_name other.test;
        }
    }
}
`, "PORT", port, "UP", upPort), withFile("conf/ca.pem", caPEM))
	client := &http.Client{}
	r := get(t, client, "http://"+addr(port)+"/good", nil)
	if r.StatusCode != 200 || r.Body != "secure "+upPort {
		t.Fatalf("good: %d %q", r.StatusCode, r.Body)
	}
	if got := <-sni; got != "up.test" {
		t.Errorf("SNI sent upstream = %q, want up.test", got)
	}
	r = get(t, client, "http://"+addr(port)+"/badname", nil)
	if r.StatusCode != http.StatusBadGateway {
		t.Errorf("certificate for another name: status %d, want 502", r.StatusCode)
	}
}

// TestProxySSLCiphers: proxy_ssl_ciphers (OpenSSL names) chooses the TLS 1.2 suite sluice offers an https
// upstream; without it the upstream picks from Go's defaults.
func TestProxySSLCiphers(t *testing.T) {
	t.Parallel()
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, tls.CipherSuiteName(r.TLS.CipherSuite))
	}))
	up.TLS = &tls.Config{MaxVersion: tls.VersionTLS12}
	up.StartTLS()
	t.Cleanup(up.Close)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location /cbc/ { proxy_pass https://{{UP}}/; proxy_ssl_ciphers ECDHE-RSA-AES128-SHA; }
        location /gcm/ { proxy_pass https://{{UP}}/; proxy_ssl_ciphers ECDHE-RSA-CHACHA20-POLY1305; }
    }
}
`, "PORT", port, "UP", up.Listener.Addr().String()))
	c := httpClient(addr(port), nil)
	for path, want := range map[string]string{"/cbc/": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "/gcm/": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"} {
		if r := get(t, c, "http://c.test"+path, nil); r.Body != want {
			t.Errorf("%s: the upstream negotiated %q, want %q", path, r.Body, want)
		}
	}
}

// TestProxySSLVerifyDepthCRL: proxy_ssl_verify_depth and proxy_ssl_crl on an upstream whose certificate comes
// from an intermediate, as nginx 1.22 answered side by side (with proxy_ssl_session_reuse off): depth 0 gives
// 502 ("20:unable to get local issuer certificate"), depth 1 (nginx's default) and 2 pass; with CRLs from both
// CAs it passes, with the leaf revoked 502 ("23:certificate revoked"), without the intermediate's CRL 502
// ("3:unable to get certificate CRL").
func TestProxySSLVerifyDepthCRL(t *testing.T) {
	t.Parallel()
	root := mintCert(t, nil, caCert("Up Root"))
	inter := mintCert(t, root, caCert("Up Inter"))
	leaf := mintCert(t, inter, &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "up.test"}, DNSNames: []string{"up.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") }))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw, inter.Cert.Raw}, PrivateKey: leaf.Key}}}
	up.StartTLS()
	t.Cleanup(up.Close)

	port := freePort(t)
	start(t, fill(t, `events {}
http {
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate root.pem;
    proxy_ssl_name up.test;
    server {
        listen 127.0.0.1:{{PORT}};
        location /def/ { proxy_pass https://{{UP}}; }
        location /d0/ { proxy_pass https://{{UP}}; proxy_ssl_verify_depth 0; }
        location /d1/ { proxy_pass https://{{UP}}; proxy_ssl_verify_depth 1; }
        location /d2/ { proxy_pass https://{{UP}}; proxy_ssl_verify_depth 2; }
        location /crlok/ { proxy_pass https://{{UP}}; proxy_ssl_crl ok.crl; }
        location /crlrev/ { proxy_pass https://{{UP}}; proxy_ssl_crl rev.crl; }
        location /crlmiss/ { proxy_pass https://{{UP}}; proxy_ssl_crl rootonly.crl; }
    }
}
`, "PORT", port, "UP", up.Listener.Addr().String()),
		withFile("conf/root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw})),
		withFile("conf/ok.crl", append(makeCRL(t, root), makeCRL(t, inter)...)),
		withFile("conf/rev.crl", append(makeCRL(t, root), makeCRL(t, inter, 7)...)),
		withFile("conf/rootonly.crl", makeCRL(t, root)))
	for _, tc := range []struct {
		path   string
		status int
	}{{"/def/", 200}, {"/d0/", 502}, {"/d1/", 200}, {"/d2/", 200}, {"/crlok/", 200}, {"/crlrev/", 502}, {"/crlmiss/", 502}} {
		if r := get(t, http.DefaultClient, "http://"+addr(port)+tc.path, nil); r.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, r.StatusCode, tc.status)
		}
	}
}
