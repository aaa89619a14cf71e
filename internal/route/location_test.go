package route

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// loc builds a location whose Value names it in test expectations.
func loc(m Modifier, pattern, value string, children ...*Location[string]) *Location[string] {
	return &Location[string]{Modifier: m, Pattern: pattern, Value: value, Children: children}
}

func mustCompile(t testing.TB, locs ...*Location[string]) *Matcher[string] {
	t.Helper()
	m, err := Compile(locs)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return m
}

// want is the expected outcome of one Match: the Value of the location ("" for no match).
type want struct {
	path     string
	value    string
	captures []string
	redirect bool
}

func checkMatches(t *testing.T, m *Matcher[string], tests []want) {
	t.Helper()
	for _, tt := range tests {
		res, ok := m.Match(tt.path)
		got := ""
		if ok {
			got = res.Loc.Value
		}
		if got != tt.value || ok != (tt.value != "") {
			t.Errorf("Match(%q) = %q (ok=%v), want %q", tt.path, got, ok, tt.value)
			continue
		}
		if !reflect.DeepEqual(res.Captures, tt.captures) {
			t.Errorf("Match(%q).Captures = %q, want %q", tt.path, res.Captures, tt.captures)
		}
		if res.Redirect != tt.redirect {
			t.Errorf("Match(%q).Redirect = %v, want %v", tt.path, res.Redirect, tt.redirect)
		}
	}
}

// The example from http://nginx.org/en/docs/http/ngx_http_core_module.html#location.
func TestMatchNginxExample(t *testing.T) {
	m := mustCompile(t,
		loc(Exact, "/", "A"),
		loc(Prefix, "/", "B"),
		loc(Prefix, "/documents/", "C"),
		loc(PrefixNoRegex, "/images/", "D"),
		loc(RegexCaseless, `\.(gif|jpg|jpeg)$`, "E"),
	)
	checkMatches(t, m, []want{
		{path: "/", value: "A"},
		{path: "/index.html", value: "B"},
		{path: "/documents/document.html", value: "C"},
		{path: "/images/1.gif", value: "D"},
		{path: "/documents/1.jpg", value: "E", captures: []string{".jpg", "jpg"}},
		{path: "/documents/1.JPG", value: "E", captures: []string{".JPG", "JPG"}},
	})
}

