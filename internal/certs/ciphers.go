package certs

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// Attributes of a TLS 1.0–1.2 cipher suite, as OpenSSL's cipher-string keywords see them.
const (
	kECDHE uint32 = 1 << iota // key exchange
	kRSA
	aRSA // authentication
	aECDSA
	eAES128 // bulk cipher
	eAES256
	eAESGCM128
	eAESGCM256
	eCHACHA20
	e3DES
	eRC4
	mSHA1 // MAC (AEAD suites have none of these)
	mSHA256
	mAEAD
	vTLS12 // usable only with TLS 1.2
	vSSL3  // usable with SSLv3 / TLS 1.0 and later
	sHIGH  // OpenSSL strength class
	sMEDIUM

	attrAll = 1<<iota - 1
)

// suite describes one cipher suite Go implements.
type suite struct {
	id       uint16
	openssl  string // OpenSSL name ($ssl_cipher, ssl_ciphers)
	iana     string // RFC name, also accepted in ssl_ciphers as by OpenSSL 1.1.1+
	attrs    uint32
	insecure bool // listed in tls.InsecureCipherSuites: never enabled
}

// suites lists every TLS 1.0–1.2 suite crypto/tls implements, in Go's preference order.
// The insecure flags mirror tls.InsecureCipherSuites (checked by a test).
var suites = [...]suite{
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", kECDHE | aECDSA | eAESGCM128 | mAEAD | vTLS12 | sHIGH, false},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", kECDHE | aRSA | eAESGCM128 | mAEAD | vTLS12 | sHIGH, false},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", kECDHE | aECDSA | eAESGCM256 | mAEAD | vTLS12 | sHIGH, false},
	{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", kECDHE | aRSA | eAESGCM256 | mAEAD | vTLS12 | sHIGH, false},
	{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", kECDHE | aECDSA | eCHACHA20 | mAEAD | vTLS12 | sHIGH, false},
	{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", kECDHE | aRSA | eCHACHA20 | mAEAD | vTLS12 | sHIGH, false},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", kECDHE | aECDSA | eAES128 | mSHA1 | vSSL3 | sHIGH, false},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", kECDHE | aRSA | eAES128 | mSHA1 | vSSL3 | sHIGH, false},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "ECDHE-ECDSA-AES256-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", kECDHE | aECDSA | eAES256 | mSHA1 | vSSL3 | sHIGH, false},
	{tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, "ECDHE-RSA-AES256-SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", kECDHE | aRSA | eAES256 | mSHA1 | vSSL3 | sHIGH, false},
	{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, "AES128-GCM-SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256", kRSA | aRSA | eAESGCM128 | mAEAD | vTLS12 | sHIGH, true},
	{tls.TLS_RSA_WITH_AES_256_GCM_SHA384, "AES256-GCM-SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384", kRSA | aRSA | eAESGCM256 | mAEAD | vTLS12 | sHIGH, true},
	{tls.TLS_RSA_WITH_AES_128_CBC_SHA, "AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA", kRSA | aRSA | eAES128 | mSHA1 | vSSL3 | sHIGH, true},
	{tls.TLS_RSA_WITH_AES_256_CBC_SHA, "AES256-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA", kRSA | aRSA | eAES256 | mSHA1 | vSSL3 | sHIGH, true},
	{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, "ECDHE-RSA-DES-CBC3-SHA", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", kECDHE | aRSA | e3DES | mSHA1 | vSSL3 | sMEDIUM, true},
	{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, "DES-CBC3-SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", kRSA | aRSA | e3DES | mSHA1 | vSSL3 | sMEDIUM, true},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, "ECDHE-ECDSA-AES128-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", kECDHE | aECDSA | eAES128 | mSHA256 | vTLS12 | sHIGH, true},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, "ECDHE-RSA-AES128-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", kECDHE | aRSA | eAES128 | mSHA256 | vTLS12 | sHIGH, true},
	{tls.TLS_RSA_WITH_AES_128_CBC_SHA256, "AES128-SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA256", kRSA | aRSA | eAES128 | mSHA256 | vTLS12 | sHIGH, true},
	{tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, "ECDHE-ECDSA-RC4-SHA", "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", kECDHE | aECDSA | eRC4 | mSHA1 | vSSL3 | sMEDIUM, true},
	{tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA, "ECDHE-RSA-RC4-SHA", "TLS_ECDHE_RSA_WITH_RC4_128_SHA", kECDHE | aRSA | eRC4 | mSHA1 | vSSL3 | sMEDIUM, true},
	{tls.TLS_RSA_WITH_RC4_128_SHA, "RC4-SHA", "TLS_RSA_WITH_RC4_128_SHA", kRSA | aRSA | eRC4 | mSHA1 | vSSL3 | sMEDIUM, true},
}

