// Package certs turns nginx ssl_* directives into the pieces of a crypto/tls configuration:
// certificate loading (ssl_certificate, ssl_certificate_key), protocol and cipher mapping
// (ssl_protocols, ssl_ciphers), certificate selection by SNI among the servers of one listening
// socket, and a self-signed certificate for the built-in default configuration.
//
// The package only uses the standard library. It holds no global state: every function works on
// its arguments, and a Selector is immutable once built, so a configuration reload builds a new one.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	encpkcs8 "github.com/youmark/pkcs8"
)

// Load reads a PEM certificate chain and key (RSA, ECDSA P-256/P-384, Ed25519; PKCS#1, PKCS#8, SEC1 keys), checks that
// they match, and parses the leaf (tls.Certificate.Leaf set). Errors name the file and the problem
// ("cert.pem: no certificate found", "key.pem: key does not match certificate").
//
// As in nginx, the chain file holds the server certificate first, then intermediates; it may also
// hold the key (certFile == keyFile is fine). Blocks of other types in either file are skipped.
// An encrypted key (PKCS#8 "ENCRYPTED PRIVATE KEY", or a PEM block with Proc-Type: 4,ENCRYPTED) is
// opened with the first of pw's passphrases that decrypts it, as nginx tries ssl_password_file's lines.
func Load(certFile, keyFile string, pw Passphrases) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM := certPEM
	if keyFile != certFile {
		keyPEM, err = os.ReadFile(keyFile)
		if err != nil {
			return nil, err
		}
	}
	return parsePair(certFile, certPEM, keyFile, keyPEM, pw)
}

// Passphrases are the lines of an ssl_password_file (File, named in errors).
type Passphrases struct {
	File  string
	Lines []string
}

// parsePair is Load without the file system; the names are only used in errors.
func parsePair(certName string, certPEM []byte, keyName string, keyPEM []byte, pw Passphrases) (*tls.Certificate, error) {
	var chain [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s: no certificate found (expected a PEM \"CERTIFICATE\" block)", certName)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("%s: cannot parse certificate: %v", certName, err)
	}
	switch leaf.PublicKey.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("%s: unsupported public key type %s (want RSA, ECDSA or Ed25519)", certName, leaf.PublicKeyAlgorithm)
	}

	key, err := parseKey(keyName, keyPEM, pw)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(leaf.PublicKey, key.Public()) {
		// A common mistake is a chain file with the intermediate first: say so.
		for i, der := range chain[1:] {
			if c, err := x509.ParseCertificate(der); err == nil && publicKeyEqual(c.PublicKey, key.Public()) {
				return nil, fmt.Errorf("%s: key does not match the first certificate of %s but certificate %d; the server certificate must come first",
					keyName, certName, i+2)
			}
		}
		return nil, fmt.Errorf("%s: key does not match certificate %s", keyName, certName)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// parseKey returns the first private key in data. PKCS#8, PKCS#1 and SEC1 encodings are all tried,
// whatever the block type says, as OpenSSL and Go's tls.X509KeyPair do.
func parseKey(name string, data []byte, pw Passphrases) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			if pw.File == "" {
				return nil, fmt.Errorf("%s: key is encrypted; name a file of its passphrase with ssl_password_file (or decrypt it with \"openssl pkey -in %s -out key.pem\")", name, name)
			}
			var err error
			if b, err = decrypt(b, pw); err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
		}
		if b.Type == "OPENSSH PRIVATE KEY" {
			return nil, fmt.Errorf("%s: OpenSSH key format is not supported; want a PEM private key (PKCS#8, PKCS#1 or SEC1)", name)
		}
		if b.Type != "PRIVATE KEY" && !strings.HasSuffix(b.Type, " PRIVATE KEY") {
			continue
		}
		if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			switch k := k.(type) {
			case *rsa.PrivateKey:
				return k, nil
			case *ecdsa.PrivateKey:
				return k, nil
			case ed25519.PrivateKey:
				return k, nil
			default:
				return nil, fmt.Errorf("%s: unsupported private key type %T (want RSA, ECDSA or Ed25519)", name, k)
			}
		}
		if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		return nil, fmt.Errorf("%s: cannot parse %q block: not a PKCS#8, PKCS#1 or SEC1 private key", name, b.Type)
	}
	return nil, fmt.Errorf("%s: no private key found (expected a PEM \"PRIVATE KEY\" block)", name)
}

// decrypt returns the plain key block of an encrypted one, opened with the first passphrase that works.
func decrypt(b *pem.Block, pw Passphrases) (*pem.Block, error) {
	for _, p := range pw.Lines {
		if b.Type == "ENCRYPTED PRIVATE KEY" {
			k, err := encpkcs8.ParsePKCS8PrivateKey(b.Bytes, []byte(p))
			if err != nil {
				continue
			}
			der, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				return nil, err
			}
			return &pem.Block{Type: "PRIVATE KEY", Bytes: der}, nil
		}
		//lint:ignore SA1019 legacy PEM encryption is insecure, but it is how such keys were written (nginx reads them)
		der, err := x509.DecryptPEMBlock(b, []byte(p))
		if err == nil && parsesAsKey(der) {
			// (a wrong passphrase passes the padding check about once in 256: the key must parse too, or
			// the next line is tried, as nginx tries it)
			return &pem.Block{Type: b.Type, Bytes: der}, nil
		}
	}
	return nil, fmt.Errorf("no passphrase of %s decrypts the key (%d tried)", pw.File, len(pw.Lines))
}

// parsesAsKey reports whether der is a private key in PKCS#1, PKCS#8 or SEC 1 form.
func parsesAsKey(der []byte) bool {
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return true
	}
	_, err := x509.ParseECPrivateKey(der)
	return err == nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// errNoNames is returned by the certificate generators when given no names.
var errNoNames = errors.New("certs: no names to put in the certificate")
