package certs

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

func TestCipherSuites(t *testing.T) {
	const (
		ecdsaGCM128  = tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
		rsaGCM128    = tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
		ecdsaGCM256  = tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
		rsaGCM256    = tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
		ecdsaChacha  = tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
		rsaChacha    = tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
		ecdsaCBC128  = tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
		rsaCBC128    = tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
		ecdsaCBC256  = tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
		rsaCBC256    = tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA
		mozillaInter = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" +
			"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" +
			"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
	)
	aead := []uint16{ecdsaGCM128, rsaGCM128, ecdsaGCM256, rsaGCM256, ecdsaChacha, rsaChacha}
	tests := []struct {
		spec     string
		want     []uint16 // nil = Go's defaults
		warnings []string // substrings, one per expected warning, in order
		err      string
	}{
		// Strings meaning "everything secure" give Go's defaults.
		{spec: "HIGH:!aNULL:!MD5"},
		{spec: "HIGH,!aNULL !MD5"},
		{spec: "DEFAULT"},
		{spec: "ALL:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:!SRP:!CAMELLIA"},
		{spec: "HIGH:@STRENGTH:@SECLEVEL=2"},
		{spec: "ECDHE"},
		{spec: "HIGH:MEDIUM:!aNULL", warnings: []string{"insecure, never enabled: MEDIUM"}},
		// Explicit names.
		{spec: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384", want: []uint16{ecdsaGCM128, rsaGCM256}},
		{spec: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", want: []uint16{rsaGCM128}},
		{spec: mozillaInter, want: aead,
			warnings: []string{"not implemented by Go, skipped: DHE-RSA-AES128-GCM-SHA256, DHE-RSA-AES256-GCM-SHA384, DHE-RSA-CHACHA20-POLY1305"}},
		// Keywords and combinations.
		{spec: "ECDHE+AESGCM", want: []uint16{ecdsaGCM128, rsaGCM128, ecdsaGCM256, rsaGCM256}},
		{spec: "EECDH+AESGCM:EDH+AESGCM", want: []uint16{ecdsaGCM128, rsaGCM128, ecdsaGCM256, rsaGCM256},
			warnings: []string{"not implemented by Go, skipped: EDH+AESGCM"}},
		{spec: "CHACHA20", want: []uint16{ecdsaChacha, rsaChacha}},
		{spec: "aRSA+HIGH", want: []uint16{rsaGCM128, rsaGCM256, rsaChacha, rsaCBC128, rsaCBC256}},
		{spec: "HIGH:!aRSA", want: []uint16{ecdsaGCM128, ecdsaGCM256, ecdsaChacha, ecdsaCBC128, ecdsaCBC256}},
		{spec: "aECDSA", want: []uint16{ecdsaGCM128, ecdsaGCM256, ecdsaChacha, ecdsaCBC128, ecdsaCBC256}},
		{spec: "kECDHE+aECDSA+AES128", want: []uint16{ecdsaGCM128, ecdsaCBC128}},
		{spec: "HIGH:!SHA1", want: aead},
		{spec: "TLSv1.2", want: aead},
		{spec: "HIGH:!SSLv3", want: aead},
		{spec: "AES256:!AESGCM", want: []uint16{ecdsaCBC256, rsaCBC256}},
		// "-" removes for now, "!" for good.
		{spec: "AESGCM:-aECDSA", want: []uint16{rsaGCM128, rsaGCM256}},
		{spec: "AESGCM:-aECDSA:ECDHE-ECDSA-AES128-GCM-SHA256", want: []uint16{ecdsaGCM128, rsaGCM128, rsaGCM256}},
		{spec: "AESGCM:!aECDSA:ECDHE-ECDSA-AES128-GCM-SHA256", want: []uint16{rsaGCM128, rsaGCM256}},
		{spec: "AESGCM:+aRSA", want: []uint16{ecdsaGCM128, rsaGCM128, ecdsaGCM256, rsaGCM256}},
		// Insecure suites are never enabled.
		{spec: "AES128-SHA:ECDHE-RSA-AES128-SHA", want: []uint16{rsaCBC128}, warnings: []string{"insecure, never enabled: AES128-SHA"}},
		{spec: "RSA+AESGCM:ECDHE-RSA-AES128-GCM-SHA256", want: []uint16{rsaGCM128}, warnings: []string{"insecure, never enabled: RSA+AESGCM"}},
		{spec: "RC4-SHA:DES-CBC3-SHA:ECDHE-RSA-AES128-SHA256", err: "no cipher suite left",
			warnings: []string{"insecure, never enabled: RC4-SHA, DES-CBC3-SHA, ECDHE-RSA-AES128-SHA256"}},
		// Unknown, TLS 1.3 and unimplemented names.
		{spec: "FOO:HIGH", warnings: []string{"unknown cipher or keyword, ignored: FOO"}},
		{spec: "HIGH:ECDHE+FOO:@BOGUS", warnings: []string{"unknown cipher or keyword, ignored: ECDHE+FOO, @BOGUS"}},
		{spec: "TLS_AES_128_GCM_SHA256:HIGH", warnings: []string{"TLS 1.3 cipher suites cannot be configured"}},
		{spec: "CAMELLIA", err: "no cipher suite left", warnings: []string{"not implemented by Go, skipped: CAMELLIA"}},
		{spec: "DHE-RSA-AES128-GCM-SHA256", err: "no cipher suite left", warnings: []string{"not implemented by Go, skipped: DHE-RSA-AES128-GCM-SHA256"}},
		{spec: "!ALL", err: "no cipher suite left"},
		{spec: "", err: "empty cipher list"},
		{spec: " : ", err: "empty cipher list"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			ids, warnings, err := CipherSuites(tt.spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, tt.want) || (ids == nil) != (tt.want == nil) {
				t.Errorf("ids = %v, want %v", names(ids), names(tt.want))
			}
			if len(warnings) != len(tt.warnings) {
				t.Fatalf("warnings = %q, want %d containing %q", warnings, len(tt.warnings), tt.warnings)
			}
			for i := range warnings {
				if !strings.Contains(warnings[i], tt.warnings[i]) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], tt.warnings[i])
				}
			}
		})
	}
}

