package vars

import (
	"bufio"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readRequest parses raw HTTP/1.x bytes as the server would.
func readRequest(t testing.TB, raw string) *http.Request {
	t.Helper()
	hr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("ReadRequest: %v", err)
	}
	return hr
}

const rawGet = "GET /path/Caf%C3%A9?a=1&Page=2&empty=&x=%20y HTTP/1.1\r\n" +
	"Host: WWW.Example.COM:8443\r\n" +
	"User-Agent: curl/8.5.0\r\n" +
	"Accept: text/html\r\n" +
	"Accept: application/json\r\n" +
	"Cookie: sid=abc123; Theme = dark\r\n" +
	"Cookie: lang=en\r\n" +
	"X-Forwarded-For: 203.0.113.7\r\n" +
	"X_Real_IP: 6.6.6.6\r\n" +
	"Content-Type: text/plain\r\n" +
	"Content-Length: 0\r\n" +
	"\r\n"

func newTestRequest(t testing.TB) *Request {
	hr := readRequest(t, rawGet)
	return &Request{
		HTTP:             hr,
		Start:            time.Now().Add(-1500 * time.Millisecond),
		ConnID:           42,
		ConnRequests:     3,
		RemoteAddr:       netip.MustParseAddrPort("[::ffff:192.0.2.10]:51234"),
		RealipRemoteAddr: netip.MustParseAddrPort("10.0.0.1:40000"),
		LocalAddr:        netip.MustParseAddrPort("[2001:db8::1]:8443"),
		ServerName:       "example.com",
		Hostname:         "edge-1",
		URI:              "/path/Café",
		Args:             hr.URL.RawQuery,
		DocumentRoot:     "/srv/www",
		Status:           200,
		BodyBytesSent:    1234,
		BytesSent:        1500,
		RequestLength:    321,
		RemoteUser:       "alice",
		ProxyHost:        "backend",
		ProxyPort:        "8080",
		UpstreamAddr:     "127.0.0.1:8080",
		UpstreamStatus:   "200",
		UpstreamHeader:   http.Header{"Server": {"gunicorn"}, "Set-Cookie": {"a=1", "b=2"}},
		ResponseHeader:   http.Header{"Etag": {`"xyz"`}, "Content-Type": {"text/html"}},
	}
}

func TestBuiltins(t *testing.T) {
	tab := NewTable()
	r := newTestRequest(t)
	tests := []struct {
		name, want string
	}{
		{"remote_addr", "192.0.2.10"}, // IPv4-mapped shown as IPv4, like nginx
		{"remote_port", "51234"},
		{"realip_remote_addr", "10.0.0.1"},
		{"realip_remote_port", "40000"},
		{"server_addr", "2001:db8::1"},
		{"server_port", "8443"},
		{"server_name", "example.com"},
		{"server_protocol", "HTTP/1.1"},
		{"host", "www.example.com"},
		{"hostname", "edge-1"},
		{"http_host", "WWW.Example.COM:8443"},
		{"http_user_agent", "curl/8.5.0"},
		{"HTTP_USER_AGENT", "curl/8.5.0"}, // names are case-insensitive
		{"http_accept", "text/html, application/json"},
		{"http_cookie", "sid=abc123; Theme = dark; lang=en"},
		{"http_x_forwarded_for", "203.0.113.7"},
		{"http_x_real_ip", ""}, // "X_Real_IP" has an underscore: ignored, as nginx does by default
		{"http_referer", ""},
		{"sent_http_etag", `"xyz"`},
		{"sent_http_content_type", "text/html"},
		{"upstream_http_server", "gunicorn"},
		{"upstream_http_set_cookie", "a=1, b=2"},
		{"cookie_sid", "abc123"},
		{"cookie_theme", "dark"},
		{"cookie_lang", "en"},
		{"cookie_missing", ""},
		{"arg_a", "1"},
		{"arg_page", "2"}, // argument names match ignoring case
		{"arg_empty", ""},
		{"arg_x", "%20y"}, // raw, not unescaped
		{"args", "a=1&Page=2&empty=&x=%20y"},
		{"query_string", "a=1&Page=2&empty=&x=%20y"},
		{"is_args", "?"},
		{"request_uri", "/path/Caf%C3%A9?a=1&Page=2&empty=&x=%20y"},
		{"uri", "/path/Café"},
		{"document_uri", "/path/Café"},
		{"document_root", "/srv/www"},
		{"request_filename", "/srv/www/path/Café"},
		{"request_method", "GET"},
		{"request", "GET /path/Caf%C3%A9?a=1&Page=2&empty=&x=%20y HTTP/1.1"},
		{"scheme", "http"},
		{"https", ""},
		{"status", "200"},
		{"body_bytes_sent", "1234"},
		{"bytes_sent", "1500"},
		{"request_length", "321"},
		{"connection", "42"},
		{"connection_requests", "3"},
		{"content_type", "text/plain"},
		{"content_length", "0"},
		{"remote_user", "alice"},
		{"proxy_host", "backend"},
		{"proxy_port", "8080"},
		{"proxy_add_x_forwarded_for", "203.0.113.7, 192.0.2.10"},
		{"upstream_addr", "127.0.0.1:8080"},
		{"upstream_status", "200"},
		{"upstream_response_time", ""},
		{"ssl_protocol", ""},
		{"ssl_cipher", ""},
		{"ssl_server_name", ""},
		{"http2", ""},
		{"fastcgi_script_name", "/path/Café"},
		{"fastcgi_path_info", ""},
		{"binary_remote_addr", "\xc0\x00\x02\x0a"},
		{"pid", strconv.Itoa(os.Getpid())},
		{"nginx_version", "0.1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := tab.Lookup(tt.name)
			if !ok {
				t.Fatalf("Lookup(%q) failed", tt.name)
			}
			if got := r.Value(v); got != tt.want {
				t.Errorf("$%s = %q, want %q", tt.name, got, tt.want)
			}
			tp, err := Compile("<$"+tt.name+">", tab)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(tp.Append(nil, r)); got != "<"+tt.want+">" {
				t.Errorf("Append = %q, want %q", got, "<"+tt.want+">")
			}
		})
	}
}

