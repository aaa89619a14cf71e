package certs

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestProtocols(t *testing.T) {
	tests := []struct {
		tokens   []string
		min, max uint16
		warning  string // substring of the only warning; "" = no warnings
		err      string // substring of the error
	}{
		{tokens: nil, min: tls.VersionTLS12, max: tls.VersionTLS13},
		{tokens: []string{}, min: tls.VersionTLS12, max: tls.VersionTLS13},
		{tokens: []string{"TLSv1.2", "TLSv1.3"}, min: tls.VersionTLS12, max: tls.VersionTLS13},
		{tokens: []string{"TLSv1.3"}, min: tls.VersionTLS13, max: tls.VersionTLS13},
		{tokens: []string{"TLSv1.2"}, min: tls.VersionTLS12, max: tls.VersionTLS12},
		{tokens: []string{"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}, min: tls.VersionTLS10, max: tls.VersionTLS13},
		{tokens: []string{"TLSv1.3", "TLSv1.2"}, min: tls.VersionTLS12, max: tls.VersionTLS13},
		{tokens: []string{"tlsv1.2", "TLSV1.3"}, min: tls.VersionTLS12, max: tls.VersionTLS13},
		{tokens: []string{"TLSv1", "TLSv1.2"}, min: tls.VersionTLS10, max: tls.VersionTLS12, warning: "TLSv1.1 enabled as well"},
		{tokens: []string{"TLSv1", "TLSv1.3"}, min: tls.VersionTLS10, max: tls.VersionTLS13, warning: "TLSv1.1 TLSv1.2 enabled as well"},
		{tokens: []string{"SSLv3", "TLSv1.2"}, err: "SSLv3 is not supported"},
		{tokens: []string{"SSLv2"}, err: "SSLv2 is not supported"},
		{tokens: []string{"TLSv1.4"}, err: `invalid value "TLSv1.4"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.tokens, "_"), func(t *testing.T) {
			min, max, warnings, err := Protocols(tt.tokens)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if min != tt.min || max != tt.max {
				t.Errorf("range = %s..%s, want %s..%s", ProtocolName(min), ProtocolName(max), ProtocolName(tt.min), ProtocolName(tt.max))
			}
			switch {
			case tt.warning == "" && len(warnings) != 0:
				t.Errorf("unexpected warnings %q", warnings)
			case tt.warning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tt.warning)):
				t.Errorf("warnings = %q, want one containing %q", warnings, tt.warning)
			}
		})
	}
}

func TestProtocolName(t *testing.T) {
	tests := []struct {
		v    uint16
		want string
	}{
		{tls.VersionTLS13, "TLSv1.3"},
		{tls.VersionTLS12, "TLSv1.2"},
		{tls.VersionTLS11, "TLSv1.1"},
		{tls.VersionTLS10, "TLSv1"},
		{0, ""},
		{0x7f1c, ""},
	}
	for _, tt := range tests {
		if got := ProtocolName(tt.v); got != tt.want {
			t.Errorf("ProtocolName(%#x) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

// TestProtocolsHandshake checks that the range Protocols returns is what a real server enforces.
func TestProtocolsHandshake(t *testing.T) {
	cert, certFile := mustLoad(t, []string{"proto.test"}, "ecdsa")
	pool := poolWithCA(t, certFile)
	min, max, _, err := Protocols([]string{"TLSv1.2"})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: min, MaxVersion: max})

	st, err := handshake(t, addr, &tls.Config{ServerName: "proto.test", RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	if got := ProtocolName(st.Version); got != "TLSv1.2" {
		t.Errorf("negotiated %s, want TLSv1.2", got)
	}
	if _, err := handshake(t, addr, &tls.Config{ServerName: "proto.test", RootCAs: pool, MinVersion: tls.VersionTLS13}); err == nil {
		t.Error("a TLS 1.3-only client connected to a TLSv1.2-only server")
	}
}
