// Package compress is nginx's gzip filter: which responses are compressed on the fly (gzip, gzip_types,
// gzip_min_length, gzip_http_version, gzip_proxied, gzip_disable, gzip_vary) and the pooled writers that
// compress them. The writers are klauspost/compress's gzip, which at the levels used here (1 by default)
// compresses about twice as fast as the standard library's for the same output format.
package compress

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Proxied is gzip_proxied: for requests that came through a proxy (with a Via header), which responses may
// still be compressed.
type Proxied uint16

const (
	ProxiedOff Proxied = 1 << iota
	ProxiedExpired
	ProxiedNoCache
	ProxiedNoStore
	ProxiedPrivate
	ProxiedNoLastModified
	ProxiedNoETag
	ProxiedAuth
	ProxiedAny
)

var proxiedNames = map[string]Proxied{
	"off": ProxiedOff, "expired": ProxiedExpired, "no-cache": ProxiedNoCache, "no-store": ProxiedNoStore,
	"private": ProxiedPrivate, "no_last_modified": ProxiedNoLastModified, "no_etag": ProxiedNoETag,
	"auth": ProxiedAuth, "any": ProxiedAny,
}

// ParseProxied reads gzip_proxied's arguments; it returns the first it does not know.
func ParseProxied(args []string) (Proxied, string) {
	var p Proxied
	for _, a := range args {
		f, ok := proxiedNames[a]
		if !ok {
			return 0, a
		}
		p |= f
	}
	return p, ""
}

// Gzip is one level's merged gzip settings, compiled at load.
type Gzip struct {
	Level     int   // gzip_comp_level, 1–9
	MinLength int64 // gzip_min_length: a response with a shorter Content-Length is sent as it is
	Vary      bool  // gzip_vary: "Vary: Accept-Encoding" on every response that could be compressed
	HTTP10    bool  // gzip_http_version 1.0: HTTP/1.0 clients too
	Proxied   Proxied
	MSIE6     bool             // gzip_disable msie6
	Disable   []*regexp.Regexp // gzip_disable regexes, on User-Agent
	types     Types
}

// NewGzip compiles gzip_types (text/html is always one; "*" is any type).
func NewGzip(types []string) *Gzip {
	return &Gzip{Level: 1, MinLength: 20, Proxied: ProxiedOff, types: NewTypes(types)}
}

// Types is a list of MIME types as nginx's *_types directives take it (gzip_types, sub_filter_types): text/html
// is always one, "*" is any type (even none), and a response's type matches without its parameters and case.
type Types struct {
	set     map[string]struct{}
	anyType bool
}

// NewTypes compiles a *_types list.
func NewTypes(types []string) Types {
	t := Types{set: map[string]struct{}{"text/html": {}}}
	for _, s := range types {
		if s == "*" {
			t.anyType = true
		}
		t.set[strings.ToLower(s)] = struct{}{}
	}
	return t
}

// Match reports whether ctype (a Content-Type value, parameters allowed) is one of the types.
func (t Types) Match(ctype string) bool {
	if t.anyType {
		return true
	}
	mt, _, _ := strings.Cut(ctype, ";")
	mt = strings.TrimSpace(mt)
	if mt == "" {
		return false
	}
	if _, ok := t.set[mt]; ok {
		return true
	}
	_, ok := t.set[strings.ToLower(mt)]
	return ok
}

// Compressible is the response side of nginx's test: status 200, 403 or 404, no Content-Encoding, and
// Fits. A response that passes gets Vary (gzip_vary) whether or not the client accepts gzip.
func (g *Gzip) Compressible(status int, h http.Header) bool {
	if status != http.StatusOK && status != http.StatusForbidden && status != http.StatusNotFound {
		return false
	}
	if ce := h["Content-Encoding"]; len(ce) > 0 && ce[0] != "" {
		return false
	}
	length := int64(-1)
	if cl := h["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil {
			length = n
		}
	}
	ct := ""
	if v := h["Content-Type"]; len(v) > 0 {
		ct = v[0]
	}
	return g.Fits(ct, length)
}

// Fits reports whether a body of type ctype (parameters allowed) and length (-1: unknown) is one gzip
// compresses: a gzip_types type, not shorter than gzip_min_length.
func (g *Gzip) Fits(ctype string, length int64) bool {
	if length >= 0 && length < g.MinLength {
		return false
	}
	return g.types.Match(ctype)
}

// Accepts is nginx's ngx_http_gzip_ok: the client accepts gzip (and not with q=0), is not an old MSIE under
// gzip_disable msie6, speaks at least gzip_http_version, came through no proxy (a Via header) unless
// gzip_proxied allows the response h, and no gzip_disable regex matches its User-Agent.
func (g *Gzip) Accepts(r *http.Request, h http.Header) bool {
	ae := r.Header["Accept-Encoding"]
	if len(ae) == 0 || !AcceptsGzip(ae[0]) {
		return false
	}
	ua := ""
	if v := r.Header["User-Agent"]; len(v) > 0 {
		ua = v[0]
	}
	if g.MSIE6 && msie6(ua) {
		return false
	}
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 && !g.HTTP10 {
		return false
	}
	if _, via := r.Header["Via"]; via && !g.proxiedOK(r, h) {
		return false
	}
	if ua != "" {
		for _, re := range g.Disable {
			if re.MatchString(ua) {
				return false
			}
		}
	}
	return true
}

