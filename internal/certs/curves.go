package certs

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// curveNames are the OpenSSL names of the key exchange groups Go offers (ssl_ecdh_curve).
var curveNames = map[string]tls.CurveID{
	"x25519": tls.X25519, "prime256v1": tls.CurveP256, "secp256r1": tls.CurveP256, "p-256": tls.CurveP256,
	"secp384r1": tls.CurveP384, "p-384": tls.CurveP384, "secp521r1": tls.CurveP521, "p-521": tls.CurveP521,
	"x25519mlkem768": tls.X25519MLKEM768,
}

// Curves maps an ssl_ecdh_curve list ("X25519:prime256v1:secp384r1", or "auto") onto Go's curve preferences,
// in the order given; nil for auto (Go's defaults, post-quantum hybrid first). A name Go does not offer is an
// error, as OpenSSL refuses it.
func Curves(list string) ([]tls.CurveID, error) {
	if list == "auto" {
		return nil, nil
	}
	var ids []tls.CurveID
	for _, name := range strings.Split(list, ":") {
		id, ok := curveNames[strings.ToLower(name)]
		if !ok {
			return nil, fmt.Errorf("unknown curve %q (Go offers X25519, prime256v1, secp384r1, secp521r1, X25519MLKEM768)", name)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
