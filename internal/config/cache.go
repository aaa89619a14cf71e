package config

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// cacheDirectives are the cache directives of nginx's ngx_http_proxy_module (proxy_cache*) and
// ngx_http_fastcgi_module (fastcgi_cache*): one family, declared once for both prefixes, as nginx's
// ngx_http_upstream_t serves both modules. The cache lives in internal/cache; the proxy and the FastCGI handler
// consult it through cache.Request.
var cacheDirectives = append(cacheFamily("proxy", "http_proxy", func(lc *LocConf) *CacheOpts { return &lc.ProxyCache }),
	append(cacheFamily("fastcgi", "http_fastcgi", func(lc *LocConf) *CacheOpts { return &lc.FastCGIOpts.Cache }),
		append(cacheFamily("uwsgi", "http_uwsgi", func(lc *LocConf) *CacheOpts { return &lc.UWSGIOpts.Cache }),
			cacheFamily("scgi", "http_scgi", func(lc *LocConf) *CacheOpts { return &lc.SCGIOpts.Cache })...)...)...)

// cacheFamily declares the cache directives of one module: pre_cache_path, pre_cache, pre_cache_key, … whose
// values go to the CacheOpts that opts picks of a level.
func cacheFamily(pre, module string, opts func(*LocConf) *CacheOpts) []Spec {
	keyDefault, keyDiff := "$scheme$proxy_host$request_uri", ""
	if pre != "proxy" {
		keyDefault, keyDiff = "", "nginx 1.22 warns without one and then caches every response of the location under the one empty key; sluice warns too (at the "+pre+"_cache line) and does the same."
	}
	specs := []Spec{
		{Name: pre + "_cache_path", Module: module, Ctx: CtxHTTP, Args: "2+",
			Doc:   "A cache: PATH [levels=1:2] keys_zone=NAME:SIZE [inactive=10m] [max_size=SIZE] [use_temp_path=on|off]. One file per key (the md5 of the key, in levels of subdirectories named by its last digits, as nginx); the zone's SIZE bounds the keys (about 8000 a megabyte), entries not used for inactive are removed, and max_size removes least recently used entries. At start the index is rebuilt from the files in PATH; a reload that keeps PATH keeps the cache. proxy_cache_path and fastcgi_cache_path share one space of zone names and of paths, as in nginx.",
			Diff:  "the files have sluice's own format (nginx's are not read, nor the reverse); a response is always written to a temporary file in PATH (use_temp_path is accepted, either way); the loader_*, manager_*, min_free and purger parameters are accepted and have no effect; the index is rebuilt before the configuration goes live rather than in the background.",
			Apply: func(p *parser, d *Directive) error { return p.cachePath(d, pre) }},
		{Name: pre + "_cache", Module: module, Ctx: ctxHSL, Args: "1", Default: "off", Doc: "The keys_zone of a " + pre + "_cache_path that caches this location's responses, or off.",
			Diff: "variables in the zone name are not supported.",
			Apply: func(p *parser, d *Directive) error {
				name := d.Args[0]
				if name == "off" {
					name = ""
				} else if strings.Contains(name, "$") {
					return d.errorf("variables in \"%s\" are not supported", d.Name)
				}
				opts(p.conf).Zone.set(CacheRef{Name: name, Pos: d.Pos})
				return nil
			}},
		{Name: pre + "_cache_key", Module: module, Ctx: ctxHSL, Args: "1", Default: keyDefault, Doc: "The key a response is cached under.", Diff: keyDiff,
			Apply: func(p *parser, d *Directive) error { return p.setTemplate(d, &opts(p.conf).Key) }},
		{Name: pre + "_cache_valid", Module: module, Ctx: ctxHSL, Args: "1+", Doc: "How long responses with the statuses listed (200 301 302 when none is; any for every status) stay fresh when the upstream's X-Accel-Expires, Cache-Control and Expires say nothing. Without one that applies, such a response is not cached.",
			Apply: func(p *parser, d *Directive) error { return p.cacheValid(d, &opts(p.conf).Valid) }},
		{Name: pre + "_cache_methods", Module: module, Ctx: ctxHSL, Args: "1+", Default: "GET HEAD", Doc: "Request methods whose responses are cached (GET and HEAD always are).",
			Apply: func(p *parser, d *Directive) error {
				ms := []string{http.MethodGet, http.MethodHead}
				for _, a := range d.Args {
					m := strings.ToUpper(a)
					switch m {
					case "GET", "HEAD":
					case "POST":
						ms = append(ms, m)
					default:
						return d.errorf("invalid value %q in \"%s\" directive", a, d.Name)
					}
				}
				opts(p.conf).Methods.set(ms)
				return nil
			}},
		{Name: pre + "_cache_bypass", Module: module, Ctx: ctxHSL, Args: "1+", Doc: "When any value is not empty and not \"0\", the response is taken from the upstream, not the cache ($upstream_cache_status BYPASS); it may still be stored.",
			Apply: func(p *parser, d *Directive) error { return p.templates(d, &opts(p.conf).Bypass) }},
		{Name: pre + "_no_cache", Module: module, Ctx: ctxHSL, Args: "1+", Doc: "When any value is not empty and not \"0\", the response is not stored.",
			Apply: func(p *parser, d *Directive) error { return p.templates(d, &opts(p.conf).NoCache) }},
		{Name: pre + "_cache_min_uses", Module: module, Ctx: ctxHSL, Args: "1", Default: "1", Doc: "Requests for a key before its response is stored.",
			Apply: func(p *parser, d *Directive) error { return p.setCount(d, &opts(p.conf).MinUses) }},
		{Name: pre + "_cache_use_stale", Module: module, Ctx: ctxHSL, Args: "1+", Default: "off", Doc: "When an expired entry is sent instead of the upstream's answer: error, timeout, invalid_header, updating (while another request updates it), http_500, http_502, http_503, http_504, http_403, http_404, http_429, or off.",
			Apply: func(p *parser, d *Directive) error {
				nu, updating, err := conditions(d, false)
				opts(p.conf).UseStale.set(cache.UseStale{Error: nu.Error, Timeout: nu.Timeout, InvalidHeader: nu.InvalidHeader, Status: nu.Status, Updating: updating})
				return err
			}},
		{Name: pre + "_cache_lock", Module: module, Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: one request at a time fills a missing entry; others wait for it (up to " + pre + "_cache_lock_timeout) and are then served from the cache.",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &opts(p.conf).Lock) }},
		{Name: pre + "_cache_lock_timeout", Module: module, Ctx: ctxHSL, Args: "1", Default: "5s", Doc: "How long a request waits for the lock; then it goes to the upstream and its response is not stored.",
			Apply: func(p *parser, d *Directive) error { return p.setDur(d, &opts(p.conf).LockTimeout) }},
		{Name: pre + "_cache_lock_age", Module: module, Ctx: ctxHSL, Args: "1", Default: "5s", Doc: "When the request filling a missing entry (" + pre + "_cache_lock) has not finished after this long, one more request is passed to the upstream and fills it too.",
			Apply: func(p *parser, d *Directive) error { return p.setDur(d, &opts(p.conf).LockAge) }},
		{Name: pre + "_cache_background_update", Module: module, Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: with " + pre + "_cache_use_stale updating, a request for an expired entry is answered with it at once (STALE) while a subrequest through the same location asks the upstream and updates it; requests meanwhile get UPDATING, and the ones after the update HIT.",
			Diff:  "the update runs at the upstream's pace, whatever the client that asked; at most 256 updates (and mirror requests) run at once, beyond which the request asks the upstream itself (EXPIRED).",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &opts(p.conf).Background) }},
		{Name: pre + "_cache_revalidate", Module: module, Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: an expired entry is revalidated with If-Modified-Since and If-None-Match; a 304 makes it fresh again (REVALIDATED).",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &opts(p.conf).Revalidate) }},
	}
	if pre == "proxy" {
		specs = append(specs, Spec{Name: "proxy_cache_convert_head", Module: module, Ctx: ctxHSL, Args: "1", Default: "on", Doc: "on: a HEAD request is sent to the upstream as GET when caching, so the entry has a body.",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &opts(p.conf).ConvertHead) }})
	}
	return specs
}