// proxiedOK is gzip_proxied for a request with Via.
func (g *Gzip) proxiedOK(r *http.Request, h http.Header) bool {
	p := g.Proxied
	switch {
	case p&ProxiedOff != 0:
		return false
	case p&ProxiedAny != 0:
		return true
	case p&ProxiedAuth != 0 && r.Header.Get("Authorization") != "":
		return true
	}
	if e := h["Expires"]; len(e) > 0 {
		if p&ProxiedExpired == 0 {
			return false
		}
		expires, err := http.ParseTime(e[0])
		if err != nil {
			return false
		}
		date := time.Now()
		if d := h["Date"]; len(d) > 0 {
			if date, err = http.ParseTime(d[0]); err != nil {
				return false
			}
		}
		return expires.Before(date)
	}
	if cc := h["Cache-Control"]; len(cc) > 0 {
		v := strings.Join(cc, ",")
		return p&ProxiedNoCache != 0 && hasToken(v, "no-cache") ||
			p&ProxiedNoStore != 0 && hasToken(v, "no-store") ||
			p&ProxiedPrivate != 0 && hasToken(v, "private")
	}
	if _, ok := h["Last-Modified"]; ok && p&ProxiedNoLastModified != 0 {
		return false
	}
	if _, ok := h["Etag"]; ok && p&ProxiedNoETag != 0 {
		return false
	}
	return true
}

// hasToken reports whether the comma-separated list v has token (without case), as a whole element or
// followed by "=".
func hasToken(v, token string) bool {
	for v != "" {
		var el string
		el, v, _ = strings.Cut(v, ",")
		el, _, _ = strings.Cut(strings.TrimSpace(el), "=")
		if strings.EqualFold(strings.TrimSpace(el), token) {
			return true
		}
	}
	return false
}

// msie6 is nginx's test for the browsers gzip_disable msie6 names: "MSIE 4.", "MSIE 5.", or "MSIE 6." without
// "SV1" after it.
func msie6(ua string) bool {
	i := strings.Index(ua, "MSIE ")
	if i < 0 || i+7 >= len(ua) {
		return false
	}
	m := ua[i:]
	if m[6] != '.' {
		return false
	}
	switch m[5] {
	case '4', '5':
		return true
	case '6':
		return !strings.Contains(m[8:], "SV1")
	}
	return false
}

// AcceptsGzip is nginx's Accept-Encoding test: a "gzip" token (without case) at the start or after a comma or
// blank, ended by a comma, ";q=" with a weight that is not zero (at most three decimals), or the end.
func AcceptsGzip(ae string) bool {
	if len(ae) < len("gzip") {
		return false
	}
	if strings.HasPrefix(ae, "gzip,") {
		return true
	}
	start := 0
	var p int
	for {
		i := indexFold(ae[start:], "gzip")
		if i < 0 {
			return false
		}
		p = start + i
		if p == 0 || ae[p-1] == ',' || ae[p-1] == ' ' {
			break
		}
		start = p + 4
	}
	p += 4
	for p < len(ae) {
		c := ae[p]
		p++
		switch c {
		case ',':
			return true
		case ';':
			for p < len(ae) {
				c := ae[p]
				p++
				switch c {
				case 'q', 'Q':
					if p+2 > len(ae) || ae[p] != '=' {
						return false
					}
					return quantity(ae[p+1:]) != 0
				case ' ':
				default:
					return false
				}
			}
			return true
		case ' ':
		default:
			return false
		}
	}
	return true
}

// quantity is nginx's weight parser: a weight ×100 (plus the decimals, as nginx adds them), 0 for a zero or
// malformed one.
func quantity(s string) int {
	if s == "" || s[0] != '0' && s[0] != '1' {
		return 0
	}
	q := int(s[0]-'0') * 100
	if len(s) == 1 {
		return q
	}
	switch s[1] {
	case ',', ' ':
		return q
	case '.':
	default:
		return 0
	}
	n := 0
	for _, c := range []byte(s[2:]) {
		if c == ',' || c == ' ' {
			break
		}
		if c < '0' || c > '9' {
			return 0
		}
		q += int(c - '0')
		n++
	}
	if q > 100 || n > 3 {
		return 0
	}
	return q
}

// indexFold is strings.Index without case for an ASCII lower-case needle.
func indexFold(s, needle string) int {
	for i := 0; i+len(needle) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(needle)], needle) {
			return i
		}
	}
	return -1
}

// WeakETag makes a response's entity tag weak, as nginx does when it changes the body: W/ is added to a
// strong tag, and a value that is not a tag at all is removed.
func WeakETag(h http.Header) {
	et, ok := h["Etag"]
	if !ok || len(et) == 0 {
		return
	}
	v := et[0]
	switch {
	case strings.HasPrefix(v, "W/") && len(v) > 2:
	case strings.HasPrefix(v, `"`):
		h["Etag"] = []string{"W/" + v}
	default:
		delete(h, "Etag")
	}
}

// Writers lends gzip writers, one pool per level (a writer's state is several hundred KiB: it is held only
// while a response is being compressed). The zero value is ready.
type Writers struct {
	pools [10]sync.Pool
}

// Get returns a writer at level compressing into w.
func (ws *Writers) Get(w io.Writer, level int) *gzip.Writer {
	level = min(max(level, 1), 9)
	if z, ok := ws.pools[level].Get().(*gzip.Writer); ok {
		z.Reset(w)
		return z
	}
	z, _ := gzip.NewWriterLevel(w, level)
	return z
}

// Put takes back a writer from Get (closed or not: Get resets it).
func (ws *Writers) Put(z *gzip.Writer, level int) {
	z.Reset(io.Discard) // drops the reference to the response
	ws.pools[min(max(level, 1), 9)].Put(z)
}
