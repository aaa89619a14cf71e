package route

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func server(value string, names ...string) ServerEntry[string] {
	return ServerEntry[string]{Names: names, Value: value}
}

func mustIndex(t testing.TB, entries ...ServerEntry[string]) *ServerIndex[string] {
	t.Helper()
	ix, err := NewServerIndex(entries)
	if err != nil {
		t.Fatalf("NewServerIndex: %v", err)
	}
	return ix
}

func TestSelect(t *testing.T) {
	type pick struct {
		host, want string
		captures   []string
	}
	tests := []struct {
		name    string
		entries []ServerEntry[string]
		picks   []pick
	}{{
		name: "exact, case-insensitive, port and trailing dot ignored",
		entries: []ServerEntry[string]{
			server("first", "first.test"),
			server("abc", "abc.com", "www.abc.com"),
			server("upper", "UPPER.Example"),
		},
		picks: []pick{
			{host: "abc.com", want: "abc"},
			{host: "ABC.com:443", want: "abc"},
			{host: "www.abc.com.", want: "abc"},
			{host: "upper.example", want: "upper"},
			{host: "other.com", want: "first"}, // no Default: the first entry
		},
	}, {
		name: "leading wildcard: longest wins, any depth, not the bare domain",
		entries: []ServerEntry[string]{
			server("default"),
			server("org", "*.org"),
			server("example", "*.example.org"),
			server("sub", "*.sub.example.org"),
		},
		picks: []pick{
			{host: "www.example.org", want: "example"},
			{host: "a.b.example.org", want: "example"},
			{host: "x.sub.example.org", want: "sub"},
			{host: "sub.example.org", want: "example"},
			{host: "example.org", want: "org"},
			{host: "org", want: "default"},
		},
	}, {
		name: "special .example.com matches the domain and its subdomains",
		entries: []ServerEntry[string]{
			server("default"),
			server("dot", ".example.com"),
			server("www", "www.example.com"),
			server("deeper", "*.api.example.com"),
		},
		picks: []pick{
			{host: "example.com", want: "dot"},
			{host: "a.example.com", want: "dot"},
			{host: "www.example.com", want: "www"}, // exact beats wildcard
			{host: "v1.api.example.com", want: "deeper"},
			{host: "api.example.com", want: "dot"},
			{host: "notexample.com", want: "default"},
		},
	}, {
		name: "trailing wildcard: longest wins, needs something after the dot",
		entries: []ServerEntry[string]{
			server("default"),
			server("www", "www.*"),
			server("wwwex", "www.example.*"),
		},
		picks: []pick{
			{host: "www.example.com", want: "wwwex"},
			{host: "www.example.co.uk", want: "wwwex"},
			{host: "www.other.com", want: "www"},
			{host: "www.example", want: "www"},
			{host: "www", want: "default"},
		},
	}, {
		name: "priority: exact, leading, trailing, regex, default",
		entries: []ServerEntry[string]{
			server("regex", `~^(?<sub>\w+)\.example\.(com|net)$`),
			server("tail", "mail.*"),
			server("head", "*.example.com"),
			server("exact", "mail.example.com"),
			{Names: []string{"default.test"}, Default: true, Value: "default"},
		},
		picks: []pick{
			{host: "mail.example.com", want: "exact"},
			{host: "www.example.com", want: "head"},  // leading beats trailing and regex
			{host: "mail.example.net", want: "tail"}, // trailing beats regex
			{host: "www.example.net", want: "regex", captures: []string{"www.example.net", "www", "net"}},
			{host: "WWW.Example.NET:8080", want: "regex", captures: []string{"www.example.net", "www", "net"}},
			{host: "example.org", want: "default"},
		},
	}, {
		name: "regexes in config order",
		entries: []ServerEntry[string]{
			server("default"),
			server("first", `~^a`),
			server("second", `~^ab`, `~.`),
		},
		picks: []pick{
			{host: "abc", want: "first", captures: []string{"a"}},
			{host: "b", want: "second", captures: []string{"b"}},
		},
	}, {
		name: "regex with capitals is caseless",
		entries: []ServerEntry[string]{
			server("default"),
			server("caps", `~^WWW\.`),
		},
		picks: []pick{
			{host: "www.x.com", want: "caps", captures: []string{"www."}},
		},
	}, {
		name: "empty name matches requests without Host",
		entries: []ServerEntry[string]{
			server("named", "example.com"),
			server("nohost", ""),
		},
		picks: []pick{
			{host: "", want: "nohost"},
			{host: "example.com", want: "named"},
			{host: "other", want: "named"},
		},
	}, {
		name: "invalid host goes to the default server",
		entries: []ServerEntry[string]{
			server("first", "a"),
			{Names: []string{"x", ""}, Default: true, Value: "default"},
			server("regex", `~.*`),
		},
		picks: []pick{
			{host: "a..b", want: "default"},
			{host: "a/b", want: "default"},
			{host: "a b", want: "default"},
			{host: "", want: "default"},
			{host: "a", want: "first"},
		},
	}, {
		name: "IPv6 literal",
		entries: []ServerEntry[string]{
			server("default"),
			server("v6", "[::1]"),
		},
		picks: []pick{
			{host: "[::1]:8443", want: "v6"},
			{host: "[::1]", want: "v6"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := mustIndex(t, tt.entries...)
			for _, p := range tt.picks {
				got, caps, _ := ix.Select(p.host)
				if got != p.want {
					t.Errorf("Select(%q) = %q, want %q", p.host, got, p.want)
				}
				if !reflect.DeepEqual(caps, p.captures) {
					t.Errorf("Select(%q) captures = %q, want %q", p.host, caps, p.captures)
				}
			}
		})
	}
}

func TestSelectNames(t *testing.T) {
	ix := mustIndex(t, server("default"), server("user", `~^(?<user>.+)\.example\.net$`))
	v, caps, names := ix.Select("alice.example.net")
	if v != "user" || !reflect.DeepEqual(caps, []string{"alice.example.net", "alice"}) ||
		!reflect.DeepEqual(names, []string{"", "user"}) {
		t.Errorf("Select = %q, %q, %q", v, caps, names)
	}
	if _, caps, names := ix.Select("example.org"); caps != nil || names != nil {
		t.Errorf("default server has captures %q, names %q", caps, names)
	}
}

func TestSelectAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	ix := mustIndex(t,
		server("default"),
		server("exact", "example.com"),
		server("head", "*.example.org"),
		server("tail", "www.example.*"),
		server("regex", `~^(.+)\.example\.net$`),
	)
	for _, host := range []string{"example.com:443", "a.b.example.org", "www.example.io", "nothing.test"} {
		if n := testing.AllocsPerRun(100, func() { ix.Select(host) }); n != 0 {
			t.Errorf("Select(%q) allocates %v times, want 0", host, n)
		}
	}
}

func TestNewServerIndexErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []ServerEntry[string]
		entry   int
		msg     string
	}{
		{"star inside a label", []ServerEntry[string]{server("a"), server("b", "ok.com", "w*.example.com")}, 1, `invalid server name or wildcard "w*.example.com"`},
		{"star in the middle", []ServerEntry[string]{server("a", "www.*.example.com")}, 0, `invalid server name or wildcard "www.*.example.com"`},
		{"two stars", []ServerEntry[string]{server("a", "*.example.*")}, 0, `invalid server name or wildcard "*.example.*"`},
		{"star without dot", []ServerEntry[string]{server("a", "*example.com")}, 0, `server name "*example.com" is invalid`},
		{"lone star", []ServerEntry[string]{server("a", "*")}, 0, `server name "*" is invalid`},
		{"star dot", []ServerEntry[string]{server("a", "*.")}, 0, `invalid server name or wildcard "*."`},
		{"lone dot", []ServerEntry[string]{server("a", ".")}, 0, `server name "." is invalid`},
		{"double dot", []ServerEntry[string]{server("a", "a..b")}, 0, `invalid server name or wildcard "a..b"`},
		{"bad regex", []ServerEntry[string]{server("a", "~(")}, 0, `server name "~(": invalid regular expression "("`},
		{"lookahead", []ServerEntry[string]{server("a", `~^(?!www)`)}, 0, "negative lookahead `(?!` is not supported"},
		{"two defaults", []ServerEntry[string]{{Default: true}, {}, {Default: true}}, 2, "a duplicate default server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewServerIndex(tt.entries)
			var se *ServerError
			if !errors.As(err, &se) {
				t.Fatalf("NewServerIndex error = %v, want a *ServerError", err)
			}
			if se.Entry != tt.entry || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("error = entry %d %q, want entry %d containing %q", se.Entry, se.Msg, tt.entry, tt.msg)
			}
		})
	}
	if _, err := NewServerIndex[string](nil); err == nil {
		t.Error("NewServerIndex(nil) succeeded")
	}
}

