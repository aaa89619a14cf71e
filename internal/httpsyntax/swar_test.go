package httpsyntax

import (
	"math/rand/v2"
	"net/textproto"
	"strings"
	"testing"
)

// The byte-at-a-time definitions the word-at-a-time checks must agree with.
func refValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func refNameSafe(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c == ':' || c >= 0x7f {
			return false
		}
	}
	return true
}

func refLineBreak(v string) bool { return strings.ContainsAny(v, "\r\n") }

func refHeadEnd(b string, lf bool) int {
	end := strings.Index(b, "\r\n\r\n")
	if end >= 0 {
		end += 4
	}
	if i := strings.Index(b, "\n\n"); lf && i >= 0 && (end < 0 || i+2 < end) {
		end = i + 2 // the earlier empty line
	}
	return end
}

func checkSWAR(t *testing.T, s string) {
	t.Helper()
	if got, want := Value(s), refValue(s); got != want {
		t.Fatalf("Value(%q) = %v, want %v", s, got, want)
	}
	if got, want := Value([]byte(s)), refValue(s); got != want {
		t.Fatalf("Value([]byte(%q)) = %v, want %v", s, got, want)
	}
	if got, want := NameSafe(s), refNameSafe(s); got != want {
		t.Fatalf("NameSafe(%q) = %v, want %v", s, got, want)
	}
	if got, want := LineBreak(s), refLineBreak(s); got != want {
		t.Fatalf("LineBreak(%q) = %v, want %v", s, got, want)
	}
	for _, lf := range []bool{false, true} {
		if got, want := HeadEnd([]byte(s), lf), refHeadEnd(s, lf); got != want {
			t.Fatalf("HeadEnd(%q, %v) = %d, want %d", s, lf, got, want)
		}
	}
}