// CacheOpts is one family of cache directives at a level: proxy_cache* or fastcgi_cache*.
type CacheOpts struct {
	Zone        Opt[CacheRef]
	Key         Opt[*vars.Template]
	Valid       Opt[[]cache.Valid]
	Methods     Opt[[]string]
	Bypass      Opt[[]*vars.Template]
	NoCache     Opt[[]*vars.Template]
	MinUses     Opt[int]
	UseStale    Opt[cache.UseStale]
	Lock        Opt[bool]
	LockTimeout Opt[time.Duration]
	LockAge     Opt[time.Duration]
	Background  Opt[bool]
	Revalidate  Opt[bool]
	ConvertHead Opt[bool] // proxy_cache_convert_head (FastCGI has none: a HEAD goes to the application as HEAD)
}

// compile is the merged family as a request reads it, nil when the level does not cache. ign is the module's
// *_ignore_headers.
func (o *CacheOpts) compile(ign IgnoreHeaders, convertHead bool) *cache.Conf {
	if o.Zone.V.Name == "" {
		return nil
	}
	key := o.Key.V
	if key == nil {
		key = &vars.Template{} // fastcgi_cache without fastcgi_cache_key: nginx's empty key
	}
	return &cache.Conf{Zone: o.Zone.V.Name, Key: key, Valid: o.Valid.V,
		Methods: o.Methods.Get([]string{http.MethodGet, http.MethodHead}), Bypass: o.Bypass.V, NoCache: o.NoCache.V,
		MinUses: o.MinUses.Get(1), UseStale: o.UseStale.V, Lock: o.Lock.V,
		LockTimeout: o.LockTimeout.Get(5 * time.Second), LockAge: o.LockAge.Get(5 * time.Second),
		Revalidate: o.Revalidate.V, Background: o.Background.V, ConvertHead: convertHead && o.ConvertHead.Get(true), Ignore: cacheIgnore(ign)}
}

