package vars

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

// SecureLink is a level's secure_link settings: either Expr and MD5 (secure_link, secure_link_md5) or
// Secret (secure_link_secret, the older form with the hash in the URI).
type SecureLink struct {
	Expr, MD5 *Template
	Secret    string
}

// secureLink is $secure_link as nginx's ngx_http_secure_link_module computes it: with secure_link and
// secure_link_md5, "1" when the base64url MD5 before the expression's first comma is the MD5 of
// secure_link_md5's value and the time after it (Unix seconds; none without a comma) has not passed, "0" when
// it has; with secure_link_secret, the link after /HASH/ in the raw request URI when HASH is the hex MD5 of the
// link and the secret. Not found otherwise. $secure_link_expires is set on the way, before the hash is checked.
func (r *Request) secureLink() (string, bool) {
	sl := r.SecureLink
	if sl == nil {
		return "", false
	}
	if sl.Secret != "" {
		return r.secureLinkSecret(sl.Secret)
	}
	if sl.Expr == nil || sl.MD5 == nil {
		return "", false
	}
	val := sl.Expr.Eval(r)
	hash, exp, hasExp := strings.Cut(val, ",")
	var expires int64
	if hasExp {
		n, ok := unixTime(exp)
		if !ok || n <= 0 {
			return "", false
		}
		expires, r.secureLinkExpires, r.hasSecureLinkExpires = n, exp, true
	}
	if len(hash) > 24 {
		return "", false
	}
	if i := strings.IndexByte(hash, '='); i >= 0 {
		hash = hash[:i] // nginx's decoder stops at padding
	}
	got, err := base64.RawURLEncoding.DecodeString(hash)
	if err != nil || len(got) != md5.Size {
		return "", false
	}
	want := md5.Sum([]byte(sl.MD5.Eval(r)))
	if subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return "", false
	}
	if expires != 0 && expires < time.Now().Unix() {
		return "0", true
	}
	return "1", true
}

// secureLinkSecret is secure_link_secret's $secure_link: the raw URI is /PREFIX/HASH/LINK (LINK with its query
// string, as nginx reads the unparsed URI).
func (r *Request) secureLinkSecret(secret string) (string, bool) {
	if r.HTTP == nil || len(r.HTTP.RequestURI) < 1 {
		return "", false
	}
	uri := r.HTTP.RequestURI[1:]
	_, rest, ok := strings.Cut(uri, "/")
	if !ok {
		return "", false
	}
	sum, link, ok := strings.Cut(rest, "/")
	if !ok || len(sum) != 32 || link == "" {
		return "", false
	}
	got, err := hex.DecodeString(sum)
	want := md5.Sum([]byte(link + secret))
	if err != nil || subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return "", false
	}
	return link, true
}

// unixTime parses nginx's ngx_atotm: decimal digits only.
func unixTime(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}