// TestSWAR: every byte value at every position of strings up to three words long (in the word part and the
// tail), next to bytes that carry or borrow in the word arithmetic (0x00, 0x7f, 0x80, 0xff), and random
// strings, give the answers of the byte-at-a-time definitions.
func TestSWAR(t *testing.T) {
	for _, fill := range []byte{'a', 0x00, 0x7f, 0x80, 0xff, ' ', '\t'} {
		for n := 0; n <= 24; n++ {
			for p := 0; p < n; p++ {
				for b := 0; b < 256; b++ {
					s := []byte(strings.Repeat("a", n))
					if p > 0 {
						s[p-1] = fill
					}
					s[p] = byte(b)
					checkSWAR(t, string(s))
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		s := make([]byte, rng.IntN(40))
		for i := range s {
			s[i] = byte(rng.IntN(256))
			if rng.IntN(4) > 0 {
				s[i] = byte(' ' + rng.IntN(95)) // mostly printable, so the words pass and the tail decides
			}
		}
		checkSWAR(t, string(s))
	}
	// line ends, and the bytes that borrow next to a line feed in the word arithmetic
	for range 200000 {
		checkSWAR(t, randomString(rng, "\r\n\r\na\v\x00\x0b\x09", 40))
	}
}

func FuzzSWAR(f *testing.F) {
	for _, s := range []string{"", "Content-Type", "text/html; charset=utf-8", "a\r\nb", "x\x7fy", "tab\there", "\xff\x00\x80",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "\n\v\r\n\r\n", "a\r\n\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkSWAR(t, s) })
}

// BenchmarkValue compares Value with the byte-at-a-time loop on a browser's long field values.
func BenchmarkValue(b *testing.B) {
	long := []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8",
		"session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.1.123456789.1700000000; consent=yes",
	}
	for _, f := range []struct {
		name string
		fn   func(string) bool
	}{{"words", Value[string]}, {"bytes", refValue}} {
		b.Run(f.name, func(b *testing.B) {
			ok := true
			for b.Loop() {
				for _, v := range long {
					ok = f.fn(v) && ok
				}
			}
			if !ok {
				b.Fatal("a valid value refused")
			}
		})
	}
}

// refNextField is NextField as the parsers did it before it: cut the line, then the name, then check each.
func refNextField(s string, lf bool) (name, value, rest string, canonical, end, ok bool) {
	line, rest, found := strings.Cut(s, "\n")
	if !found {
		return "", "", "", false, false, false
	}
	line, cr := strings.CutSuffix(line, "\r")
	if !cr && !lf {
		return "", "", "", false, false, false
	}
	if line == "" {
		return "", "", rest, false, true, true
	}
	k, v, found := strings.Cut(line, ":")
	token, canon := Token(k), textproto.CanonicalMIMEHeaderKey(k) == k
	if !found || !token || !refValue(v) {
		return "", "", "", false, false, false
	}
	return k, TrimOWS(v), rest, canon, false, true
}

func checkNextField(t *testing.T, s string) {
	t.Helper()
	for _, lf := range []bool{false, true} {
		n, v, r, c, e, ok := NextField(s, lf)
		rn, rv, rr, rc, re, rok := refNextField(s, lf)
		if ok != rok || ok && (n != rn || v != rv || r != rr || c != rc || e != re) {
			t.Fatalf("NextField(%q, lf=%v) = %q %q %q %v %v %v, want %q %q %q %v %v %v", s, lf, n, v, r, c, e, ok, rn, rv, rr, rc, re, rok)
		}
		bn, bv, br, bc, be, bok := NextField([]byte(s), lf)
		if bok != ok || string(bn) != n || string(bv) != v || string(br) != r || bc != c || be != e {
			t.Fatalf("NextField([]byte(%q), lf=%v) differs from the string form", s, lf)
		}
	}
}

// TestNextField: the one-pass field line parse agrees with cutting and checking part by part, on field lines
// built from the bytes that matter (line ends, colons, white space, controls, case, dashes) and random ones.
func TestNextField(t *testing.T) {
	for _, s := range []string{"", "\r\n", "\n", "\r", "Host: a\r\n", "Host: a\n", "content-type:  text/html \t\r\nX: y\r\n", "X-A:\r\n\r\n",
		" X: folded\r\n", "X : y\r\n", "X(: y\r\n", ": y\r\n", "X: a\rb\r\n", "X: a\x00\r\n", "X: a\x7f\r\n", "X: tab\there\r\n",
		"X: " + strings.Repeat("v", 20) + "\r\n", "X: " + strings.Repeat("v", 20) + "\tw\r\nY: z\r\n", "X: \xff\xfe\r\n", "X: no end"} {
		checkNextField(t, s)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := "\r\n:\t -aZz0\x00\x7f\x80Xy"
	for range 300000 {
		checkNextField(t, randomString(rng, alphabet, 30))
	}
	// names of up to 20 bytes from those at the edges of the letter, digit and dash ranges, and the same
	// bytes with the high bit set
	names := "aAzZ09-@[`{/:.,_~\xc1\xe1\xad\xb0\xda"
	for range 300000 {
		checkNextField(t, randomString(rng, names, 20)+": v\r\n")
	}
	// canonical names (words of letters and digits joined by dashes) and the same with one byte's case flipped
	for range 100000 {
		var b []byte
		for w := rng.IntN(4); w >= 0; w-- {
			b = append(b, "Xx0"[rng.IntN(3)])
			b = append(b, randomString(rng, "abcxyz019", 9)...)
			if w > 0 {
				b = append(b, '-')
			}
		}
		if len(b) > 0 && rng.IntN(2) == 0 {
			b[rng.IntN(len(b))] ^= 0x20 // (a dash becomes '\r', a digit a control: refused alike)
		}
		checkNextField(t, string(b)+": v\r\n")
	}
}

func FuzzNextField(f *testing.F) {
	for _, s := range []string{"Host: a\r\n\r\n", "X-Y:  z \r\nA: b\n", " fold\r\n", "a\x00: b\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkNextField(t, s) })
}

// BenchmarkNextField walks a browser's request head field by field, as the parsers do.
func BenchmarkNextField(b *testing.B) {
	head := "Host: example.org\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Cookie: session=0123456789abcdef0123456789abcdef\r\nConnection: keep-alive\r\n\r\n"
	for b.Loop() {
		for rest := head; ; {
			_, _, next, _, end, ok := NextField(rest, false)
			if !ok {
				b.Fatal("refused")
			}
			if rest = next; end {
				break
			}
		}
	}
}
