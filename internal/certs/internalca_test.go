package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestInternalCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := LoadInternalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadInternalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca.RootPEM(), again.RootPEM()) {
		t.Fatal("second load made a new root")
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, internalRootKey): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %v", path, fi.Mode().Perm(), err, want)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.RootPEM())

	tests := []struct {
		names  []string
		verify []string // server names a client verifies
		reuse  bool     // the previous certificate is kept
	}{
		{[]string{"a.test", "*.a.test"}, []string{"a.test", "x.a.test"}, false},
		{[]string{"a.test"}, []string{"a.test"}, true},                      // a subset of the names on disk
		{[]string{"a.test", "b.test"}, []string{"a.test", "b.test"}, false}, // a new name reissues
		{[]string{"127.0.0.1", "localhost"}, []string{"127.0.0.1", "localhost"}, false},
	}
	var prev *tls.Certificate
	for _, tc := range tests {
		c, err := again.Certificate(tc.names)
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && tc.reuse != bytes.Equal(prev.Certificate[0], c.Certificate[0]) {
			t.Errorf("%v: reused=%v, want %v", tc.names, !tc.reuse, tc.reuse)
		}
		prev = c
		addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{*c}})
		for _, name := range tc.verify {
			if _, err := handshake(t, addr, &tls.Config{ServerName: name, RootCAs: pool}); err != nil {
				t.Errorf("%v: client for %s: %v", tc.names, name, err)
			}
		}
	}
	if _, err := ca.Certificate(nil); err == nil {
		t.Error("a certificate without names was issued")
	}
}

func TestInternalCASourceRenews(t *testing.T) {
	ca, err := LoadInternalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	get, err := ca.Source([]string{"renew.test"})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := get(nil)
	if again, _ := get(nil); again != first {
		t.Fatal("a fresh certificate was replaced")
	}
	later := time.Now().Add(internalLeafValidity - internalLeafMargin + time.Hour) // within the margin of expiry
	ca.now = func() time.Time { return later }
	renewed, _ := get(nil)
	if renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatalf("certificate expiring %v not replaced near expiry (got one expiring %v)", first.Leaf.NotAfter, renewed.Leaf.NotAfter)
	}
	if err := renewed.Leaf.CheckSignatureFrom(ca.root); err != nil {
		t.Fatal(err)
	}
}

// TestCheckWritesNothing: CheckInternalCA and CheckSelfSigned give working certificates without writing a file;
// an existing CA is the one checked (its root signs what it issues); a broken one is an error.
func TestCheckWritesNothing(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	empty := func() {
		t.Helper()
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("a check wrote into %s: %v", dir, ents)
		}
	}
	ca, err := CheckInternalCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Certificate([]string{"a.test"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf.CheckSignatureFrom(ca.root) != nil || !coversNames(c.Leaf, []string{"a.test"}) {
		t.Error("the in-memory CA issued a certificate it did not sign or without the name")
	}
	if _, err := CheckSelfSigned(dir, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	empty()

	// files kept by a serving process are read, not replaced
	kept, err := LoadInternalCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := kept.Certificate([]string{"a.test"})
	if err != nil {
		t.Fatal(err)
	}
	certFile, _, err := SelfSigned(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if ca, err = CheckInternalCA(caDir); err != nil || !bytes.Equal(ca.RootPEM(), kept.RootPEM()) {
		t.Fatalf("CheckInternalCA of an existing CA: %v, same root %v", err, err == nil && bytes.Equal(ca.RootPEM(), kept.RootPEM()))
	}
	if c, err = ca.Certificate([]string{"a.test"}); err != nil || !bytes.Equal(c.Certificate[0], issued.Certificate[0]) {
		t.Errorf("CheckInternalCA did not reuse the kept certificate (%v)", err)
	}
	pem, _ := os.ReadFile(certFile)
	if c, err = CheckSelfSigned(dir, []string{"localhost"}); err != nil || !bytes.Contains(pem, encodeCerts(c.Certificate[0])) {
		t.Errorf("CheckSelfSigned did not reuse the kept certificate (%v)", err)
	}
	// a name the kept certificate lacks: issued in memory, the files stay as they were
	before, _ := os.ReadDir(filepath.Join(caDir, "issued"))
	if _, err := ca.Certificate([]string{"new.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckSelfSigned(dir, []string{"localhost", "new.test"}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadDir(filepath.Join(caDir, "issued"))
	if now, _ := os.ReadFile(certFile); len(before) != len(after) || !bytes.Equal(now, pem) {
		t.Errorf("a check wrote: issued %d files before, %d after; self-signed changed %v", len(before), len(after), !bytes.Equal(now, pem))
	}

	if err := os.WriteFile(filepath.Join(caDir, internalRootCert), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckInternalCA(caDir); err == nil {
		t.Error("CheckInternalCA accepted a broken CA")
	}
}
