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
