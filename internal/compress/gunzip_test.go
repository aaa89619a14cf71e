package compress

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func gz(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// TestInflater checks decompression across any cut of the body into writes, several members, and the
// errors that cut a response: a stream cut short, garbage after it, no gzip at all, no body.
func TestInflater(t *testing.T) {
	text := strings.Repeat("sluice inflates ", 300)
	body := append(gz(text), gz("and more")...)
	for _, cut := range []int{1, 7, 100, len(body) - 1} {
		var out bytes.Buffer
		z := NewInflater(&out, 64)
		for b := body; len(b) > 0; {
			n := min(cut, len(b))
			if _, err := z.Write(b[:n]); err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			b = b[n:]
		}
		if err := z.Close(); err != nil || out.String() != text+"and more" {
			t.Fatalf("cut %d: %v, %d bytes", cut, err, out.Len())
		}
	}
	for name, b := range map[string][]byte{"short": body[:len(body)/2], "garbage": append(gz("x"), "junk"...), "plain": []byte("plain"), "empty": nil} {
		z := NewInflater(&bytes.Buffer{}, 0)
		_, werr := z.Write(b)
		cerr := z.Close()
		if !errors.Is(werr, ErrGunzip) && !errors.Is(cerr, ErrGunzip) {
			t.Errorf("%s: write %v, close %v", name, werr, cerr)
		}
	}
	z := NewInflater(&bytes.Buffer{}, 0)
	z.Write(body[:10])
	z.Abandon() // (the goroutine ends: -race and the leak would show in a long run)
}
