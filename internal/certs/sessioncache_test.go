package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sync"
	"testing"
	"time"
)

// oneSession is a client session cache that offers its one session to every server name, as a client that
// tries a session under another name would.
type oneSession struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (o *oneSession) Get(string) (*tls.ClientSessionState, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cs, o.cs != nil
}

func (o *oneSession) Put(_ string, cs *tls.ClientSessionState) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cs != nil {
		o.cs = cs
	}
}

// TestSessionCache: a session resumes under the SNI name it was made under only, a session with a client
// certificate chain too large to keep is named but not kept (a client cannot fill memory), and the byte budget
// evicts the least recently used sessions.
func TestSessionCache(t *testing.T) {
	cert, _ := mustLoad(t, []string{"a.test", "b.test"}, "ecdsa")
	sc := NewSessionCache(4)
	srv := &tls.Config{Certificates: []tls.Certificate{*cert}, ClientAuth: tls.RequestClientCert, MaxVersion: tls.VersionTLS12}
	sc.Use(srv)
	addr := serveTLS(t, srv)
	client := func(name string, cache tls.ClientSessionCache, certs ...tls.Certificate) bool {
		cs, err := handshake(t, addr, &tls.Config{ServerName: name, InsecureSkipVerify: true, ClientSessionCache: cache, Certificates: certs, MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		return cs.DidResume
	}
	cache := &oneSession{}
	if client("a.test", cache) || !client("a.test", cache) {
		t.Fatal("no resumption under the same name")
	}
	if client("b.test", cache) {
		t.Error("a session made under a.test resumed under b.test")
	}

	// a client certificate of about 6 KiB: its session is more than a session may hold
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "big"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: make([]byte, 6<<10)}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	before := sc.Len()
	big := &oneSession{}
	client("a.test", big, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})
	if sc.Len() != before || client("a.test", big, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}) {
		t.Errorf("a session with a 6 KiB client certificate was kept (%d sessions, %d before)", sc.Len(), before)
	}
	for range 6 {
		client("a.test", &oneSession{})
	}
	sc.mu.Lock()
	n, bytes := sc.lru.Len(), sc.bytes
	sc.mu.Unlock()
	if n > 4 || bytes > 4*sessionBytes {
		t.Errorf("%d sessions of %d bytes kept, want at most 4 and %d bytes", n, bytes, 4*sessionBytes)
	}
}