// suiteSet is a set of indexes into suites.
type suiteSet uint32

// secureSet holds the suites Go enables by default; it is also every suite CipherSuites may return.
var secureSet = func() suiteSet {
	var s suiteSet
	for i, c := range suites {
		if !c.insecure {
			s |= 1 << i
		}
	}
	return s
}()

// cipherKeywords maps OpenSSL cipher-string keywords to attribute masks. A suite matches a keyword
// when it has at least one attribute of every mask. Keywords with no masks are known to OpenSSL
// but match nothing Go implements (DHE, CAMELLIA, PSK, ...).
var cipherKeywords = map[string][]uint32{
	"ALL":     {attrAll},
	"DEFAULT": {attrAll}, // restricted to secure suites like everything else: Go's defaults
	"HIGH":    {sHIGH},
	"MEDIUM":  {sMEDIUM},

	"kECDHE": {kECDHE}, "kEECDH": {kECDHE}, "ECDHE": {kECDHE}, "EECDH": {kECDHE}, "ECDH": {kECDHE},
	"kRSA": {kRSA}, "RSA": {kRSA},
	"aRSA":   {aRSA},
	"aECDSA": {aECDSA}, "ECDSA": {aECDSA},

	"AES":      {eAES128 | eAES256 | eAESGCM128 | eAESGCM256},
	"AES128":   {eAES128 | eAESGCM128},
	"AES256":   {eAES256 | eAESGCM256},
	"AESGCM":   {eAESGCM128 | eAESGCM256},
	"CHACHA20": {eCHACHA20},
	"3DES":     {e3DES},
	"RC4":      {eRC4},

	"SHA1": {mSHA1}, "SHA": {mSHA1},
	"SHA256": {mSHA256},

	"TLSv1.2": {vTLS12}, "TLSv1": {vSSL3}, "TLSv1.0": {vSSL3}, "SSLv3": {vSSL3},

	"SUITEB128":     {aECDSA, eAESGCM128 | eAESGCM256},
	"SUITEB128ONLY": {aECDSA, eAESGCM128},
	"SUITEB128C2":   {aECDSA, eAESGCM256},
	"SUITEB192":     {aECDSA, eAESGCM256},

	// Known to OpenSSL, nothing in Go.
	"COMPLEMENTOFALL": nil, "COMPLEMENTOFDEFAULT": nil,
	"LOW": nil, "EXP": nil, "EXPORT": nil, "EXPORT40": nil, "EXPORT56": nil,
	"eNULL": nil, "NULL": nil, "aNULL": nil, "ADH": nil, "AECDH": nil,
	"kDHE": nil, "kEDH": nil, "DHE": nil, "EDH": nil, "DH": nil, "kDH": nil, "kDHr": nil, "kDHd": nil,
	"kECDHr": nil, "kECDHe": nil, "aECDH": nil, "aDH": nil, "aDSS": nil, "DSS": nil,
	"PSK": nil, "kPSK": nil, "aPSK": nil, "kECDHEPSK": nil, "kDHEPSK": nil, "kRSAPSK": nil,
	"SRP": nil, "kSRP": nil, "aSRP": nil, "KRB5": nil, "kKRB5": nil, "aKRB5": nil,
	"kGOST": nil, "aGOST": nil, "aGOST01": nil, "aGOST12": nil, "GOST94": nil, "GOST89MAC": nil, "kGOST18": nil,
	"DES": nil, "RC2": nil, "IDEA": nil, "SEED": nil, "MD5": nil, "SHA384": nil,
	"CAMELLIA": nil, "CAMELLIA128": nil, "CAMELLIA256": nil,
	"ARIA": nil, "ARIA128": nil, "ARIA256": nil, "ARIAGCM": nil,
	"AESCCM": nil, "AESCCM8": nil, "CHACHA20POLY1305": nil, "FIPS": nil, "SSLv2": nil,
}

