package vars

import (
	"net/http"
	"strings"
	"testing"
)

// buildMap declares and builds `map SOURCE $name { entries }` the way the config loader does.
func buildMap(t testing.TB, tab *Table, source, name string, hostnames, volatile bool, entries ...MapEntry) Var {
	t.Helper()
	if _, err := tab.Declare(name); err != nil {
		t.Fatal(err)
	}
	src, err := Compile(source, tab)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMap(src, entries, hostnames, tab)
	if err != nil {
		t.Fatal(err)
	}
	m.SetVolatile(volatile)
	if _, err := tab.DeclareMap(name, m); err != nil {
		t.Fatal(err)
	}
	return mustLookup(t, tab, name)
}

func reqWithHeaders(kv ...string) *Request {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	host := h.Get("Host")
	h.Del("Host")
	return &Request{HTTP: &http.Request{Header: h, Host: host}}
}

// The official WebSocket proxying recipe.
func TestMapWebSocketRecipe(t *testing.T) {
	tab := NewTable()
	buildMap(t, tab, "$http_upgrade", "connection_upgrade", false, false,
		MapEntry{"default", "upgrade"}, MapEntry{"", "close"})
	tp, err := Compile("$connection_upgrade", tab)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		upgrade []string
		want    string
	}{
		{nil, "close"},
		{[]string{"websocket"}, "upgrade"},
		{[]string{"WebSocket"}, "upgrade"},
		{[]string{""}, "close"},
	} {
		r := &Request{HTTP: &http.Request{Header: http.Header{}}}
		if tt.upgrade != nil {
			r.HTTP.Header["Upgrade"] = tt.upgrade
		}
		if got := tp.Eval(r); got != tt.want {
			t.Errorf("Upgrade %q: $connection_upgrade = %q, want %q", tt.upgrade, got, tt.want)
		}
	}
}