func TestComputedBuiltins(t *testing.T) {
	tab := NewTable()
	r := newTestRequest(t)
	eval := func(name string) string {
		t.Helper()
		tp, err := Compile("$"+name, tab)
		if err != nil {
			t.Fatal(err)
		}
		return tp.Eval(r)
	}
	if got := eval("request_time"); !regexp.MustCompile(`^1\.[5-9]\d\d$`).MatchString(got) {
		t.Errorf("$request_time = %q, want about 1.500", got)
	}
	before := time.Now()
	msec := eval("msec")
	if !regexp.MustCompile(`^\d{10}\.\d{3}$`).MatchString(msec) {
		t.Fatalf("$msec = %q", msec)
	}
	if f, _ := strconv.ParseFloat(msec, 64); f < float64(before.UnixMilli())/1000-1 || f > float64(time.Now().Unix()+1) {
		t.Errorf("$msec = %q, not now", msec)
	}
	tl := eval("time_local")
	p, err := time.Parse("02/Jan/2006:15:04:05 -0700", tl)
	if err != nil || p.Sub(before).Abs() > 2*time.Second {
		t.Errorf("$time_local = %q (%v), not now in CLF", tl, err)
	}
	iso := eval("time_iso8601")
	p, err = time.Parse("2006-01-02T15:04:05-07:00", iso)
	if err != nil || p.Sub(before).Abs() > 2*time.Second || strings.HasSuffix(iso, "Z") {
		t.Errorf("$time_iso8601 = %q (%v)", iso, err)
	}
	id := eval("request_id")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("$request_id = %q", id)
	}
	if again := eval("request_id"); again != id {
		t.Errorf("$request_id changed within a request: %q then %q", id, again)
	}
	if other := (&Request{}).Value(mustLookup(t, tab, "request_id")); other == id {
		t.Errorf("two requests share $request_id %q", id)
	}
}

func TestTimeFormats(t *testing.T) {
	zone := time.FixedZone("X", -(3*3600 + 30*60))
	tm := time.Date(2026, time.November, 5, 4, 9, 7, 0, zone)
	if got := string(appendTimeLocal(nil, tm)); got != "05/Nov/2026:04:09:07 -0330" {
		t.Errorf("time_local = %q", got)
	}
	if got := string(appendTimeISO8601(nil, tm)); got != "2026-11-05T04:09:07-03:30" {
		t.Errorf("time_iso8601 = %q", got)
	}
	if got := string(appendTimeISO8601(nil, tm.UTC())); got != "2026-11-05T07:39:07+00:00" {
		t.Errorf("time_iso8601 UTC = %q", got)
	}
	for _, tt := range []struct {
		ms   int64
		want string
	}{{0, "0.000"}, {7, "0.007"}, {1234, "1.234"}, {1764046157123, "1764046157.123"}} {
		if got := string(appendMillis(nil, tt.ms)); got != tt.want {
			t.Errorf("appendMillis(%d) = %q, want %q", tt.ms, got, tt.want)
		}
	}
}

func mustLookup(t testing.TB, tab *Table, name string) Var {
	t.Helper()
	v, ok := tab.Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q) failed", name)
	}
	return v
}

