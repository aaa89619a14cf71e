package e2e

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestTLSDefaults: without ssl_protocols/ssl_ciphers a TLS listener accepts TLS 1.2 and 1.3 only, with AEAD
// suites only; sessions resume with tickets; HSTS is one add_header away and reaches error responses too.
func TestTLSDefaults(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}} ssl;
        ssl_certificate self-signed;
        add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;
        location / { return 200 "ok"; }
        location /missing { return 404; }
    }
}
`, nil)
	dial := func(cfg *tls.Config) (*tls.Conn, error) {
		cfg.InsecureSkipVerify, cfg.ServerName = true, "localhost"
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr(port), cfg)
	}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.2 CBC only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}}, false},
		{"TLS 1.2 GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.2 ChaCha20", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, true},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
	} {
		c, err := dial(tc.cfg)
		if err == nil {
			c.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: handshake error %v, want success %v", tc.name, err, tc.ok)
		}
	}
	cache := tls.NewLRUClientSessionCache(4)
	for i := 0; i < 2; i++ {
		c, err := dial(&tls.Config{ClientSessionCache: cache, MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		resumed := c.ConnectionState().DidResume
		c.Close()
		if i == 1 && !resumed {
			t.Error("the second connection did not resume its session with a ticket")
		}
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, path := range []string{"/", "/missing"} {
		resp, err := client.Get("https://" + addr(port) + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Strict-Transport-Security") != "max-age=63072000; includeSubDomains" {
			t.Errorf("%s (%d): Strict-Transport-Security %q", path, resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
		}
	}
}
