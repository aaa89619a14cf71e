package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	encpkcs8 "github.com/youmark/pkcs8"
)

// selfSignedFor returns a PEM certificate for key, named name.
func selfSignedFor(t *testing.T, name string, key crypto.Signer) []byte {
	t.Helper()
	now := time.Now()
	tmpl, err := leafTemplate([]string{name}, now.Add(-time.Hour), now.Add(time.Hour), key)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return encodeCerts(der)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func sec1(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("EC PRIVATE KEY", der)
}

func TestLoadKeyTypes(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	// openssl ecparam -genkey writes the curve parameters before the key.
	ecParams := pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})

	tests := []struct {
		name   string
		key    crypto.Signer
		keyPEM []byte
		alg    x509.PublicKeyAlgorithm
	}{
		{"rsa pkcs1", rsaKey, pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), x509.RSA},
		{"rsa pkcs8", rsaKey, pkcs8(t, rsaKey), x509.RSA},
		{"ecdsa p256 sec1", p256, sec1(t, p256), x509.ECDSA},
		{"ecdsa p256 sec1 with params", p256, append(ecParams, sec1(t, p256)...), x509.ECDSA},
		{"ecdsa p256 pkcs8", p256, pkcs8(t, p256), x509.ECDSA},
		{"ecdsa p384 sec1", p384, sec1(t, p384), x509.ECDSA},
		{"ecdsa p384 pkcs8", p384, pkcs8(t, p384), x509.ECDSA},
		{"ed25519 pkcs8", edKey, pkcs8(t, edKey), x509.Ed25519},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile := writeFile(t, dir, "cert.pem", selfSignedFor(t, "load.test", tt.key))
			keyFile := writeFile(t, dir, "key.pem", tt.keyPEM)
			c, err := Load(certFile, keyFile, Passphrases{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Leaf == nil || c.Leaf.PublicKeyAlgorithm != tt.alg || c.Leaf.DNSNames[0] != "load.test" {
				t.Fatalf("Leaf = %+v, want a %v certificate for load.test", c.Leaf, tt.alg)
			}
			if len(c.Certificate) != 1 {
				t.Fatalf("chain length %d, want 1", len(c.Certificate))
			}
			// The pair must serve a real handshake.
			pool := x509.NewCertPool()
			pool.AddCert(c.Leaf)
			addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{*c}})
			if _, err := handshake(t, addr, &tls.Config{ServerName: "load.test", RootCAs: pool}); err != nil {
				t.Fatalf("handshake: %v", err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	keyA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certA := selfSignedFor(t, "a.test", keyA)
	_, leafDER, interDER, leafKey := testChain(t, []string{"chain.test"})

	encrypted := pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00000000000000000000000000000000"},
		Bytes:   []byte{1, 2, 3},
	})
	tests := []struct {
		name    string
		cert    []byte
		key     []byte // nil: no key file at all
		wantErr string // "{cert}" and "{key}" stand for the file paths
	}{
		{"mismatched pair", certA, pkcs8(t, keyB), "{key}: key does not match certificate {cert}"},
		{"chain in wrong order", encodeCerts(interDER, leafDER), pkcs8(t, leafKey), "{key}: key does not match the first certificate of {cert} but certificate 2"},
		{"no certificate", pkcs8(t, keyA), pkcs8(t, keyA), "{cert}: no certificate found"},
		{"not PEM", []byte("hello"), pkcs8(t, keyA), "{cert}: no certificate found"},
		{"no key", certA, certA, "{key}: no private key found"},
		{"encrypted key", certA, encrypted, "{key}: key is encrypted"},
		{"encrypted pkcs8", certA, pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), "{key}: key is encrypted"},
		{"openssh key", certA, pemBlock("OPENSSH PRIVATE KEY", []byte{1}), "{key}: OpenSSH key format is not supported"},
		{"garbage key", certA, pemBlock("PRIVATE KEY", []byte{1, 2, 3}), "{key}: cannot parse \"PRIVATE KEY\" block"},
		{"bad certificate", pemBlock("CERTIFICATE", []byte{1, 2, 3}), pkcs8(t, keyA), "{cert}: cannot parse certificate"},
		{"missing key file", certA, nil, "{key}: no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile := writeFile(t, dir, "cert.pem", tt.cert)
			keyFile := filepath.Join(dir, "key.pem")
			if tt.key != nil {
				writeFile(t, dir, "key.pem", tt.key)
			}
			_, err := Load(certFile, keyFile, Passphrases{})
			want := strings.NewReplacer("{cert}", certFile, "{key}", keyFile).Replace(tt.wantErr)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Load error = %v, want it to contain %q", err, want)
			}
		})
	}
}

