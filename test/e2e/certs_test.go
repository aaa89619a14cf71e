package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// keyAlg selects the key type of an issued certificate.
type keyAlg int

const (
	ecdsaP256 keyAlg = iota
	rsa2048
)

// testCA is a throwaway certificate authority; clients trust it through
// Pool(), never through InsecureSkipVerify.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
}

// newCA creates a fresh ECDSA P-256 root.
func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "sluice e2e test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// Pool returns a pool holding only this CA.
func (ca *testCA) Pool() *x509.CertPool { return ca.pool }

// issue makes a server certificate for names (DNS names or IP addresses)
// signed by ca and returns the PEM certificate and PEM private key.
func (ca *testCA) issue(t *testing.T, alg keyAlg, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	var key crypto.Signer
	var err error
	switch alg {
	case rsa2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM
}

// certFiles issues a certificate for names and returns options that write it
// as conf/<base>.pem and conf/<base>.key.pem, the paths a config names as
// "<base>.pem" and "<base>.key.pem" (relative to the config's directory, as
// in nginx).
func (ca *testCA) certFiles(t *testing.T, base string, alg keyAlg, names ...string) []option {
	certPEM, keyPEM := ca.issue(t, alg, names...)
	return []option{
		withFile("conf/"+base+".pem", certPEM),
		withFile("conf/"+base+".key.pem", keyPEM),
	}
}

// clientTLS returns a client config that trusts only ca and verifies
// serverName ("" = take it from the URL or dial address).
func (ca *testCA) clientTLS(serverName string) *tls.Config {
	return &tls.Config{RootCAs: ca.pool, ServerName: serverName}
}

func serial(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
