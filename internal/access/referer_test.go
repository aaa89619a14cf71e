package access

import (
	"strings"
	"testing"
)

// TestReferers: which Referer headers valid_referers accepts; "ok" and "bad" columns are what nginx 1.22 gave
// $invalid_referer ("" and "1") for the same lines, in a server named main.test www.main.test
// ~^re(?<n>\d+)\.test$.
func TestReferers(t *testing.T) {
	names := []string{"main.test", "www.main.test", `~^re(?<n>\d+)\.test$`}
	blocks := map[string]string{
		"a": `none blocked server_names *.example.com example.* .dot.org exact.net/path/ ~\.google\. ~BING\.com/s`,
		"b": "example.com",
		"d": "blocked example.com",
		"e": "none example.com:8080 www.example.com/",
	}
	const none = "\x00" // no Referer header
	// each row: referer, then the blocks it is valid for
	rows := []struct{ ref, valid string }{
		{none, "a e"}, {"http://main.test/", "a"}, {"https://www.main.test/x", "a"}, {"http://re42.test/", "a"},
		{"http://RE42.TEST/", "a"}, {"http://re.test/", ""}, {"http://a.example.com/", "a"}, {"http://example.com/", "a b d"},
		{"http://a.b.example.com/", "a"}, {"http://example.org/", "a"}, {"http://example.co.uk/", "a"}, {"http://dot.org", "a"},
		{"http://x.dot.org/", "a"}, {"http://exact.net/path/", "a"}, {"http://exact.net/path/x", "a"}, {"http://exact.net/Path/", ""},
		{"http://exact.net/pat", ""}, {"http://exact.net:8080/path/x", "a"}, {"http://exact.net", ""},
		{"http://www.google.com/search", "a"}, {"https://maps.google.co.uk", "a"}, {"http://BING.COM/S", "a"},
		{"http://evil.com/?www.google.com", "a"}, {"ftp://main.test/", "a d"}, {"main.test", "a d"}, {"http://i.r", "a d"},
		{"HTTP://MAIN.TEST/", "a"}, {"http://main.test:8080/", "a"}, {"http://evil.com/", ""}, {"http://example.com:8080/x", "a b d"},
		{"http://www.example.com", "a"}, {"http://www.example.com/a", "a e"}, {"https://example.com", "a b d"},
		{"http://main.test.evil.com/", ""}, {"http://evil.com/main.test", ""}, {"http://", "a d"}, {"https://x", "a d"},
		{"http://:80/", ""}, {"http://main.test@evil.com/", ""}, {"http://main.test?x", ""}, {"HtTpS://Example.COM", "a b d"},
	}
	for name, line := range blocks {
		rf := &Referers{}
		if err := rf.Add(strings.Fields(line), names); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			var hdr []string
			if r.ref != none {
				hdr = []string{r.ref}
			}
			want := strings.Contains(" "+r.valid+" ", " "+name+" ")
			if got := rf.Valid(hdr); got != want {
				t.Errorf("valid_referers %s; Referer %q: valid %v, want %v", line, r.ref, got, want)
			}
		}
	}
	if !(*Referers)(nil).Valid([]string{"http://evil.com/"}) {
		t.Error("no valid_referers: every referer is valid")
	}
}

// TestReferersErrors: the values nginx 1.22 refuses (each error observed from nginx -t).
func TestReferersErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`""`, `invalid referer ""`},
		{"*.a.*", `invalid hostname or wildcard "*.a.*"`},
		{"a*b.com", `invalid hostname or wildcard "a*b.com"`},
		{"*", `invalid hostname or wildcard "*"`},
		{"a.com a.com", `conflicting parameter "a.com"`},
		{"a.com/x a.com/y", `conflicting parameter "a.com"`},
		{"~(", "invalid regex"},
		{"none", `the "none" or "blocked" referers are specified`},
		{"none ~foo", `the "none" or "blocked" referers are specified`},
		{"none server_names", `the "none" or "blocked" referers are specified`}, // the only name is a regex
	} {
		rf := &Referers{}
		args := strings.Fields(tc.line)
		if tc.line == `""` {
			args = []string{""}
		}
		err := rf.Add(args, []string{"~^x$"})
		if err == nil {
			err = rf.Check()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.line, err, tc.want)
		}
	}
}