func TestLoadChain(t *testing.T) {
	root, leafDER, interDER, leafKey := testChain(t, []string{"chain.test"})
	dir := t.TempDir()
	certFile := writeFile(t, dir, "chain.pem", encodeCerts(leafDER, interDER))
	keyFile := writeFile(t, dir, "key.pem", pkcs8(t, leafKey))

	c, err := Load(certFile, keyFile, Passphrases{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 || c.Leaf.Subject.CommonName != "chain.test" {
		t.Fatalf("chain length %d, leaf %q; want 2 and chain.test", len(c.Certificate), c.Leaf.Subject.CommonName)
	}
	// A client that only trusts the root needs the intermediate from the server.
	pool := x509.NewCertPool()
	pool.AddCert(root)
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{*c}})
	st, err := handshake(t, addr, &tls.Config{ServerName: "chain.test", RootCAs: pool})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if len(st.PeerCertificates) != 2 {
		t.Fatalf("server sent %d certificates, want 2", len(st.PeerCertificates))
	}
}

func TestLoadCombinedFile(t *testing.T) {
	// nginx allows ssl_certificate and ssl_certificate_key to name the same file.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dir := t.TempDir()
	both := writeFile(t, dir, "both.pem", append(pkcs8(t, key), selfSignedFor(t, "both.test", key)...))
	c, err := Load(both, both, Passphrases{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf.DNSNames[0] != "both.test" {
		t.Fatalf("leaf names %v", c.Leaf.DNSNames)
	}
}

func TestLoadMissingCertFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	_, err := Load(missing, missing, Passphrases{})
	if !os.IsNotExist(err) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v, want a not-exist error naming %s", err, missing)
	}
}

// TestLoadEncryptedKey checks that an encrypted key (PKCS#8 with PBES2, and the legacy PEM encryption) opens
// with the first passphrase that fits, and that none fitting names the password file.
func TestLoadEncryptedKey(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := selfSignedFor(t, "enc.test", key)
	der, err := encpkcs8.MarshalPrivateKey(key, []byte("right"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(key)
	//lint:ignore SA1019 the legacy encryption is what is being read
	legacy, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", ecDER, []byte("right"), x509.PEMCipherAES128)
	if err != nil {
		t.Fatal(err)
	}
	for name, keyPEM := range map[string][]byte{"pkcs8": pemBlock("ENCRYPTED PRIVATE KEY", der), "legacy": pem.EncodeToMemory(legacy)} {
		pw := Passphrases{File: "pw.txt", Lines: []string{"wrong", "right"}}
		if c, err := parsePair("c.pem", certPEM, "k.pem", keyPEM, pw); err != nil || !publicKeyEqual(c.Leaf.PublicKey, key.Public()) {
			t.Errorf("%s: %v", name, err)
		}
		pw.Lines = pw.Lines[:1]
		if _, err := parsePair("c.pem", certPEM, "k.pem", keyPEM, pw); err == nil || !strings.Contains(err.Error(), "k.pem: no passphrase of pw.txt") {
			t.Errorf("%s with a wrong passphrase: %v", name, err)
		}
		if _, err := parsePair("c.pem", certPEM, "k.pem", keyPEM, Passphrases{}); err == nil || !strings.Contains(err.Error(), "ssl_password_file") {
			t.Errorf("%s without passphrases: %v", name, err)
		}
	}
}

// TestLoadLegacyKeyWrongPassphraseThatPads: a wrong passphrase that happens to pass the legacy decryption's
// padding check (about one in 256) yields garbage, and the next passphrase is tried, as nginx tries it.
func TestLoadLegacyKeyWrongPassphraseThatPads(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := selfSignedFor(t, "enc.test", key)
	ecDER, _ := x509.MarshalECPrivateKey(key)
	//lint:ignore SA1019 the legacy encryption is what is being read
	legacy, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", ecDER, []byte("right"), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	wrong := ""
	for i := 0; i < 20000 && wrong == ""; i++ {
		p := fmt.Sprintf("wrong%d", i)
		//lint:ignore SA1019 as above
		if _, err := x509.DecryptPEMBlock(legacy, []byte(p)); err == nil {
			wrong = p
		}
	}
	if wrong == "" {
		t.Skip("no padding-passing wrong passphrase found")
	}
	pw := Passphrases{File: "pw.txt", Lines: []string{wrong, "right"}}
	if c, err := parsePair("c.pem", certPEM, "k.pem", pem.EncodeToMemory(legacy), pw); err != nil || !publicKeyEqual(c.Leaf.PublicKey, key.Public()) {
		t.Errorf("with %q first: %v", wrong, err)
	}
}