func names(ids []uint16) []string {
	var s []string
	for _, id := range ids {
		s = append(s, OpenSSLName(id))
	}
	return s
}

// TestSuiteTableMatchesGo keeps the table in step with crypto/tls: every suite Go implements is
// known, flagged insecure exactly when Go says so, and round-trips through its OpenSSL name.
func TestSuiteTableMatchesGo(t *testing.T) {
	goSuites := map[uint16]bool{} // id -> insecure
	for _, c := range tls.CipherSuites() {
		goSuites[c.ID] = false
	}
	for _, c := range tls.InsecureCipherSuites() {
		goSuites[c.ID] = true
	}
	tls13 := 0
	for id, insecure := range goSuites {
		name := OpenSSLName(id)
		if name == "" {
			t.Errorf("no OpenSSL name for %s", tls.CipherSuiteName(id))
			continue
		}
		if strings.HasPrefix(name, "TLS_") {
			tls13++
			continue
		}
		i := slices.IndexFunc(suites[:], func(s suite) bool { return s.id == id })
		if suites[i].insecure != insecure || suites[i].iana != tls.CipherSuiteName(id) {
			t.Errorf("%s: table says insecure=%v iana=%s; Go says insecure=%v", name, suites[i].insecure, suites[i].iana, insecure)
		}
		ids, _, err := CipherSuites(name)
		switch {
		case insecure && err == nil:
			t.Errorf("CipherSuites(%q) enabled an insecure suite: %v", name, ids)
		case !insecure && (err != nil || !slices.Equal(ids, []uint16{id})):
			t.Errorf("CipherSuites(%q) = %v, %v; want [%#x]", name, ids, err, id)
		}
	}
	if tls13 != 3 || len(goSuites)-tls13 != len(suites) {
		t.Errorf("table has %d suites, Go has %d TLS 1.0-1.2 and %d TLS 1.3 suites", len(suites), len(goSuites)-tls13, tls13)
	}
}

func TestOpenSSLName(t *testing.T) {
	tests := []struct {
		id   uint16
		want string
	}{
		{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE-RSA-AES128-GCM-SHA256"},
		{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-ECDSA-CHACHA20-POLY1305"},
		{tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, "ECDHE-RSA-AES256-SHA"},
		{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, "AES128-GCM-SHA256"},
		{tls.TLS_AES_128_GCM_SHA256, "TLS_AES_128_GCM_SHA256"},
		{tls.TLS_CHACHA20_POLY1305_SHA256, "TLS_CHACHA20_POLY1305_SHA256"},
		{0, ""},
		{0x1234, ""},
	}
	for _, tt := range tests {
		if got := OpenSSLName(tt.id); got != tt.want {
			t.Errorf("OpenSSLName(%#x) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

// TestCipherSuitesHandshake checks over a real connection that the IDs restrict the TLS 1.2
// suite and that $ssl_cipher / $ssl_protocol come out in OpenSSL's spelling.
func TestCipherSuitesHandshake(t *testing.T) {
	cert, certFile := mustLoad(t, []string{"cipher.test"}, "rsa")
	pool := poolWithCA(t, certFile)
	ids, _, err := CipherSuites("ECDHE-RSA-AES256-GCM-SHA384")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{*cert}, CipherSuites: ids, MinVersion: tls.VersionTLS12})

	tests := []struct {
		client       *tls.Config
		cipher, prot string
	}{
		{&tls.Config{MaxVersion: tls.VersionTLS12}, "ECDHE-RSA-AES256-GCM-SHA384", "TLSv1.2"},
		{&tls.Config{MaxVersion: tls.VersionTLS13}, "TLS_AES_128_GCM_SHA256", "TLSv1.3"},
	}
	for _, tt := range tests {
		tt.client.ServerName, tt.client.RootCAs = "cipher.test", pool
		st, err := handshake(t, addr, tt.client)
		if err != nil {
			t.Fatal(err)
		}
		if OpenSSLName(st.CipherSuite) != tt.cipher || ProtocolName(st.Version) != tt.prot {
			t.Errorf("negotiated %s %s, want %s %s", ProtocolName(st.Version), OpenSSLName(st.CipherSuite), tt.prot, tt.cipher)
		}
	}
	// A TLS 1.2 client offering only a suite outside the list is refused.
	_, err = handshake(t, addr, &tls.Config{ServerName: "cipher.test", RootCAs: pool, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}})
	if err == nil {
		t.Error("handshake with a suite outside ssl_ciphers succeeded")
	}
}

func BenchmarkOpenSSLName(b *testing.B) {
	for b.Loop() {
		OpenSSLName(tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA)
	}
}