// TestRequestVariants covers values that depend on how the request arrived.
func TestRequestVariants(t *testing.T) {
	tab := NewTable()
	tests := []struct {
		desc string
		raw  string
		set  func(*Request)
		tmpl string
		want string
	}{
		{"host from absolute URI wins over Host header",
			"GET http://Upper.Example.org./x HTTP/1.1\r\nHost: other.test\r\n\r\n", nil,
			"$host", "upper.example.org"},
		{"host falls back to server name",
			"GET /x HTTP/1.0\r\n\r\n", func(r *Request) { r.ServerName = "default.test" },
			"$host", "default.test"},
		{"IPv6 host keeps brackets, drops port",
			"GET / HTTP/1.1\r\nHost: [2001:DB8::1]:8080\r\n\r\n", nil,
			"$host", "[2001:db8::1]"},
		{"no query: args empty, is_args empty",
			"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", nil,
			"[$args][$is_args][$arg_a]", "[][][]"},
		{"status before a response",
			"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", func(r *Request) { r.Status = 0 },
			"$status", "000"},
		{"no X-Forwarded-For: just the client",
			"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", func(r *Request) { r.RemoteAddr = netip.MustParseAddrPort("[2001:db8::7]:1") },
			"$proxy_add_x_forwarded_for", "2001:db8::7"},
		{"several X-Forwarded-For lines",
			"GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nX-Forwarded-For: 3.3.3.3\r\n\r\n",
			func(r *Request) { r.RemoteAddr = netip.MustParseAddrPort("127.0.0.1:1") },
			"$proxy_add_x_forwarded_for", "1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1"},
		{"chunked body: Transfer-Encoding visible though Go moves it",
			"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nil,
			"$http_transfer_encoding", "chunked"},
		{"realip_remote_addr defaults to remote_addr",
			"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", func(r *Request) { r.RemoteAddr = netip.MustParseAddrPort("198.51.100.2:9") },
			"$realip_remote_addr:$realip_remote_port", "198.51.100.2:9"},
		{"HTTP/1.0 request line",
			"HEAD /a%20b HTTP/1.0\r\n\r\n", nil,
			"$request|$server_protocol|$request_method", "HEAD /a%20b HTTP/1.0|HTTP/1.0|HEAD"},
		{"fastcgi_script_name set by the handler",
			"GET /index.php/foo HTTP/1.1\r\nHost: a\r\n\r\n",
			func(r *Request) { r.FastCGIScriptName, r.FastCGIPathInfo = "/index.php", "/foo" },
			"$document_root$fastcgi_script_name|$fastcgi_path_info", "/srv/index.php|/foo"},
		{"cookie pairs: ',' ends a name but not a value (nginx)",
			"GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1,b = 2 ;  c=3\r\n\r\n", nil,
			"[$cookie_a][$cookie_b][$cookie_c][$cookie_d]", "[1,b = 2 ][2 ][3][]"},
		{"cookie name must not match a longer name's suffix",
			"GET / HTTP/1.1\r\nHost: a\r\nCookie: xsid=1; sid=2\r\n\r\n", nil,
			"$cookie_sid", "2"},
		{"argument without '=' is not found",
			"GET /?flag&a=x&aa=y HTTP/1.1\r\nHost: a\r\n\r\n", nil,
			"[$arg_flag][$arg_a][$arg_aa]", "[][x][y]"},
		{"http2 cleartext",
			"GET / HTTP/1.1\r\nHost: a\r\n\r\n", func(r *Request) { r.HTTP2 = true },
			"[$http2]", "[h2c]"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			hr := readRequest(t, tt.raw)
			r := &Request{HTTP: hr, Args: hr.URL.RawQuery, URI: hr.URL.Path, DocumentRoot: "/srv"}
			if tt.set != nil {
				tt.set(r)
			}
			tp, err := Compile(tt.tmpl, tab)
			if err != nil {
				t.Fatal(err)
			}
			if got := tp.Eval(r); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.tmpl, got, tt.want)
			}
		})
	}
}

func TestRealpathRoot(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "release-2")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "current")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.EvalSymlinks(real)
	r := &Request{DocumentRoot: link}
	tab := NewTable()
	if got := r.Value(mustLookup(t, tab, "realpath_root")); got != want {
		t.Errorf("$realpath_root = %q, want %q", got, want)
	}
	if got := r.Value(mustLookup(t, tab, "document_root")); got != link {
		t.Errorf("$document_root = %q, want %q", got, link)
	}
}