func TestServerConflicts(t *testing.T) {
	ix := mustIndex(t,
		server("a", "example.com", "*.example.org", "www.x.*"),
		server("b", "EXAMPLE.com", ".example.org", "www.x.*", ".example.net"),
		server("c", "example.net", "*.example.net"),
	)
	tests := []struct{ host, want string }{
		{"example.com", "a"},
		{"www.example.org", "a"},
		{"example.org", "a"}, // b's ".example.org" was ignored as a whole (default server)
		{"www.x.io", "a"},
		{"example.net", "b"},
		{"a.example.net", "b"},
	}
	for _, tt := range tests {
		if got, _, _ := ix.Select(tt.host); got != tt.want {
			t.Errorf("Select(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
	want := []ServerError{
		{Entry: 1, Msg: `conflicting server name "EXAMPLE.com", ignored`},
		{Entry: 1, Msg: `conflicting server name ".example.org", ignored`},
		{Entry: 1, Msg: `conflicting server name "www.x.*", ignored`},
		{Entry: 2, Msg: `conflicting server name "example.net", ignored`},
		{Entry: 2, Msg: `conflicting server name "*.example.net", ignored`},
	}
	if got := ix.Conflicts(); !reflect.DeepEqual(got, want) {
		t.Errorf("Conflicts() = %+v\nwant %+v", got, want)
	}
}

func TestCleanHost(t *testing.T) {
	tests := []struct {
		in, want string // want "" means invalid
	}{
		{"example.com", "example.com"},
		{"Example.COM:443", "example.com"},
		{"[::1]:8443", "[::1]"},
		{"[::1]", "[::1]"},
		{"[FE80::1]", "[fe80::1]"},
		{"example.com.", "example.com"},
		{"example.com.:80", "example.com"},
		{"127.0.0.1:8080", "127.0.0.1"},
		{".example.com", ".example.com"},
		{"caf\xc3\xa9.fr", "caf\xc3\xa9.fr"},
		{"a..b", ""},
		{"a/b", ""},
		{"a:80/x", ""},
		{"a b", ""},
		{"a\tb", ""},
		{"a\x00b", ""},
		{"a\x7fb", ""},
		{"", ""},
		{".", ""},
		{":80", ""},
	}
	for _, tt := range tests {
		got, ok := CleanHost(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("CleanHost(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func BenchmarkSelect(b *testing.B) {
	entries := []ServerEntry[string]{server("default")}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		entries = append(entries, server(n, n+".example.com", "www."+n+".example.com", "*."+n+".example.org", n+".example.*"))
	}
	entries = append(entries, server("re", `~^(?<user>.+)\.users\.example\.net$`))
	ix := mustIndex(b, entries...)
	for _, host := range []string{"www.d.example.com", "x.y.h.example.org:443", "alice.users.example.net"} {
		b.Run(host, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ix.Select(host)
			}
		})
	}
}

// TestPlainHost: where the table-driven pass takes a Host value, it answers as the full check does; over random
// values from the bytes that matter to either (letters of both cases, digits, dots, colons, brackets, slash,
// space).
func TestPlainHost(t *testing.T) {
	const alphabet = "aZ09-.:[]/ x"
	rng := rand.New(rand.NewPCG(5, 6))
	taken := 0
	for range 300000 {
		b := make([]byte, rng.IntN(14))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		host := string(b)
		name, ok := plainHost(host)
		if !ok {
			continue
		}
		taken++
		if wn, wok := cleanHost(host); name != wn || !wok {
			t.Fatalf("plainHost(%q) = %q, true; cleanHost says %q, %v", host, name, wn, wok)
		}
	}
	for _, host := range []string{"example.com", "127.0.0.1:8080", "a-b.c", "x:"} {
		if _, ok := plainHost(host); !ok {
			t.Errorf("plainHost(%q) not taken", host)
		}
	}
	if taken < 1000 {
		t.Fatalf("only %d values took the plain pass: the comparison proves little", taken)
	}
}
