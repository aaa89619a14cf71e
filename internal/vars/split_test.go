package vars

import (
	"net/http"
	"strings"
	"testing"
)

// TestSplitClients: the part each key falls in, for three blocks, as nginx 1.22 answered for the same keys
// (`split_clients "$http_x_k"`, `"${http_x_k}salt"` and one whose parts leave 84.5% without a value).
func TestSplitClients(t *testing.T) {
	tab := NewTable()
	build := func(key, lines string) Var {
		t.Helper()
		name := "v" + string(rune('a'+len(tab.users)))
		k, err := Compile(key, tab)
		if err != nil {
			t.Fatal(err)
		}
		s := NewSplitClients(k)
		for _, l := range strings.Split(lines, ";") {
			f := strings.Fields(l)
			if err := s.Add(f[0], f[1]); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tab.DeclareMap(name, s); err != nil {
			t.Fatal(err)
		}
		return mustLookup(t, tab, name)
	}
	vs := build("$http_x_k", "0.5% a; 2% b; 10% c; 33.33% d; * e")
	vt := build("${http_x_k}salt", "50% x; 50% y")
	vu := build("$http_x_k", "10% p; .5% r; 5.% s")
	for _, tc := range []struct{ key, s, t, u string }{
		{"", "a", "y", "p"}, {"a", "e", "x", ""}, {"ab", "c", "y", "r"}, {"abc", "c", "y", "p"},
		{"abcd", "d", "x", "s"}, {"abcde", "d", "x", ""}, {"127.0.0.1", "e", "x", ""}, {"user42", "e", "x", ""},
		{strings.Repeat("x", 100), "d", "x", "s"}, {"4St'*e-Ok(a<%,XV)?,g", "e", "y", ""},
		{"(<E1@SS`+6ZTgD2XgD{VNxQ>4+74>u>", "c", "x", "p"}, {",}S/T+}561$4l/t3om]uM", "c", "y", "s"},
		{"Joanb:yDZbe^a@zcBh:Z2V0SYI*v", "d", "y", "s"}, {")", "d", "x", ""}, {"C#r,", "c", "x", "s"},
		{"user31", "b", "y", "p"}, {"user38", "b", "y", "p"}, {"user82", "a", "x", "p"}, {"user351", "a", "y", "p"},
	} {
		r := &Request{HTTP: &http.Request{Header: http.Header{"X-K": {tc.key}}}}
		if s, tt, u := r.Value(vs), r.Value(vt), r.Value(vu); s != tc.s || tt != tc.t || u != tc.u {
			t.Errorf("%q: %s %s %q, want %s %s %q", tc.key, s, tt, u, tc.s, tc.t, tc.u)
		}
	}
}

// TestSplitClientsErrors: the lines nginx 1.22 refuses (each error observed from nginx -t).
func TestSplitClientsErrors(t *testing.T) {
	for _, tc := range []struct{ lines, want string }{
		{"50% a; 51% b", "percent total is greater than 100%"},
		{"* a; 5% b", "percent total is greater than 100%"},
		{"0.005% a", `invalid percent value "0.005%"`},
		{"0% a", `invalid percent value "0%"`},
		{"5 a", `invalid percent value "5"`},
		{"-5% a", `invalid percent value "-5%"`},
	} {
		s := NewSplitClients(nil)
		var err error
		for _, l := range strings.Split(tc.lines, ";") {
			f := strings.Fields(l)
			if err = s.Add(f[0], f[1]); err != nil {
				break
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.lines, err, tc.want)
		}
	}
	for _, ok := range []string{"50% a; 50% b", "* a; * b", "100% a; * b", "33.33% a", ".5% a", "5.% a"} {
		s := NewSplitClients(nil)
		for _, l := range strings.Split(ok, ";") {
			f := strings.Fields(l)
			if err := s.Add(f[0], f[1]); err != nil {
				t.Errorf("%q: %v (nginx accepts it)", ok, err)
			}
		}
	}
}