func TestCaptures(t *testing.T) {
	tab := NewTable()
	re := regexp.MustCompile(`^/(?<app>[a-z]+)/(\d+)(/.*)?$`)
	for _, n := range re.SubexpNames() {
		if n != "" {
			if _, err := tab.Declare(n); err != nil {
				t.Fatal(err)
			}
		}
	}
	tp, err := Compile("$0|$1|$2|${3}|$4|$9|$app|${APP}x|$10", tab)
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{Captures: re.FindStringSubmatch("/shop/42"), CaptureNames: re.SubexpNames()}
	if got, want := tp.Eval(r), "/shop/42|shop|42||||shop|shopx|shop0"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// A `set` of the same name overrides the capture.
	idx, _ := tab.Declare("app")
	r.Set(idx, "override")
	if got, want := tp.Eval(r), "/shop/42|shop|42||||override|overridex|shop0"; got != want {
		t.Errorf("after set: got %q, want %q", got, want)
	}
	// No match at all: everything is empty.
	if got, want := tp.Eval(&Request{}), "|||||||x|0"; got != want {
		t.Errorf("no captures: got %q, want %q", got, want)
	}
}

func TestSet(t *testing.T) {
	tab := NewTable()
	a, err := tab.Declare("backend")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := tab.Declare("Backend"); again != a {
		t.Errorf("Declare not idempotent: %d then %d", a, again)
	}
	var idx []Index
	for i := range 10 { // beyond the inline slots
		x, err := tab.Declare("v" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		idx = append(idx, x)
	}
	argsIdx, err := tab.Declare("args")
	if err != nil {
		t.Fatal(err)
	}
	tp, err := Compile("http://$backend/$v9?$args&$v0", tab)
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{Args: "a=1"}
	if got := tp.Eval(r); got != "http:///?a=1&" {
		t.Errorf("unset: %q", got)
	}
	r.Set(a, "10.0.0.5:80")
	r.Set(idx[9], "nine")
	r.Set(idx[0], "zero")
	r.Set(argsIdx, "b=2")
	if got, want := tp.Eval(r), "http://10.0.0.5:80/nine?b=2&zero"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if r.Args != "b=2" {
		t.Errorf("set $args did not change Args: %q", r.Args)
	}
	// Requests do not share user variables.
	if got := tp.Eval(&Request{}); got != "http:///?&" {
		t.Errorf("fresh request sees values: %q", got)
	}
}

func TestDeclareErrors(t *testing.T) {
	tab := NewTable()
	for _, tt := range []struct{ name, want string }{
		{"host", `the duplicate "host" variable`},
		{"Remote_Addr", `the duplicate "remote_addr" variable`},
		{"", `invalid variable name ""`},
		{"12", `invalid variable name "12"`},
		{"a-b", `invalid variable name "a-b"`},
	} {
		if _, err := tab.Declare(tt.name); err == nil || err.Error() != tt.want {
			t.Errorf("Declare(%q) = %v, want %q", tt.name, err, tt.want)
		}
	}
	// A user variable may shadow a prefix variable, as in nginx.
	if _, err := tab.Declare("http_foo"); err != nil {
		t.Fatal(err)
	}
	if v := mustLookup(t, tab, "http_foo"); v.kind != kUser {
		t.Errorf("declared $http_foo is not the user variable")
	}
}

// TestTableUpstreamTimes: the table notes whether any template reads $upstream_*_time (any case).
func TestTableUpstreamTimes(t *testing.T) {
	tab := NewTable()
	for _, s := range []string{"$remote_addr $upstream_addr $upstream_status", "$upstream_http_server", `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`} {
		if _, err := Compile(s, tab); err != nil {
			t.Fatal(err)
		}
	}
	if tab.UpstreamTimes() {
		t.Fatal("no template reads the times, yet the table says one does")
	}
	if _, err := Compile("took ${UPSTREAM_HEADER_TIME}", tab); err != nil {
		t.Fatal(err)
	}
	if !tab.UpstreamTimes() {
		t.Fatal("a template reads $upstream_header_time, yet the table says none does")
	}
}

// TestDocsCoverBuiltins: every built-in variable and prefix family has exactly one entry in the reference.
func TestDocsCoverBuiltins(t *testing.T) {
	documented := map[string]int{}
	for _, d := range Docs() {
		documented[d.Name]++
		if d.Text == "" {
			t.Errorf("$%s has no text", d.Name)
		}
	}
	want := map[string]bool{}
	for name := range builtins {
		want[name] = true
	}
	for _, p := range prefixes {
		want[p.prefix+"NAME"] = true
	}
	for name := range want {
		if documented[name] != 1 {
			t.Errorf("$%s is documented %d times, want once", name, documented[name])
		}
	}
	for name := range documented {
		if !want[name] {
			t.Errorf("$%s is documented but is not a variable", name)
		}
	}
}
