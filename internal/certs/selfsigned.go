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
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Self-signed certificate parameters.
const (
	selfSignedCertName = "selfsigned-cert.pem"
	selfSignedKeyName  = "selfsigned-key.pem"
	selfSignedValidity = 365 * 24 * time.Hour
	// selfSignedMargin: a certificate expiring within this margin is replaced now rather than
	// failing handshakes later in a long-running process.
	selfSignedMargin = 24 * time.Hour
)

// SelfSigned returns the paths of a self-signed ECDSA P-256 certificate and key for names (DNS names and IPs, e.g.
// "localhost", "127.0.0.1", "::1"), generating them under dir (mode 0600 for the key, dir 0700) on first use and reusing
// them afterwards (regenerate when the existing one has expired or lacks a name). Used by sluice's built-in default
// configuration so a new user gets https on the first start.
//
// The files are dir/selfsigned-cert.pem and dir/selfsigned-key.pem, each replaced atomically. The
// certificate is valid for a year and is also regenerated when it expires within a day, or when the
// existing files cannot be loaded.
func SelfSigned(dir string, names []string) (certFile, keyFile string, err error) {
	if len(names) == 0 {
		return "", "", errNoNames
	}
	certFile, keyFile = filepath.Join(dir, selfSignedCertName), filepath.Join(dir, selfSignedKeyName)
	if keptSelfSigned(certFile, keyFile, names) != nil {
		return certFile, keyFile, nil
	}
	own, err := mkdirOwned(dir)
	if err != nil {
		return "", "", err
	}
	certPEM, keyPEM, err := newSelfSigned(names)
	if err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := own.chown(keyFile, certFile); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// CheckSelfSigned returns the certificate SelfSigned would give for names without writing anything: the one kept
// in dir while it is good, else a new one made in memory. For checking a configuration (sluice -t, run as root,
// must not leave files the server cannot read).
func CheckSelfSigned(dir string, names []string) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, errNoNames
	}
	if c := keptSelfSigned(filepath.Join(dir, selfSignedCertName), filepath.Join(dir, selfSignedKeyName), names); c != nil {
		return c, nil
	}
	certPEM, keyPEM, err := newSelfSigned(names)
	if err != nil {
		return nil, err
	}
	return parsePair(selfSignedCertName, certPEM, selfSignedKeyName, keyPEM, Passphrases{})
}

// keptSelfSigned is the certificate kept in the files if it loads, carries every name and is not near expiry.
func keptSelfSigned(certFile, keyFile string, names []string) *tls.Certificate {
	c, err := Load(certFile, keyFile, Passphrases{})
	if err != nil || !time.Now().Add(selfSignedMargin).Before(c.Leaf.NotAfter) || !coversNames(c.Leaf, names) {
		return nil
	}
	return c
}

// newSelfSigned makes a self-signed certificate for names and returns it and its key in PEM.
func newSelfSigned(names []string) (certPEM, keyPEM []byte, err error) {
	key, err := newKey("ecdsa")
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl, err := leafTemplate(names, now.Add(-time.Hour), now.Add(selfSignedValidity), key)
	if err != nil {
		return nil, nil, err
	}
	tmpl.Subject.Organization = []string{"sluice self-signed"}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: creating self-signed certificate: %w", err)
	}
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, nil, err
	}
	return encodeCerts(der), keyPEM, nil
}

// coversNames reports whether every name is among c's subject alternative names.
func coversNames(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		found := false
		if ip := net.ParseIP(n); ip != nil {
			for _, have := range c.IPAddresses {
				if have.Equal(ip) {
					found = true
					break
				}
			}
		} else {
			for _, have := range c.DNSNames {
				if strings.EqualFold(have, n) {
					found = true
					break
				}
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// newKey generates a private key: "ecdsa" (P-256, also for ""), "rsa" (2048 bits) or "ed25519".
func newKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "ecdsa", "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("certs: unknown key type %q (want \"ecdsa\", \"rsa\" or \"ed25519\")", keyType)
}

// leafTemplate returns a server certificate template for names (DNS names or IP addresses).
func leafTemplate(names []string, notBefore, notAfter time.Time, key crypto.Signer) (*x509.Certificate, error) {
	if len(names) == 0 {
		return nil, errNoNames
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		t.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else {
			t.DNSNames = append(t.DNSNames, strings.ToLower(n))
		}
	}
	return t, nil
}

// encodeKey returns key as a PKCS#8 PEM block.
func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// encodeCerts returns the DER certificates as concatenated PEM blocks.
func encodeCerts(ders ...[]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

// writeFileAtomic writes data to path through a temporary file in the same directory and a
// rename, so a reader never sees a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
