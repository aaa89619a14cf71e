package vars

import (
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// appendClientCert appends one of the $ssl_client_* variables, in the forms nginx 1.22 gives them (observed from
// Debian's nginx 1.22 with OpenSSL 3; see test/e2e/mtls_test.go). On a TLS connection they are found, empty
// without a certificate ($ssl_client_verify is then NONE); on plain HTTP they are not found.
func (r *Request) appendClientCert(dst []byte, k kind) ([]byte, bool) {
	if r.tls() == nil {
		return dst, false
	}
	res := r.ClientCert
	if k == kSSLClientVerify {
		if res == nil {
			return append(dst, "NONE"...), true
		}
		return append(dst, res.Verify...), true
	}
	if res == nil || res.Leaf == nil {
		return dst, true
	}
	c := res.Leaf
	switch k {
	case kSSLClientSDN:
		return appendDN(dst, c.RawSubject), true
	case kSSLClientIDN:
		return appendDN(dst, c.RawIssuer), true
	case kSSLClientSerial:
		return appendSerial(dst, c), true
	case kSSLClientFingerprint:
		sum := sha1.Sum(c.Raw)
		return hex.AppendEncode(dst, sum[:]), true
	case kSSLClientRawCert:
		return append(dst, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...), true
	case kSSLClientCert:
		// nginx's deprecated form for a header: every line break but the last followed by a tab
		p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		p = p[:len(p)-1]
		for _, b := range p {
			dst = append(dst, b)
			if b == '\n' {
				dst = append(dst, '\t')
			}
		}
		return dst, true
	case kSSLClientEscapedCert:
		return appendEscapeComponent(dst, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})), true
	case kSSLClientVStart:
		return c.NotBefore.UTC().AppendFormat(dst, "Jan _2 15:04:05 2006 GMT"), true
	case kSSLClientVEnd:
		return c.NotAfter.UTC().AppendFormat(dst, "Jan _2 15:04:05 2006 GMT"), true
	case kSSLClientVRemain:
		// whole days left; "0" for less than one (or expired)
		end, now := c.NotAfter.Unix(), time.Now().Unix()
		if end < now+86400 {
			return append(dst, '0'), true
		}
		return strconv.AppendInt(dst, (end-now)/86400, 10), true
	}
	return dst, false
}

// appendSerial appends the serial number as OpenSSL's i2a_ASN1_INTEGER prints it: the bytes of its magnitude
// in upper-case hex ("0ABCDEF012"), "00" for zero, a leading "-" when negative.
func appendSerial(dst []byte, c *x509.Certificate) []byte {
	return appendSerialNumber(dst, c.SerialNumber)
}

func appendSerialNumber(dst []byte, n *big.Int) []byte {
	if n == nil || n.Sign() == 0 {
		return append(dst, "00"...)
	}
	if n.Sign() < 0 {
		dst = append(dst, '-')
	}
	return appendUpperHex(dst, n.Bytes())
}

func appendUpperHex(dst, b []byte) []byte {
	const digits = "0123456789ABCDEF"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}

// appendEscapeComponent appends s escaped as nginx's ngx_escape_uri with NGX_ESCAPE_URI_COMPONENT: every byte but
// letters, digits and "-._~" as %XX (upper case).
func appendEscapeComponent(dst, s []byte) []byte {
	const digits = "0123456789ABCDEF"
	for _, b := range s {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '.', b == '_', b == '~':
			dst = append(dst, b)
		default:
			dst = append(dst, '%', digits[b>>4], digits[b&15])
		}
	}
	return dst
}

// attribute is one AttributeTypeAndValue of a distinguished name, its value kept as DER.
type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rdnSET is one relative distinguished name (encoding/asn1 reads a type named …SET as a SET).
type rdnSET []attribute

