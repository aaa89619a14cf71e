package httpsyntax

import (
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strconv"
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
		token, canonical := nameForm(tc.s)
		if token != tc.token {
			t.Errorf("nameForm(%q) token = %v", tc.s, token)
		}
		if token {
			if want := textproto.CanonicalMIMEHeaderKey(tc.s) == tc.s; canonical != want || canonical != tc.canonic {
				t.Errorf("nameForm(%q) canonical = %v, textproto says %v", tc.s, canonical, want)
			}
		}
	}
	for in, want := range map[string]string{" \t a b \t": "a b", "": "", "x": "x", "\t": ""} {
		if got := TrimOWS(in); got != want {
			t.Errorf("TrimOWS(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLength(t *testing.T) {
	for v, want := range map[string]int64{"0": 0, "13": 13, "007": 7, "999999999999999999": 999999999999999999} {
		if n, ok := Length(v); !ok || n != want {
			t.Errorf("Length(%q) = %d, %v; want %d", v, n, ok, want)
		}
		if n, ok := Length([]byte(v)); !ok || n != want {
			t.Errorf("Length([]byte %q) = %d, %v; want %d", v, n, ok, want)
		}
	}
	for _, v := range []string{"", "+1", "-1", " 1", "1 ", "0x1", "1e3", "1234567890123456789"} {
		if _, ok := Length(v); ok {
			t.Errorf("Length(%q) accepted", v)
		}
	}
}

func TestFirst(t *testing.T) {
	h := http.Header{"Connection": {"close", "x"}, "Empty": {}}
	if got := First(h, "Connection"); got != "close" {
		t.Errorf("First = %q", got)
	}
	if First(h, "Empty") != "" || First(h, "Missing") != "" || First(h, "connection") != "" {
		t.Error("First found a value that is not there under that canonical key")
	}
}

// nameForm reports whether k is a token (a valid field name) and, if it is, whether it is canonical, as
// NextField finds them for a field line named k.
func nameForm(k string) (token, canonical bool) {
	name, _, _, canonical, _, ok := NextField(k+": v\r\n", false)
	if !ok || name != k {
		return false, false
	}
	return true, canonical
}

// randomString is up to max bytes drawn from alphabet.
func randomString(rng *rand.Rand, alphabet string, max int) string {
	b := make([]byte, rng.IntN(max))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// TestNameForm: over random names from letters of both cases, digits, '-', '_' and bytes that are no token's,
// NextField's name agrees with Token and with textproto's canonical form.
func TestNameForm(t *testing.T) {
	const alphabet = "aZz-_0Ax-:é \x00\x7f"
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		k := randomString(rng, alphabet, 12)
		token, canonical := nameForm(k)
		if token != Token(k) {
			t.Fatalf("nameForm(%q) token = %v, Token says %v", k, token, Token(k))
		}
		if token && canonical != (textproto.CanonicalMIMEHeaderKey(k) == k) {
			t.Fatalf("nameForm(%q) canonical = %v, textproto gives %q", k, canonical, textproto.CanonicalMIMEHeaderKey(k))
		}
	}
}

func TestStatus(t *testing.T) {
	for _, code := range []int{-1, 0, 99, 100, 101, 200, 404, 499, 599, 600, 999, 1000} {
		if got, want := Status(code), strconv.Itoa(code); got != want {
			t.Errorf("Status(%d) = %q, want %q", code, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Status(502) }); n != 0 {
		t.Errorf("Status(502) allocates %v times", n)
	}
}
