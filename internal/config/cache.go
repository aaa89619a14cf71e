package config

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// cacheDirectives are the proxy_cache directives of nginx's ngx_http_proxy_module; the cache lives in
// internal/cache and the proxy consults it (internal/proxy/cache.go).
var cacheDirectives = []Spec{
	{Name: "proxy_cache_path", Module: "http_proxy", Ctx: CtxHTTP, Args: "2+",
		Doc:   "A cache: PATH [levels=1:2] keys_zone=NAME:SIZE [inactive=10m] [max_size=SIZE] [use_temp_path=on|off]. One file per key (the md5 of the key, in levels of subdirectories named by its last digits, as nginx); the zone's SIZE bounds the keys (about 8000 a megabyte), entries not used for inactive are removed, and max_size removes least recently used entries. At start the index is rebuilt from the files in PATH; a reload that keeps PATH keeps the cache.",
		Diff:  "the files have sluice's own format (nginx's are not read, nor the reverse); a response is always written to a temporary file in PATH (use_temp_path is accepted, either way); the loader_*, manager_*, min_free and purger parameters are accepted and have no effect; the index is rebuilt before the configuration goes live rather than in the background.",
		Apply: (*parser).cachePath},
	{Name: "proxy_cache", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "The keys_zone of a proxy_cache_path that caches this location's responses, or off.",
		Diff: "variables in the zone name are not supported.",
		Apply: func(p *parser, d *Directive) error {
			name := d.Args[0]
			if name == "off" {
				name = ""
			} else if strings.Contains(name, "$") {
				return d.errorf("variables in \"proxy_cache\" are not supported")
			}
			p.conf.ProxyCache.set(CacheRef{Name: name, Pos: d.Pos})
			return nil
		}},
	{Name: "proxy_cache_key", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "$scheme$proxy_host$request_uri", Doc: "The key a response is cached under.",
		Apply: func(p *parser, d *Directive) error { return p.setTemplate(d, &p.conf.ProxyCacheKey) }},
	{Name: "proxy_cache_valid", Module: "http_proxy", Ctx: ctxHSL, Args: "1+", Doc: "How long responses with the statuses listed (200 301 302 when none is; any for every status) stay fresh when the upstream's X-Accel-Expires, Cache-Control and Expires say nothing. Without one that applies, such a response is not cached.",
		Apply: (*parser).cacheValid},
	{Name: "proxy_cache_methods", Module: "http_proxy", Ctx: ctxHSL, Args: "1+", Default: "GET HEAD", Doc: "Request methods whose responses are cached (GET and HEAD always are).",
		Apply: func(p *parser, d *Directive) error {
			ms := []string{http.MethodGet, http.MethodHead}
			for _, a := range d.Args {
				m := strings.ToUpper(a)
				switch m {
				case "GET", "HEAD":
				case "POST":
					ms = append(ms, m)
				default:
					return d.errorf("invalid value %q in \"proxy_cache_methods\" directive", a)
				}
			}
			p.conf.ProxyCacheMethods.set(ms)
			return nil
		}},
	{Name: "proxy_cache_bypass", Module: "http_proxy", Ctx: ctxHSL, Args: "1+", Doc: "When any value is not empty and not \"0\", the response is taken from the upstream, not the cache ($upstream_cache_status BYPASS); it may still be stored.",
		Apply: func(p *parser, d *Directive) error { return p.templates(d, &p.conf.ProxyCacheBypass) }},
	{Name: "proxy_no_cache", Module: "http_proxy", Ctx: ctxHSL, Args: "1+", Doc: "When any value is not empty and not \"0\", the response is not stored.",
		Apply: func(p *parser, d *Directive) error { return p.templates(d, &p.conf.ProxyNoCache) }},
	{Name: "proxy_cache_min_uses", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "1", Doc: "Requests for a key before its response is stored.",
		Apply: func(p *parser, d *Directive) error { return p.setCount(d, &p.conf.ProxyCacheMinUses) }},
	{Name: "proxy_cache_use_stale", Module: "http_proxy", Ctx: ctxHSL, Args: "1+", Default: "off", Doc: "When an expired entry is sent instead of the upstream's answer: error, timeout, invalid_header, updating (while another request updates it), http_500, http_502, http_503, http_504, http_403, http_404, http_429, or off.",
		Apply: func(p *parser, d *Directive) error {
			nu, updating, err := conditions(d, false)
			p.conf.ProxyCacheUseStale.set(UseStale{NextUpstream: nu, Updating: updating})
			return err
		}},
	{Name: "proxy_cache_lock", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: one request at a time fills a missing entry; others wait for it (up to proxy_cache_lock_timeout) and are then served from the cache.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyCacheLock) }},
	{Name: "proxy_cache_lock_timeout", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "5s", Doc: "How long a request waits for the lock; then it goes to the upstream and its response is not stored.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.ProxyCacheLockTimeout) }},
	{Name: "proxy_cache_lock_age", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "5s", Doc: "When the request filling a missing entry (proxy_cache_lock) has not finished after this long, one more request is passed to the upstream and fills it too.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.ProxyCacheLockAge) }},
	{Name: "proxy_cache_background_update", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Accepted; an expired entry is fetched in the foreground (EXPIRED).",
		Diff:  "nginx sends the expired entry at once (STALE, with proxy_cache_use_stale updating) and updates it in the background.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyCacheBackground) }},
	{Name: "proxy_cache_revalidate", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: an expired entry is revalidated with If-Modified-Since and If-None-Match; a 304 makes it fresh again (REVALIDATED).",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyCacheRevalidate) }},
	{Name: "proxy_cache_convert_head", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "on: a HEAD request is sent to the upstream as GET when caching, so the entry has a body.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ProxyCacheConvertHead) }},
}

// UseStale is proxy_cache_use_stale: the failures of the upstream that an expired entry answers instead.
type UseStale struct {
	NextUpstream      // error, timeout, invalid_header, http_NNN (NonIdempotent unused)
	Updating     bool // updating: while another request updates the entry
}

// CacheRef is proxy_cache: the zone's name ("" for off) and where it was named.
type CacheRef struct {
	Name string
	Pos  Pos
}

// CachePath is one proxy_cache_path.
type CachePath struct {
	cache.Spec
	Pos Pos
}

// cachePath parses proxy_cache_path.
func (p *parser) cachePath(d *Directive) error {
	cp := CachePath{Spec: cache.Spec{Path: p.path(d.Args[0]), Inactive: 10 * time.Minute}, Pos: d.Pos}
	for _, a := range d.Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "levels":
			for _, l := range strings.Split(v, ":") {
				n, err := strconv.Atoi(l)
				if err != nil || n < 1 || n > 2 || len(cp.Levels) == 3 {
					return d.errorf("invalid \"levels\" %q", v)
				}
				cp.Levels = append(cp.Levels, n)
			}
		case "keys_zone":
			name, size, ok := strings.Cut(v, ":")
			n, err := ParseSize(size)
			if !ok || name == "" || err != nil || n < 8<<10 {
				return d.errorf("invalid keys zone size %q (at least 8k)", a)
			}
			cp.Name, cp.Size = name, n
		case "inactive":
			t, err := ParseDuration(v)
			if err != nil {
				return d.errorf("invalid inactive value %q", a)
			}
			cp.Inactive = t
		case "max_size":
			n, err := ParseSize(v)
			if err != nil {
				return d.errorf("invalid max_size value %q", a)
			}
			cp.MaxSize = n
		case "use_temp_path":
			if v != "on" && v != "off" {
				return d.errorf("invalid use_temp_path value %q, it must be \"on\" or \"off\"", v)
			}
		case "min_free", "manager_files", "manager_sleep", "manager_threshold", "loader_files", "loader_sleep", "loader_threshold", "purger", "purger_files", "purger_sleep", "purger_threshold":
		default:
			return d.errorf("invalid parameter %q", a)
		}
	}
	if cp.Name == "" {
		return d.errorf("\"%s\" must have \"keys_zone\" parameter", d.Name)
	}
	for _, o := range p.http.CachePaths {
		if o.Path == cp.Path {
			return d.errorf("the same path name %q is used in %s:%d and in %s:%d", cp.Path, o.Pos.File, o.Pos.Line, d.Pos.File, d.Pos.Line)
		}
		if o.Name == cp.Name {
			return d.errorf("duplicate zone %q", cp.Name)
		}
	}
	p.http.CachePaths = append(p.http.CachePaths, cp)
	return nil
}

// cacheValid parses proxy_cache_valid: [code ...|any] time.
func (p *parser) cacheValid(d *Directive) error {
	t, err := ParseDuration(d.Args[len(d.Args)-1])
	if err != nil {
		return d.errorf("invalid time value %q", d.Args[len(d.Args)-1])
	}
	v := cache.Valid{D: t}
	codes := d.Args[:len(d.Args)-1]
	if len(codes) == 0 {
		v.Codes = []int{200, 301, 302}
	}
	for _, c := range codes {
		if c == "any" {
			v.Any = true
			continue
		}
		n, err := strconv.Atoi(c)
		if err != nil || n < 100 || n > 599 {
			return d.errorf("invalid status %q", c)
		}
		v.Codes = append(v.Codes, n)
	}
	add(&p.conf.ProxyCacheValid, v)
	return nil
}

// templates appends each argument, compiled, to a list directive (proxy_cache_bypass, proxy_no_cache).
func (p *parser) templates(d *Directive, o *Opt[[]*vars.Template]) error {
	for _, a := range d.Args {
		t, err := p.compile(d, a)
		if err != nil {
			return err
		}
		add(o, t)
	}
	return nil
}

// checkCache makes sure a level's proxy_cache names a declared zone.
func (p *parser) checkCache(lc *LocConf) error {
	name := lc.ProxyCache.V.Name
	if name == "" {
		return nil
	}
	for _, cp := range p.cfg.HTTP.CachePaths {
		if cp.Name == name {
			return nil
		}
	}
	return lc.ProxyCache.V.Pos.errorf("\"proxy_cache\" zone %q is unknown", name)
}

// CacheIgnore is the cache's part of proxy_ignore_headers.
func (lc *LocConf) CacheIgnore() cache.Ignore {
	var ig cache.Ignore
	v := lc.ProxyIgnoreHeaders.V
	for _, m := range [...]struct {
		c IgnoreHeaders
		i cache.Ignore
	}{{IgnoreAccelExpires, cache.IgnoreAccelExpires}, {IgnoreExpires, cache.IgnoreExpires}, {IgnoreCacheControl, cache.IgnoreCacheControl}, {IgnoreSetCookie, cache.IgnoreSetCookie}, {IgnoreVary, cache.IgnoreVary}} {
		if v&m.c != 0 {
			ig |= m.i
		}
	}
	return ig
}
