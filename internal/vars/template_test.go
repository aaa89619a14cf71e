package vars

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"testing"
)

func TestCompile(t *testing.T) {
	tab := NewTable()
	if _, err := tab.Declare("user_var"); err != nil {
		t.Fatal(err)
	}
	r := &Request{
		HTTP:       &http.Request{Host: "example.com", Method: "GET", RequestURI: "/a?b", Proto: "HTTP/1.1", Header: http.Header{}},
		TLS:        nil,
		RemoteAddr: netip.MustParseAddrPort("127.0.0.1:5555"),
		URI:        "/a",
		Args:       "b",
		Captures:   []string{"/abc", "abc"},
	}
	tests := []struct {
		src, want string
		isConst   bool
	}{
		{"", "", true},
		{"plain text", "plain text", true},
		{"cost: 5$", "cost: 5$", true}, // a lone '$' at the end is literal
		{"$", "$", true},
		{"$scheme://$host$request_uri", "http://example.com/a?b", false},
		{"${host}x", "example.comx", false},
		{"${host}${uri}", "example.com/a", false},
		{"[$remote_addr]:$remote_port", "[127.0.0.1]:5555", false},
		{"$uri$is_args$args", "/a?b", false},
		{"/users/$1.html", "/users/abc.html", false},
		{"$1$1", "abcabc", false},
		{"pre-$user_var-post", "pre--post", false},
		{"${user_var}", "", false},
		{"$SCHEME", "http", false},
	}
	for _, tt := range tests {
		tp, err := Compile(tt.src, tab)
		if err != nil {
			t.Errorf("Compile(%q): %v", tt.src, err)
			continue
		}
		if got := tp.Eval(r); got != tt.want {
			t.Errorf("Compile(%q).Eval = %q, want %q", tt.src, got, tt.want)
		}
		if got := string(tp.Append([]byte(">"), r)); got != ">"+tt.want {
			t.Errorf("Compile(%q).Append = %q, want %q", tt.src, got, ">"+tt.want)
		}
		if tp.IsConst() != tt.isConst {
			t.Errorf("Compile(%q).IsConst = %v", tt.src, tp.IsConst())
		}
		if tp.String() != tt.src {
			t.Errorf("String() = %q, want %q", tp.String(), tt.src)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tab := NewTable()
	tests := []struct{ src, want string }{
		{"$foo", `unknown "foo" variable`},
		{"$hostx", `unknown "hostx" variable`},
		{"a $Unknown_Var b", `unknown "unknown_var" variable`},
		{"${nope}", `unknown "nope" variable`},
		{"${host", `the closing bracket in "host" variable is missing`},
		{"${host-x}", `the closing bracket in "host" variable is missing`},
		{"${", `invalid variable name`},
		{"${}", `invalid variable name`},
		{"a$ b", `invalid variable name`},
		{"$-x", `invalid variable name`},
		{"$http_", `unknown "http_" variable`},
		{"$cookie_", `unknown "cookie_" variable`},
	}
	for _, tt := range tests {
		_, err := Compile(tt.src, tab)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Compile(%q) error = %v, want %q", tt.src, err, tt.want)
		}
	}
}

func TestAppendEscaped(t *testing.T) {
	tab := NewTable()
	hr := readRequest(t, "GET /p%01%7F?q=\"x\" HTTP/1.1\r\nHost: a\r\n"+
		"User-Agent: Mozilla \"quoted\" \\back\\ caf\xc3\xa9\r\n\r\n")
	// $uri is the decoded path, so it can hold control bytes.
	r := &Request{HTTP: hr, Args: hr.URL.RawQuery, URI: hr.URL.Path, Status: 404}
	tp, err := Compile(`"$http_user_agent" "$http_referer" $status "$remote_user" "$args" $uri`, tab)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		esc  Escape
		want string
	}{
		{EscapeDefault, `"Mozilla \x22quoted\x22 \x5Cback\x5C caf\xC3\xA9" "-" 404 "-" "q=\x22x\x22" /p\x01\x7F`},
		{EscapeJSON, `"Mozilla \"quoted\" \\back\\ caf` + "\xc3\xa9" + `" "" 404 "" "q=\"x\"" /p\u0001` + "\x7f"},
		{EscapeNone, `"Mozilla "quoted" \back\ caf` + "\xc3\xa9" + `" "" 404 "" "q="x"" /p` + "\x01\x7f"},
	}
	for _, tt := range tests {
		got := string(tp.AppendEscaped([]byte("LOG "), r, tt.esc))
		if got != "LOG "+tt.want {
			t.Errorf("escape %d:\n got %s\nwant %s", tt.esc, got, "LOG "+tt.want)
		}
	}
	// The literal text is not escaped, only the values.
	lit, _ := Compile(`"\ $status`, tab)
	if got := string(lit.AppendEscaped(nil, r, EscapeDefault)); got != `"\ 404` {
		t.Errorf("literal escaped: %q", got)
	}
}

func TestEscapeJSONIsValidJSON(t *testing.T) {
	tab := NewTable()
	tp, err := Compile(`{"ua":"$http_user_agent","uri":"$request_uri"}`, tab)
	if err != nil {
		t.Fatal(err)
	}
	for _, ua := range []string{"plain", "q\"uote", "back\\slash", "tab\tnew", "ctl\x01\x02\x1f", "bs\bff\f"} {
		hr := &http.Request{Header: http.Header{"User-Agent": {ua}}, RequestURI: "/x\"y"}
		out := tp.AppendEscaped(nil, &Request{HTTP: hr}, EscapeJSON)
		var v struct{ UA, URI string }
		if err := json.Unmarshal(out, &v); err != nil {
			t.Errorf("%q: invalid JSON %s: %v", ua, out, err)
			continue
		}
		if v.UA != ua || v.URI != "/x\"y" {
			t.Errorf("%q: round trip gave %q, %q", ua, v.UA, v.URI)
		}
	}
}

// TestEvalNestedAndReset: a template whose map variable evaluates templates of its own (source and value)
// gets every part right while the outer evaluation holds the Request's buffer, and Reset clears the request
// (user variables, map cache, fields) while the buffer is reused.
func TestEvalNestedAndReset(t *testing.T) {
	tab := NewTable()
	buildMap(t, tab, "$remote_addr:$uri", "m", false, false,
		MapEntry{"192.0.2.1:/a", "hit-$remote_port-$uri"}, MapEntry{"default", "miss-$uri"})
	x, err := tab.Declare("x")
	if err != nil {
		t.Fatal(err)
	}
	tp, err := Compile("[$remote_addr|$m|$x|$remote_port]", tab)
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{RemoteAddr: netip.MustParseAddrPort("192.0.2.1:5000"), URI: "/a"}
	r.Set(x, "set")
	for i := 0; i < 3; i++ { // the second and third evaluations reuse the buffer (and the map's cached value)
		if got, want := tp.Eval(r), "[192.0.2.1|hit-5000-/a|set|5000]"; got != want {
			t.Fatalf("evaluation %d = %q, want %q", i, got, want)
		}
	}
	r.Reset()
	if r.URI != "" || r.RemoteAddr.IsValid() {
		t.Fatalf("Reset kept fields: %+v", r)
	}
	r.RemoteAddr, r.URI = netip.MustParseAddrPort("198.51.100.7:6000"), "/b"
	if got, want := tp.Eval(r), "[198.51.100.7|miss-/b||6000]"; got != want {
		t.Fatalf("after Reset = %q, want %q (no user variable or map value of the previous request)", got, want)
	}
}
