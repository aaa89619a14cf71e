package httpsyntax

import (
	"net/textproto"
	"testing"
)

func TestSyntax(t *testing.T) {
	for _, tc := range []struct {
		s                     string
		token, value, canonic bool
	}{
		{"Content-Type", true, true, true},
		{"content-type", true, true, false},
		{"X_Under", true, true, false},
		{"X_under", true, true, true},
		{"X-ID", true, true, false},
		{"", false, true, true},
		{"Bad Name", false, true, true},
		{"a\tb", false, true, true},
		{"caf\xc3\xa9", false, true, true},
		{"a\x00b", false, false, true},
		{"a\x7fb", false, false, true},
		{"a\r\nb", false, false, true},
	} {
		if got := Token(tc.s); got != tc.token {
			t.Errorf("Token(%q) = %v", tc.s, got)
		}
		if got := Value(tc.s); got != tc.value {
			t.Errorf("Value(%q) = %v", tc.s, got)
		}
		if Token(tc.s) {
			if got, want := Canonical(tc.s), textproto.CanonicalMIMEHeaderKey(tc.s) == tc.s; got != want || got != tc.canonic {
				t.Errorf("Canonical(%q) = %v, textproto says %v", tc.s, got, want)
			}
		}
	}
	for in, want := range map[string]string{" \t a b \t": "a b", "": "", "x": "x", "\t": ""} {
		if got := TrimOWS(in); got != want {
			t.Errorf("TrimOWS(%q) = %q, want %q", in, got, want)
		}
	}
}
