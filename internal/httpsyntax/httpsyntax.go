// Package httpsyntax holds the small checks of HTTP/1 field syntax (RFC 9110 §5) that sluice's own head
// parsers (requests in h1, responses in proxy), the framing guard and the tunnel's handshake share, with
// textproto's rules so they accept exactly what net/http would, and the header-map lookup they share.
package httpsyntax

import (
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// Token reports whether s is a non-empty token: a method, or a header name (a space before the colon is
// not one).
func Token(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// Value reports whether v is a field value without control bytes other than tab (obs-text is allowed).
func Value(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Canonical reports whether a valid header name is already in canonical MIME form (Content-Type), so it can
// be used as it is, without textproto.CanonicalMIMEHeaderKey's copy.
func Canonical(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// TrimOWS trims the optional white space (spaces and tabs) around a field value.
func TrimOWS[T string | []byte](s T) T {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// Length parses a Content-Length value: one to eighteen decimal digits, nothing else (no sign, no space),
// as net/http requires.
func Length[T string | []byte](v T) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// First is h.Get(key) for a key already in canonical form, without canonicalising it again.
func First(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