func TestMatchNested(t *testing.T) {
	tests := []struct {
		name  string
		locs  []*Location[string]
		cases []want
	}{{
		name: "nested regex is tried before the outer one",
		locs: []*Location[string]{
			loc(Prefix, "/", "root", loc(Regex, `\.php$`, "inner-php")),
			loc(Regex, `\.php$`, "outer-php"),
		},
		cases: []want{
			{path: "/x.php", value: "inner-php", captures: []string{".php"}},
			{path: "/x.html", value: "root"},
		},
	}, {
		name: "deepest prefix, regexes of each level from the inside out",
		locs: []*Location[string]{
			loc(Prefix, "/a/", "a",
				loc(Prefix, "/a/b/", "ab"),
				loc(Regex, `\.css$`, "a-css"),
			),
			loc(Regex, `\.(css|js)$`, "top"),
		},
		cases: []want{
			{path: "/a/b/x", value: "ab"},
			{path: "/a/x", value: "a"},
			{path: "/a/b/x.css", value: "a-css", captures: []string{".css"}},
			{path: "/a/b/x.js", value: "top", captures: []string{".js", "js"}},
			{path: "/b/x.css", value: "top", captures: []string{".css", "css"}},
			{path: "/b/x", value: ""},
		},
	}, {
		// nginx: ^~ only skips the regexes at its own level; the outer level's still run.
		name: "nested ^~ skips sibling regexes only",
		locs: []*Location[string]{
			loc(Prefix, "/", "root",
				loc(PrefixNoRegex, "/static/", "static"),
				loc(Regex, `\.css$`, "inner-css"),
			),
			loc(Regex, `\.css$`, "outer-css"),
		},
		cases: []want{
			{path: "/static/a.css", value: "outer-css", captures: []string{".css"}},
			{path: "/static/a.txt", value: "static"},
			{path: "/a.css", value: "inner-css", captures: []string{".css"}},
		},
	}, {
		name: "outer ^~ still searches its own nested locations",
		locs: []*Location[string]{
			loc(PrefixNoRegex, "/img/", "img", loc(Regex, `\.png$`, "img-png")),
			loc(Regex, `\.(png|gif)$`, "top"),
		},
		cases: []want{
			{path: "/img/a.png", value: "img-png", captures: []string{".png"}},
			{path: "/img/a.gif", value: "img"},
			{path: "/x/a.gif", value: "top", captures: []string{".gif", "gif"}},
		},
	}, {
		name: "nested exact wins at once",
		locs: []*Location[string]{
			loc(Prefix, "/app/", "app", loc(Exact, "/app/health", "health")),
			loc(Regex, `health`, "re"),
		},
		cases: []want{
			{path: "/app/health", value: "health"},
			{path: "/app/healthz", value: "re", captures: []string{"health"}},
		},
	}, {
		name: "a regex location's nested locations are searched after it matches",
		locs: []*Location[string]{
			loc(Regex, `^/api/(\w+)`, "api", loc(Regex, `\.(json)$`, "json")),
		},
		cases: []want{
			{path: "/api/x.json", value: "json", captures: []string{".json", "json"}},
			{path: "/api/x", value: "api", captures: []string{"/api/x", "x"}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMatches(t, mustCompile(t, tt.locs...), tt.cases)
		})
	}
}

func TestMatchRegex(t *testing.T) {
	m := mustCompile(t,
		loc(Prefix, "/", "root"),
		loc(Regex, `^/user/(\d+)/(?<tab>\w+)$`, "user"),
		loc(Regex, `^/user/`, "user-any"),
		loc(Regex, `\.JPG$`, "jpg-sensitive"),
		loc(RegexCaseless, `\.PNG$`, "png-caseless"),
		loc(Regex, `^/p/(?P<a>x)?(y)`, "optional"),
	)
	checkMatches(t, m, []want{
		{path: "/user/42/posts", value: "user", captures: []string{"/user/42/posts", "42", "posts"}},
		{path: "/user/42", value: "user-any", captures: []string{"/user/"}}, // first in config order that matches
		{path: "/a.jpg", value: "root"},
		{path: "/a.JPG", value: "jpg-sensitive", captures: []string{".JPG"}},
		{path: "/a.png", value: "png-caseless", captures: []string{".png"}},
		{path: "/p/y", value: "optional", captures: []string{"/p/y", "", "y"}}, // unmatched group is ""
	})
	res, _ := m.Match("/user/7/x")
	if want := []string{"", "", "tab"}; !reflect.DeepEqual(res.Names, want) {
		t.Errorf("Names = %q, want %q", res.Names, want)
	}
	if res, _ := m.Match("/index.html"); res.Names != nil || res.Captures != nil {
		t.Errorf("prefix match has Captures %q Names %q, want nil", res.Captures, res.Names)
	}
}

func TestMatchPrefixes(t *testing.T) {
	tests := []struct {
		name  string
		locs  []*Location[string]
		cases []want
	}{{
		name: "^~ beats regex only when it is the longest prefix",
		locs: []*Location[string]{
			loc(PrefixNoRegex, "/a/", "a"),
			loc(Prefix, "/a/b/", "ab"),
			loc(Regex, `\.x$`, "x"),
		},
		cases: []want{
			{path: "/a/c.x", value: "a"},
			{path: "/a/b/c.x", value: "x", captures: []string{".x"}},
			{path: "/a/b/c", value: "ab"},
		},
	}, {
		name: "longest prefix among many",
		locs: []*Location[string]{
			loc(Prefix, "/", "/"),
			loc(Prefix, "/a", "/a"),
			loc(Prefix, "/ab", "/ab"),
			loc(Prefix, "/abc/", "/abc/"),
			loc(Prefix, "/abd", "/abd"),
			loc(Prefix, "/b/c/d", "/b/c/d"),
			loc(Prefix, "/b/", "/b/"),
			loc(Prefix, "/b/c/", "/b/c/"),
		},
		cases: []want{
			{path: "/", value: "/"},
			{path: "/x", value: "/"},
			{path: "/a", value: "/a"},
			{path: "/ax", value: "/a"},
			{path: "/ab", value: "/ab"},
			{path: "/abc", value: "/ab"},
			{path: "/abc/", value: "/abc/"},
			{path: "/abc/z", value: "/abc/"},
			{path: "/abdz", value: "/abd"},
			{path: "/b", value: "/"},
			{path: "/b/c", value: "/b/"},
			{path: "/b/c/", value: "/b/c/"},
			{path: "/b/c/dd", value: "/b/c/d"},
		},
	}, {
		name: "exact and prefix of the same string",
		locs: []*Location[string]{
			loc(Prefix, "/x", "prefix"),
			loc(Exact, "/x", "exact"),
			loc(Regex, `^/x`, "re"),
		},
		cases: []want{
			{path: "/x", value: "exact"},
			{path: "/x/", value: "re", captures: []string{"/x"}},
		},
	}, {
		name: "no location matches",
		locs: []*Location[string]{
			loc(Prefix, "/api/", "api"),
			loc(Exact, "/", "home"),
		},
		cases: []want{
			{path: "/api", value: ""},
			{path: "/other", value: ""},
			{path: "/", value: "home"},
		},
	}, {
		name: "matching is case-sensitive",
		locs: []*Location[string]{
			loc(Prefix, "/Tomcat", "tomcat"),
		},
		cases: []want{
			{path: "/Tomcat/x", value: "tomcat"},
			{path: "/tomcat/x", value: ""},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMatches(t, mustCompile(t, tt.locs...), tt.cases)
		})
	}
}

func TestMatchAutoRedirect(t *testing.T) {
	redirecting := func(m Modifier, pattern, value string) *Location[string] {
		l := loc(m, pattern, value)
		l.AutoRedirect = true
		return l
	}
	tests := []struct {
		name  string
		locs  []*Location[string]
		cases []want
	}{{
		name: "prefix location",
		locs: []*Location[string]{
			loc(Prefix, "/", "root"),
			redirecting(Prefix, "/api/", "api"),
			loc(Regex, `^/ap(i)?$`, "re"),
		},
		cases: []want{
			{path: "/api", value: "api", redirect: true}, // beats the shorter prefix and the regex
			{path: "/api/", value: "api"},
			{path: "/api/x", value: "api"},
			{path: "/ap", value: "re", captures: []string{"/ap", ""}},
		},
	}, {
		name: "exact or prefix location on the path itself wins",
		locs: []*Location[string]{
			redirecting(Prefix, "/a/", "a-dir"),
			loc(Exact, "/a", "a-exact"),
			redirecting(Prefix, "/b/", "b-dir"),
			loc(Prefix, "/b", "b-prefix"),
		},
		cases: []want{
			{path: "/a", value: "a-exact"},
			{path: "/b", value: "b-prefix"},
		},
	}, {
		name: "exact location",
		locs: []*Location[string]{
			redirecting(Exact, "/e/", "e"),
			loc(Prefix, "/e/", "e-prefix"),
		},
		cases: []want{
			{path: "/e", value: "e", redirect: true},
			{path: "/e/", value: "e"},
		},
	}, {
		name: "nested",
		locs: []*Location[string]{
			loc(Prefix, "/", "root", redirecting(Prefix, "/svc/", "svc")),
		},
		cases: []want{
			{path: "/svc", value: "svc", redirect: true},
		},
	}, {
		name: "without AutoRedirect",
		locs: []*Location[string]{
			loc(Prefix, "/", "root"),
			loc(Prefix, "/api/", "api"),
		},
		cases: []want{
			{path: "/api", value: "root"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMatches(t, mustCompile(t, tt.locs...), tt.cases)
		})
	}
}

func TestNamed(t *testing.T) {
	fallback := loc(Named, "fallback", "fb")
	m := mustCompile(t, loc(Prefix, "/", "root"), fallback, loc(Named, "other", "o"))
	if l, ok := m.Named("fallback"); !ok || l != fallback {
		t.Errorf("Named(fallback) = %v, %v", l, ok)
	}
	if _, ok := m.Named("missing"); ok {
		t.Error("Named(missing) found a location")
	}
	if _, ok := m.Named("@fallback"); ok {
		t.Error("Named takes the name without '@'")
	}
	// A named location is never selected by path.
	if res, _ := m.Match("fallback"); res.Loc != nil {
		t.Errorf("Match(fallback) = %q", res.Loc.Value)
	}
}

func TestCompileErrors(t *testing.T) {
	type tc struct {
		name string
		locs []*Location[string]
		bad  *Location[string] // the location the error must point at
		msg  string            // the message must contain this
	}
	var tests []tc
	add := func(name string, bad *Location[string], msg string, locs ...*Location[string]) {
		tests = append(tests, tc{name, locs, bad, msg})
	}
	dup := loc(Prefix, "/x", "2")
	add("duplicate prefix", dup, `duplicate location "/x"`, loc(Prefix, "/x", "1"), dup)
	dup = loc(PrefixNoRegex, "/x", "2")
	add("prefix and ^~ of the same path", dup, `duplicate location "/x"`, loc(Prefix, "/x", "1"), dup)
	dup = loc(Exact, "/x", "2")
	add("duplicate exact", dup, `duplicate location "/x"`, loc(Exact, "/x", "1"), loc(Prefix, "/x", "p"), dup)
	dup = loc(Prefix, "/a/b", "2")
	add("duplicate nested", dup, `duplicate location "/a/b"`, loc(Prefix, "/a", "a", loc(Prefix, "/a/b", "1"), dup))
	dup = loc(Named, "n", "2")
	add("duplicate named", dup, `duplicate location "@n"`, loc(Named, "n", "1"), dup)
	bad := loc(Regex, `(`, "r")
	add("bad regex", bad, `invalid regular expression "("`, bad)
	bad = loc(Regex, `^/(?=x)`, "r")
	add("lookahead", bad, "lookahead `(?=` is not supported", bad)
	bad = loc(RegexCaseless, `(?<!x)y`, "r")
	add("negative lookbehind", bad, "negative lookbehind `(?<!` is not supported", bad)
	bad = loc(Regex, `^/(a)\1`, "r")
	add("backreference", bad, "backreference `\\1` is not supported", bad)
	bad = loc(Regex, `^/a++`, "r")
	add("possessive", bad, "possessive quantifier `++` is not supported", bad)
	bad = loc(Prefix, "/x/y", "c")
	add("inside exact", bad, `location "/x/y" cannot be inside the exact location "/x"`, loc(Exact, "/x", "x", bad))
	bad = loc(Regex, `\.php$`, "c")
	add("inside named", bad, `location "\\.php$" cannot be inside the named location "@n"`, loc(Named, "n", "n", bad))
	bad = loc(Named, "inner", "c")
	add("named not at top", bad, `named location "@inner" can be on the server level only`, loc(Prefix, "/", "r", bad))
	bad = loc(Prefix, "/b", "c")
	add("outside parent", bad, `location "/b" is outside location "/a"`, loc(Prefix, "/a", "a", bad))
	bad = loc(Exact, "/b", "c")
	add("exact outside parent", bad, `location "/b" is outside location "/a/"`, loc(PrefixNoRegex, "/a/", "a", bad))
	bad = loc(Prefix, "/x", "c")
	add("prefix inside regex", bad, `location "/x" is outside location "\\.php$"`, loc(Regex, `\.php$`, "a", bad))
	bad = loc(Modifier(42), "/x", "c")
	add("unknown modifier", bad, "unknown modifier Modifier(42)", bad)
	bad = loc(Named, "", "c")
	add("empty name", bad, `invalid location name "@"`, bad)
	add("nil location", nil, "nil location", loc(Prefix, "/", "r"), nil)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Compile(tt.locs)
			var le *LocationError[string]
			if !errors.As(err, &le) {
				t.Fatalf("Compile = %v, %v; want a *LocationError", m, err)
			}
			if le.Loc != tt.bad {
				t.Errorf("error points at %+v, want %+v", le.Loc, tt.bad)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	// Configurations nginx accepts, which must compile.
	tests := map[string][]*Location[string]{
		"exact and prefix of one path": {loc(Exact, "/x", "e"), loc(Prefix, "/x", "p")},
		"same regex twice":             {loc(Regex, `x`, "1"), loc(Regex, `x`, "2")},
		"same path in two levels":      {loc(Prefix, "/a", "a", loc(Prefix, "/a", "a2"))},
		"regex inside prefix":          {loc(Prefix, "/a", "a", loc(RegexCaseless, `^/b`, "b"))},
		"named groups both spellings":  {loc(Regex, `(?<a>x)(?P<b>y)`, "r")},
		"empty list":                   nil,
	}
	for name, locs := range tests {
		if _, err := Compile(locs); err != nil {
			t.Errorf("%s: Compile: %v", name, err)
		}
	}
}

// TestMatchTreeAgainstScan compares the prefix tree with a plain scan over random location sets.
func TestMatchTreeAgainstScan(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	word := func(maxLen int) string {
		const alphabet = "ab/"
		b := []byte{'/'}
		for n := rng.Intn(maxLen); n > 0; n-- {
			b = append(b, alphabet[rng.Intn(len(alphabet))])
		}
		return string(b)
	}
	for round := 0; round < 300; round++ {
		var locs []*Location[string]
		seen := map[string]bool{}
		for n := rng.Intn(30); n > 0; n-- {
			l := loc([]Modifier{Prefix, Exact, PrefixNoRegex}[rng.Intn(3)], word(7), "")
			key := fmt.Sprint(l.Modifier == Exact, l.Pattern)
			if seen[key] {
				continue
			}
			seen[key] = true
			l.Value = fmt.Sprintf("%v%s", l.Modifier, l.Pattern)
			l.AutoRedirect = rng.Intn(3) == 0
			locs = append(locs, l)
		}
		m := mustCompile(t, locs...)
		for i := 0; i < 50; i++ {
			path := word(9)
			wantLoc, wantRedirect := scan(locs, path)
			res, ok := m.Match(path)
			if res.Loc != wantLoc || res.Redirect != wantRedirect || ok != (wantLoc != nil) {
				t.Fatalf("locations %v: Match(%q) = %v (redirect %v), want %v (redirect %v)",
					values(locs), path, value(res.Loc), res.Redirect, value(wantLoc), wantRedirect)
			}
		}
	}
}

// scan is the reference for one level of exact and prefix locations, as nginx's tree behaves.
func scan(locs []*Location[string], path string) (*Location[string], bool) {
	var exact, prefix, longest, redirExact, redirPrefix *Location[string]
	for _, l := range locs {
		switch {
		case l.Pattern == path && l.Modifier == Exact:
			exact = l
		case l.Pattern == path:
			prefix = l
		case l.Pattern == path+"/" && l.Modifier == Exact:
			redirExact = l
		case l.Pattern == path+"/":
			redirPrefix = l
		case l.Modifier != Exact && strings.HasPrefix(path, l.Pattern) && (longest == nil || len(l.Pattern) > len(longest.Pattern)):
			longest = l
		}
	}
	switch {
	case exact != nil:
		return exact, false
	case prefix != nil:
		return prefix, false
	case redirExact != nil && redirExact.AutoRedirect, redirPrefix != nil && redirPrefix.AutoRedirect:
		if redirExact != nil {
			return redirExact, true
		}
		return redirPrefix, true
	}
	return longest, false
}

func value(l *Location[string]) string {
	if l == nil {
		return "<nil>"
	}
	return l.Value
}

func values(locs []*Location[string]) []string {
	var s []string
	for _, l := range locs {
		v := l.Value
		if l.AutoRedirect {
			v += "(redirect)"
		}
		s = append(s, v)
	}
	return s
}

func TestMatchAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	m := mustCompile(t, benchLocations()...)
	for _, path := range []string{"/", "/api/v1/users/42", "/static/js/app.js", "/docs/intro", "/health"} {
		res, _ := m.Match(path)
		if res.Captures != nil {
			t.Fatalf("%s matched a regex; pick a prefix path", path)
		}
		if n := testing.AllocsPerRun(100, func() { m.Match(path) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times, want 0", path, n)
		}
	}
}

// benchLocations is a server with 50 locations of every kind, shaped like a real site.
func benchLocations() []*Location[string] {
	var locs []*Location[string]
	locs = append(locs,
		loc(Exact, "/", "home"),
		loc(Exact, "/health", "health"),
		loc(Prefix, "/", "root"),
		loc(PrefixNoRegex, "/static/", "static"),
		loc(Prefix, "/api/", "api",
			loc(Prefix, "/api/v1/", "v1"),
			loc(Prefix, "/api/v2/", "v2"),
			loc(Regex, `^/api/v\d+/admin`, "admin"),
		),
		loc(Named, "fallback", "fb"),
	)
	for i := 0; i < 36; i++ {
		locs = append(locs, loc(Prefix, fmt.Sprintf("/section%02d/", i), fmt.Sprintf("s%d", i)))
	}
	for _, ext := range []string{"php", "cgi", "pl", "asp", "jsp"} {
		locs = append(locs, loc(Regex, `\.`+ext+`$`, ext))
	}
	locs = append(locs, loc(RegexCaseless, `\.(gif|jpg|png)$`, "img"))
	return locs
}

func BenchmarkMatch(b *testing.B) {
	m := mustCompile(b, benchLocations()...)
	for _, path := range []string{"/section27/page/index.html", "/static/js/app.js", "/api/v1/users/42", "/x/y.php", "/images/a.jpg"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Match(path)
			}
		})
	}
}
