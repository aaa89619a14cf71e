package vars

import (
	"crypto/tls"

	"github.com/sluice-proxy/sluice/internal/certs"
)

// tlsVersionName returns OpenSSL's protocol name, as nginx's $ssl_protocol.
func tlsVersionName(v uint16) string {
	if n := certs.ProtocolName(v); n != "" {
		return n
	}
	return tls.VersionName(v)
}

// cipherName returns the OpenSSL name of a cipher suite, or Go's (IANA) name for one OpenSSL does not name.
func cipherName(id uint16) string {
	if n := certs.OpenSSLName(id); n != "" {
		return n
	}
	return tls.CipherSuiteName(id)
}
