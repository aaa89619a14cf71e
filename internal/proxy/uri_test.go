package proxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/route"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// TestRequestURI mirrors nginx's proxy_pass URI rules.
func TestRequestURI(t *testing.T) {
	tests := []struct {
		name       string
		raw        string // request target as sent
		norm       string // $uri after normalisation (and rewrite)
		mod        route.Modifier
		pattern    string
		hasURI     bool
		uri        string
		uriChanged bool
		want       string
	}{
		{"no URI part passes the request unchanged", "/wss/chat?x=1", "/wss/chat", route.Prefix, "/wss", false, "", false, "/wss/chat?x=1"},
		{"no URI part keeps harmless escaping", "/a%20b", "/a b", route.Prefix, "/", false, "", false, "/a%20b"},
		{"URI part replaces the prefix", "/name/x/y?q", "/name/x/y", route.Prefix, "/name/", true, "/remote/", false, "/remote/x/y?q"},
		{"URI slash only", "/app/page", "/app/page", route.Prefix, "/app/", true, "/", false, "/page"},
		{"URI part without trailing slash", "/app/page", "/app/page", route.Prefix, "/app", true, "/base", false, "/base/page"},
		{"exact location", "/x", "/x", route.Exact, "/x", true, "/y", false, "/y"},
		{"dot segments are sent resolved", "/a/../b/c", "/b/c", route.Prefix, "/", false, "", false, "/b/c"},
		{"merged slashes are sent merged", "/a//b", "/a/b", route.Prefix, "/", false, "", false, "/a/b"},
		{"encoded slash is sent as matched", "/a%2Fb", "/a/b", route.Prefix, "/", false, "", false, "/a/b"},
		{"rewritten URI passes whole", "/old/x", "/new/x", route.Prefix, "/old/", true, "/ignored/", true, "/new/x"},
		{"regex location passes the request", "/x.php?a=b", "/x.php", route.Regex, `\.php$`, false, "", false, "/x.php?a=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + tt.raw + " HTTP/1.1\r\nHost: h\r\n\r\n")))
			if err != nil {
				t.Fatal(err)
			}
			v := &vars.Request{HTTP: r, URI: tt.norm, Args: r.URL.RawQuery}
			pr := &Request{R: r, V: v, Loc: &config.Location{Modifier: tt.mod, Pattern: tt.pattern}, URIChanged: tt.uriChanged}
			if got := requestURI(pr, tt.hasURI, tt.uri); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRemoveHopHeaders(t *testing.T) {
	h := http.Header{
		"Connection":       {"keep-alive, X-Secret", "close"},
		"X-Secret":         {"1"},
		"Keep-Alive":       {"timeout=5"},
		"Te":               {"trailers"},
		"Proxy-Connection": {"keep-alive"},
		"Upgrade":          {"h2c"},
		"X-Kept":           {"yes"},
	}
	RemoveHopHeaders(h)
	if len(h) != 1 || h.Get("X-Kept") != "yes" {
		t.Fatalf("left %v", h)
	}
}

// isHop and hiddenDefault answer as a case-insensitive search of their lists, for every spelling.
func TestHeaderSets(t *testing.T) {
	for _, tc := range []struct {
		list []string
		is   func(string) bool
	}{{hopHeaders, isHop}, {hiddenByDefault, hiddenDefault}} {
		for _, name := range append(append([]string{}, tc.list...), "Content-Type", "X-Real-Ip", "Dates", "Te-", "") {
			for _, k := range []string{name, strings.ToLower(name), strings.ToUpper(name), http.CanonicalHeaderKey(name)} {
				if got, want := tc.is(k), httpsyntax.ContainsFold(tc.list, k); got != want {
					t.Errorf("%q: %v, want %v", k, got, want)
				}
			}
		}
	}
}