// tls13Names are the TLS 1.3 suite names OpenSSL knows; they cannot be configured in Go.
var tls13Names = map[string]bool{
	"TLS_AES_128_GCM_SHA256": true, "TLS_AES_256_GCM_SHA384": true, "TLS_CHACHA20_POLY1305_SHA256": true,
	"TLS_AES_128_CCM_SHA256": true, "TLS_AES_128_CCM_8_SHA256": true,
}

// opensslNameParts are the parts OpenSSL cipher names are made of; a name made only of these,
// but not in suites, is a real suite Go does not implement rather than a typo.
var opensslNameParts = map[string]bool{
	"ECDHE": true, "ECDH": true, "DHE": true, "EDH": true, "ADH": true, "AECDH": true, "DH": true,
	"RSA": true, "DSS": true, "ECDSA": true, "PSK": true, "SRP": true, "KRB5": true, "EXP": true, "EXP1024": true,
	"AES": true, "AES128": true, "AES256": true, "GCM": true, "CCM": true, "CCM8": true, "CHACHA20": true, "POLY1305": true,
	"CAMELLIA": true, "CAMELLIA128": true, "CAMELLIA256": true, "ARIA128": true, "ARIA256": true,
	"SEED": true, "IDEA": true, "RC2": true, "RC4": true, "DES": true, "CBC": true, "CBC3": true, "CBC40": true,
	"NULL": true, "MD5": true, "SHA": true, "SHA256": true, "SHA384": true, "OLD": true,
	"GOST94": true, "GOST89": true, "GOST2001": true, "GOST2012": true, "GOST89MAC": true, "GOST2012256": true,
	"KUZNYECHIK": true, "MAGMA": true, "CTR": true, "OMAC": true,
}

// CipherSuites maps an OpenSSL cipher string (ssl_ciphers, e.g. "HIGH:!aNULL:!MD5" or
// "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384") to Go TLS 1.0–1.2 suite IDs. Known OpenSSL names
// map to Go's suites; keywords HIGH, ALL, DEFAULT, ECDHE, aRSA, aECDSA, AESGCM, CHACHA20 and exclusions (!x, -x) are
// handled sensibly; insecure suites are never enabled; names Go does not implement are skipped with a warning.
// TLS 1.3 suites are not configurable in Go (document). Returns nil (= Go's secure defaults) for "HIGH:!aNULL:!MD5"-like
// strings whose meaning equals the default.
//
// Details: items are separated by ':', ',', ';' or spaces; "A+B" intersects keywords; "+x" (move to
// the end) and "@STRENGTH"/"@SECLEVEL=n" are accepted and ignored, because Go orders suites itself
// (ssl_prefer_server_ciphers has no effect). "Insecure" is Go's definition (tls.InsecureCipherSuites):
// RSA key exchange, 3DES, RC4 and CBC-SHA256 suites; naming one explicitly gives a warning. TLS 1.3
// names (TLS_AES_128_GCM_SHA256, ...) are ignored with a warning: Go always enables all TLS 1.3
// suites. The returned IDs are in Go's preference order; an error means no suite is left, which
// nginx would also refuse ("no cipher match").
func CipherSuites(spec string) (ids []uint16, warnings []string, err error) {
	var (
		list, killed                              suiteSet
		insecure, unimplemented, unknown, tls13Ig []string
		items                                     int
	)
	for _, item := range strings.FieldsFunc(spec, func(r rune) bool {
		return r == ':' || r == ',' || r == ';' || r == ' ' || r == '\t'
	}) {
		items++
		op := byte(0)
		if c := item[0]; c == '!' || c == '-' || c == '+' {
			op, item = c, item[1:]
		}
		if item == "" {
			continue
		}
		if item[0] == '@' {
			if item != "@STRENGTH" && !strings.HasPrefix(item, "@SECLEVEL=") {
				unknown = append(unknown, item)
			}
			continue
		}
		set, kind := matchCipherItem(item)
		switch kind {
		case itemUnknown:
			unknown = append(unknown, item)
			continue
		case itemUnimplemented:
			if op == 0 {
				unimplemented = append(unimplemented, item)
			}
			continue
		case itemTLS13:
			tls13Ig = append(tls13Ig, item)
			continue
		}
		switch op {
		case 0:
			if set&secureSet == 0 {
				if set != 0 {
					insecure = append(insecure, item)
				} else {
					unimplemented = append(unimplemented, item)
				}
			}
			list |= set & secureSet &^ killed
		case '-':
			list &^= set
		case '!':
			list &^= set
			killed |= set
		}
	}

	add := func(msg string, names []string) {
		if len(names) > 0 {
			warnings = append(warnings, "ssl_ciphers: "+msg+": "+strings.Join(names, ", "))
		}
	}
	add("insecure, never enabled", insecure)
	add("not implemented by Go, skipped", unimplemented)
	add("unknown cipher or keyword, ignored", unknown)
	add("TLS 1.3 cipher suites cannot be configured (Go always enables all of them), ignored", tls13Ig)

	switch {
	case items == 0:
		return nil, warnings, fmt.Errorf("ssl_ciphers: empty cipher list")
	case list == 0:
		return nil, warnings, fmt.Errorf("ssl_ciphers %q: no cipher suite left that Go implements securely", spec)
	case list == secureSet:
		return nil, warnings, nil
	}
	for i, c := range suites {
		if list&(1<<i) != 0 {
			ids = append(ids, c.id)
		}
	}
	return ids, warnings, nil
}

