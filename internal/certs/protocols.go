package certs

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// protocolTokens are the ssl_protocols tokens Go implements, oldest first.
var protocolTokens = [...]struct {
	name    string
	version uint16
}{
	{"TLSv1", tls.VersionTLS10},
	{"TLSv1.1", tls.VersionTLS11},
	{"TLSv1.2", tls.VersionTLS12},
	{"TLSv1.3", tls.VersionTLS13},
}

// Protocols maps nginx's ssl_protocols tokens (SSLv2 SSLv3 TLSv1 TLSv1.1 TLSv1.2 TLSv1.3) to Go's min/max versions.
// SSLv2/SSLv3 are refused with an error saying they are not supported; a gap (TLSv1 TLSv1.2) widens to the range
// with a warning. Default (nil input): TLS 1.2–1.3.
//
// Tokens compare case-insensitively, as in nginx. The default is stricter than nginx's
// (TLSv1 TLSv1.1 TLSv1.2 TLSv1.3) on purpose: TLS 1.0 and 1.1 are deprecated (RFC 8996).
func Protocols(tokens []string) (min, max uint16, warnings []string, err error) {
	if len(tokens) == 0 {
		return tls.VersionTLS12, tls.VersionTLS13, nil, nil
	}
	var on [len(protocolTokens)]bool
	for _, t := range tokens {
		if strings.EqualFold(t, "SSLv2") || strings.EqualFold(t, "SSLv3") {
			return 0, 0, nil, fmt.Errorf("ssl_protocols: %s is not supported (insecure, and not implemented by Go); use TLSv1.2 TLSv1.3", t)
		}
		found := false
		for i, p := range protocolTokens {
			if strings.EqualFold(t, p.name) {
				on[i], found = true, true
				break
			}
		}
		if !found {
			return 0, 0, nil, fmt.Errorf("ssl_protocols: invalid value %q (want TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)", t)
		}
	}
	lo, hi := -1, -1
	for i := range on {
		if on[i] {
			if lo < 0 {
				lo = i
			}
			hi = i
		}
	}
	var gap []string
	for i := lo + 1; i < hi; i++ {
		if !on[i] {
			gap = append(gap, protocolTokens[i].name)
		}
	}
	if len(gap) > 0 {
		warnings = append(warnings, fmt.Sprintf("ssl_protocols: %s enabled as well: Go only supports a contiguous range of versions (%s to %s)",
			strings.Join(gap, " "), protocolTokens[lo].name, protocolTokens[hi].name))
	}
	return protocolTokens[lo].version, protocolTokens[hi].version, warnings, nil
}

// ProtocolName: tls.VersionTLS13 -> "TLSv1.3" ($ssl_protocol).
// It returns OpenSSL's spelling for every version Go knows and "" for anything else
// (including 0, a connection without TLS), without allocating.
func ProtocolName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return ""
}
