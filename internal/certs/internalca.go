package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Validity of the internal CA's certificates. Leaves are short-lived like ACME ones and are reissued at start
// and reload once they come within internalLeafMargin of expiry.
const (
	internalRootValidity = 10 * 365 * 24 * time.Hour
	internalLeafValidity = 30 * 24 * time.Hour
	internalLeafMargin   = 10 * 24 * time.Hour

	internalRootCert = "root-cert.pem"
	internalRootKey  = "root-key.pem"
)

// InternalCA is a local certificate authority for development (ssl_certificate internal): its root is made once
// and kept in a directory under the prefix (0700, key 0600; made as root, owned by the prefix's owner); users trust it once (sluice ca-cert prints it) and every
// name served with it verifies.
type InternalCA struct {
	dir  string
	root *x509.Certificate
	key  crypto.Signer
	pem  []byte
	now  func() time.Time // the clock leaves are issued and checked by (tests move it)
	// dry: nothing is written; a root not made yet and the certificates issued live in memory only
	dry bool
}

// LoadInternalCA returns the CA kept in dir, creating its root (ECDSA P-256, valid ten years) on first use.
func LoadInternalCA(dir string) (*InternalCA, error) { return loadInternalCA(dir, false) }

// CheckInternalCA returns the CA kept in dir as LoadInternalCA does, but writes nothing: a root not made yet is
// made in memory, and so are the certificates it issues. For checking a configuration (sluice -t, run as root,
// must not leave files the server cannot read).
func CheckInternalCA(dir string) (*InternalCA, error) { return loadInternalCA(dir, true) }

func loadInternalCA(dir string, dry bool) (*InternalCA, error) {
	certFile, keyFile := filepath.Join(dir, internalRootCert), filepath.Join(dir, internalRootKey)
	if c, err := Load(certFile, keyFile, Passphrases{}); err == nil {
		if c.Leaf.IsCA && time.Now().Before(c.Leaf.NotAfter) {
			pemBytes, err := os.ReadFile(certFile)
			if err != nil {
				return nil, err
			}
			return &InternalCA{dir: dir, root: c.Leaf, key: c.PrivateKey.(crypto.Signer), pem: pemBytes, now: time.Now, dry: dry}, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("certs: internal CA in %s: %w (remove the directory to make a new one)", dir, err)
	}
	key, err := newKey("ecdsa")
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sluice internal CA " + host, Organization: []string{"sluice internal CA"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(internalRootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: creating the internal CA: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &InternalCA{dir: dir, root: root, key: key, pem: encodeCerts(der), now: time.Now, dry: dry}
	if dry {
		return ca, nil
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	own, err := mkdirOwned(dir)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certFile, ca.pem, 0o644); err != nil {
		return nil, err
	}
	if err := own.chown(keyFile, certFile); err != nil {
		return nil, err
	}
	return ca, nil
}

// RootPEM is the CA certificate in PEM, for clients to trust.
func (ca *InternalCA) RootPEM() []byte { return ca.pem }

// Certificate returns a certificate for names (DNS names or IPs; wildcards "*.example.com" are fine) signed by the
// CA, reusing the one kept on disk while it covers the names, was signed by this root and is not near expiry.
func (ca *InternalCA) Certificate(names []string) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, errNoNames
	}
	stem := filepath.Join(ca.dir, "issued", fileSafe(strings.ToLower(names[0])))
	certFile, keyFile := stem+"-cert.pem", stem+"-key.pem"
	now := ca.now()
	if c, err := Load(certFile, keyFile, Passphrases{}); err == nil && now.Add(internalLeafMargin).Before(c.Leaf.NotAfter) &&
		coversNames(c.Leaf, names) && c.Leaf.CheckSignatureFrom(ca.root) == nil {
		return c, nil
	}
	key, err := newKey("ecdsa")
	if err != nil {
		return nil, err
	}
	tmpl, err := leafTemplate(names, now.Add(-time.Hour), now.Add(internalLeafValidity), key)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("certs: issuing from the internal CA: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	// the chain holds the leaf only: clients trust the root itself
	certPEM := encodeCerts(der)
	if ca.dry {
		return parsePair(certFile, certPEM, keyFile, keyPEM, Passphrases{})
	}
	own, err := mkdirOwned(filepath.Dir(stem))
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return nil, err
	}
	if err := own.chown(keyFile, certFile); err != nil {
		return nil, err
	}
	return Load(certFile, keyFile, Passphrases{})
}

// Source returns the certificate for names and a handshake-time source of it for tls.Config.GetCertificate (via
// SNIEntry.Get): a long-running process replaces the certificate when it comes near expiry, without a reload.
func (ca *InternalCA) Source(names []string) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	c, err := ca.Certificate(names)
	if err != nil {
		return nil, err
	}
	var (
		cur atomic.Pointer[tls.Certificate]
		mu  sync.Mutex
	)
	cur.Store(c)
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		c := cur.Load()
		if c.Leaf.NotAfter.Sub(ca.now()) > internalLeafMargin {
			return c, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if c = cur.Load(); c.Leaf.NotAfter.Sub(ca.now()) > internalLeafMargin {
			return c, nil
		}
		fresh, err := ca.Certificate(names)
		if err != nil {
			return c, nil // keep serving the old one; the next handshake tries again
		}
		cur.Store(fresh)
		return fresh, nil
	}, nil
}
