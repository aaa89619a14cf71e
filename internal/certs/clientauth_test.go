package certs

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// mint issues a certificate from tmpl, signed by parent (self-signed when parent is nil).
func mint(t *testing.T, parent *TestIssuer, tmpl *x509.Certificate) *TestIssuer {
	t.Helper()
	c, err := MintTestCert(parent, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func caTmpl(cn string, serial int64, now time.Time) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true}
}

func leafTmpl(cn string, serial int64, eku x509.ExtKeyUsage, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore,
		NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku}}
}

// writePEM writes DER blocks of one type to dir/name.
func writePEM(t *testing.T, dir, name, typ string, ders ...[]byte) string {
	t.Helper()
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientAuthVerify checks each outcome against what nginx 1.22 (Debian, OpenSSL 3) answered for the same
// certificates: $ssl_client_verify, and the status under on, optional and optional_no_ca (observed with curl
// --cert against `return 200 $ssl_client_verify`, and in its error log "client SSL certificate verify error").
func TestClientAuthVerify(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	root := mint(t, nil, caTmpl("Test Root", 1, now))
	other := mint(t, nil, caTmpl("Other Root", 2, now))
	inter := mint(t, root, caTmpl("Test Inter", 3, now))
	inter2 := mint(t, inter, caTmpl("Test Inter2", 4, now))
	valid := func(cn string, serial int64, parent *TestIssuer) *TestIssuer {
		return mint(t, parent, leafTmpl(cn, serial, x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(48*time.Hour)))
	}
	good := valid("good", 5, root)
	viaInter := valid("via-inter", 6, inter)
	viaInter2 := valid("via-inter2", 7, inter2)
	expired := mint(t, root, leafTmpl("expired", 8, x509.ExtKeyUsageClientAuth, now.Add(-48*time.Hour), now.Add(-time.Hour)))
	future := mint(t, root, leafTmpl("future", 9, x509.ExtKeyUsageClientAuth, now.Add(time.Hour), now.Add(48*time.Hour)))
	stranger := valid("stranger", 10, other)
	self := mint(t, nil, leafTmpl("self", 11, x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(48*time.Hour)))
	selfExpired := mint(t, nil, leafTmpl("self-expired", 12, x509.ExtKeyUsageClientAuth, now.Add(-48*time.Hour), now.Add(-time.Hour)))
	serverOnly := mint(t, root, leafTmpl("server-only", 13, x509.ExtKeyUsageServerAuth, now.Add(-time.Hour), now.Add(48*time.Hour)))
	revoked := valid("revoked", 14, root)

	crl := func(name string, by *TestIssuer, this, next time.Time, serials ...int64) string {
		var entries []x509.RevocationListEntry
		for _, s := range serials {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: now.Add(-time.Minute)})
		}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: this, NextUpdate: next,
			RevokedCertificateEntries: entries}, by.Cert, by.Key)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(t, dir, name, "X509 CRL", der)
	}
	rootCRL := crl("root.crl", root, now.Add(-time.Hour), now.Add(24*time.Hour), 14)
	oldCRL := crl("old.crl", root, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	concat := func(name string, files ...string) string {
		var all []byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, all, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// two CRLs of one issuer: OpenSSL uses the newest current one, wherever it is in the file
	olderFirst := concat("older-first.crl", crl("current-older.crl", root, now.Add(-2*time.Hour), now.Add(24*time.Hour)), rootCRL)
	expiredFirst := concat("expired-first.crl", oldCRL, rootCRL)
	rootFile := writePEM(t, dir, "root.pem", "CERTIFICATE", root.Cert.Raw)
	otherFile := writePEM(t, dir, "other.pem", "CERTIFICATE", other.Cert.Raw)

	type setup struct{ ca, trusted, crl string }
	withRoot := setup{ca: rootFile}
	chain := func(cs ...*TestIssuer) []*x509.Certificate {
		var out []*x509.Certificate
		for _, c := range cs {
			out = append(out, c.Cert)
		}
		return out
	}
	tests := []struct {
		name   string
		setup  setup
		depth  int
		sent   []*x509.Certificate
		verify string
		// statuses under on, optional, optional_no_ca
		on, optional, noCA int
	}{
		{"good", withRoot, 1, chain(good), "SUCCESS", 0, 0, 0},
		{"none", withRoot, 1, nil, "NONE", 496, 0, 0},
		{"via intermediate", withRoot, 1, chain(viaInter, inter), "SUCCESS", 0, 0, 0},
		{"two intermediates, depth 1", withRoot, 1, chain(viaInter2, inter2, inter), "FAILED:unable to get local issuer certificate", 495, 495, 0},
		{"two intermediates, depth 2", withRoot, 2, chain(viaInter2, inter2, inter), "SUCCESS", 0, 0, 0},
		{"depth 0, direct", withRoot, 0, chain(good), "SUCCESS", 0, 0, 0},
		{"depth 0, intermediate", withRoot, 0, chain(viaInter, inter), "FAILED:unable to get local issuer certificate", 495, 495, 0},
		{"expired", withRoot, 1, chain(expired), "FAILED:certificate has expired", 495, 495, 495},
		{"not yet valid", withRoot, 1, chain(future), "FAILED:certificate is not yet valid", 495, 495, 495},
		{"unknown issuer", withRoot, 1, chain(stranger), "FAILED:unable to verify the first certificate", 495, 495, 0},
		{"unknown root sent along", withRoot, 1, chain(stranger, other), "FAILED:self-signed certificate in certificate chain", 495, 495, 0},
		{"self-signed", withRoot, 1, chain(self), "FAILED:self-signed certificate", 495, 495, 0},
		{"self-signed and expired", withRoot, 1, chain(selfExpired), "FAILED:certificate has expired", 495, 495, 495},
		{"server purpose only", withRoot, 1, chain(serverOnly), "FAILED:unsuitable certificate purpose", 495, 495, 495},
		{"no CA at all", setup{}, 1, chain(good), "FAILED:unable to verify the first certificate", 495, 495, 0},
		{"no CA, server purpose", setup{}, 1, chain(serverOnly), "FAILED:unable to verify the first certificate", 495, 495, 0},
		{"trusted certificate verifies", setup{ca: otherFile, trusted: rootFile}, 1, chain(good), "SUCCESS", 0, 0, 0},
		{"crl, good", setup{ca: rootFile, crl: rootCRL}, 1, chain(good), "SUCCESS", 0, 0, 0},
		{"crl, revoked", setup{ca: rootFile, crl: rootCRL}, 1, chain(revoked), "FAILED:certificate revoked", 495, 495, 495},
		{"crl, issuer without one", setup{ca: rootFile, crl: rootCRL}, 1, chain(viaInter, inter), "FAILED:unable to get certificate CRL", 495, 495, 495},
		{"crl expired", setup{ca: rootFile, crl: oldCRL}, 1, chain(good), "FAILED:CRL has expired", 495, 495, 495},
		{"crl, an older current one first", setup{ca: rootFile, crl: olderFirst}, 1, chain(revoked), "FAILED:certificate revoked", 495, 495, 495},
		{"crl, an expired one first", setup{ca: rootFile, crl: expiredFirst}, 1, chain(good), "SUCCESS", 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, mode := range []VerifyMode{VerifyOn, VerifyOptional, VerifyOptionalNoCA} {
				a, err := LoadClientAuth(mode, tc.setup.ca, tc.setup.trusted, tc.setup.crl, tc.depth)
				if err != nil {
					t.Fatal(err)
				}
				r := a.Verify(tc.sent, now)
				if r.Verify != tc.verify {
					t.Fatalf("verify = %q, nginx: %q", r.Verify, tc.verify)
				}
				want := []int{tc.on, tc.optional, tc.noCA}[i]
				if got := r.Reject(mode); got != want {
					t.Errorf("mode %d: status %d, nginx: %d", mode, got, want)
				}
				if got := r.Reject(VerifyOff); got != 0 {
					t.Errorf("off: status %d", got)
				}
			}
		})
	}
}

func TestLoadClientAuthErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("not pem\n"), 0o600)
	for _, tc := range []struct{ ca, trusted, crl string }{
		{ca: filepath.Join(dir, "missing.pem")},
		{ca: empty},
		{trusted: empty},
		{crl: empty},
		{crl: filepath.Join(dir, "missing.crl")},
	} {
		if _, err := LoadClientAuth(VerifyOn, tc.ca, tc.trusted, tc.crl, 1); err == nil {
			t.Errorf("%+v: loaded", tc)
		}
	}
}
