package route

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		raw  string
		want string // "" means ErrBadPath
	}{
		{"/", "/"},
		{"/index.html", "/index.html"},
		{"/a//b", "/a/b"},
		{"//a///b//", "/a/b/"},
		{"/a/./b", "/a/b"},
		{"/a/../b", "/b"},
		{"/a/b/../../c", "/c"},
		{"/../a", ""},
		{"/a/../../b", ""},
		{"/..", ""},
		{"/a/%2e%2e/b", "/b"},
		{"/a/%2E%2E/b", "/b"},
		{"/a/.%2e/b", "/b"},
		{"/%2F", "/"},
		{"/a%2F%2Fb", "/a/b"},
		{"/a%2f..%2fb", "/b"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/a/.", "/a/"},
		{"/.", "/"},
		{"/a%20b", "/a b"},
		{"/%41%62", "/Ab"},
		{"/%zz", ""},
		{"/%4", ""},
		{"/%", ""},
		{"/a%2", ""},
		{"/a%00", ""},
		{"/a\x00b", ""},
		{"a", ""},
		{"", ""},
		{"*", ""},
		{"/.hidden", "/.hidden"},
		{"/a/.b/..c/...", "/a/.b/..c/..."},
		{"/a/...", "/a/..."},
		{"/%25", "/%"},             // a decoded '%' is not decoded again
		{"/%252e%252e", "/%2e%2e"}, // ... so this is not ".."
		{"/%3F%23", "/?#"},
		{"/caf%C3%A9", "/caf\xc3\xa9"},
		{"/a/b/c/./../../d", "/a/d"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.raw)
		if tt.want == "" {
			if !errors.Is(err, ErrBadPath) {
				t.Errorf("Normalize(%q) = %q, %v; want ErrBadPath", tt.raw, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
}

func TestNormalizeAllocations(t *testing.T) {
	tests := []struct {
		raw  string
		max  float64
		long bool
	}{
		{raw: "/static/app/main.css", max: 0},    // fast path: returned as is
		{raw: "/static//app/./main.css", max: 1}, // slow path: only the result string
		{raw: "/s/" + strings.Repeat("x", 300) + "/../y", max: 2},
	}
	for _, tt := range tests {
		n := testing.AllocsPerRun(100, func() {
			if _, err := Normalize(tt.raw); err != nil {
				t.Fatal(err)
			}
		})
		if n > tt.max {
			t.Errorf("Normalize(%.30q...) allocates %v times, want <= %v", tt.raw, n, tt.max)
		}
	}
}

func TestEscapePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/a/b", "/a/b"},
		{"/a b", "/a%20b"},
		{"/100%", "/100%25"},
		{"/q?x#y", "/q%3Fx%23y"},
		{"/t\x01\x7f", "/t%01%7F"},
		{"/caf\xc3\xa9", "/caf%C3%A9"},
		{"/keep/-._~!$&'()*+,;=:@", "/keep/-._~!$&'()*+,;=:@"},
		// as nginx 1.22 sends them upstream
		{"/a\"<>\\^`{|}b", "/a%22%3C%3E%5C%5E%60%7B%7C%7Db"},
	}
	for _, tt := range tests {
		if got := EscapePath(tt.in); got != tt.want {
			t.Errorf("EscapePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
		// What is sent upstream normalises back to what was matched.
		if back, err := Normalize(EscapePath(tt.in)); err != nil || back != tt.in {
			t.Errorf("Normalize(EscapePath(%q)) = %q, %v", tt.in, back, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() { EscapePath("/nothing/to/escape") }); n != 0 {
		t.Errorf("EscapePath without escapes allocates %v times", n)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "/a//b", "/a/./b", "/a/../b", "/../a", "/a/%2e%2e/b", "/%2F", "/a/b/..",
		"/a%20b", "/%zz", "/a%00", "a", "/a/.", "/%252e", "/.../..a/.a.", "/x/../admin", "/%61dmin", "//admin", "/a/..;/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := Normalize(raw)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("Normalize(%q): unexpected error %v", raw, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("Normalize(%q) = %q: does not start with /", raw, out)
		}
		for _, bad := range []string{"//", "/./", "/../", "\x00"} {
			if strings.Contains(out, bad) {
				t.Fatalf("Normalize(%q) = %q: contains %q", raw, out, bad)
			}
		}
		if strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
			t.Fatalf("Normalize(%q) = %q: ends in a dot segment", raw, out)
		}
		if len(out) > len(raw) {
			t.Fatalf("Normalize(%q) = %q: longer than its input", raw, out)
		}
		if !strings.Contains(out, "%") {
			if again, err := Normalize(out); err != nil || again != out {
				t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q, %v", raw, out, out, again, err)
			}
		}
		if back, err := Normalize(EscapePath(out)); err != nil || back != out {
			t.Fatalf("Normalize(EscapePath(%q)) = %q, %v", out, back, err)
		}
	})
}
