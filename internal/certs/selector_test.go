package certs

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
)

// TestSelectorHandshake selects certificates by SNI over real loopback handshakes; clients verify
// the server name against the test CAs.
func TestSelectorHandshake(t *testing.T) {
	certA, fileA := mustLoad(t, []string{"a.test"}, "ecdsa")
	certB, fileB := mustLoad(t, []string{"b.test"}, "ecdsa")
	certW, fileW := mustLoad(t, []string{"*.wild.test"}, "ecdsa")
	certD, fileD := mustLoad(t, []string{"default.test"}, "ecdsa")
	certME, fileME := mustLoad(t, []string{"multi.test", "multi-rsa-first.test"}, "ecdsa")
	certMR, fileMR := mustLoad(t, []string{"multi.test", "multi-rsa-first.test"}, "rsa")
	pool := poolWithCA(t, fileA, fileB, fileW, fileD, fileME, fileMR)

	sel, err := NewSelector([]SNIEntry{
		{Names: []string{"a.test"}, Certs: []*tls.Certificate{certA}},
		{Names: []string{"b.test", "www.b.test"}, Certs: []*tls.Certificate{certB}},
		{Names: []string{"*.wild.test"}, Certs: []*tls.Certificate{certW}},
		{Names: []string{"default.test"}, Default: true, Certs: []*tls.Certificate{certD}},
		{Names: []string{"multi.test"}, Certs: []*tls.Certificate{certME, certMR}},
		{Names: []string{"multi-rsa-first.test"}, Certs: []*tls.Certificate{certMR, certME}},
		{Names: []string{"nocert.test"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, &tls.Config{GetCertificate: sel.GetCertificate})

	rsaOnly := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
	ecdsaOnly := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	tests := []struct {
		name       string
		sni        string   // "" = no SNI; the client then checks the certificate itself
		suites     []uint16 // non-nil: TLS 1.2 with only these suites
		wantName   string   // first DNS name of the certificate served
		wantKey    x509.PublicKeyAlgorithm
		wantFailed bool
	}{
		{name: "exact a", sni: "a.test", wantName: "a.test", wantKey: x509.ECDSA},
		{name: "exact b", sni: "b.test", wantName: "b.test", wantKey: x509.ECDSA},
		{name: "wildcard", sni: "x.wild.test", wantName: "*.wild.test", wantKey: x509.ECDSA},
		{name: "upper case SNI", sni: "A.TEST", wantName: "a.test", wantKey: x509.ECDSA},
		{name: "no SNI goes to default", sni: "", wantName: "default.test", wantKey: x509.ECDSA},
		{name: "unknown SNI goes to default", sni: "other.test", wantName: "default.test", wantKey: x509.ECDSA},
		{name: "both certs, modern client gets the first", sni: "multi.test", wantName: "multi.test", wantKey: x509.ECDSA},
		{name: "both certs, RSA-only client", sni: "multi.test", suites: rsaOnly, wantName: "multi.test", wantKey: x509.RSA},
		{name: "RSA first, ECDSA-only client", sni: "multi-rsa-first.test", suites: ecdsaOnly, wantName: "multi.test", wantKey: x509.ECDSA},
		{name: "server without certificate", sni: "nocert.test", wantFailed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{ServerName: tt.sni, RootCAs: pool, CipherSuites: tt.suites}
			if tt.suites != nil {
				cfg.MaxVersion = tls.VersionTLS12
			}
			if tt.sni == "" || tt.sni == "other.test" {
				// The served certificate is not valid for the name asked for: look at it instead.
				cfg.InsecureSkipVerify = true
			}
			st, err := handshake(t, addr, cfg)
			if tt.wantFailed {
				if err == nil {
					t.Fatal("handshake succeeded, want failure")
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			leaf := st.PeerCertificates[0]
			if leaf.DNSNames[0] != tt.wantName || leaf.PublicKeyAlgorithm != tt.wantKey {
				t.Errorf("got %s certificate for %v, want %s for %s", leaf.PublicKeyAlgorithm, leaf.DNSNames, tt.wantKey, tt.wantName)
			}
		})
	}
}

// TestSelectorNames checks nginx's server_name precedence for SNI names.
func TestSelectorNames(t *testing.T) {
	entries := []SNIEntry{
		{Names: []string{"first.test"}},                               // 0: default when none is marked
		{Names: []string{"www.example.com", "WWW.Upper.com"}},         // 1
		{Names: []string{"*.example.com", "mail.*"}},                  // 2
		{Names: []string{"*.sub.example.com"}},                        // 3
		{Names: []string{".example.org"}},                             // 4
		{Names: []string{"www.example.*", "www.example.com"}},         // 5 (www.example.com already taken by 1)
		{Names: []string{`~^api\d+\.example\.net$`, `~^api1\.`}},      // 6
		{Names: []string{`~^api1\.example\.net$`, `~^SHOP\.`}},        // 7
		{Names: []string{`~^www\.example\.com$`, `~\.example\.com$`}}, // 8: never reached before 1 and 2
		{Names: []string{"mail.example.*"}},                           // 9
		{Names: []string{"", "_"}},                                    // 10
	}
	tests := []struct {
		sni  string
		want int
	}{
		{"www.example.com", 1},   // exact beats wildcard and regex
		{"WWW.EXAMPLE.COM.", 1},  // case and trailing dot
		{"www.upper.com", 1},     // names are lower-cased
		{"a.example.com", 2},     // leading wildcard
		{"a.b.example.com", 2},   // ... over any number of labels
		{"a.sub.example.com", 3}, // longest leading wildcard
		{"sub.example.com", 2},   // "*.sub.example.com" needs a label in front
		{"example.com", 0},       // "*.example.com" does not match example.com
		{"example.org", 4},       // ".example.org" matches the name itself
		{"x.y.example.org", 4},   // ... and its subdomains
		{"www.example.net", 5},   // trailing wildcard
		{"www.example.co.uk", 5}, // ... over any number of labels
		{"www.example", 0},       // needs something after the dot
		{"mail.example.com", 2},  // leading beats trailing
		{"mail.example.de", 9},   // longest trailing wildcard
		{"mail.foo", 2},          // shorter trailing wildcard
		{"api7.example.net", 6},  // regex
		{"api1.example.net", 6},  // first regex in order wins
		{"shop.example.net", 7},  // upper-case regex is case-insensitive
		{"_", 10},                // "_" is just a name
		{"nothing.test", 0},      // no match: first entry (no Default given)
	}
	certs := make([]*tls.Certificate, len(entries))
	for i := range entries {
		certs[i] = &tls.Certificate{}
		entries[i].Certs = []*tls.Certificate{certs[i]}
	}
	sel, err := NewSelector(entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		c, err := sel.GetCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
		if err != nil {
			t.Fatalf("%s: %v", tt.sni, err)
		}
		if c != certs[tt.want] {
			for i := range certs {
				if c == certs[i] {
					t.Errorf("%q selected entry %d, want %d", tt.sni, i, tt.want)
				}
			}
		}
	}

	// With a Default entry, unmatched names and no SNI go there.
	entries[7].Default = true
	sel, err = NewSelector(entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, sni := range []string{"", "nothing.test", "example.com"} {
		if c, _ := sel.GetCertificate(&tls.ClientHelloInfo{ServerName: sni}); c != certs[7] {
			t.Errorf("%q did not select the default server", sni)
		}
	}
}

func TestNewSelectorErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []SNIEntry
		err     string
	}{
		{"no entries", nil, "no servers"},
		{"two defaults", []SNIEntry{{Default: true}, {Default: true}}, "more than one default server"},
		{"star in the middle", []SNIEntry{{Names: []string{"www.*.com"}}}, "invalid server name or wildcard"},
		{"two stars", []SNIEntry{{Names: []string{"*.example.*"}}}, "invalid server name or wildcard"},
		{"bare star", []SNIEntry{{Names: []string{"*"}}}, "invalid server name or wildcard"},
		{"bare dot", []SNIEntry{{Names: []string{"."}}}, "invalid server name or wildcard"},
		{"bad regex", []SNIEntry{{Names: []string{"~(www"}}}, `server_name "~(www"`},
		{"empty regex", []SNIEntry{{Names: []string{"~"}}}, "empty regex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSelector(tt.entries)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func BenchmarkGetCertificate(b *testing.B) {
	c := &tls.Certificate{}
	sel, err := NewSelector([]SNIEntry{
		{Names: []string{"default.test"}, Certs: []*tls.Certificate{c}},
		{Names: []string{"www.example.com", "example.com"}, Certs: []*tls.Certificate{c}},
		{Names: []string{"*.example.org"}, Certs: []*tls.Certificate{c}},
		{Names: []string{`~^api\d+\.example\.net$`}, Certs: []*tls.Certificate{c}},
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, sni := range []string{"www.example.com", "deep.sub.example.org", "api12.example.net"} {
		hello := &tls.ClientHelloInfo{ServerName: sni}
		b.Run(sni, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sel.GetCertificate(hello); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
