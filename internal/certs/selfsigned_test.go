package certs

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readBoth(t *testing.T, certFile, keyFile string) (cert, key []byte) {
	t.Helper()
	cert, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err = os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestSelfSignedCreatesOnceAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "tls")
	names := []string{"localhost", "127.0.0.1", "::1"}
	certFile, keyFile, err := SelfSigned(dir, names)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700}, {keyFile, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s has mode %v, want %v", c.path, fi.Mode().Perm(), c.mode)
		}
	}
	cert1, key1 := readBoth(t, certFile, keyFile)

	certFile2, keyFile2, err := SelfSigned(dir, []string{"LOCALHOST", "::1"}) // a subset, other case
	if err != nil {
		t.Fatal(err)
	}
	cert2, key2 := readBoth(t, certFile2, keyFile2)
	if certFile2 != certFile || keyFile2 != keyFile || !bytes.Equal(cert1, cert2) || !bytes.Equal(key1, key2) {
		t.Fatal("second call did not reuse the certificate")
	}

	// The certificate is ECDSA P-256 and serves every name, checked by real clients.
	c, err := Load(certFile, keyFile, Passphrases{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf.PublicKeyAlgorithm != x509.ECDSA || c.Leaf.IsCA {
		t.Errorf("got a %v certificate (CA=%v), want an ECDSA leaf", c.Leaf.PublicKeyAlgorithm, c.Leaf.IsCA)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.Leaf)
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{*c}})
	for _, name := range names {
		if _, err := handshake(t, addr, &tls.Config{ServerName: name, RootCAs: pool}); err != nil {
			t.Errorf("client for %s: %v", name, err)
		}
	}
}

func TestSelfSignedRegenerates(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, err := SelfSigned(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	cert1, _ := readBoth(t, certFile, keyFile)

	// A missing name regenerates.
	if _, _, err := SelfSigned(dir, []string{"localhost", "sluice.internal"}); err != nil {
		t.Fatal(err)
	}
	cert2, _ := readBoth(t, certFile, keyFile)
	if bytes.Equal(cert1, cert2) {
		t.Fatal("certificate not regenerated for a new name")
	}
	c, err := Load(certFile, keyFile, Passphrases{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Leaf.VerifyHostname("sluice.internal"); err != nil {
		t.Fatal(err)
	}

	// An expired one regenerates.
	key, err := newKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-48 * time.Hour)
	tmpl, err := leafTemplate([]string{"localhost"}, past.Add(-time.Hour), past, key)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := encodeKey(key)
	writeFile(t, dir, selfSignedCertName, encodeCerts(der))
	writeFile(t, dir, selfSignedKeyName, keyPEM)
	if _, _, err := SelfSigned(dir, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	c, err = Load(certFile, keyFile, Passphrases{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Leaf.NotAfter.After(time.Now().Add(300 * 24 * time.Hour)) {
		t.Fatalf("expired certificate kept (NotAfter %v)", c.Leaf.NotAfter)
	}

	// Unreadable files regenerate too.
	writeFile(t, dir, selfSignedKeyName, []byte("garbage"))
	if _, _, err := SelfSigned(dir, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(certFile, keyFile, Passphrases{}); err != nil {
		t.Fatalf("broken key not replaced: %v", err)
	}
}

func TestSelfSignedNoNames(t *testing.T) {
	if _, _, err := SelfSigned(t.TempDir(), nil); err == nil {
		t.Fatal("SelfSigned with no names succeeded")
	}
}

func TestWriteTestCerts(t *testing.T) {
	dir := t.TempDir()
	for _, keyType := range []string{"ecdsa", "rsa", "ed25519"} {
		t.Run(keyType, func(t *testing.T) {
			certFile, keyFile, pool, err := WriteTestCerts(dir, []string{"svc.test", "127.0.0.1"}, keyType)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Load(certFile, keyFile, Passphrases{})
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(keyFile)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
			}
			addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{*c}})
			for _, name := range []string{"svc.test", "127.0.0.1"} {
				if _, err := handshake(t, addr, &tls.Config{ServerName: name, RootCAs: pool}); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
			// The CA file next to certFile verifies the same way.
			if _, err := handshake(t, addr, &tls.Config{ServerName: "svc.test", RootCAs: poolWithCA(t, certFile)}); err != nil {
				t.Errorf("with the CA file: %v", err)
			}
			if _, err := handshake(t, addr, &tls.Config{ServerName: "other.test", RootCAs: pool}); err == nil {
				t.Error("certificate verified for a name it does not carry")
			}
		})
	}
	if _, _, _, err := WriteTestCerts(dir, []string{"x.test"}, "dsa"); err == nil {
		t.Error("unknown key type accepted")
	}
}
