package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// testValidity is how long test certificates are valid; they are created per test run.
const testValidity = 30 * 24 * time.Hour

// WriteTestCerts writes a fresh CA and a leaf certificate for names (DNS names or IPs) into dir,
// both with keys of keyType ("ecdsa" P-256, "rsa" 2048 bits; "ed25519" also works), and returns
// the leaf's certificate and key files and a pool holding the CA, for clients to verify against.
// Use it only from tests: the keys are not protected and the CA is thrown away.
//
// Every call uses new file names, so one dir can hold several sets. The CA certificate is written
// next to certFile, named strings.TrimSuffix(certFile, "-cert.pem")+"-ca.pem" (for external clients
// such as curl --cacert).
func WriteTestCerts(dir string, names []string, keyType string /* "ecdsa" | "rsa" */) (certFile, keyFile string, pool *x509.CertPool, err error) {
	if len(names) == 0 {
		return "", "", nil, errNoNames
	}
	now := time.Now()
	ca, caKey, err := newTestCA(keyType, now)
	if err != nil {
		return "", "", nil, err
	}
	leafDER, leafKey, err := issueTestLeaf(names, keyType, ca, caKey, now.Add(-time.Hour), now.Add(testValidity))
	if err != nil {
		return "", "", nil, err
	}
	keyPEM, err := encodeKey(leafKey)
	if err != nil {
		return "", "", nil, err
	}

	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", "", nil, err
	}
	stem := filepath.Join(dir, fileSafe(names[0])+"-"+keyType+"-"+hex.EncodeToString(rnd[:]))
	certFile, keyFile = stem+"-cert.pem", stem+"-key.pem"
	if err := os.WriteFile(stem+"-ca.pem", encodeCerts(ca.Raw), 0o644); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(certFile, encodeCerts(leafDER), 0o644); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", nil, err
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return certFile, keyFile, pool, nil
}

// newTestCA returns a self-signed CA certificate and its key.
func newTestCA(keyType string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey(keyType)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sluice test CA " + serial.Text(16)[:8]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(testValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: creating test CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

// issueTestLeaf returns a server certificate for names signed by ca, and its new key.
func issueTestLeaf(names []string, keyType string, ca *x509.Certificate, caKey crypto.Signer, notBefore, notAfter time.Time) ([]byte, crypto.Signer, error) {
	key, err := newKey(keyType)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := leafTemplate(names, notBefore, notAfter, key)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: issuing test certificate: %w", err)
	}
	return der, key, nil
}

// fileSafe maps a name to something usable in a file name ("*.example.com" -> "_.example.com").
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, name)
}

// TestIssuer is a certificate with its ECDSA P-256 key, able to issue others (tests only).
type TestIssuer struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// MintTestCert issues a certificate from tmpl with a fresh key, signed by parent (self-signed when parent is
// nil). Use it only from tests.
func MintTestCert(parent *TestIssuer, tmpl *x509.Certificate) (*TestIssuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, signCert := key, tmpl
	if parent != nil {
		signer, signCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signCert, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &TestIssuer{c, key}, nil
}
