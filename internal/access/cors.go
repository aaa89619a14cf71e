// Package access holds the access phase's pieces: CORS and WebSocket origin checks, the real client address
// behind trusted proxies, allow/deny rules, basic authentication and request and connection limits. Each is
// compiled at configuration load time into an immutable value; the only mutable state (limit zones) lives in
// values the server owns per configuration, never in package variables.
package access

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Origins is a compiled list of origins: exact ("https://app.example.org"), wildcard subdomains
// ("https://*.example.org") or any ("*").
type Origins struct {
	Any   bool
	exact map[string]bool
	wild  []wildOrigin // scheme + "://" prefix and ".example.org" suffix (with optional ":port")
}

type wildOrigin struct{ scheme, suffix, port string }

// ParseOrigins compiles origin patterns; an origin with a path, query, user info or a misplaced wildcard is an
// error, so a typo never silently widens the policy.
func ParseOrigins(list []string) (*Origins, error) {
	o := &Origins{exact: map[string]bool{}}
	for _, s := range list {
		if s == "*" {
			o.Any = true
			continue
		}
		u, err := url.Parse(s)
		// (an empty query or fragment, "https://x?" or "http://x#", parses to none: refused by its character,
		// since Match never takes an origin with one)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#") {
			return nil, fmt.Errorf("invalid origin %q: want scheme://host[:port], e.g. https://app.example.org", s)
		}
		host := strings.ToLower(u.Host)
		if !originHost(host) {
			// a browser's Origin names the host in ASCII (an IDN in its xn-- form), never %-escaped
			return nil, fmt.Errorf("invalid origin %q: the host may hold only letters, digits and .-_ (an international name in its xn-- form), a [IPv6] address and a :port", s)
		}
		if strings.Contains(host, "*") {
			rest, ok := strings.CutPrefix(host, "*.")
			if !ok || strings.Contains(rest, "*") || rest == "" {
				return nil, fmt.Errorf("invalid origin %q: a wildcard must be the whole first label (https://*.example.org)", s)
			}
			w := wildOrigin{scheme: u.Scheme}
			w.suffix, w.port = rest, ""
			if h, p, ok := strings.Cut(rest, ":"); ok {
				w.suffix, w.port = h, p
			}
			w.suffix = "." + w.suffix
			o.wild = append(o.wild, w)
			continue
		}
		o.exact[u.Scheme+"://"+host] = true
	}
	return o, nil
}

// originHost reports whether host (lower case, with its port) is made of the characters a browser's Origin
// header can hold there, or a wildcard.
func originHost(host string) bool {
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']', c == '*':
		default:
			return false
		}
	}
	return true
}

// Match reports whether the Origin header value origin is in the list. "null" and malformed origins never
// match a pattern other than "*".
func (o *Origins) Match(origin string) bool {
	if o == nil || origin == "" {
		return false
	}
	if o.Any {
		return true
	}
	lo := strings.ToLower(origin)
	if o.exact[lo] {
		return true
	}
	scheme, host, ok := strings.Cut(lo, "://")
	if !ok || host == "" || strings.ContainsAny(host, "/?#@ ") {
		return false
	}
	name, port, _ := strings.Cut(host, ":")
	for _, w := range o.wild {
		if w.scheme == scheme && w.port == port && len(name) > len(w.suffix) && strings.HasSuffix(name, w.suffix) {
			return true
		}
	}
	return false
}

// CORS is one location's cross-origin policy (the cors_* directives after inheritance).
type CORS struct {
	Origins     *Origins
	Methods     string // Access-Control-Allow-Methods value
	Headers     string // Access-Control-Allow-Headers value; "*" reflects the request's list
	Expose      string
	Credentials bool
	MaxAge      time.Duration
	maxAge      string
}

// NewCORS builds a policy; methods default to the CORS-safelisted GET, HEAD, POST.
func NewCORS(origins *Origins, methods, headers, expose []string, credentials bool, maxAge time.Duration, maxAgeSet bool) *CORS {
	c := &CORS{Origins: origins, Credentials: credentials, MaxAge: maxAge}
	if len(methods) == 0 {
		methods = []string{"GET", "HEAD", "POST"}
	}
	c.Methods = strings.Join(methods, ", ")
	c.Headers = strings.Join(headers, ", ")
	c.Expose = strings.Join(expose, ", ")
	if maxAgeSet {
		c.maxAge = strconv.Itoa(int(maxAge / time.Second))
	}
	return c
}

// corsHeaders are the response headers a CORS policy owns: an upstream's values are replaced, never doubled.
var corsHeaders = [...]string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
	"Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age"}

// IsPreflight reports a CORS preflight: OPTIONS with Origin and Access-Control-Request-Method.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// allowOrigin is the Access-Control-Allow-Origin value for origin, or "" when it is not allowed. With
// credentials the matched origin is reflected: browsers refuse a literal "*" on credentialed requests.
func (c *CORS) allowOrigin(origin string) string {
	if origin == "" || !c.Origins.Match(origin) {
		return ""
	}
	if c.Origins.Any && !c.Credentials {
		return "*"
	}
	return origin
}

// Allowed reports whether origin may make cross-origin requests under this policy.
func (c *CORS) Allowed(origin string) bool { return c.allowOrigin(origin) != "" }

// Response sets the CORS headers of an actual (non-preflight) response, whatever its status: Vary: Origin
// always (so caches never serve one origin's answer to another), the allow headers only for an allowed origin.
func (c *CORS) Response(h http.Header, origin string) {
	for _, k := range corsHeaders {
		delete(h, k)
	}
	addVary(h, "Origin")
	ao := c.allowOrigin(origin)
	if ao == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", ao)
	if c.Credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if c.Expose != "" {
		h.Set("Access-Control-Expose-Headers", c.Expose)
	}
}

// Preflight sets the headers of the answer to a preflight request (sluice answers it with 204 itself).
func (c *CORS) Preflight(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	c.Response(h, origin)
	addVary(h, "Access-Control-Request-Method")
	addVary(h, "Access-Control-Request-Headers")
	if c.allowOrigin(origin) == "" {
		return
	}
	h.Del("Access-Control-Expose-Headers") // meaningless on a preflight
	h.Set("Access-Control-Allow-Methods", c.Methods)
	switch c.Headers {
	case "":
	case "*":
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && validTokenList(req) {
			h.Set("Access-Control-Allow-Headers", req)
		}
	default:
		h.Set("Access-Control-Allow-Headers", c.Headers)
	}
	if c.maxAge != "" {
		h.Set("Access-Control-Max-Age", c.maxAge)
	}
}

// validTokenList reports a comma-separated list of header-name tokens, so a reflected value can carry nothing else.
func validTokenList(s string) bool {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			if !isTokenChar(part[i]) {
				return false
			}
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	return c < 0x80 && (c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0)
}

// addVary adds a field name to Vary unless it is already listed.
func addVary(h http.Header, name string) {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, name) {
				return
			}
		}
	}
	h.Add("Vary", name)
}

// SameOrigin reports whether origin names the request's own scheme and host (a page opening a WebSocket to
// the site that served it).
func SameOrigin(origin string, r *http.Request) bool {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	host = strings.TrimSuffix(host, map[string]string{"http": ":80", "https": ":443"}[scheme])
	return host != "" && strings.EqualFold(origin, scheme+"://"+host)
}