func TestMapMatching(t *testing.T) {
	tab := NewTable()
	mobile := buildMap(t, tab, "$http_user_agent", "mobile", false, false,
		MapEntry{"default", "0"},
		MapEntry{"~Opera Mini", "1"},
		MapEntry{"~*iphone", "2"},
		MapEntry{"Exact-Agent", "exact"},
		MapEntry{`\default`, "literal-default"},
		MapEntry{`\~tilde`, "literal-tilde"},
		MapEntry{"~^Mozilla/(\\d+)\\.(?<minor>\\d+)", "moz-$1-$minor"},
	)
	for _, tt := range []struct{ ua, want string }{
		{"Opera Mini/7", "1"},
		{"opera mini/7", "0"}, // "~" is case-sensitive
		{"Mozilla (IPHONE)", "2"},
		{"exact-agent", "exact"}, // exact strings ignore case
		{"EXACT-AGENT", "exact"},
		{"Exact-Agent2", "0"},
		{"default", "literal-default"},
		{"~tilde", "literal-tilde"},
		{"Mozilla/5.0 (X11)", "moz-5-0"},
		{"", "0"},
	} {
		r := reqWithHeaders("User-Agent", tt.ua)
		if got := r.Value(mobile); got != tt.want {
			t.Errorf("UA %q: $mobile = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

func TestMapHostnames(t *testing.T) {
	tab := NewTable()
	name := buildMap(t, tab, "$http_host", "name", true, false,
		MapEntry{"default", "0"},
		MapEntry{"example.com", "1"},
		MapEntry{"*.example.com", "2"},
		MapEntry{"*.deep.example.com", "3"},
		MapEntry{".example.net", "4"},
		MapEntry{"wap.*", "5"},
		MapEntry{"wap.example.*", "6"},
		MapEntry{"~^www\\d*\\.example\\.org$", "7"},
		MapEntry{"www.*", "8"},
	)
	for _, tt := range []struct{ host, want string }{
		{"example.com", "1"},
		{"EXAMPLE.COM.", "1"}, // case and a trailing dot ignored
		{"a.example.com", "2"},
		{"a.b.example.com", "2"},
		{"x.deep.example.com", "3"}, // longest head wildcard
		{"deep.example.com", "2"},
		{"example.net", "4"},
		{"a.example.net", "4"},
		{"wap.foo.org", "5"},
		{"wap.example.co.uk", "6"}, // longest tail wildcard
		{"wap", "0"},
		{"www.a.example.com", "2"}, // head wildcards before tail ones
		{"www.example.org", "8"},   // wildcards before regexes
		{"www1.example.org", "7"},
		{"other.org", "0"},
	} {
		r := reqWithHeaders("Host", tt.host)
		if got := r.Value(name); got != tt.want {
			t.Errorf("host %q: $name = %q, want %q", tt.host, got, tt.want)
		}
	}
	// Configuration order does not matter: a wildcard wins over an earlier regex.
	tab2 := NewTable()
	v := buildMap(t, tab2, "$http_host", "n", true, false,
		MapEntry{"~^www\\d+\\.example\\.org$", "7"}, MapEntry{"*.example.org", "x"})
	if got := reqWithHeaders("Host", "www1.example.org").Value(v); got != "x" {
		t.Errorf("wildcard should win over regex, got %q", got)
	}
	// Without hostnames, '*' keys are plain strings.
	tab3 := NewTable()
	plain := buildMap(t, tab3, "$http_host", "p", false, false, MapEntry{"*.example.com", "star"})
	if got := reqWithHeaders("Host", "a.example.com").Value(plain); got != "" {
		t.Errorf("non-hostnames map matched a wildcard: %q", got)
	}
	if got := reqWithHeaders("Host", "*.example.com").Value(plain); got != "star" {
		t.Errorf("non-hostnames map literal '*' key: %q", got)
	}
}

func TestMapCapturesAndVariables(t *testing.T) {
	tab := NewTable()
	if _, err := tab.Declare("suffix"); err != nil {
		t.Fatal(err)
	}
	app := buildMap(t, tab, "$uri", "backend", false, false,
		MapEntry{"default", "static$suffix"},
		MapEntry{"~^/(?<app>[a-z]+)/(\\d+)", "$app-$2"},
	)
	// The map's named capture is usable elsewhere once the map has been evaluated, as in nginx.
	after, err := Compile("$backend|$app|$1", tab)
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{URI: "/shop/17/x"}
	if got := after.Eval(r); got != "shop-17|shop|shop" {
		t.Errorf("got %q", got)
	}
	r2 := &Request{URI: "/", Captures: []string{"/", "keep"}}
	sfx, _ := tab.Declare("suffix")
	r2.Set(sfx, "-v2")
	if got := r2.Value(app); got != "static-v2" {
		t.Errorf("default with variable: %q", got)
	}
	if r2.Captures[1] != "keep" {
		t.Errorf("a non-matching map replaced the captures: %q", r2.Captures)
	}
}

func TestMapCachingAndVolatile(t *testing.T) {
	tab := NewTable()
	cached := buildMap(t, tab, "$http_x_mode", "cached", false, false, MapEntry{"a", "A"}, MapEntry{"b", "B"})
	volatile := buildMap(t, tab, "$http_x_mode", "vol", false, true, MapEntry{"a", "A"}, MapEntry{"b", "B"})
	r := reqWithHeaders("X-Mode", "a")
	if r.Value(cached) != "A" || r.Value(volatile) != "A" {
		t.Fatalf("first read wrong")
	}
	r.HTTP.Header.Set("X-Mode", "b")
	if got := r.Value(cached); got != "A" {
		t.Errorf("cached map re-evaluated within a request: %q", got)
	}
	if got := r.Value(volatile); got != "B" {
		t.Errorf("volatile map was cached: %q", got)
	}
	// Set overrides a map for the rest of the request.
	idx, _ := tab.Declare("cached")
	r.Set(idx, "forced")
	if got := r.Value(cached); got != "forced" {
		t.Errorf("set on a map variable: %q", got)
	}
	// A new request evaluates afresh.
	if got := reqWithHeaders("X-Mode", "b").Value(cached); got != "B" {
		t.Errorf("new request: %q", got)
	}
}

func TestMapForwardReferenceAndCycle(t *testing.T) {
	tab := NewTable()
	// Both names declared first, so each map may name the other.
	for _, n := range []string{"a", "b", "self"} {
		if _, err := tab.Declare(n); err != nil {
			t.Fatal(err)
		}
	}
	buildMap(t, tab, "$http_x", "a", false, false, MapEntry{"default", "[$b]"})
	buildMap(t, tab, "$uri", "b", false, false, MapEntry{"/", "root"}, MapEntry{"default", "other"})
	self := buildMap(t, tab, "$self", "self", false, false, MapEntry{"default", "x$self"})
	r := reqWithHeaders()
	r.URI = "/"
	if got := r.Value(mustLookup(t, tab, "a")); got != "[root]" {
		t.Errorf("$a = %q", got)
	}
	if got := r.Value(self); got != "x" {
		t.Errorf("a self-referencing map should read itself as empty, got %q", got)
	}
}

func TestMapErrors(t *testing.T) {
	tab := NewTable()
	src, _ := Compile("$http_host", tab)
	tests := []struct {
		desc    string
		hosts   bool
		entries []MapEntry
		want    string
	}{
		{"duplicate exact key (case-insensitive)", false,
			[]MapEntry{{"foo", "1"}, {"FOO", "2"}}, `conflicting parameter "FOO"`},
		{"duplicate default", false,
			[]MapEntry{{"default", "1"}, {"default", "2"}}, "duplicate default map parameter"},
		{"bad regex", false,
			[]MapEntry{{"~(unclosed", "1"}}, `invalid regex "~(unclosed"`},
		{"unsupported PCRE syntax", false,
			[]MapEntry{{"~^(?!www)", "1"}}, `invalid regex "~^(?!www)"`},
		{"unknown variable in value", false,
			[]MapEntry{{"a", "$nope"}}, `unknown "nope" variable`},
		{"bad wildcard", true,
			[]MapEntry{{"www.*.com", "1"}}, `invalid hostname or wildcard "www.*.com"`},
		{"dot form conflicts with exact", true,
			[]MapEntry{{"example.com", "1"}, {".example.com", "2"}}, `conflicting parameter ".example.com"`},
		{"duplicate wildcard", true,
			[]MapEntry{{"*.example.com", "1"}, {".example.com", "2"}}, `conflicting parameter ".example.com"`},
		{"named capture shadows a built-in", false,
			[]MapEntry{{"~(?<host>.*)", "1"}}, `the duplicate "host" variable`},
	}
	for _, tt := range tests {
		_, err := NewMap(src, tt.entries, tt.hosts, tab)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.desc, err, tt.want)
		}
	}
	m, err := NewMap(src, nil, false, tab)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.DeclareMap("m", m); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.DeclareMap("M", m); err == nil {
		t.Error("second map for the same variable accepted")
	}
	if _, err := tab.DeclareMap("uri", m); err == nil {
		t.Error("map onto a built-in accepted")
	}
	// A map with no entries and no default yields "".
	if got := reqWithHeaders("Host", "x").Value(mustLookup(t, tab, "m")); got != "" {
		t.Errorf("empty map = %q", got)
	}
}