// appendDN appends a DER distinguished name as OpenSSL's X509_NAME_print_ex with XN_FLAG_RFC2253 prints it,
// which nginx ≥ 1.11.6 uses for $ssl_client_s_dn and $ssl_client_i_dn: the attributes last first, separated by
// "," ("+" within one RDN), with OpenSSL's short names (CN, O, emailAddress, …) or the dotted OID, values as
// UTF-8 with bytes ≥ 0x80 and controls as \XX and RFC 2253's specials escaped with a backslash; values that
// are not strings, and those of attributes without a short name, as # and the hex of their DER.
func appendDN(dst []byte, raw []byte) []byte {
	var rdns []rdnSET
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) > 0 {
		return dst
	}
	first := true
	for i := len(rdns) - 1; i >= 0; i-- {
		set := rdns[i]
		for j := len(set) - 1; j >= 0; j-- {
			a := set[j]
			switch {
			case first:
				first = false
			case j == len(set)-1:
				dst = append(dst, ',')
			default:
				dst = append(dst, '+')
			}
			name, known := attributeNames[a.Type.String()]
			if !known {
				name = a.Type.String()
			}
			dst = append(dst, name...)
			dst = append(dst, '=')
			s, ok := stringValue(a.Value)
			if !known || !ok {
				dst = append(dst, '#')
				dst = appendUpperHex(dst, a.Value.FullBytes)
				continue
			}
			dst = appendEscapedValue(dst, s)
		}
	}
	return dst
}

// appendEscapedValue escapes a DN value as ASN1_STRFLGS_RFC2253 does.
func appendEscapedValue(dst []byte, s []byte) []byte {
	const digits = "0123456789ABCDEF"
	for i, b := range s {
		switch {
		case b >= 0x80 || b < 0x20 || b == 0x7f:
			dst = append(dst, '\\', digits[b>>4], digits[b&15])
		case b == ',' || b == '+' || b == '"' || b == '\\' || b == '<' || b == '>' || b == ';',
			i == 0 && (b == '#' || b == ' '), i == len(s)-1 && b == ' ':
			dst = append(dst, '\\', b)
		default:
			dst = append(dst, b)
		}
	}
	return dst
}

// stringValue converts a DN value of a string type to UTF-8 (T61String read as Latin-1, as OpenSSL does).
func stringValue(v asn1.RawValue) ([]byte, bool) {
	if v.Class != asn1.ClassUniversal {
		return nil, false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString, 26 /* VisibleString */ :
		return v.Bytes, true
	case asn1.TagT61String:
		out := make([]byte, 0, len(v.Bytes))
		for _, b := range v.Bytes {
			out = utf8.AppendRune(out, rune(b))
		}
		return out, true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return nil, false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		var out []byte
		for _, r := range utf16.Decode(u) {
			out = utf8.AppendRune(out, r)
		}
		return out, true
	case 28: // UniversalString
		if len(v.Bytes)%4 != 0 {
			return nil, false
		}
		var out []byte
		for i := 0; i < len(v.Bytes); i += 4 {
			r := rune(v.Bytes[i])<<24 | rune(v.Bytes[i+1])<<16 | rune(v.Bytes[i+2])<<8 | rune(v.Bytes[i+3])
			out = utf8.AppendRune(out, r)
		}
		return out, true
	}
	return nil, false
}

// attributeNames are OpenSSL's short names of the attribute types found in distinguished names.
var attributeNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "title",
	"2.5.4.13":                   "description",
	"2.5.4.15":                   "businessCategory",
	"2.5.4.17":                   "postalCode",
	"2.5.4.41":                   "name",
	"2.5.4.42":                   "GN",
	"2.5.4.43":                   "initials",
	"2.5.4.44":                   "generationQualifier",
	"2.5.4.46":                   "dnQualifier",
	"2.5.4.65":                   "pseudonym",
	"2.5.4.97":                   "organizationIdentifier",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"1.3.6.1.4.1.311.60.2.1.1":   "jurisdictionL",
	"1.3.6.1.4.1.311.60.2.1.2":   "jurisdictionST",
	"1.3.6.1.4.1.311.60.2.1.3":   "jurisdictionC",
}