// CacheRef is proxy_cache (fastcgi_cache): the zone's name ("" for off) and where it was named.
type CacheRef struct {
	Name string
	Pos  Pos
}

// CachePath is one proxy_cache_path or fastcgi_cache_path.
type CachePath struct {
	cache.Spec
	Module string // "proxy" or "fastcgi": a zone serves the family that declared it
	Pos    Pos
}

// cachePath parses proxy_cache_path and fastcgi_cache_path (pre names which).
func (p *parser) cachePath(d *Directive, pre string) error {
	cp := CachePath{Spec: cache.Spec{Path: p.path(d.Args[0]), Inactive: 10 * time.Minute}, Module: pre, Pos: d.Pos}
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
		if o.Name == cp.Name && o.Module != pre {
			// nginx's shared memory zones are one name space; each belongs to the module that declared it
			return d.errorf("the shared memory zone %q is already declared for a different use (%s_cache_path in %s:%d)", cp.Name, o.Module, o.Pos.File, o.Pos.Line)
		}
		if o.Name == cp.Name {
			return d.errorf("duplicate zone %q", cp.Name)
		}
	}
	p.http.CachePaths = append(p.http.CachePaths, cp)
	return nil
}

// cacheValid parses proxy_cache_valid (fastcgi_cache_valid): [code ...|any] time.
func (p *parser) cacheValid(d *Directive, o *Opt[[]cache.Valid]) error {
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
	add(o, v)
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

// checkCache makes sure a level's proxy_cache and fastcgi_cache name a zone their module declared, and warns,
// as nginx 1.22 does, about a fastcgi_cache without fastcgi_cache_key where fastcgi_pass uses it.
func (p *parser) checkCache(lc *LocConf) error {
	for _, f := range [...]struct {
		pre  string
		opts *CacheOpts
		pass *GatewayPass
	}{{"proxy", &lc.ProxyCache, nil}, {"fastcgi", &lc.FastCGIOpts.Cache, lc.FastCGI}, {"uwsgi", &lc.UWSGIOpts.Cache, lc.UWSGI}, {"scgi", &lc.SCGIOpts.Cache, lc.SCGI}} {
		ref := f.opts.Zone.V
		if ref.Name == "" {
			continue
		}
		found := false
		for _, cp := range p.cfg.HTTP.CachePaths {
			if cp.Name != ref.Name {
				continue
			}
			if cp.Module != f.pre {
				return ref.Pos.errorf("the shared memory zone %q is already declared for a different use (%s_cache_path in %s:%d)", ref.Name, cp.Module, cp.Pos.File, cp.Pos.Line)
			}
			found = true
		}
		if !found {
			return ref.Pos.errorf("\"%s_cache\" zone %q is unknown", f.pre, ref.Name)
		}
		if f.pass != nil && f.opts.Key.V == nil {
			e := ref.Pos.errorf("no \"%s_cache_key\" for \"%s_cache\"", f.pre, f.pre)
			e.Hint = `every response of the location is cached under one empty key; the usual one is ` + f.pre + `_cache_key "$scheme$request_method$host$request_uri";`
			if slices.ContainsFunc(p.cfg.Warnings, func(w *Error) bool { return *w == *e }) {
				continue // (one fastcgi_cache line inherited by several locations)
			}
			p.cfg.Warnings = append(p.cfg.Warnings, e)
		}
	}
	return nil
}

// cacheIgnore is the cache's part of proxy_ignore_headers (fastcgi_ignore_headers).
func cacheIgnore(v IgnoreHeaders) cache.Ignore {
	var ig cache.Ignore
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
