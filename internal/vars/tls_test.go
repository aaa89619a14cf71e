package vars

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// selfSigned returns an ECDSA P-256 certificate for sluice.test and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sluice.test"},
		DNSNames:     []string{"sluice.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

const tlsTemplate = "$scheme|$https|$ssl_protocol|$ssl_cipher|$ssl_server_name|$ssl_alpn_protocol|$http2|" +
	"$server_protocol|$remote_addr|$server_port|$host|$request_uri"

// serve starts a real HTTP server on loopback (TLS when cert is non-nil) whose handler fills a Request the
// way the server package does and answers with tlsTemplate evaluated.
func serve(t *testing.T, cert *tls.Certificate) (addr string) {
	t.Helper()
	tab := NewTable()
	tp, err := Compile(tlsTemplate, tab)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		local, _ := hr.Context().Value(http.LocalAddrContextKey).(net.Addr)
		r := &Request{
			HTTP:       hr,
			TLS:        hr.TLS,
			HTTP2:      hr.ProtoMajor == 2,
			RemoteAddr: netip.MustParseAddrPort(hr.RemoteAddr),
			LocalAddr:  netip.MustParseAddrPort(local.String()),
			ServerName: "fallback",
		}
		w.Write(tp.Append(nil, r))
	})}
	go func() {
		if cert != nil {
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
			srv.ServeTLS(ln, "", "")
		} else {
			srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func get(t *testing.T, tr *http.Transport, url string) string {
	t.Helper()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTLSVariablesOverLoopback(t *testing.T) {
	cert, pool := selfSigned(t)
	addr := serve(t, &cert)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tls13 := map[string]bool{"TLS_AES_128_GCM_SHA256": true, "TLS_AES_256_GCM_SHA384": true, "TLS_CHACHA20_POLY1305_SHA256": true}
	tests := []struct {
		desc   string
		client *tls.Config
		h2     bool
		want   string // with CIPHER standing for a TLS 1.3 suite, which Go picks by hardware
	}{
		{"TLS 1.3, HTTP/1.1", &tls.Config{}, false,
			"https|on|TLSv1.3|CIPHER|sluice.test|http/1.1||HTTP/1.1|127.0.0.1|" + port + "|sluice.test|/a?b=1"},
		{"TLS 1.3, HTTP/2", &tls.Config{}, true,
			"https|on|TLSv1.3|CIPHER|sluice.test|h2|h2|HTTP/2.0|127.0.0.1|" + port + "|sluice.test|/a?b=1"},
		{"TLS 1.2 ECDHE-ECDSA AES-128-GCM", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, false,
			"https|on|TLSv1.2|ECDHE-ECDSA-AES128-GCM-SHA256|sluice.test|http/1.1||HTTP/1.1|127.0.0.1|" + port + "|sluice.test|/a?b=1"},
		{"TLS 1.2 ECDHE-ECDSA CHACHA20", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, false,
			"https|on|TLSv1.2|ECDHE-ECDSA-CHACHA20-POLY1305|sluice.test|http/1.1||HTTP/1.1|127.0.0.1|" + port + "|sluice.test|/a?b=1"},
		{"TLS 1.2 ECDHE-ECDSA AES-256-GCM", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}, false,
			"https|on|TLSv1.2|ECDHE-ECDSA-AES256-GCM-SHA384|sluice.test|http/1.1||HTTP/1.1|127.0.0.1|" + port + "|sluice.test|/a?b=1"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			cfg := tt.client.Clone()
			cfg.RootCAs = pool
			tr := &http.Transport{TLSClientConfig: cfg, DialContext: dial, ForceAttemptHTTP2: tt.h2}
			if !tt.h2 {
				cfg.NextProtos = []string{"http/1.1"}
			}
			got := get(t, tr, "https://sluice.test:"+port+"/a?b=1")
			fields := strings.Split(got, "|")
			if len(fields) > 3 && strings.Contains(tt.want, "CIPHER") {
				if !tls13[fields[3]] {
					t.Errorf("$ssl_cipher = %q, not an OpenSSL TLS 1.3 name", fields[3])
				}
				fields[3] = "CIPHER"
				got = strings.Join(fields, "|")
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestPlainVariablesOverLoopback(t *testing.T) {
	addr := serve(t, nil)
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	got := get(t, &http.Transport{}, "http://"+addr+"/p?q")
	want := "http||||||" + "|HTTP/1.1|127.0.0.1|" + strconv.Itoa(port) + "|127.0.0.1|/p?q"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestCipherNames(t *testing.T) {
	// Every suite Go implements has an OpenSSL name in the table.
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		name := cipherName(cs.ID)
		if name == cs.Name && !strings.HasPrefix(name, "TLS_AES") && !strings.HasPrefix(name, "TLS_CHACHA20") {
			t.Errorf("%s has no OpenSSL name", cs.Name)
		}
	}
}