type itemKind int

const (
	itemSuites        itemKind = iota // set is valid (possibly empty)
	itemUnknown                       // not a name or keyword OpenSSL knows
	itemUnimplemented                 // a cipher name OpenSSL knows, not implemented by Go
	itemTLS13                         // a TLS 1.3 suite name
)

// matchCipherItem returns the suites one cipher-string item (without its !, -, + prefix) selects.
func matchCipherItem(item string) (set suiteSet, kind itemKind) {
	for i, c := range suites {
		if item == c.openssl || item == c.iana {
			return 1 << i, itemSuites
		}
	}
	if tls13Names[item] {
		return 0, itemTLS13
	}
	var masks []uint32
	for part := range strings.SplitSeq(item, "+") {
		m, ok := cipherKeywords[part]
		if !ok {
			if looksLikeOpenSSLName(item) {
				return 0, itemUnimplemented
			}
			return 0, itemUnknown
		}
		if m == nil {
			return 0, itemSuites // a known keyword that selects nothing Go implements
		}
		masks = append(masks, m...)
	}
	for i, c := range suites {
		ok := true
		for _, m := range masks {
			if c.attrs&m == 0 {
				ok = false
				break
			}
		}
		if ok {
			set |= 1 << i
		}
	}
	return set, itemSuites
}

// looksLikeOpenSSLName reports whether name is built like an OpenSSL cipher name
// ("DHE-RSA-AES128-GCM-SHA256", "PSK-AES128-CBC-SHA").
func looksLikeOpenSSLName(name string) bool {
	n := 0
	for part := range strings.SplitSeq(name, "-") {
		if !opensslNameParts[part] {
			return false
		}
		n++
	}
	return n >= 2
}

// OpenSSLName returns the OpenSSL name of a Go cipher suite ID ($ssl_cipher): "ECDHE-RSA-AES128-GCM-SHA256",
// "TLS_AES_128_GCM_SHA256" for TLS 1.3 suites. It returns "" for an ID Go does not implement
// (and for 0, a connection without TLS), without allocating.
func OpenSSLName(id uint16) string {
	switch id {
	case tls.TLS_AES_128_GCM_SHA256:
		return "TLS_AES_128_GCM_SHA256"
	case tls.TLS_AES_256_GCM_SHA384:
		return "TLS_AES_256_GCM_SHA384"
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return "TLS_CHACHA20_POLY1305_SHA256"
	}
	for i := range suites {
		if suites[i].id == id {
			return suites[i].openssl
		}
	}
	return ""
}

// AEADSuites is the TLS 1.2 suite list used when ssl_ciphers is unset or means the default: forward-secret
// ECDHE key exchange with AEAD ciphers only (AES-GCM, ChaCha20-Poly1305), no CBC. TLS 1.3 suites are all AEAD.
func AEADSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
