package proxy

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// TestRewriteCookieFlags: proxy_cookie_flags (with proxy_cookie_domain and proxy_cookie_path, which share the
// pass over Set-Cookie) as nginx 1.22 answered on the same rules: "proxy_cookie_flags one httponly;
// proxy_cookie_flags ~^t secure samesite=strict; proxy_cookie_flags ~ nosecure samesite=lax;" (flags), and
// "proxy_cookie_domain a.b c.d; proxy_cookie_path /p /q;" (domain).
func TestRewriteCookieFlags(t *testing.T) {
	flags := []config.CookieFlags{
		{Cookie: config.CookieRewrite{From: "one"}, Flags: config.CookieHTTPOnly},
		{Cookie: config.CookieRewrite{From: "~^t", FromRe: regexp.MustCompile("(?i)^t")}, Flags: config.CookieSecure | config.CookieSameSiteStrict},
		{Cookie: config.CookieRewrite{From: "~", FromRe: regexp.MustCompile("(?i)")}, Flags: config.CookieNoSecure | config.CookieSameSiteLax},
	}
	lit := func(s string) *vars.Template {
		tp, err := vars.Compile(s, vars.NewTable())
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	domain := config.LocConf{
		ProxyCookieDomain: config.Opt[[]config.CookieRewrite]{V: []config.CookieRewrite{{From: "a.b", To: lit("c.d")}}, Set: true},
		ProxyCookiePath:   config.Opt[[]config.CookieRewrite]{V: []config.CookieRewrite{{From: "/p", To: lit("/q")}}, Set: true},
	}
	tests := []struct {
		name     string
		conf     config.LocConf
		in, want string
	}{
		{"httponly appended", config.LocConf{}, "one=1; Path=/", "one=1; Path=/; HttpOnly"},
		{"present flag kept as written", config.LocConf{}, "one=1;httponly", "one=1; httponly"},
		{"name without case", config.LocConf{}, "ONE=1", "ONE=1; HttpOnly"},
		{"regex without case, samesite replaced", config.LocConf{}, "Tx=1; SameSite=None", "Tx=1; SameSite=Strict; Secure"},
		{"replaced in place", config.LocConf{}, "t=2; SameSite=Lax;SECURE", "t=2; SameSite=Strict; SECURE"},
		{"removed, spaces normalised", config.LocConf{}, "b=1;  Secure ; x=y=z; flag", "b=1; x=y=z; flag; SameSite=Lax"},
		{"samesite without value", config.LocConf{}, "a=1; samesite", "a=1; SameSite=Lax"},
		{"not a cookie", config.LocConf{}, "noeq;  secure", "noeq;  secure"},
		{"every domain and path", domain, "a=1;Path=/p;  Domain=A.b;domain=.a.b", "a=1; Path=/q; Domain=c.d; domain=.c.d"},
		{"no match keeps the bytes", domain, "b=1;  Domain=x", "b=1;  Domain=x"},
		{"path prefix", domain, "c=1; path=/px; Path=/p", "c=1; path=/qx; Path=/q"},
		{"empty cookie value is a cookie", domain, "e=; domain=a.b", "e=; domain=c.d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.conf
			if !c.ProxyCookieDomain.Set {
				c.ProxyCookieFlags = config.Opt[[]config.CookieFlags]{V: flags, Set: true}
			}
			pr := &Request{Conf: &c, V: &vars.Request{}}
			h := http.Header{"Set-Cookie": {tt.in}}
			rewriteCookies(h, pr)
			if got := strings.Join(h["Set-Cookie"], "\n"); got != tt.want {
				t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
