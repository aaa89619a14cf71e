package vars

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
)

// TestClientCertFormats checks the DN, serial and escaping forms against what nginx 1.22 (OpenSSL 3) printed
// for the same values ($ssl_client_s_dn, $ssl_client_serial, $ssl_client_escaped_cert).
func TestClientCertFormats(t *testing.T) {
	email := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	dn := func(n pkix.Name) []byte {
		raw, err := asn1.Marshal(n.ToRDNSequence())
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	for _, tc := range []struct {
		name string
		dn   pkix.Name
		want string
	}{
		{"observed from nginx", pkix.Name{CommonName: `Zoë, "Client"`, Organization: []string{"Acme+Co"}, OrganizationalUnit: []string{"Dev"},
			Country: []string{"DE"}, Locality: []string{"Köln"}, ExtraNames: []pkix.AttributeTypeAndValue{{Type: email, Value: "zoe@example.com"}}},
			`emailAddress=zoe@example.com,CN=Zo\C3\AB\, \"Client\",OU=Dev,O=Acme\+Co,L=K\C3\B6ln,C=DE`},
		{"issuer", pkix.Name{CommonName: "Test Root", Organization: []string{"Test"}}, "CN=Test Root,O=Test"},
		{"leading and trailing (openssl x509 -nameopt RFC2253)", pkix.Name{CommonName: "#a;b<c> "}, `CN=\#a\;b\<c\>\ `},
		{"unknown attribute", pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: "x"}}}, "1.2.3.4=#130178"},
		{"empty", pkix.Name{}, ""},
	} {
		if got := string(appendDN(nil, dn(tc.dn))); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		serial *big.Int
		want   string
	}{
		{new(big.Int).SetBytes([]byte{0x0a, 0xbc, 0xde, 0xf0, 0x12}), "0ABCDEF012"},
		{big.NewInt(0x80), "80"},
		{big.NewInt(15), "0F"},
		{big.NewInt(0), "00"},
		{big.NewInt(-1), "-01"},
	} {
		if got := string(appendSerialNumber(nil, tc.serial)); got != tc.want {
			t.Errorf("serial %v: %q, want %q", tc.serial, got, tc.want)
		}
	}
	const pemText = "-----BEGIN CERTIFICATE-----\nMIIB+/a=\n-----END CERTIFICATE-----\n"
	want := "-----BEGIN%20CERTIFICATE-----%0AMIIB%2B%2Fa%3D%0A-----END%20CERTIFICATE-----%0A"
	if got := string(appendEscapeComponent(nil, []byte(pemText))); got != want {
		t.Errorf("escaped: %q, want %q", got, want)
	}
}
