package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// serveTLS starts a TLS server on loopback with cfg that completes handshakes, writes one byte
// and closes. It returns the address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err == nil {
					if _, err := c.Write([]byte{'x'}); err != nil {
						t.Logf("server write: %v", err)
					}
				} else {
					t.Logf("server handshake: %v", err)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake dials addr with cfg, completes the handshake and reads the server's byte.
func handshake(t *testing.T, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return tls.ConnectionState{}, err
	}
	// The byte may come together with io.EOF (close_notify in the same record batch).
	var b [1]byte
	if n, err := c.Read(b[:]); n != 1 {
		return tls.ConnectionState{}, err
	}
	return c.ConnectionState(), nil
}

// poolWithCA returns a pool holding the CA that WriteTestCerts wrote next to each certFile.
func poolWithCA(t *testing.T, certFiles ...string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, f := range certFiles {
		pem, err := os.ReadFile(f[:len(f)-len("-cert.pem")] + "-ca.pem")
		if err != nil {
			t.Fatal(err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("no CA in %s", f)
		}
	}
	return pool
}

// mustLoad writes test certificates for names and loads them.
func mustLoad(t *testing.T, names []string, keyType string) (*tls.Certificate, string) {
	t.Helper()
	certFile, keyFile, _, err := WriteTestCerts(t.TempDir(), names, keyType)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(certFile, keyFile, Passphrases{})
	if err != nil {
		t.Fatal(err)
	}
	return c, certFile
}

// testChain returns a root CA, and a leaf for names issued by an intermediate issued by the root,
// as DER, with the leaf's key.
func testChain(t *testing.T, names []string) (root *x509.Certificate, leafDER, interDER []byte, leafKey crypto.Signer) {
	t.Helper()
	now := time.Now()
	root, rootKey, err := newTestCA("ecdsa", now)
	if err != nil {
		t.Fatal(err)
	}
	interKey, err := newKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "sluice test intermediate"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	interDER, err = x509.CreateCertificate(rand.Reader, tmpl, root, interKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := x509.ParseCertificate(interDER)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, leafKey, err = issueTestLeaf(names, "ecdsa", inter, interKey, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return root, leafDER, interDER, leafKey
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
